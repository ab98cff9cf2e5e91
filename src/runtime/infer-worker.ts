/** Worker thread entry: owns one ONNX Runtime session and runs it off the main event loop. */
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { createSession } from './session';
import type { HostTensor, NumericDType, TypedArray } from './tensor';
import { transferList, type HostFeeds, type FromInferWorker, type ToInferWorker, type WorkerInit } from './worker-protocol';
import { exitWhenAsked } from './worker-exit';

const port = parentPort!;
const init = workerData as WorkerInit;
const post = (message: FromInferWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

function toHost(t: ort.Tensor): HostTensor {
  // A private copy, so the buffer can be transferred regardless of who owns ORT's memory.
  const data = (t.data as TypedArray).slice() as TypedArray;
  return { dtype: t.type as NumericDType, dims: [...t.dims], data };
}

async function main(): Promise<void> {
  let session: ort.InferenceSession;
  try {
    const created = await createSession(init.model, {
      device: init.device,
      threads: init.threads,
      log: (message) => post({ type: 'log', message }),
    });
    session = created.session;
    post({ type: 'loaded', provider: created.provider });
  } catch (e) {
    post({ type: 'load_failed', message: (e as Error).message });
    return;
  }
  const handle = async (msg: ToInferWorker) => {
    if (msg.type === 'close') {
      await session.release();
      port.close();
      return;
    }
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(msg.feeds)) feeds[name] = new ort.Tensor(t.dtype, t.data as never, t.dims);
      const result = await session.run(feeds);
      const outputs: HostFeeds = {};
      for (const [name, t] of Object.entries(result)) outputs[name] = toHost(t);
      const inputs = transferList(msg.feeds);
      post({ type: 'result', id: msg.id, outputs, inputs }, [...transferList(outputs), ...inputs]);
    } catch (e) {
      post({ type: 'run_failed', id: msg.id, message: (e as Error).message });
    }
  };
  // Runs queue here one after another; the main thread may hand over the next before this one ends.
  let previous: Promise<void> = Promise.resolve();
  port.on('message', (msg: ToInferWorker) => {
    previous = previous.then(() => handle(msg));
  });
}

exitWhenAsked();
void main();
