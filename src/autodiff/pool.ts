/**
 * Gradient of MaxPool with non-overlapping windows (kernel == strides, no padding).
 *
 * Each window position (i, j) is a strided sub-grid of the input. Walking the sub-grids in row-major
 * order, the upstream gradient goes to the first one equal to the pooled maximum and is removed from
 * what later sub-grids may take, so ties resolve to the first maximum exactly as PyTorch does.
 * The per-position gradients are then interleaved back into the input layout.
 */
import type { GraphBuilder } from '../onnx/builder';
import type { Node } from '../onnx/ir';
import { getAttr } from '../onnx/ir';
import { scalarLike, staticDim } from './helpers';
import type { Absorbed, GradContext } from './types';

function unsupported(node: Node, why: string): Error {
  return new Error(`MaxPool gradient (node ${node.name}) supports 2-D pooling with kernel_shape == strides and no padding only; ${why}`);
}

function poolKernel(node: Node): [number, number] {
  const kernel = getAttr(node, 'kernel_shape', 'ints');
  if (kernel.length !== 2) throw unsupported(node, `kernel_shape is [${kernel}]`);
  const strides = getAttr(node, 'strides', 'ints', [1, 1]);
  const pads = getAttr(node, 'pads', 'ints', [0, 0, 0, 0]);
  const dilations = getAttr(node, 'dilations', 'ints', [1, 1]);
  const autoPad = getAttr(node, 'auto_pad', 'string', 'NOTSET');
  const ceilMode = getAttr(node, 'ceil_mode', 'int', 0);
  if (strides[0] !== kernel[0] || strides[1] !== kernel[1]) throw unsupported(node, `strides [${strides}] differ from kernel_shape [${kernel}]`);
  if (pads.some((p) => p !== 0) || (autoPad !== 'NOTSET' && autoPad !== 'VALID')) throw unsupported(node, `pads [${pads}], auto_pad ${autoPad}`);
  if (dilations.some((d) => d !== 1)) throw unsupported(node, `dilations [${dilations}]`);
  if (ceilMode !== 0) throw unsupported(node, 'ceil_mode is 1');
  return [kernel[0], kernel[1]];
}

/** Upstream gradient routed to the first maximum of each window, one tensor per window position. */
function gradientPerWindowPosition(b: GraphBuilder, x: string, y: string, dy: string, [kh, kw]: [number, number]): string[] {
  const [ho, wo] = [staticDim(b.shape(y), 2, y), staticDim(b.shape(y), 3, y)];
  const zero = scalarLike(b, 0, dy);
  const parts: string[] = [];
  let untaken = dy;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      if (parts.length === kh * kw - 1) {
        parts.push(untaken);
        break;
      }
      const ends = [i + (ho - 1) * kh + 1, j + (wo - 1) * kw + 1];
      const subgrid = b.op('Slice', [x, b.ints([i, j]), b.ints(ends), b.ints([2, 3]), b.ints([kh, kw])]);
      const isMax = b.op('Equal', [subgrid, y]);
      parts.push(b.op('Where', [isMax, untaken, zero]));
      untaken = b.op('Where', [isMax, zero, untaken]);
    }
  }
  return parts;
}

/** Places parts[i·kw + j][n, c, oh, ow] at [n, c, oh·kh + i, ow·kw + j]. */
function interleave(b: GraphBuilder, parts: string[], [kh, kw]: [number, number], y: string): string {
  const [ho, wo] = [staticDim(b.shape(y), 2, y), staticDim(b.shape(y), 3, y)];
  if (parts.length === 1) return parts[0];
  const stacked = b.op('Concat', parts.map((p) => b.op('Unsqueeze', [p, b.ints([4])])), { axis: 4 });
  const blocks = b.op('Reshape', [stacked, b.ints([0, 0, ho, wo, kh, kw])]);
  const rowsThenCols = b.op('Transpose', [blocks], { perm: [0, 1, 2, 4, 3, 5] });
  return b.op('Reshape', [rowsThenCols, b.ints([0, 0, ho * kh, wo * kw])]);
}

/**
 * When the pooled input is a Relu's output that only this MaxPool reads, the Relu is differentiated
 * here too: the selected input is > 0 exactly where the pooled maximum is, so its mask is applied to
 * the pooled gradient, a kernel-area fraction of the size of the Relu's.
 */
export function maxPoolGrad({ b, node, dy, soleProducer }: GradContext): (string | undefined)[] | Absorbed {
  let up = dy[0];
  if (!up) return [undefined];
  const [x, y] = [node.inputs[0], node.outputs[0]];
  const kernel = poolKernel(node);
  const relu = soleProducer(x);
  const fused = relu?.opType === 'Relu' ? relu : undefined;
  if (fused) {
    const zero = scalarLike(b, 0, y);
    up = b.op('Where', [b.op('Greater', [y, zero]), up, zero]);
  }
  let g = interleave(b, gradientPerWindowPosition(b, x, y, up, kernel), kernel, y);
  const [h, w] = [staticDim(b.shape(x), 2, x), staticDim(b.shape(x), 3, x)];
  const [covH, covW] = [staticDim(b.shape(g), 2, g), staticDim(b.shape(g), 3, g)];
  // Rows/columns beyond the last full window are never pooled.
  if (covH !== h || covW !== w) g = b.op('Pad', [g, b.ints([0, 0, 0, 0, 0, 0, h - covH, w - covW])]);
  return fused ? { through: fused, grads: [g] } : [g];
}
