/** The forward pass of the shared trunk and the three heads, emitted into a graph. */
import { batchStatistics, BN_EPSILON, BN_MOMENTUM } from '../autodiff/batch-norm';
import type { GraphBuilder } from '../onnx/builder';
import { attr, tensor } from '../onnx/ir';
import { layout, type BlockLayout, type ConvLayout } from './params';
import type { ModelSpec } from './spec';

export interface HeadOutputs {
  /** Output of the shared layers, the representation every head reads. */
  features: string;
  classLogits: string;
  objectnessLogit: string;
  boxLogits: string;
  /** Training-mode batch norm: the next value of every buffer (running statistics, batch count). */
  bufferUpdates: Map<string, string>;
}

/**
 * BatchNorm in PyTorch's modes: 'train' normalises with the batch statistics and updates the running
 * ones (momentum 0.1, unbiased variance), 'eval' normalises with the running statistics.
 */
export type BatchNormMode = 'train' | 'eval';

/**
 * `value(name)` returns the graph value holding that parameter or buffer (an input or an initializer).
 */
export function buildForward(b: GraphBuilder, spec: ModelSpec, image: string, value: (name: string) => string, mode: BatchNormMode = 'eval'): HeadOutputs {
  const { blocks, sharedIndex } = layout(spec);
  const bufferUpdates = new Map<string, string>();

  const batchNorm = (x: string, bn: string): string => {
    const [scale, bias, runningMean, runningVar, tracked] = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'].map((s) => `${bn}.${s}`);
    if (mode === 'eval') {
      return b.op('BatchNormalization', [x, value(scale), value(bias), value(runningMean), value(runningVar)], { epsilon: attr.float(BN_EPSILON) });
    }
    const stats = batchStatistics(b, x);
    const momentum = b.scalar(BN_MOMENTUM);
    const keep = b.scalar(1 - BN_MOMENTUM);
    const blend = (running: string, batch: string) => b.op('Add', [b.op('Mul', [value(running), keep]), b.op('Mul', [batch, momentum])]);
    // The running variance is the unbiased one, n/(n − 1) times the batch variance (n ≥ 2 assumed; 1 gives ×1).
    const unbiased = b.op('Mul', [stats.variance, b.op('Div', [stats.count, b.op('Max', [b.op('Sub', [stats.count, b.scalar(1)]), b.scalar(1)])])]);
    bufferUpdates.set(runningMean, blend(runningMean, stats.mean));
    bufferUpdates.set(runningVar, blend(runningVar, unbiased));
    bufferUpdates.set(tracked, b.op('Add', [value(tracked), b.const(tensor('int64', [], [1]), 'one')]));
    return b.op('BatchNormalization', [x, value(scale), value(bias), stats.mean, stats.variance], { epsilon: attr.float(BN_EPSILON) });
  };

  const conv = (x: string, c: ConvLayout): string => {
    const p = c.padding;
    const inputs = [x, value(`${c.conv}.weight`), ...(c.bias ? [value(`${c.conv}.bias`)] : [])];
    const y = b.op('Conv', inputs, { kernel_shape: [c.kernel, c.kernel], strides: [c.stride, c.stride], pads: [p, p, p, p] });
    return c.bn ? batchNorm(y, c.bn) : y;
  };

  const block = (x: string, l: BlockLayout): string => {
    if (l.type === 'globalAvgPool') return b.op('GlobalAveragePool', [x]);
    if (l.type === 'residual') {
      const branch = conv(b.op('Relu', [conv(x, l.conv1)]), l.conv2);
      const shortcut = l.downsample ? conv(x, l.downsample) : x;
      return b.op('Relu', [b.op('Add', [branch, shortcut])]);
    }
    let y = conv(x, l.conv);
    if (l.relu) y = b.op('Relu', [y]);
    if (l.pool) y = b.op('MaxPool', [y], { kernel_shape: [l.pool, l.pool], strides: [l.pool, l.pool] });
    return y;
  };

  let x = blocks.reduce(block, image);
  x = b.op('Flatten', [x], { axis: 1 });
  for (const index of sharedIndex) {
    x = b.op('Gemm', [x, value(`shared.${index}.weight`), value(`shared.${index}.bias`)], { transB: 1 });
    x = b.op('Relu', [x]);
  }
  const head = (name: string) => b.op('Gemm', [x, value(`heads.${name}.weight`), value(`heads.${name}.bias`)], { transB: 1 });
  return { features: x, classLogits: head('cls'), objectnessLogit: head('det'), boxLogits: head('box'), bufferUpdates };
}

/** Box head logits → normalised corners [x1, y1, x2, y2] via sigmoid(·) = [cx, cy, w, h]. */
export function decodeBox(b: GraphBuilder, boxLogits: string): string {
  const s = b.op('Sigmoid', [boxLogits]);
  const axis1 = b.ints([1]);
  const centre = b.op('Slice', [s, b.ints([0]), b.ints([2]), axis1]);
  const size = b.op('Slice', [s, b.ints([2]), b.ints([4]), axis1]);
  const half = b.op('Mul', [size, b.scalar(0.5)]);
  return b.op('Concat', [b.op('Sub', [centre, half]), b.op('Add', [centre, half])], { axis: 1 });
}

/** Post-processed outputs for serving: probabilities, objectness probability, clipped box. */
export function buildHeadsPostprocess(b: GraphBuilder, heads: HeadOutputs): { classProbs: string; objectness: string; box: string } {
  const classProbs = b.op('Softmax', [heads.classLogits], { axis: 1 });
  const objectness = b.op('Sigmoid', [heads.objectnessLogit]);
  const box = b.op('Clip', [decodeBox(b, heads.boxLogits), b.scalar(0), b.scalar(1)]);
  return { classProbs, objectness, box };
}
