/**
 * ONNX Runtime aborts the whole process when a worker thread is terminated while a session runs
 * in it (the native run throws into a torn-down environment). So Trident never calls
 * `worker.terminate()` on a worker that may hold a session: the parent asks, and the worker
 * leaves from its own event loop, which is always between two runs.
 */
import { parentPort, type Worker } from 'node:worker_threads';

const EXIT_REQUEST = '__trident_exit__';

/** In a worker: leave when the parent asks; `beforeExit` first stops what must stop cleanly (nested workers). */
export function exitWhenAsked(beforeExit?: () => Promise<void>): void {
  parentPort?.on('message', (message: unknown) => {
    if (message !== EXIT_REQUEST) return;
    void (async () => {
      try {
        await beforeExit?.();
      } finally {
        process.exit(0);
      }
    })();
  });
}

/** In the parent: asks the worker to leave and resolves once it has. */
export function stopWorker(worker: Worker): Promise<void> {
  return new Promise((resolve) => {
    if (worker.threadId < 0) return resolve();
    worker.once('exit', () => resolve());
    worker.postMessage(EXIT_REQUEST);
  });
}
