/**
 * The fine-tune job system: accepts jobs (data checked fully up front), queues them (bounded, one
 * per model), runs each in its own worker, gates and promotes the result, and keeps every record
 * on disk so that a restart ends interrupted jobs cleanly (see recovery.ts).
 */
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { readManifest } from '../artifacts/manifest';
import { listVersions, readServingPointer, resolveLatest, servingVersion, stagingDir, moveServingPointer, type PointerEntry } from '../artifacts/repository';
import { KeyedLock } from '../runtime/keyed-lock';
import { checkModelName } from '../runtime/model-registry';
import { DEFAULTS, type TrainConfig } from '../train/config';
import { TridentError } from '../errors';
import { KeyChecker } from '../keys';
import type { FinetuneConfig } from './config';
import { checkData, type DataToCheck } from './data-check';
import { resolveDataReference } from './data-folders';
import { jobConflict } from './errors';
import { JobEventHub } from './events';
import { decide } from './gate';
import { parseHyperParams, trainingLength, type HyperParams } from './params';
import { annotateCandidate, promote, revertPromotion, versionDir, type PromotionPhase } from './promotion';
import { isEnded, type Decision, type Evaluation, type JobEvent, type JobRecord, type JobState } from './record';
import { recover, RESTART_REASON, type RecoveryReport } from './recovery';
import { JobRunner } from './runner';
import type { RunPlan } from './runner-protocol';
import { checkJobId, JobStore, newJobId } from './store';
import { safeUploadPath, UploadFolder } from './uploads';

export interface JobManagerOptions {
  /** The model repository root (NAME/VERSION folders). */
  models: string;
  config: FinetuneConfig;
  /**
   * Called after a model's "latest" moved (promotion or rollback), e.g. to reload the model in the
   * server's registry. If it throws, the move is undone and the promotion (or rollback) fails.
   */
  onServingChanged?: (model: string, latest: number) => Promise<void> | void;
  log?: (message: string) => void;
}

export interface ManagerEvents {
  /** A promotion step just finished on disk (synchronously after it, before the next one). */
  phase: [jobId: string, phase: PromotionPhase];
}

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

export interface VersionInfo {
  version: number;
  latest: boolean;
  createdAt?: string;
  metrics?: Record<string, unknown>;
  lineage?: Record<string, unknown>;
  /** Why the manifest could not be read. */
  error?: string;
}

export interface ModelVersions {
  model: string;
  latest: number;
  versions: VersionInfo[];
  history: PointerEntry[];
}

interface OpenReservation extends Reservation {
  /** The upload became a job: the queue place is now the job's. */
  consume(): void;
}

interface Active {
  record: JobRecord;
  /** The annotation file on disk. */
  jsonl: string;
  runner?: JobRunner;
}

const PROGRESS_SAVE_INTERVAL_MS = 2000;

export class JobManager extends EventEmitter<ManagerEvents> {
  readonly store: JobStore;
  readonly config: FinetuneConfig;
  private readonly keys: KeyChecker;
  private readonly hub = new JobEventHub();
  /** Model → id of its reserved, queued or running job. */
  private readonly byModel = new Map<string, string>();
  private readonly active = new Map<string, Active>();
  private readonly queue: string[] = [];
  private readonly running = new Set<Promise<void>>();
  private readonly locks = new KeyedLock();
  private reserved = 0;
  private closing = false;

  private constructor(private readonly options: JobManagerOptions) {
    super();
    this.config = options.config;
    this.store = new JobStore(options.models);
    this.keys = new KeyChecker(options.config.apiKeys, {
      disabled: options.config.authDisabled,
      name: 'a fine-tune API key',
      configure: 'no fine-tune API key is configured (--finetune-api-key or TRIDENT_FINETUNE_API_KEYS)',
    });
  }

  /** Recovers from whatever a previous process left (see recovery.ts), then accepts jobs. */
  static async open(options: JobManagerOptions): Promise<{ manager: JobManager; recovery: RecoveryReport }> {
    const manager = new JobManager(options);
    const recovery = await recover(options.models, manager.store);
    for (const id of recovery.interruptedJobs) manager.log(`fine-tune job ${id}: ended by recovery (${RESTART_REASON})`);
    for (const problem of recovery.problems) manager.log(`fine-tune recovery: ${problem}`);
    return { manager, recovery };
  }

  /** Throws unless the key allows `action` (job creation, cancellation, rollback, upload). */
  authorize(presentedKey: string | undefined, action: string): void {
    this.keys.check(presentedKey, action);
  }

  // ---- creating jobs ----

  /**
   * Holds the model's job slot and a queue place while an upload arrives. Refuses at once when
   * the model is busy, unknown, or the queue is full, before any byte is read.
   */
  async reserve(model: string): Promise<Reservation> {
    this.checkOpen();
    const name = this.checkName(model);
    const holder = this.byModel.get(name);
    if (holder) throw jobConflict(name, holder);
    const waiting = this.queue.length + this.reserved;
    const freeSlots = Math.max(0, this.config.maxRunningJobs - this.running.size);
    if (waiting >= this.config.maxQueuedJobs + freeSlots) {
      throw new TridentError('unavailable', `the fine-tune queue is full (${waiting} job(s) waiting); try again later`);
    }
    const id = newJobId();
    this.byModel.set(name, id);
    this.reserved++;
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      this.reserved--;
      if (this.byModel.get(name) === id) this.byModel.delete(name);
      await this.store.removeFolder(id);
    };
    try {
      if ((await listVersions(this.modelDir(name))).length === 0) throw new TridentError('not_found', `no model "${name}" in the repository`);
      await this.store.createFolder(id);
    } catch (e) {
      await release();
      throw e;
    }
    const uploads = new UploadFolder(this.store.uploadsDir(id), this.config.limits);
    const reservation: OpenReservation = {
      id,
      model: name,
      uploads,
      release,
      consume: () => {
        released = true;
        this.reserved--;
      },
    };
    return reservation;
  }

  /** Checks the uploaded data and queues the job; on any refusal the reservation is released. */
  async submit(reservation: Reservation, annotations: string | undefined, options: CreateOptions = {}): Promise<JobRecord> {
    try {
      const params = parseHyperParams(options.params, this.config);
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
      const params = parseHyperParams(options.params, this.config);
      const jsonl = await resolveDataReference(reference, this.config.dataFolders);
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
    const modelDir = this.modelDir(reservation.model);
    const parentVersion = await servingVersion(modelDir);
    if (parentVersion === undefined) throw new TridentError('not_found', `no model "${reservation.model}" in the repository`);
    const manifest = await readManifest(versionDir(modelDir, parentVersion));
    const checked = await checkData(data, manifest, this.config.limits);
    const length = trainingLength(params, checked.info.samples);
    this.checkOpen();
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
    await this.store.save(record);
    (reservation as OpenReservation).consume();
    this.active.set(record.id, { record, jsonl: data.jsonl });
    this.queue.push(record.id);
    this.log(`fine-tune job ${record.id}: queued for ${record.model} version ${parentVersion} (${checked.info.samples} samples)`);
    this.pump();
    return structuredClone(record);
  }

  // ---- reading and watching ----

  async get(id: string): Promise<JobRecord> {
    checkJobId(id);
    const active = this.active.get(id);
    return active ? structuredClone(active.record) : this.store.load(id);
  }

  async list(filter: { model?: string; state?: JobState } = {}): Promise<JobRecord[]> {
    const stored = await this.store.list();
    const records = stored.map((r) => (this.active.has(r.id) ? structuredClone(this.active.get(r.id)!.record) : r));
    return records.filter((r) => (!filter.model || r.model === filter.model) && (!filter.state || r.state === filter.state));
  }

  /**
   * A snapshot, then live events until (and including) `end`. Throws not_found before yielding
   * anything. `return()` stops it at once, even while it waits for the next event.
   */
  async watch(id: string): Promise<AsyncIterableIterator<JobEvent>> {
    checkJobId(id);
    const channel = this.hub.subscribe(id);
    let record: JobRecord;
    try {
      record = await this.get(id);
    } catch (e) {
      await channel.return!();
      throw e;
    }
    const pending: JobEvent[] = [{ type: 'snapshot', job: record }];
    if (isEnded(record.state)) pending.push({ type: 'end', job: record });
    let finished = false;
    const stop = async (): Promise<IteratorResult<JobEvent>> => {
      finished = true;
      await channel.return!();
      return { value: undefined, done: true };
    };
    const events: AsyncIterableIterator<JobEvent> = {
      next: async () => {
        if (finished) return { value: undefined, done: true };
        const event = pending.shift() ?? (await channel.next()).value;
        if (!event) return stop();
        if (event.type === 'end') await stop();
        return { value: event, done: false };
      },
      return: stop,
      [Symbol.asyncIterator]: () => events,
    };
    return events;
  }

  // ---- cancelling ----

  async cancel(id: string): Promise<JobRecord> {
    checkJobId(id);
    const active = this.active.get(id);
    // A job that is finishing has its final state already, while its files are still being written.
    if (!active || isEnded(active.record.state)) {
      const record = active?.record ?? (await this.store.load(id));
      throw new TridentError('conflict', `job ${id} has already ended (${record.state})`);
    }
    const { record } = active;
    if (record.state === 'queued') {
      this.queue.splice(this.queue.indexOf(id), 1);
      await this.finish(active, 'cancelled');
    } else if (record.state === 'promoting') {
      throw new TridentError('conflict', `job ${id} is promoting its result and can no longer be cancelled`);
    } else {
      record.cancelRequested = true;
      await this.store.save(record);
      active.runner?.cancel(this.config.cancelGraceMs);
    }
    return structuredClone(record);
  }

  // ---- versions ----

  async listVersions(model: string): Promise<ModelVersions> {
    const name = this.checkName(model);
    const modelDir = this.modelDir(name);
    const available = await listVersions(modelDir);
    if (available.length === 0) throw new TridentError('not_found', `no model "${name}" in the repository`);
    const pointer = await readServingPointer(modelDir);
    const latest = resolveLatest(pointer, available)!;
    const versions: VersionInfo[] = [];
    for (const version of available) {
      try {
        const manifest = await readManifest(versionDir(modelDir, version));
        versions.push({ version, latest: version === latest, createdAt: manifest.createdAt, metrics: manifest.metrics, lineage: manifest.lineage });
      } catch (e) {
        versions.push({ version, latest: version === latest, error: (e as Error).message });
      }
    }
    return { model: name, latest, versions, history: pointer?.history ?? [] };
  }

  /** Sets "latest" to an existing, intact version (any, older or newer). */
  async rollback(model: string, version: number): Promise<{ model: string; latest: number; previous: number }> {
    this.checkOpen();
    const name = this.checkName(model);
    if (!Number.isInteger(version) || version < 1) throw new TridentError('invalid_argument', `version must be a positive integer, got ${version}`);
    const modelDir = this.modelDir(name);
    return this.locks.run(name, async () => {
      const available = await listVersions(modelDir);
      if (available.length === 0) throw new TridentError('not_found', `no model "${name}" in the repository`);
      if (!available.includes(version)) throw new TridentError('not_found', `model "${name}" has no version ${version} (versions: ${available.join(', ')})`);
      try {
        await readManifest(versionDir(modelDir, version), { verify: true });
      } catch (e) {
        throw new TridentError('invalid_argument', `version ${version} of "${name}" is damaged: ${(e as Error).message}`);
      }
      const previous = (await servingVersion(modelDir, available))!;
      if (previous === version) return { model: name, latest: version, previous };
      await moveServingPointer(modelDir, version, { reason: 'rollback' });
      try {
        await this.options.onServingChanged?.(name, version);
      } catch (e) {
        await moveServingPointer(modelDir, previous, { reason: 'repaired' });
        throw new TridentError('unavailable', `the server could not serve version ${version}: ${(e as Error).message}; "latest" stays ${previous}`);
      }
      this.log(`model ${name}: latest set back from version ${previous} to ${version}`);
      return { model: name, latest: version, previous };
    });
  }

  /** Runs `work` while no promotion or rollback of `model` runs (weights uploads promote through this). */
  runExclusive<T>(model: string, work: () => Promise<T>): Promise<T> {
    return this.locks.run(this.checkName(model), work);
  }

  /** Ends every job (running ones are stopped at once and marked failed) and refuses new ones. */
  async close(): Promise<void> {
    this.closing = true;
    for (const id of this.queue.splice(0)) {
      const active = this.active.get(id);
      if (active) await this.finish(active, 'failed', 'server shut down before the job started');
    }
    for (const active of this.active.values()) void active.runner?.terminate();
    await Promise.all([...this.running]);
  }

  // ---- running ----

  private pump(): void {
    while (!this.closing && this.running.size < this.config.maxRunningJobs && this.queue.length > 0) {
      const active = this.active.get(this.queue.shift()!);
      if (!active) continue;
      const run: Promise<void> = this.execute(active).finally(() => {
        this.running.delete(run);
        this.pump();
      });
      this.running.add(run);
    }
  }

  private async execute(active: Active): Promise<void> {
    const { record } = active;
    const modelDir = this.modelDir(record.model);
    const staging = stagingDir(modelDir, record.id);
    try {
      record.startedAt = new Date().toISOString();
      await this.transition(active, 'running');
      const servingDir = versionDir(modelDir, record.parentVersion);
      const manifest = await readManifest(servingDir);
      const length = trainingLength(record.params, record.data.samples);
      const plan: RunPlan = {
        train: this.trainConfig(record, manifest.spec, active.jsonl, staging, servingDir, length),
        totalSteps: length.totalSteps,
        servingDir,
        reference: this.config.reference || undefined,
        device: this.config.device,
        threads: this.config.threads,
        nice: this.config.nice,
      };
      const runner = new JobRunner(plan);
      active.runner = runner;
      if (this.closing) void runner.terminate();
      if (record.cancelRequested) runner.cancel(this.config.cancelGraceMs);
      this.follow(active, runner);
      const outcome = await runner.outcome;
      if (outcome.kind === 'cancelled' || record.cancelRequested) return await this.finish(active, 'cancelled');
      const evaluation: Evaluation = {
        metric: this.config.gate.metric,
        tolerance: this.config.gate.tolerance,
        heldOut: outcome.heldOut,
        ...(outcome.reference ? { reference: outcome.reference } : {}),
        ...(outcome.referenceSkipped ? { referenceSkipped: outcome.referenceSkipped } : {}),
      };
      record.evaluation = evaluation;
      this.publish(record.id, { type: 'evaluation', evaluation });
      await this.transition(active, 'promoting');
      record.decision = await this.promoteCandidate(record, modelDir, staging, evaluation);
      this.publish(record.id, { type: 'decision', decision: record.decision });
      await this.finish(active, 'succeeded');
    } catch (e) {
      const reason = this.closing ? 'server shut down during the job' : (e as Error).message;
      await this.finish(active, 'failed', reason).catch((error: Error) => this.log(`fine-tune job ${record.id}: could not record its failure: ${error.message}`));
    }
  }

  private trainConfig(
    record: JobRecord,
    spec: TrainConfig['spec'],
    jsonl: string,
    outDir: string,
    from: string,
    length: ReturnType<typeof trainingLength>,
  ): TrainConfig {
    const p = record.params;
    return {
      ...DEFAULTS,
      spec,
      data: { kind: 'annotations', file: jsonl, valShare: p.valShare, maxPixels: this.config.limits.maxPixels },
      outDir,
      epochs: length.epochs,
      maxSteps: length.maxSteps,
      batchSize: p.batchSize,
      lr: p.lr,
      optimizer: p.optimizer,
      taskWeights: p.taskWeights,
      freezeTrunk: p.freezeTrunk,
      seed: p.seed,
      augment: p.augment,
      device: this.config.device,
      threads: this.config.threads,
      from,
      name: record.model,
      lineage: { jobId: record.id, parentVersion: record.parentVersion, dataSha256: record.data.sha256 },
    };
  }

  /** Relays the runner's progress into the record (saved now and then) and to watchers. */
  private follow(active: Active, runner: JobRunner): void {
    const { record } = active;
    let lastSave = 0;
    const saveNowAndThen = () => {
      const now = Date.now();
      if (now - lastSave < PROGRESS_SAVE_INTERVAL_MS) return;
      lastSave = now;
      void this.store.save(record).catch(() => {});
    };
    runner.on('ready', (ready) => {
      record.progress.totalSteps = ready.totalSteps;
      this.publish(record.id, { type: 'ready', ready });
    });
    runner.on('step', (step) => {
      record.progress = { ...record.progress, step: step.step, epoch: step.epoch, loss: step.loss, losses: step.losses, imagesPerSecond: step.imagesPerSecond };
      this.publish(record.id, { type: 'step', step });
      saveNowAndThen();
    });
    runner.on('epoch', (epoch) => {
      record.epochs.push(epoch);
      this.publish(record.id, { type: 'epoch', epoch });
      void this.store.save(record).catch(() => {});
    });
    runner.on('warning', (warning) => {
      record.warnings.push(warning);
      this.publish(record.id, { type: 'warning', warning });
    });
    runner.on('trained', () => void this.transition(active, 'evaluating').catch(() => {}));
  }

  private async promoteCandidate(record: JobRecord, modelDir: string, staging: string, evaluation: Evaluation): Promise<Decision> {
    const gate = decide(evaluation, record.force);
    const { version, latest, previous } = await this.locks.run(record.model, async () => {
      await annotateCandidate(staging, record, evaluation, gate);
      const before = (await servingVersion(modelDir))!;
      const result = await promote(modelDir, staging, record, gate, {
        recordVersion: async (v) => {
          record.version = v;
          await this.store.save(record);
        },
        phase: (phase) => this.emit('phase', record.id, phase),
      });
      return { ...result, previous: before };
    });
    this.log(`fine-tune job ${record.id}: ${record.model} version ${version} written; ${gate.reason}`);
    if (!gate.promoted) return { ...gate, version, latest };
    try {
      await this.options.onServingChanged?.(record.model, version);
    } catch (e) {
      await this.locks.run(record.model, () => revertPromotion(modelDir, previous, record.id));
      return { ...gate, promoted: false, version, latest: previous, reason: `${gate.reason}; but the server could not load it (${(e as Error).message}), so "latest" stays ${previous}` };
    }
    return { ...gate, version, latest };
  }

  private async transition(active: Active, state: JobState): Promise<void> {
    active.record.state = state;
    await this.store.save(active.record);
    this.publish(active.record.id, { type: 'state', state });
  }

  private async finish(active: Active, state: 'succeeded' | 'failed' | 'cancelled', error?: string): Promise<void> {
    const { record } = active;
    record.state = state;
    record.endedAt = new Date().toISOString();
    if (error) record.error = this.withoutServerPaths(error);
    try {
      // After a promotion the staging folder is the new version and no longer exists.
      await fs.rm(stagingDir(this.modelDir(record.model), record.id), { recursive: true, force: true });
      await this.store.save(record);
      await this.store.removeUploads(record.id);
    } finally {
      this.active.delete(record.id);
      if (this.byModel.get(record.model) === record.id) this.byModel.delete(record.model);
      this.publish(record.id, { type: 'state', state });
      this.publish(record.id, { type: 'end', job: structuredClone(record) });
      this.hub.close(record.id);
      this.log(`fine-tune job ${record.id}: ${state}${error ? ` (${error})` : ''}`);
    }
  }

  // ---- helpers ----

  private publish(id: string, event: JobEvent): void {
    this.hub.publish(id, event);
  }

  /** Records are readable without a key: they name files relative to the repository, not where it lies. */
  private withoutServerPaths(text: string): string {
    const root = path.resolve(this.options.models);
    return text.split(`${root}${path.sep}`).join('').split(root).join('.');
  }

  private modelDir(name: string): string {
    return path.join(this.options.models, name);
  }

  private checkName(model: string): string {
    try {
      return checkModelName(model);
    } catch (e) {
      throw new TridentError('invalid_argument', (e as Error).message);
    }
  }

  private checkOpen(): void {
    if (this.closing) throw new TridentError('unavailable', 'the server is shutting down');
  }

  private log(message: string): void {
    this.options.log?.(message);
  }
}
