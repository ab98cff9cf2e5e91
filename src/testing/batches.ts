/** Test helpers: deterministic random training batches and ORT feeds for the training graphs. */
import * as ort from 'onnxruntime-node';
import { IO } from '../artifacts/graphs';
import { layout } from '../model/params';
import { mulberry32 } from '../base/random';
import type { ModelSpec } from '../model/spec';
import { batchFeeds as runtimeBatchFeeds, type TrainBatch } from '../runtime/train-step';

export interface RandomBatchOptions {
  /** Probability that a sample holds an object (default 0.75); 0 gives a batch without objects. */
  objects?: number;
}

/** Images in the normalised range, labels, boxes with x1 < x2 and y1 < y2, mask = objectness. */
export function randomBatch(spec: ModelSpec, size: number, seed: number, opts: RandomBatchOptions = {}): TrainBatch {
  const random = mulberry32(seed);
  const { channels, height, width } = spec.input;
  const classes = spec.heads.classification.labels.length;
  const p = opts.objects ?? 0.75;
  const images = new Float32Array(size * channels * height * width);
  for (let i = 0; i < images.length; i++) images[i] = random() * 4 - 2;
  const labels = new BigInt64Array(size);
  const objectness = new Float32Array(size);
  const boxes = new Float32Array(size * 4);
  const mask = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const present = random() < p;
    const label = Math.floor(random() * classes);
    const x1 = random() * 0.5;
    const y1 = random() * 0.5;
    const box = [x1, y1, x1 + 0.2 + random() * 0.3, y1 + 0.2 + random() * 0.3];
    if (present) {
      labels[i] = BigInt(label);
      objectness[i] = 1;
      mask[i] = 1;
      boxes.set(box, i * 4);
    }
  }
  return { size, images, labels, objectness, boxes, mask };
}

/** The batch and task-weight inputs shared by train_step.onnx and eval.onnx. */
export function batchFeeds(spec: ModelSpec, batch: TrainBatch, taskWeights: number[] = [1, 1, 1]): Record<string, ort.Tensor> {
  return { ...runtimeBatchFeeds(spec, batch), [IO.taskWeights]: new ort.Tensor('float32', Float32Array.from(taskWeights), [3]) };
}

/** Parameters as ORT tensors (copies), named as the graphs' inputs. */
export function paramFeeds(spec: ModelSpec, params: Map<string, Float32Array>): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const p of layout(spec).params) feeds[p.name] = new ort.Tensor('float32', Float32Array.from(params.get(p.name)!), p.shape);
  return feeds;
}

/** Largest absolute difference between two equally long arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}
