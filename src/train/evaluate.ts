/** Evaluates a model folder's infer.onnx on a dataset: the same artifact that is served. */
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { FILES } from '../artifacts/export';
import { IO } from '../artifacts/graphs';
import { readManifest, type Manifest } from '../artifacts/manifest';
import { collate, type Dataset, type Sample } from '../data/dataset';
import { computeMetrics, type Metrics } from '../runtime/metrics';
import { createSession, type Device } from '../runtime/session';

export interface EvaluateOptions {
  batchSize?: number;
  device?: Device;
  threads?: number;
  onProgress?: (done: number, total: number) => void;
}

export async function evaluateModel(modelDir: string, dataset: Dataset, opts: EvaluateOptions = {}): Promise<{ metrics: Metrics; manifest: Manifest }> {
  const manifest = await readManifest(modelDir, { verify: true });
  const { session } = await createSession(path.join(modelDir, FILES.infer), { device: opts.device, threads: opts.threads });
  try {
    const { channels, height, width } = manifest.input;
    const k = manifest.labels.length;
    const batchSize = opts.batchSize ?? 128;
    const n = dataset.length;
    const classProbs = new Float32Array(n * k);
    const objectness = new Float32Array(n);
    const boxes = new Float32Array(n * 4);
    const labels = new Int32Array(n);
    const objT = new Float32Array(n);
    const boxT = new Float32Array(n * 4);
    for (let start = 0; start < n; start += batchSize) {
      const samples: Sample[] = [];
      for (let i = start; i < Math.min(n, start + batchSize); i++) samples.push(dataset.get(i));
      const batch = collate(samples, manifest.spec.input);
      const out = await session.run({ [IO.image]: new ort.Tensor('float32', batch.images, [batch.size, channels, height, width]) });
      classProbs.set(out[IO.classProbs].data as Float32Array, start * k);
      objectness.set(out[IO.objectnessProb].data as Float32Array, start);
      boxes.set(out[IO.boxOut].data as Float32Array, start * 4);
      samples.forEach((s, j) => {
        labels[start + j] = s.label;
        objT[start + j] = s.objectness;
        boxT.set(s.box, (start + j) * 4);
      });
      opts.onProgress?.(Math.min(n, start + batchSize), n);
    }
    const metrics = computeMetrics({ count: n, numClasses: k, classProbs, objectness, boxes }, { labels, objectness: objT, boxes: boxT });
    return { metrics, manifest };
  } finally {
    await session.release();
  }
}
