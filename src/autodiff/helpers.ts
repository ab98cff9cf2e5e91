/** Small emitters shared by the gradient rules; each appends standard ai.onnx ops to the builder. */
import type { GraphBuilder } from '../onnx/builder';
import type { DType, Node, Shape } from '../onnx/ir';
import { getAttr, tensor } from '../onnx/ir';
import { onnxDataType } from '../onnx/serialize';

/** A scalar constant with the element type of `like`. */
export function scalarLike(b: GraphBuilder, value: number, like: string): string {
  return b.const(tensor(b.dtype(like), [], [value]), 'scalar');
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

export function castTo(b: GraphBuilder, value: string, dtype: DType): string {
  return b.dtype(value) === dtype ? value : b.op('Cast', [value], { to: onnxDataType(dtype) });
}

export function normaliseAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Integer values of a build-time constant input (axes, starts, shapes...). */
export function constantInts(b: GraphBuilder, node: Node, name: string, what: string): number[] {
  const c = b.constant(name);
  if (!c) throw new Error(`gradient of ${node.opType} (node ${node.name}) needs ${what} as a build-time constant`);
  return Array.from(c.data as ArrayLike<number | bigint>, Number);
}

/** `g` reshaped to the runtime shape of `like` (works with symbolic dims). */
export function reshapeLike(b: GraphBuilder, g: string, like: string): string {
  const shape = b.op('Shape', [like]);
  return b.op('Reshape', [g, shape], {}, { types: [{ dtype: b.dtype(g), shape: b.shape(like) }] });
}

/** `g` broadcast to the runtime shape of `like`. */
export function expandLike(b: GraphBuilder, g: string, like: string): string {
  const shape = b.op('Shape', [like]);
  return b.op('Expand', [g, shape], {}, { types: [{ dtype: b.dtype(g), shape: b.shape(like) }] });
}

/** Zeros with the runtime shape and element type of `like`. */
export function zerosLike(b: GraphBuilder, like: string): string {
  const dtype = b.dtype(like);
  const value = { type: 'tensor' as const, value: tensor(dtype, [1], [0]) };
  return b.op('ConstantOfShape', [b.op('Shape', [like])], { value }, { types: [{ dtype, shape: b.shape(like) }] });
}

/** Sums a broadcast gradient back down to the shape of the input it came from. */
export function unbroadcast(b: GraphBuilder, grad: string, target: string): string {
  const gs = b.shape(grad);
  const ts = b.shape(target);
  const lead = gs.length - ts.length;
  const stretched: number[] = [];
  for (let i = lead; i < gs.length; i++) if (ts[i - lead] === 1 && gs[i] !== 1) stretched.push(i);
  let g = grad;
  if (stretched.length > 0) g = b.op('ReduceSum', [g, b.ints(stretched)], { keepdims: 1 });
  if (lead > 0) g = b.op('ReduceSum', [g, b.ints(range(lead))], { keepdims: 0 });
  return g;
}

export function range(n: number, start = 0): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}

/** Reduction axes of a Reduce* node (input form of opset 13+ or attribute form); undefined = all axes. */
export function reductionAxes(b: GraphBuilder, node: Node): number[] | undefined {
  const rank = b.shape(node.inputs[0]).length;
  let axes: number[] = [];
  if (node.inputs[1]) axes = constantInts(b, node, node.inputs[1], 'axes');
  else if (node.attrs.axes) axes = getAttr(node, 'axes', 'ints');
  if (axes.length === 0) return getAttr(node, 'noop_with_empty_axes', 'int', 0) === 1 ? [] : undefined;
  return axes.map((a) => normaliseAxis(a, rank)).sort((p, q) => p - q);
}

/** The gradient of a reduction's output spread back over its input's shape. */
export function spreadReduced(b: GraphBuilder, node: Node, dy: string): string {
  const x = node.inputs[0];
  const axes = reductionAxes(b, node);
  if (axes !== undefined && axes.length === 0) return dy;
  const keepdims = getAttr(node, 'keepdims', 'int', 1) === 1;
  const g = keepdims ? dy : b.op('Unsqueeze', [dy, b.ints(axes ?? range(b.shape(x).length))]);
  return expandLike(b, g, x);
}

/** Number of input elements per output element of a reduction, as a scalar of the input's type. */
export function reducedCount(b: GraphBuilder, node: Node): string {
  const x = node.inputs[0];
  const shape = b.shape(x);
  const axes = reductionAxes(b, node) ?? range(shape.length);
  const dims = axes.map((a) => shape[a]);
  if (dims.every((d) => typeof d === 'number')) return scalarLike(b, (dims as number[]).reduce((p, q) => p * q, 1), x);
  const size = (v: string) => b.op('Size', [v], {}, { types: [{ dtype: 'int64', shape: [] }] });
  return castTo(b, b.op('Div', [size(x), size(node.outputs[0])]), b.dtype(x));
}

export function transposeLastTwo(b: GraphBuilder, x: string): string {
  const rank = b.shape(x).length;
  const perm = [...range(rank - 2), rank - 1, rank - 2];
  return b.op('Transpose', [x], { perm });
}

/** Reverses `g` along `axis` (whose size must be static). */
export function reverseAxis(b: GraphBuilder, g: string, axis: number): string {
  const size = staticDim(b.shape(g), axis, g);
  return b.op('Slice', [g, b.ints([-1]), b.ints([-(size + 1)]), b.ints([axis]), b.ints([-1])]);
}

/** Inserts `stride - 1` zeros between neighbours along `axis`: length n becomes (n-1)·stride+1. */
export function insertZeros(b: GraphBuilder, g: string, axis: number, stride: number): string {
  if (stride === 1) return g;
  const shape = b.shape(g);
  const n = staticDim(shape, axis, g);
  const rank = shape.length;
  const split = b.op('Unsqueeze', [g, b.ints([axis + 1])]);
  const pads = new Array(2 * (rank + 1)).fill(0);
  pads[rank + 1 + axis + 1] = stride - 1;
  const padded = b.op('Pad', [split, b.ints(pads)]);
  const after = shape.slice(axis + 1);
  const symbolicAfter = after.filter((d) => typeof d !== 'number').length;
  if (symbolicAfter > 1) throw new Error(`cannot insert zeros along axis ${axis} of [${shape}]: more than one symbolic dim follows it`);
  const target = [...new Array(axis).fill(0), n * stride, ...after.map((d) => (typeof d === 'number' ? d : -1))];
  const merged = b.op('Reshape', [padded, b.ints(target)]);
  return b.op('Slice', [merged, b.ints([0]), b.ints([(n - 1) * stride + 1]), b.ints([axis])]);
}

export function staticDim(shape: Shape, axis: number, value: string): number {
  const d = shape[axis];
  if (typeof d !== 'number') throw new Error(`dim ${axis} of ${value} must be static, got ${d}`);
  return d;
}
