/** The forward pass of the shared trunk and the three heads, emitted into a graph. */
import type { GraphBuilder } from '../onnx/builder';
import { layout } from './params';
import type { ModelSpec } from './spec';

export interface HeadOutputs {
  /** Output of the shared layers, the representation every head reads. */
  features: string;
  classLogits: string;
  objectnessLogit: string;
  boxLogits: string;
}

/** `param(name)` returns the graph value holding that parameter (an input or an initializer). */
export function buildForward(b: GraphBuilder, spec: ModelSpec, image: string, param: (name: string) => string): HeadOutputs {
  const { convIndex, sharedIndex } = layout(spec);
  let x = image;
  spec.trunk.forEach((block, i) => {
    const prefix = `trunk.${convIndex[i]}`;
    const p = block.padding;
    x = b.op('Conv', [x, param(`${prefix}.weight`), param(`${prefix}.bias`)], {
      kernel_shape: [block.kernel, block.kernel],
      strides: [block.stride, block.stride],
      pads: [p, p, p, p],
    });
    if (block.relu) x = b.op('Relu', [x]);
    if (block.pool) x = b.op('MaxPool', [x], { kernel_shape: [block.pool, block.pool], strides: [block.pool, block.pool] });
  });
  x = b.op('Flatten', [x], { axis: 1 });
  for (const index of sharedIndex) {
    x = b.op('Gemm', [x, param(`shared.${index}.weight`), param(`shared.${index}.bias`)], { transB: 1 });
    x = b.op('Relu', [x]);
  }
  const head = (name: string) => b.op('Gemm', [x, param(`heads.${name}.weight`), param(`heads.${name}.bias`)], { transB: 1 });
  return { features: x, classLogits: head('cls'), objectnessLogit: head('det'), boxLogits: head('box') };
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
