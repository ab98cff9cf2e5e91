/**
 * Job records on disk: `<models>/.jobs/<id>/job.json` (atomic writes) and the job's uploads in
 * `<models>/.jobs/<id>/uploads/`. Hidden from the model repository by its leading dot.
 */
import { TridentError } from '../base/errors';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../artifacts/files';
import { removeTemporaryFiles } from '../artifacts/repository';
import type { JobRecord } from './record';

export const JOBS_FOLDER = '.jobs';
const RECORD_FILE = 'job.json';
const UPLOADS_FOLDER = 'uploads';
const ID_PATTERN = /^ft-[0-9a-z]{1,12}-[0-9a-f]{8}$/;

export function newJobId(): string {
  return `ft-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Ids come from URLs and messages: anything else than an id this store makes is "not found", never a path. */
export function checkJobId(id: string): string {
  if (!ID_PATTERN.test(id)) throw new TridentError('not_found', `no fine-tune job "${id}"`);
  return id;
}

export class JobStore {
  readonly root: string;
  private readonly writes = new Map<string, Promise<void>>();

  constructor(modelsRoot: string) {
    this.root = path.join(modelsRoot, JOBS_FOLDER);
  }

  jobDir(id: string): string {
    return path.join(this.root, checkJobId(id));
  }

  uploadsDir(id: string): string {
    return path.join(this.jobDir(id), UPLOADS_FOLDER);
  }

  /** Creates the folder of a new job (and its empty uploads folder). */
  async createFolder(id: string): Promise<void> {
    await fs.mkdir(this.root, { recursive: true });
    await fs.mkdir(this.jobDir(id));
    await fs.mkdir(this.uploadsDir(id));
  }

  /** Writes the record; writes of one job happen in call order, so the newest state always wins. */
  save(record: JobRecord): Promise<void> {
    const file = path.join(this.jobDir(record.id), RECORD_FILE);
    const text = JSON.stringify(record, null, 2) + '\n';
    const previous = this.writes.get(record.id) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => writeFileAtomic(file, text));
    this.writes.set(record.id, next);
    void next.catch(() => {}).finally(() => {
      if (this.writes.get(record.id) === next) this.writes.delete(record.id);
    });
    return next;
  }

  async load(id: string): Promise<JobRecord> {
    const file = path.join(this.jobDir(id), RECORD_FILE);
    let raw: string;
    try {
      raw = await fs.readFile(file, 'utf8');
    } catch {
      throw new TridentError('not_found', `no fine-tune job "${id}"`);
    }
    const record = JSON.parse(raw) as JobRecord;
    if (record.id !== id) throw new Error(`${file}: holds job ${record.id}, expected ${id}`);
    return record;
  }

  /** Every job with a record, newest first. */
  async list(): Promise<JobRecord[]> {
    const records: JobRecord[] = [];
    for (const id of await this.ids()) {
      try {
        records.push(await this.load(id));
      } catch {
        // A folder without a record is an upload that never became a job; recovery removes it.
      }
    }
    return records.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  }

  /** Ids of every job folder, with or without a record. */
  async ids(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await fs.readdir(this.root);
    } catch {
      return [];
    }
    return entries.filter((e) => ID_PATTERN.test(e)).sort();
  }

  async hasRecord(id: string): Promise<boolean> {
    return fs.access(path.join(this.jobDir(id), RECORD_FILE)).then(
      () => true,
      () => false,
    );
  }

  async removeUploads(id: string): Promise<void> {
    await fs.rm(this.uploadsDir(id), { recursive: true, force: true });
  }

  async removeFolder(id: string): Promise<void> {
    await fs.rm(this.jobDir(id), { recursive: true, force: true });
  }

  /** Leftovers of record writes cut short by a crash. */
  async removeTemporaryFiles(id: string): Promise<void> {
    await removeTemporaryFiles(this.jobDir(id));
  }
}
