/**
 * The task losses, emitted into a graph.
 *
 * - classification: softmax cross-entropy, averaged over samples whose mask is 1; with label
 *   smoothing ε (a graph value), against the target (1 − ε)·one-hot + ε/K, as PyTorch's
 *   CrossEntropyLoss(label_smoothing=ε);
 * - objectness: binary cross-entropy with logits, averaged over all samples;
 * - box: SmoothL1 (β = BOX_BETA) on the normalised corners, averaged over the 4 coordinates and
 *   over samples whose mask is 1.
 * A batch without objects gives class and box losses of exactly 0.
 */
import type { GraphBuilder } from '../onnx/builder';
import { tensor } from '../onnx/ir';
import { decodeBox, type HeadOutputs } from './forward';

export const BOX_BETA = 0.05;

export interface BatchInputs {
  label: string; // int64 [N]
  objectness: string; // float [N]
  box: string; // float [N, 4]
  mask: string; // float [N]
}

export interface LossOutputs {
  cls: string;
  det: string;
  box: string;
  /** [3] vector of the task losses, in TASKS order. */
  taskLosses: string;
}

/** `labelSmoothing`: a float scalar value of the graph; omitted, the plain one-hot target. */
export function buildLosses(b: GraphBuilder, heads: HeadOutputs, batch: BatchInputs, numClasses: number, labelSmoothing?: string): LossOutputs {
  const axis1 = b.ints([1]);
  const objectCount = b.op('Max', [b.op('ReduceSum', [batch.mask, b.ints([0])], { keepdims: 0 }), b.scalar(1)]);
  const maskedMean = (perSample: string) =>
    b.op('Div', [b.op('ReduceSum', [b.op('Mul', [perSample, batch.mask]), b.ints([0])], { keepdims: 0 }), objectCount]);

  const logProbs = b.op('LogSoftmax', [heads.classLogits], { axis: 1 });
  const oneHot = b.op('OneHot', [batch.label, b.const(tensor('int64', [], [numClasses]), 'num_classes'), b.floats([0, 1])], { axis: -1 });
  const target = labelSmoothing
    ? b.op('Add', [b.op('Mul', [oneHot, b.op('Sub', [b.scalar(1), labelSmoothing])]), b.op('Div', [labelSmoothing, b.scalar(numClasses)])])
    : oneHot;
  const picked = b.op('ReduceSum', [b.op('Mul', [logProbs, target]), axis1], { keepdims: 0 });
  const cls = b.op('Neg', [maskedMean(picked)]);

  const zFlat = b.op('Reshape', [heads.objectnessLogit, b.ints([-1])]);
  // BCE with logits, stable form: max(z, 0) − z·t + log(1 + e^(−|z|)).
  const bce = b.op('Add', [
    b.op('Sub', [b.op('Relu', [zFlat]), b.op('Mul', [zFlat, batch.objectness])]),
    b.op('Softplus', [b.op('Neg', [b.op('Abs', [zFlat])])]),
  ]);
  const det = b.op('ReduceMean', [bce], { axes: [0], keepdims: 0 });

  const diff = b.op('Sub', [decodeBox(b, heads.boxLogits), batch.box]);
  const absDiff = b.op('Abs', [diff]);
  const quadratic = b.op('Div', [b.op('Mul', [b.op('Mul', [diff, diff]), b.scalar(0.5)]), b.scalar(BOX_BETA)]);
  const linear = b.op('Sub', [absDiff, b.scalar(0.5 * BOX_BETA)]);
  const smoothL1 = b.op('Where', [b.op('Less', [absDiff, b.scalar(BOX_BETA)]), quadratic, linear]);
  const box = maskedMean(b.op('ReduceMean', [smoothL1], { axes: [1], keepdims: 0 }));

  const unsq = (v: string) => b.op('Unsqueeze', [v, b.ints([0])]);
  const taskLosses = b.op('Concat', [unsq(cls), unsq(det), unsq(box)], { axis: 0 });
  return { cls, det, box, taskLosses };
}

/** total = Σ_t λ_t · L_t with λ a [3] graph input. */
export function buildTotalLoss(b: GraphBuilder, taskLosses: string, taskWeights: string): string {
  return b.op('ReduceSum', [b.op('Mul', [taskLosses, taskWeights]), b.ints([0])], { keepdims: 0 });
}
