/** Gradients of ops that select or assemble parts of tensors: Slice, Concat, GatherElements. */
import { getAttr } from '../onnx/ir';
import { constantInts, insertZeros, normaliseAxis, reverseAxis, staticDim, zerosLike } from './helpers';
import type { GradContext } from './types';

const FULL_RANGE = 2 ** 31 - 1;

interface SlicedAxis {
  axis: number;
  /** Input index of the first element kept (lowest index), its spacing, and how many are kept. */
  first: number;
  spacing: number;
  count: number;
  reversed: boolean;
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(Math.max(v, lo), hi);
}

/** Which input positions a static Slice keeps along one axis (ONNX clamping rules). */
function slicedAxis(axis: number, dim: number, start: number, end: number, step: number): SlicedAxis {
  if (step === 0) throw new Error('Slice step must not be 0');
  const s0 = start < 0 ? start + dim : start;
  const e0 = end < 0 ? end + dim : end;
  const s = step > 0 ? clamp(s0, 0, dim) : clamp(s0, 0, dim - 1);
  const e = step > 0 ? clamp(e0, 0, dim) : clamp(e0, -1, dim - 1);
  const count = Math.max(0, Math.ceil((e - s) / step));
  const reversed = step < 0;
  const first = reversed ? s + (count - 1) * step : s;
  return { axis, first, spacing: Math.abs(step), count, reversed };
}

export function sliceGrad({ b, node, dy }: GradContext): (string | undefined)[] {
  const [x, startsName, endsName, axesName, stepsName] = node.inputs;
  const shape = b.shape(x);
  const rank = shape.length;
  const starts = constantInts(b, node, startsName, 'starts');
  const ends = constantInts(b, node, endsName, 'ends');
  const axes = axesName ? constantInts(b, node, axesName, 'axes') : starts.map((_, i) => i);
  const steps = stepsName ? constantInts(b, node, stepsName, 'steps') : starts.map(() => 1);
  const pads = new Array(2 * rank).fill(0);
  let g = dy[0]!;
  for (let i = 0; i < axes.length; i++) {
    const axis = normaliseAxis(axes[i], rank);
    const isWholeAxis = starts[i] === 0 && ends[i] >= FULL_RANGE && steps[i] === 1;
    if (isWholeAxis) continue;
    const kept = slicedAxis(axis, staticDim(shape, axis, x), starts[i], ends[i], steps[i]);
    if (kept.count === 0) return [zerosLike(b, x)];
    if (kept.reversed) g = reverseAxis(b, g, axis);
    g = insertZeros(b, g, axis, kept.spacing);
    pads[axis] = kept.first;
    pads[axis + rank] = (shape[axis] as number) - (kept.first + (kept.count - 1) * kept.spacing + 1);
  }
  return [pads.some((p) => p !== 0) ? b.op('Pad', [g, b.ints(pads)]) : g];
}

export function concatGrad({ b, node, dy, needs }: GradContext): (string | undefined)[] {
  const rank = b.shape(node.inputs[0]).length;
  const axis = normaliseAxis(getAttr(node, 'axis', 'int'), rank);
  let offset = 0;
  return node.inputs.map((x, k) => {
    const size = b.shape(x)[axis];
    if (typeof size !== 'number') {
      throw new Error(`gradient of Concat (node ${node.name}) needs static sizes along axis ${axis}; input ${x} has ${size}`);
    }
    const start = offset;
    offset += size;
    if (!needs[k]) return undefined;
    return b.op('Slice', [dy[0]!, b.ints([start]), b.ints([start + size]), b.ints([axis])]);
  });
}

export function gatherElementsGrad({ b, node, dy }: GradContext): (string | undefined)[] {
  const [data, indices] = node.inputs;
  const axis = getAttr(node, 'axis', 'int', 0);
  const scattered = b.op('ScatterElements', [zerosLike(b, data), indices, dy[0]!], { axis, reduction: 'add' });
  return [scattered, undefined];
}
