/**
 * Inference latency of several model folders side by side: their infer.onnx sessions take turns
 * call by call, so that all of them meet the same machine, and each is reported against the first.
 */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { FILES } from '../artifacts/export';
import { readManifest } from '../artifacts/manifest';
import { mulberry32 } from '../base/random';
import { createSession } from '../runtime/session';
import { median } from './train';

export interface InferBenchOptions {
  models: string[];
  batch: number;
  threads: number;
  /** Timed calls per model. */
  calls: number;
}

export interface InferBenchResult {
  models: { dir: string; name: string; medianMs: number; p90Ms: number; ratio: number }[];
}

export async function benchInfer(opts: InferBenchOptions): Promise<InferBenchResult> {
  const entries: { dir: string; name: string; session: ort.InferenceSession; image: ort.Tensor; times: number[] }[] = [];
  try {
    for (const dir of opts.models) {
      const manifest = await readManifest(dir, { verify: true });
      const { session } = await createSession(path.join(dir, FILES.infer), { threads: opts.threads });
      const { channels, height, width } = manifest.input;
      const random = mulberry32(1);
      const image = new ort.Tensor('float32', new Float32Array(opts.batch * channels * height * width).map(() => random() * 4 - 2), [opts.batch, channels, height, width]);
      entries.push({ dir, name: manifest.name, session, image, times: [] });
    }
    for (let i = 0; i < 20; i++) for (const e of entries) await e.session.run({ image: e.image });
    for (let i = 0; i < opts.calls; i++) {
      for (const e of entries) {
        const t0 = performance.now();
        await e.session.run({ image: e.image });
        e.times.push(performance.now() - t0);
      }
    }
    const first = median(entries[0].times);
    return {
      models: entries.map((e) => {
        const sorted = [...e.times].sort((a, b) => a - b);
        return { dir: e.dir, name: e.name, medianMs: median(e.times), p90Ms: sorted[Math.floor(0.9 * (sorted.length - 1))], ratio: median(e.times) / first };
      }),
    };
  } finally {
    await Promise.all(entries.map((e) => e.session.release()));
  }
}
