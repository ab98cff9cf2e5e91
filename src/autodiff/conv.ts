/**
 * Gradient of a 2-D Conv (group 1, dilation 1).
 *
 * Input gradient: stride 1 → Conv of the upstream gradient with the kernel flipped spatially and its
 * channel axes swapped; stride > 1 → ConvTranspose (a Conv over the zero-inserted gradient spends
 * 3/4 of its work on zeros at stride 2 and measured 4-5× slower).
 * Weight gradient: im2col of the (channel-major) padded input, then one Gemm with the upstream gradient.
 */
import type { GraphBuilder } from '../onnx/builder';
import type { Node } from '../onnx/ir';
import { getAttr } from '../onnx/ir';
import { staticDim } from './helpers';
import type { GradContext } from './types';

interface ConvGeometry {
  inChannels: number;
  outChannels: number;
  kernel: [number, number];
  strides: [number, number];
  /** [top, left, bottom, right] */
  pads: [number, number, number, number];
  input: [number, number];
  output: [number, number];
}

function pair(values: number[], what: string, node: Node): [number, number] {
  if (values.length !== 2) throw new Error(`Conv gradient (node ${node.name}) supports 2-D convolutions only; ${what} is [${values}]`);
  return [values[0], values[1]];
}

function convGeometry(b: GraphBuilder, node: Node): ConvGeometry {
  const [x, w] = node.inputs;
  const xShape = b.shape(x);
  const wShape = b.shape(w);
  if (xShape.length !== 4) throw new Error(`Conv gradient (node ${node.name}) supports 2-D convolutions only; input is [${xShape}]`);
  const group = getAttr(node, 'group', 'int', 1);
  const dilations = getAttr(node, 'dilations', 'ints', [1, 1]);
  const autoPad = getAttr(node, 'auto_pad', 'string', 'NOTSET');
  if (group !== 1 || dilations.some((d) => d !== 1) || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) {
    throw new Error(
      `Conv gradient (node ${node.name}) supports group=1, dilations=1 and explicit pads only; ` +
        `got group=${group}, dilations=[${dilations}], auto_pad=${autoPad}`,
    );
  }
  const kernel = pair(getAttr(node, 'kernel_shape', 'ints', [staticDim(wShape, 2, w), staticDim(wShape, 3, w)]), 'kernel_shape', node);
  const pads = getAttr(node, 'pads', 'ints', [0, 0, 0, 0]);
  const y = node.outputs[0];
  return {
    inChannels: staticDim(xShape, 1, x),
    outChannels: staticDim(wShape, 0, w),
    kernel,
    strides: pair(getAttr(node, 'strides', 'ints', [1, 1]), 'strides', node),
    pads: [pads[0], pads[1], pads[2], pads[3]],
    input: [staticDim(xShape, 2, x), staticDim(xShape, 3, x)],
    output: [staticDim(b.shape(y), 2, y), staticDim(b.shape(y), 3, y)],
  };
}

/** Full correlation of dy with the flipped, channel-swapped kernel (stride 1 only). */
function inputGradByFlippedConv(b: GraphBuilder, g: ConvGeometry, dy: string, w: string): string {
  const [kh, kw] = g.kernel;
  const swapped = b.op('Transpose', [w], { perm: [1, 0, 2, 3] });
  const flipped = b.op('Slice', [swapped, b.ints([-1, -1]), b.ints([-(kh + 1), -(kw + 1)]), b.ints([2, 3]), b.ints([-1, -1])]);
  const [pt, pl, pb, pr] = g.pads;
  const wanted = [kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr];
  const dx = b.op('Conv', [dy, flipped], { kernel_shape: [kh, kw], pads: wanted.map((p) => Math.max(0, p)) });
  if (wanted.every((p) => p >= 0)) return dx;
  // Padding wider than the kernel: the border rows/columns of the full correlation are dropped.
  const top = Math.max(0, -wanted[0]);
  const left = Math.max(0, -wanted[1]);
  return b.op('Slice', [dx, b.ints([top, left]), b.ints([top + g.input[0], left + g.input[1]]), b.ints([2, 3])]);
}

function inputGradByConvTranspose(b: GraphBuilder, g: ConvGeometry, dy: string, w: string, x: string): string {
  const [kh, kw] = g.kernel;
  const [sh, sw] = g.strides;
  const [pt, pl, pb, pr] = g.pads;
  // Input rows/columns past the last window get no gradient; output_padding restores them.
  const extra = [g.input[0] + pt + pb - kh - sh * (g.output[0] - 1), g.input[1] + pl + pr - kw - sw * (g.output[1] - 1)];
  const attrs = { kernel_shape: g.kernel, strides: g.strides, pads: g.pads, output_padding: extra };
  return b.op('ConvTranspose', [dy, w], attrs, { types: [{ dtype: b.dtype(dy), shape: b.shape(x) }] });
}

/** Columns [C·kh·kw, N·Ho·Wo] of the padded input, one row per (channel, kernel tap). */
function im2col(b: GraphBuilder, g: ConvGeometry, x: string): string {
  const [kh, kw] = g.kernel;
  const [sh, sw] = g.strides;
  const [pt, pl, pb, pr] = g.pads;
  const channelMajor = b.op('Transpose', [x], { perm: [1, 0, 2, 3] });
  const padded = pt || pl || pb || pr ? b.op('Pad', [channelMajor, b.ints([0, 0, pt, pl, 0, 0, pb, pr])]) : channelMajor;
  const spanH = (g.output[0] - 1) * sh + 1;
  const spanW = (g.output[1] - 1) * sw + 1;
  const view = (i: number, j: number) =>
    b.op('Slice', [padded, b.ints([i, j]), b.ints([i + spanH, j + spanW]), b.ints([2, 3]), b.ints([sh, sw])]);
  const views: string[] = [];
  if (kh === 1 && kw === 1 && sh === 1 && sw === 1) views.push(padded);
  else for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) views.push(view(i, j));
  const stacked = views.length === 1 ? views[0] : b.op('Concat', views, { axis: 1 });
  return b.op('Reshape', [stacked, b.ints([g.inChannels * kh * kw, -1])]);
}

function weightGrad(b: GraphBuilder, g: ConvGeometry, dy: string, x: string): string {
  const rows = b.op('Reshape', [b.op('Transpose', [dy], { perm: [1, 0, 2, 3] }), b.ints([g.outChannels, -1])]);
  const dw = b.op('Gemm', [rows, im2col(b, g, x)], { transB: 1 });
  return b.op('Reshape', [dw, b.ints([g.outChannels, g.inChannels, ...g.kernel])]);
}

export function convGrad({ b, node, dy, needs }: GradContext): (string | undefined)[] {
  const [x, w, bias] = node.inputs;
  const g = convGeometry(b, node);
  const up = dy[0]!;
  const stride1 = g.strides.every((s) => s === 1);
  const dx = needs[0] ? (stride1 ? inputGradByFlippedConv(b, g, up, w) : inputGradByConvTranspose(b, g, up, w, x)) : undefined;
  const dw = needs[1] ? weightGrad(b, g, up, x) : undefined;
  const db = bias && needs[2] ? b.op('ReduceSum', [up, b.ints([0, 2, 3])], { keepdims: 0 }) : undefined;
  return [dx, dw, db];
}
