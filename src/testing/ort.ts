/** Test helpers: run an IR model through the real ONNX Runtime. */
import * as ort from 'onnxruntime-node';
import type { Model, TensorValue } from '../onnx/ir';
import { encodeModel } from '../onnx/serialize';

export type OrtFeeds = Record<string, TensorValue>;

export function toOrt(t: TensorValue): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data as never, t.dims);
}

export function fromOrt(t: ort.Tensor): TensorValue {
  return { dtype: t.type as TensorValue['dtype'], dims: [...t.dims], data: t.data as TensorValue['data'] };
}

export async function runModel(model: Model, feeds: OrtFeeds, fetches?: string[]): Promise<Record<string, TensorValue>> {
  const session = await openSession(model);
  try {
    return await session.run(feeds, fetches);
  } finally {
    await session.release();
  }
}

export interface OpenSession {
  run(feeds: OrtFeeds, fetches?: string[]): Promise<Record<string, TensorValue>>;
  release(): Promise<void>;
}

/** A session kept open for many runs (single-threaded by default, so tests do not crowd shared cores). */
export async function openSession(model: Model, threads = 1): Promise<OpenSession> {
  const session = await ort.InferenceSession.create(encodeModel(model), {
    intraOpNumThreads: threads,
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
  return {
    async run(feeds, fetches) {
      const input: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(feeds)) input[k] = toOrt(v);
      const out = fetches ? await session.run(input, fetches) : await session.run(input);
      const result: Record<string, TensorValue> = {};
      for (const [k, v] of Object.entries(out)) result[k] = fromOrt(v);
      return result;
    },
    release: () => session.release(),
  };
}
