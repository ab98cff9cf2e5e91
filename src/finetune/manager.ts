/**
 * The fine-tune job system, as one object for the transports: intake (reserve, submit, accept),
 * execution (run, follow, gate, promote, cancel) and versions (list, rollback), sharing one board
 * of jobs. Every record is kept on disk, so that a restart ends interrupted jobs cleanly (recovery.ts).
 */
import { EventEmitter } from 'node:events';
import { KeyChecker } from '../base/keys';
import { JobBoard } from './board';
import type { FinetuneConfig } from './config';
import { JobExecution } from './execution';
import { JobIntake, type CreateOptions, type Reservation } from './intake';
import type { PromotionPhase } from './promotion';
import { isEnded, type JobEvent, type JobRecord, type JobState, type ModelVersions } from './record';
import { recover, RESTART_REASON, type RecoveryReport } from './recovery';
import { checkJobId, type JobStore } from './store';
import { VersionAdmin } from './versions';

export type { CreateOptions, Reservation } from './intake';
export type { ModelVersions, VersionInfo } from './record';

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

export class JobManager extends EventEmitter<ManagerEvents> {
  readonly config: FinetuneConfig;
  private readonly board: JobBoard;
  private readonly keys: KeyChecker;
  private readonly intake: JobIntake;
  private readonly execution: JobExecution;
  private readonly versions: VersionAdmin;

  private constructor(options: JobManagerOptions) {
    super();
    this.config = options.config;
    this.board = new JobBoard(options.models, options.config, options.log);
    this.keys = new KeyChecker(options.config.apiKeys, {
      disabled: options.config.authDisabled,
      name: 'a fine-tune API key',
      configure: 'no fine-tune API key is configured (--finetune-api-key or TRIDENT_FINETUNE_API_KEYS)',
    });
    this.execution = new JobExecution(this.board, { onServingChanged: options.onServingChanged, phase: (id, phase) => this.emit('phase', id, phase) });
    this.intake = new JobIntake(this.board, () => this.execution.pump());
    this.versions = new VersionAdmin(this.board, options.onServingChanged);
  }

  /** Recovers from whatever a previous process left (see recovery.ts), then accepts jobs. */
  static async open(options: JobManagerOptions): Promise<{ manager: JobManager; recovery: RecoveryReport }> {
    const manager = new JobManager(options);
    const recovery = await recover(options.models, manager.store);
    for (const id of recovery.interruptedJobs) manager.board.log(`fine-tune job ${id}: ended by recovery (${RESTART_REASON})`);
    for (const problem of recovery.problems) manager.board.log(`fine-tune recovery: ${problem}`);
    return { manager, recovery };
  }

  get store(): JobStore {
    return this.board.store;
  }

  /** Throws unless the key allows `action` (job creation, cancellation, rollback, upload). */
  authorize(presentedKey: string | undefined, action: string): void {
    this.keys.check(presentedKey, action);
  }

  // ---- intake ----

  reserve(model: string): Promise<Reservation> {
    return this.intake.reserve(model);
  }

  submit(reservation: Reservation, annotations: string | undefined, options?: CreateOptions): Promise<JobRecord> {
    return this.intake.submit(reservation, annotations, options);
  }

  createFromFolder(model: string, reference: string, options?: CreateOptions): Promise<JobRecord> {
    return this.intake.createFromFolder(model, reference, options);
  }

  createFromFiles(model: string, files: readonly { name: string; content: Uint8Array }[], annotations: string | undefined, options?: CreateOptions): Promise<JobRecord> {
    return this.intake.createFromFiles(model, files, annotations, options);
  }

  // ---- execution ----

  cancel(id: string): Promise<JobRecord> {
    return this.execution.cancel(id);
  }

  /** Ends every job (running ones are stopped at once and marked failed) and refuses new ones. */
  close(): Promise<void> {
    return this.execution.close();
  }

  // ---- versions ----

  listVersions(model: string): Promise<ModelVersions> {
    return this.versions.list(model);
  }

  rollback(model: string, version: number): Promise<{ model: string; latest: number; previous: number }> {
    return this.versions.rollback(model, version);
  }

  /** Runs `work` while no promotion or rollback of `model` runs (weights uploads promote through this). */
  runExclusive<T>(model: string, work: () => Promise<T>): Promise<T> {
    return this.versions.exclusive(model, work);
  }

  // ---- reading and watching ----

  async get(id: string): Promise<JobRecord> {
    checkJobId(id);
    const active = this.board.active.get(id);
    return active ? structuredClone(active.record) : this.board.store.load(id);
  }

  async list(filter: { model?: string; state?: JobState } = {}): Promise<JobRecord[]> {
    const stored = await this.board.store.list();
    const records = stored.map((r) => (this.board.active.has(r.id) ? structuredClone(this.board.active.get(r.id)!.record) : r));
    return records.filter((r) => (!filter.model || r.model === filter.model) && (!filter.state || r.state === filter.state));
  }

  /**
   * A snapshot, then live events until (and including) `end`. Throws not_found before yielding
   * anything. `return()` stops it at once, even while it waits for the next event.
   */
  async watch(id: string): Promise<AsyncIterableIterator<JobEvent>> {
    checkJobId(id);
    const channel = this.board.hub.subscribe(id);
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
}
