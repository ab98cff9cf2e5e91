/**
 * A worker thread spoken to in typed messages, `To` one way and `From` the other. The channel
 * spawns it, sends with transfers, hands each message to one handler, and reports failure once:
 * an 'error' event, an exit nobody expected, or a message handler that throws (a malformed reply
 * must not become an uncaught exception in the parent). After `settle()` an exit is expected.
 */
import { Worker, type Transferable, type WorkerOptions } from 'node:worker_threads';
import { stopWorker } from './worker-exit';

export interface ChannelHandlers<From> {
  message(message: From): void;
  /** At most once, unless settled first. */
  failed(error: Error): void;
}

export class WorkerChannel<To, From> {
  private readonly worker: Worker;
  private settled = false;
  /** Resolves with the exit code once the thread has ended, for whatever reason. */
  readonly exited: Promise<number>;

  constructor(
    script: string,
    private readonly handlers: ChannelHandlers<From>,
    options: WorkerOptions = {},
    /** Names the worker in failure messages, e.g. "the trainer worker". */
    readonly label = 'the worker',
  ) {
    this.worker = new Worker(script, options);
    this.exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.on('error', (e) => this.fail(new Error(`${label} crashed: ${e.message}`)));
    this.worker.on('exit', (code) => this.fail(new Error(`${label} exited with code ${code}`)));
    this.worker.on('message', (message: From) => {
      try {
        this.handlers.message(message);
      } catch (e) {
        this.fail(new Error(`${label}'s message ${describe(message)} could not be handled: ${(e as Error).message}`));
      }
    });
  }

  send(message: To, transfer: readonly Transferable[] = []): void {
    this.worker.postMessage(message, transfer as Transferable[]);
  }

  /** The conversation is over: no failure is reported after this. False when it already was. */
  settle(): boolean {
    if (this.settled) return false;
    this.settled = true;
    return true;
  }

  /** Settles, then asks the worker to leave between runs (see worker-exit.ts) and waits until it has. */
  stop(): Promise<void> {
    this.settle();
    return stopWorker(this.worker);
  }

  private fail(error: Error): void {
    if (!this.settle()) return;
    void stopWorker(this.worker);
    this.handlers.failed(error);
  }
}

function describe(message: unknown): string {
  const type = (message as { type?: unknown } | null)?.type;
  return typeof type === 'string' ? `"${type}"` : typeof message;
}
