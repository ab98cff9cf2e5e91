import { TridentError } from '../base/errors';
/**
 * Dynamic batching: requests queue up while every runner is busy and leave together, up to
 * `maxBatch` samples. A runner that is idle takes whatever is queued after `maxQueueDelayMs`
 * (0 = at the end of the current event-loop turn, so a lone request pays no waiting time).
 * Runs beyond `eagerRuns` only wait inside a busy worker for their turn: they start once the queue
 * holds as many samples as the smallest run ahead of them (or a full batch), so that under load
 * the batch waiting in the worker is a full one rather than whatever arrived first.
 */

export interface BatcherOptions {
  /** Most samples per run. */
  maxBatch: number;
  /** How long an idle runner waits for more work before running a partial batch. */
  maxQueueDelayMs: number;
  /** Most samples waiting; beyond it submissions fail with `resource_exhausted`. */
  maxQueueSize: number;
  /** Runs allowed at the same time (workers × runs each worker holds). */
  concurrency: number;
  /** Runs that start with whatever is queued (one per worker); default `concurrency`. */
  eagerRuns?: number;
}

export interface SubmitOptions {
  /** Absolute time (Date.now() milliseconds) after which the request is dropped if not yet running. */
  deadline?: number;
  /**
   * Aborting removes the request from the queue (failing it with the abort reason when that is a
   * TridentError, else `cancelled`); a running batch finishes but its result is discarded.
   */
  signal?: AbortSignal;
}

export interface BatchObserver {
  batch?(samples: number): void;
  queued?(waitedMs: number): void;
}

interface Entry<T, R> {
  item: T;
  size: number;
  enqueuedAt: number;
  resolve: (result: R) => void;
  reject: (error: Error) => void;
  cleanup: () => void;
}

export class DynamicBatcher<T, R> {
  private readonly queue: Entry<T, R>[] = [];
  private queuedSamples = 0;
  /** Samples of each run in progress. */
  private readonly running: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    private readonly opts: BatcherOptions,
    private readonly runBatch: (items: T[]) => Promise<R[]>,
    private readonly sizeOf: (item: T) => number,
    private readonly observer: BatchObserver = {},
  ) {}

  get queuedCount(): number {
    return this.queuedSamples;
  }

  get runningCount(): number {
    return this.running.length;
  }

  submit(item: T, opts: SubmitOptions = {}): Promise<R> {
    if (this.closed) return Promise.reject(new TridentError('unavailable', 'the model is being unloaded'));
    if (opts.signal?.aborted) return Promise.reject(new TridentError('cancelled', 'the request was cancelled'));
    if (opts.deadline !== undefined && opts.deadline <= Date.now()) {
      return Promise.reject(new TridentError('deadline_exceeded', 'the request deadline passed before it was queued'));
    }
    const size = this.sizeOf(item);
    if (this.queuedSamples + size > this.opts.maxQueueSize) {
      return Promise.reject(
        new TridentError('resource_exhausted', `server overloaded: ${this.queuedSamples} samples already queued (limit ${this.opts.maxQueueSize}); retry later`),
      );
    }
    return new Promise<R>((resolve, reject) => {
      const entry: Entry<T, R> = { item, size, enqueuedAt: performance.now(), resolve, reject, cleanup: () => {} };
      const drop = (error: TridentError) => {
        if (this.remove(entry)) reject(error);
      };
      const onAbort = () => {
        const reason = opts.signal?.reason;
        drop(reason instanceof TridentError ? reason : new TridentError('cancelled', 'the request was cancelled while queued'));
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const deadlineTimer =
        opts.deadline === undefined
          ? undefined
          : setTimeout(() => drop(new TridentError('deadline_exceeded', 'the request deadline passed while it was queued')), opts.deadline - Date.now());
      entry.cleanup = () => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (deadlineTimer) clearTimeout(deadlineTimer);
      };
      this.queue.push(entry);
      this.queuedSamples += size;
      this.schedule();
    });
  }

  /** Refuses new work and fails everything still queued; running batches finish. */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    for (const entry of [...this.queue]) {
      this.remove(entry);
      entry.reject(new TridentError('unavailable', 'the model is being unloaded'));
    }
  }

  private remove(entry: Entry<T, R>): boolean {
    const i = this.queue.indexOf(entry);
    if (i < 0) return false;
    this.queue.splice(i, 1);
    this.queuedSamples -= entry.size;
    entry.cleanup();
    return true;
  }

  /** Whether a run may start now with what is queued. */
  private mayStart(): boolean {
    if (this.queue.length === 0 || this.running.length >= this.opts.concurrency) return false;
    if (this.running.length < Math.max(1, this.opts.eagerRuns ?? this.opts.concurrency)) return true;
    return this.queuedSamples >= Math.min(this.opts.maxBatch, ...this.running);
  }

  private schedule(): void {
    if (!this.mayStart()) return;
    if (this.queuedSamples >= this.opts.maxBatch) return this.pump();
    if (this.timer || this.immediate) return;
    if (this.opts.maxQueueDelayMs <= 0) {
      this.immediate = setImmediate(() => {
        this.immediate = undefined;
        this.pump();
      });
    } else {
      this.pump();
    }
  }

  private pump(): void {
    while (this.mayStart()) {
      const waited = performance.now() - this.queue[0].enqueuedAt;
      const full = this.queuedSamples >= this.opts.maxBatch;
      if (!full && waited < this.opts.maxQueueDelayMs) {
        if (!this.timer) {
          this.timer = setTimeout(() => {
            this.timer = undefined;
            this.pump();
          }, this.opts.maxQueueDelayMs - waited);
        }
        return;
      }
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      void this.execute(this.takeBatch());
    }
  }

  private takeBatch(): Entry<T, R>[] {
    const batch: Entry<T, R>[] = [];
    let samples = 0;
    const now = performance.now();
    while (this.queue.length > 0) {
      const next = this.queue[0];
      if (batch.length > 0 && samples + next.size > this.opts.maxBatch) break;
      this.remove(next);
      this.observer.queued?.(now - next.enqueuedAt);
      batch.push(next);
      samples += next.size;
    }
    return batch;
  }

  private async execute(batch: Entry<T, R>[]): Promise<void> {
    const samples = batch.reduce((n, e) => n + e.size, 0);
    this.running.push(samples);
    this.observer.batch?.(samples);
    try {
      const results = await this.runBatch(batch.map((e) => e.item));
      batch.forEach((e, i) => e.resolve(results[i]));
    } catch (e) {
      for (const entry of batch) entry.reject(e as Error);
    } finally {
      this.running.splice(this.running.indexOf(samples), 1);
      this.pump();
    }
  }
}
