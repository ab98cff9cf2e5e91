/**
 * Taking jobs in: a reservation holds the model's slot and a queue place while an upload arrives;
 * the data is checked fully before the job is queued. Refusals leave nothing behind.
 */
import path from 'node:path';
import { readManifest } from '../artifacts/manifest';
import { listVersions, servingVersion } from '../artifacts/repository';
import { TridentError } from '../base/errors';
import type { JobBoard } from './board';
import { checkData, type DataToCheck } from './data-check';
import { resolveDataReference } from './data-folders';
import { jobConflict } from './errors';
import { parseHyperParams, trainingLength, type HyperParams } from './hyperparams';
import { versionDir } from './promotion';
import type { JobRecord } from './record';
import { newJobId } from './store';
import { safeUploadPath, UploadFolder } from './uploads';

/** An upload in progress: files go to `uploads`, then `submit` turns it into a job (or `release` drops it). */
export interface Reservation {
  readonly id: string;
  readonly model: string;
  readonly uploads: UploadFolder;
  release(): Promise<void>;
}

export interface CreateOptions {
  params?: unknown;
  force?: boolean;
}

interface OpenReservation extends Reservation {
  /** The upload became a job: the queue place is now the job's. */
  consume(): void;
}

export class JobIntake {
  constructor(
    private readonly board: JobBoard,
    /** Called with each job queued. */
    private readonly queued: () => void,
  ) {}

  /**
   * Holds the model's job slot and a queue place while an upload arrives. Refuses at once when
   * the model is busy, unknown, or the queue is full, before any byte is read.
   */
  async reserve(model: string): Promise<Reservation> {
    const board = this.board;
    board.checkOpen();
    const name = board.checkName(model);
    const holder = board.byModel.get(name);
    if (holder) throw jobConflict(name, holder);
    const waiting = board.queue.length + board.reserved;
    const freeSlots = Math.max(0, board.config.maxRunningJobs - board.running.size);
    if (waiting >= board.config.maxQueuedJobs + freeSlots) {
      throw new TridentError('unavailable', `the fine-tune queue is full (${waiting} job(s) waiting); try again later`);
    }
    const id = newJobId();
    board.byModel.set(name, id);
    board.reserved++;
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      board.reserved--;
      if (board.byModel.get(name) === id) board.byModel.delete(name);
      await board.store.removeFolder(id);
    };
    try {
      if ((await listVersions(board.modelDir(name))).length === 0) throw new TridentError('not_found', `no model "${name}" in the repository`);
      await board.store.createFolder(id);
    } catch (e) {
      await release();
      throw e;
    }
    const reservation: OpenReservation = {
      id,
      model: name,
      uploads: new UploadFolder(board.store.uploadsDir(id), board.config.limits),
      release,
      consume: () => {
        released = true;
        board.reserved--;
      },
    };
    return reservation;
  }

  /** Checks the uploaded data and queues the job; on any refusal the reservation is released. */
  async submit(reservation: Reservation, annotations: string | undefined, options: CreateOptions = {}): Promise<JobRecord> {
    try {
      const params = parseHyperParams(options.params, this.board.config);
      const name = safeUploadPath(annotations || 'annotations.jsonl');
      if (!reservation.uploads.has(name)) {
        throw new TridentError('invalid_argument', `the upload has no annotation file "${name}" (send it as a file named annotations.jsonl, or say which file it is)`);
      }
      const jsonl = path.join(reservation.uploads.dir, name);
      return await this.accept(reservation, { jsonl, displayName: name, source: 'upload', valShare: params.valShare }, params, !!options.force);
    } catch (e) {
      await reservation.release();
      throw e;
    }
  }

  /** A job on a data folder the configuration allows (see data-folders.ts). */
  async createFromFolder(model: string, reference: string, options: CreateOptions = {}): Promise<JobRecord> {
    const reservation = await this.reserve(model);
    try {
      const params = parseHyperParams(options.params, this.board.config);
      const jsonl = await resolveDataReference(reference, this.board.config.dataFolders);
      return await this.accept(reservation, { jsonl, displayName: reference, source: 'folder', valShare: params.valShare }, params, !!options.force);
    } catch (e) {
      await reservation.release();
      throw e;
    }
  }

  /** A job on files sent in one message (gRPC). */
  async createFromFiles(model: string, files: readonly { name: string; content: Uint8Array }[], annotations: string | undefined, options: CreateOptions = {}): Promise<JobRecord> {
    const reservation = await this.reserve(model);
    try {
      if (files.length === 0) throw new TridentError('invalid_argument', 'the upload is empty: send annotations.jsonl and the images it names');
      for (const file of files) await reservation.uploads.writeBuffer(file.name, file.content);
    } catch (e) {
      await reservation.release();
      throw e;
    }
    return this.submit(reservation, annotations, options);
  }

  private async accept(reservation: Reservation, data: DataToCheck, params: HyperParams, force: boolean): Promise<JobRecord> {
    const board = this.board;
    const modelDir = board.modelDir(reservation.model);
    const parentVersion = await servingVersion(modelDir);
    if (parentVersion === undefined) throw new TridentError('not_found', `no model "${reservation.model}" in the repository`);
    const manifest = await readManifest(versionDir(modelDir, parentVersion));
    const checked = await checkData(data, manifest, board.config.limits);
    const length = trainingLength(params, checked.info.samples);
    board.checkOpen();
    const record: JobRecord = {
      id: reservation.id,
      model: reservation.model,
      state: 'queued',
      createdAt: new Date().toISOString(),
      parentVersion,
      params,
      force,
      data: checked.info,
      progress: { step: 0, totalSteps: length.totalSteps, epoch: 0, epochs: length.epochs },
      epochs: [],
      warnings: checked.warnings,
    };
    await board.store.save(record);
    (reservation as OpenReservation).consume();
    board.active.set(record.id, { record, jsonl: data.jsonl });
    board.queue.push(record.id);
    board.log(`fine-tune job ${record.id}: queued for ${record.model} version ${parentVersion} (${checked.info.samples} samples)`);
    this.queued();
    return structuredClone(record);
  }
}
