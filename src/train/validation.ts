/** One pass of eval.onnx over the validation batches: mean task losses and the metrics. */
import * as ort from 'onnxruntime-node';
import { IO } from '../artifacts/graphs';
import type { ModelSpec } from '../model/spec';
import { TASK_COUNT, taskVector, type TaskVector } from '../model/tasks';
import { computeMetrics, type Metrics } from '../runtime/metrics';
import { batchFeeds, type TrainStepRunner } from '../runtime/train-step';
import type { BatchQueue } from './batch-queue';

export interface Validation {
  valLosses: TaskVector;
  metrics: Metrics;
}

export async function validate(spec: ModelSpec, evalSession: ort.InferenceSession, runner: TrainStepRunner, batches: BatchQueue, count: number, weights: TaskVector): Promise<Validation> {
  const numClasses = spec.heads.classification.labels.length;
  const probs: number[] = [];
  const obj: number[] = [];
  const boxes: number[] = [];
  const labels: bigint[] = [];
  const objT: number[] = [];
  const boxT: number[] = [];
  const lossSums = taskVector();
  let samples = 0;
  for (let i = 0; i < count; i++) {
    const batch = await batches.validationBatch(i, count);
    const n = batch.size;
    const feeds: Record<string, ort.Tensor> = {
      ...batchFeeds(spec, batch),
      [IO.taskWeights]: new ort.Tensor('float32', Float32Array.from(weights), [TASK_COUNT]),
      ...runner.evalTensors(),
    };
    const out = await evalSession.run(feeds);
    const tl = out[IO.taskLosses].data as Float32Array;
    for (let t = 0; t < TASK_COUNT; t++) lossSums[t] += tl[t] * n;
    samples += n;
    probs.push(...(out[IO.classProbs].data as Float32Array));
    obj.push(...(out[IO.evalObjectness].data as Float32Array));
    boxes.push(...(out[IO.evalBox].data as Float32Array));
    labels.push(...batch.labels);
    objT.push(...batch.objectness);
    boxT.push(...batch.boxes);
  }
  const valLosses = lossSums.map((s) => s / Math.max(samples, 1)) as TaskVector;
  const metrics = computeMetrics(
    { count: samples, numClasses, classProbs: Float32Array.from(probs), objectness: Float32Array.from(obj), boxes: Float32Array.from(boxes) },
    { labels, objectness: objT, boxes: boxT },
  );
  return { valLosses, metrics };
}
