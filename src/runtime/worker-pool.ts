/** A fixed set of worker threads, each holding one session of the same model; runs go to an idle worker. */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { RuntimeError } from './errors';
import type { Device } from './session';
import { transferList, type Feeds, type FromWorker, type WorkerInit } from './worker-protocol';

export interface WorkerPoolOptions {
  /** Path of the .onnx file. */
  model: string;
  /** Number of workers (sessions). */
  size: number;
  device: Device;
  /** Intra-op threads per session; 0 lets ONNX Runtime decide. */
  threads: number;
  log?: (message: string) => void;
}

interface Job {
  feeds: Feeds;
  resolve: (outputs: Feeds) => void;
  reject: (error: Error) => void;
}

const WORKER_SCRIPT = path.join(__dirname, 'infer-worker.js');

/** One worker thread running at most one job at a time. */
class SessionWorker {
  provider: 'cpu' | 'cuda' = 'cpu';
  private readonly worker: Worker;
  private job: Job | undefined;
  private nextId = 0;
  private closing = false;

  constructor(
    init: WorkerInit,
    private readonly events: { idle: () => void; exit: (w: SessionWorker, reason: string) => void },
    private readonly log?: (message: string) => void,
  ) {
    this.worker = new Worker(WORKER_SCRIPT, { workerData: init });
  }

  get busy(): boolean {
    return this.job !== undefined;
  }

  /** Resolves once the worker's session is created. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onStartExit = (code: number) => reject(new Error(`inference worker exited with code ${code} while loading`));
      this.worker.once('exit', onStartExit);
      this.worker.on('error', (e) => this.fail(`inference worker crashed: ${e.message}`));
      this.worker.on('message', (msg: FromWorker) => {
        switch (msg.type) {
          case 'loaded':
            this.provider = msg.provider;
            this.worker.off('exit', onStartExit);
            this.worker.once('exit', (code) => this.fail(`inference worker exited with code ${code}`));
            resolve();
            return;
          case 'load_failed':
            this.worker.off('exit', onStartExit);
            void this.worker.terminate();
            reject(new Error(msg.message));
            return;
          case 'log':
            this.log?.(msg.message);
            return;
          case 'result':
            this.finish()?.resolve(msg.outputs);
            this.events.idle();
            return;
          case 'run_failed':
            this.finish()?.reject(new RuntimeError('internal', `ONNX Runtime failed: ${msg.message}`));
            this.events.idle();
            return;
        }
      });
    });
  }

  run(job: Job): void {
    this.job = job;
    this.worker.postMessage({ type: 'run', id: this.nextId++, feeds: job.feeds }, transferList(job.feeds));
  }

  async close(): Promise<void> {
    this.closing = true;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage({ type: 'close' });
    const timeout = setTimeout(() => void this.worker.terminate(), 5000);
    await exited;
    clearTimeout(timeout);
  }

  private finish(): Job | undefined {
    const job = this.job;
    this.job = undefined;
    return job;
  }

  private fail(reason: string): void {
    this.finish()?.reject(new RuntimeError('internal', reason));
    if (!this.closing) this.events.exit(this, reason);
  }
}

export class WorkerPool {
  private readonly waiting: Job[] = [];
  private closed = false;

  private constructor(
    private readonly opts: WorkerPoolOptions,
    private readonly workers: SessionWorker[],
  ) {}

  static async create(opts: WorkerPoolOptions): Promise<WorkerPool> {
    const pool = new WorkerPool(opts, []);
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

  get provider(): 'cpu' | 'cuda' {
    return this.workers[0]?.provider ?? 'cpu';
  }

  /** Runs the session on the next idle worker. The feeds' buffers are transferred (detached here). */
  run(feeds: Feeds): Promise<Feeds> {
    if (this.closed) return Promise.reject(new RuntimeError('unavailable', 'the model is being unloaded'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ feeds, resolve, reject });
      this.dispatch();
    });
  }

  /** Runs `makeFeeds()` once on every worker, e.g. to warm each session up. */
  async runOnEach(makeFeeds: () => Feeds): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<Feeds>((resolve, reject) => {
            if (w.busy) reject(new Error('runOnEach needs an idle pool'));
            else w.run({ feeds: makeFeeds(), resolve, reject });
          }),
      ),
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(new RuntimeError('unavailable', 'the model is being unloaded'));
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
    for (const worker of this.workers) {
      if (this.waiting.length === 0) return;
      if (!worker.busy) worker.run(this.waiting.shift()!);
    }
  }
}
