/**
 * A fixed set of worker threads, each holding one session of the same model. Each worker may hold
 * `depth` runs: one executing and the rest waiting inside the worker, so that it starts its next
 * run without a round trip through the (possibly busy) main thread.
 */
import { TridentError } from '../base/errors';
import path from 'node:path';
import type { Device, ProviderName } from './execution-providers';
import { WorkerChannel } from './worker-channel';
import { transferList, type HostFeeds, type FromInferWorker, type ToInferWorker, type WorkerInit } from './worker-protocol';

export interface WorkerPoolOptions {
  /** Path of the .onnx file. */
  model: string;
  /** Number of workers (sessions). */
  size: number;
  device: Device;
  /** Intra-op threads per session; 0 lets ONNX Runtime decide. */
  threads: number;
  /** Runs handed to one worker at a time (default 2). */
  depth?: number;
  log?: (message: string) => void;
}

interface Job {
  feeds: HostFeeds;
  resolve: (outputs: HostFeeds) => void;
  reject: (error: Error) => void;
  /** Receives the input buffers back once the run is done. */
  recycle?: (buffers: ArrayBuffer[]) => void;
}

const WORKER_SCRIPT = path.join(__dirname, 'infer-worker.js');

/** One worker thread and the runs handed to it. */
class SessionWorker {
  provider: ProviderName = 'cpu';
  private readonly channel: WorkerChannel<ToInferWorker, FromInferWorker>;
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private loaded?: { resolve: () => void; reject: (e: Error) => void };
  private started = false;

  constructor(
    init: WorkerInit,
    private readonly events: { idle: () => void; exit: (w: SessionWorker, reason: string) => void },
    private readonly log?: (message: string) => void,
  ) {
    this.channel = new WorkerChannel<ToInferWorker, FromInferWorker>(WORKER_SCRIPT, { message: (m) => this.receive(m), failed: (e) => this.fail(e.message) }, { workerData: init }, 'the inference worker');
  }

  get load(): number {
    return this.jobs.size;
  }

  /** Resolves once the worker's session is created. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => (this.loaded = { resolve, reject }));
  }

  run(job: Job): void {
    const id = this.nextId++;
    this.jobs.set(id, job);
    this.channel.send({ type: 'run', id, feeds: job.feeds }, transferList(job.feeds));
  }

  async close(): Promise<void> {
    this.channel.settle();
    this.channel.send({ type: 'close' });
    // Runs still queued after 5 s are dropped; the worker leaves between runs (see worker-exit.ts).
    const timeout = setTimeout(() => void this.channel.stop(), 5000);
    await this.channel.exited;
    clearTimeout(timeout);
  }

  private receive(msg: FromInferWorker): void {
    switch (msg.type) {
      case 'loaded':
        this.provider = msg.provider;
        this.started = true;
        return this.loaded?.resolve();
      case 'load_failed':
        void this.channel.stop();
        return this.loaded?.reject(new Error(msg.message));
      case 'log':
        return this.log?.(msg.message);
      case 'result': {
        const job = this.take(msg.id);
        job?.resolve(msg.outputs);
        job?.recycle?.(msg.inputs);
        return this.events.idle();
      }
      case 'run_failed':
        this.take(msg.id)?.reject(new TridentError('internal', `ONNX Runtime failed: ${msg.message}`));
        return this.events.idle();
    }
  }

  private take(id: number): Job | undefined {
    const job = this.jobs.get(id);
    this.jobs.delete(id);
    return job;
  }

  /** The worker crashed or left (or a reply broke): its runs fail, and a started worker is replaced. */
  private fail(reason: string): void {
    for (const job of this.jobs.values()) job.reject(new TridentError('internal', reason));
    this.jobs.clear();
    if (this.started) this.events.exit(this, reason);
    else this.loaded?.reject(new Error(`${reason} while loading`));
  }
}

export class WorkerPool {
  private readonly waiting: Job[] = [];
  private readonly workers: SessionWorker[] = [];
  private closed = false;

  private constructor(private readonly opts: WorkerPoolOptions) {}

  static async create(opts: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts);
    const started = Array.from({ length: opts.size }, () => pool.spawn());
    const results = await Promise.allSettled(started);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      await pool.close();
      throw failure.reason;
    }
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /** Runs the pool can hold at once: workers × depth. */
  get capacity(): number {
    return this.opts.size * this.depth;
  }

  get provider(): ProviderName {
    return this.workers[0]?.provider ?? 'cpu';
  }

  private get depth(): number {
    return Math.max(1, this.opts.depth ?? 2);
  }

  /**
   * Runs the session on the least loaded worker. The feeds' buffers are transferred (detached here);
   * `recycle` gets them back after a successful run.
   */
  run(feeds: HostFeeds, recycle?: (buffers: ArrayBuffer[]) => void): Promise<HostFeeds> {
    if (this.closed) return Promise.reject(new TridentError('unavailable', 'the model is being unloaded'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ feeds, resolve, reject, recycle });
      this.dispatch();
    });
  }

  /** Runs `makeFeeds()` once on every worker, e.g. to warm each session up. */
  async runOnEach(makeFeeds: () => HostFeeds): Promise<void> {
    await Promise.all(this.workers.map((w) => new Promise<HostFeeds>((resolve, reject) => w.run({ feeds: makeFeeds(), resolve, reject }))));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(new TridentError('unavailable', 'the model is being unloaded'));
    await Promise.all(this.workers.splice(0).map((w) => w.close()));
  }

  private async spawn(): Promise<void> {
    const init: WorkerInit = { model: this.opts.model, device: this.opts.device, threads: this.opts.threads };
    const events = { idle: () => this.dispatch(), exit: (w: SessionWorker, reason: string) => this.replace(w, reason) };
    const worker = new SessionWorker(init, events, this.opts.log);
    await worker.start();
    if (this.closed) return void (await worker.close());
    this.workers.push(worker);
    this.dispatch();
  }

  private replace(dead: SessionWorker, reason: string): void {
    const i = this.workers.indexOf(dead);
    if (i >= 0) this.workers.splice(i, 1);
    if (this.closed) return;
    this.opts.log?.(`${reason}; starting a replacement`);
    this.spawn().catch((e) => this.opts.log?.(`could not replace the inference worker: ${(e as Error).message}`));
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let target: SessionWorker | undefined;
      for (const w of this.workers) if (w.load < this.depth && (!target || w.load < target.load)) target = w;
      if (!target) return;
      target.run(this.waiting.shift()!);
    }
  }
}
