/** Output type and shape of each op, computed as nodes are added, so gradient rules can rely on shapes. */
import type { DType, Dim, Node, Shape, TensorValue } from './ir';
import { getAttr } from './ir';

export interface ShapeContext {
  dtype(name: string): DType;
  shape(name: string): Shape;
  /** Value of a constant input (initializer or Constant), if known at build time. */
  constant(name: string): TensorValue | undefined;
}

export type ShapeRule = (node: Node, ctx: ShapeContext) => { dtype: DType; shape: Shape }[];

function ints(ctx: ShapeContext, node: Node, name: string | undefined, what: string): number[] {
  if (!name) throw new Error(`${node.opType} ${node.name}: missing ${what}`);
  const c = ctx.constant(name);
  if (!c) throw new Error(`${node.opType} ${node.name}: ${what} must be a build-time constant`);
  return Array.from(c.data as ArrayLike<number | bigint>, Number);
}

export function broadcastShapes(a: Shape, b: Shape): Shape {
  const rank = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da === 1) out.push(db);
    else if (db === 1 || da === db) out.push(da);
    else if (typeof da === 'string' || typeof db === 'string') out.push(typeof da === 'string' ? db : da);
    else throw new Error(`cannot broadcast [${a}] with [${b}]`);
  }
  return out;
}

const same: ShapeRule = (n, c) => [{ dtype: c.dtype(n.inputs[0]), shape: c.shape(n.inputs[0]) }];

function broadcastRule(outDtype?: DType): ShapeRule {
  return (n, c) => {
    const shape = n.inputs.map((i) => c.shape(i)).reduce(broadcastShapes);
    const dtype = outDtype ?? c.dtype(n.opType === 'Where' ? n.inputs[1] : n.inputs[0]);
    return [{ dtype, shape }];
  };
}

function mul(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  if (a === 1) return b;
  if (b === 1) return a;
  return `${a}*${b}`;
}

function windowed(n: Node, c: ShapeContext, outChannels: Dim): Shape {
  const x = c.shape(n.inputs[0]);
  const spatial = x.length - 2;
  const k = getAttr(n, 'kernel_shape', 'ints');
  const strides = getAttr(n, 'strides', 'ints', new Array(spatial).fill(1));
  const pads = getAttr(n, 'pads', 'ints', new Array(spatial * 2).fill(0));
  const dil = getAttr(n, 'dilations', 'ints', new Array(spatial).fill(1));
  const out: Shape = [x[0], outChannels];
  for (let i = 0; i < spatial; i++) {
    const d = x[2 + i];
    if (typeof d !== 'number') throw new Error(`${n.opType} ${n.name}: spatial dims must be static`);
    out.push(Math.floor((d + pads[i] + pads[i + spatial] - dil[i] * (k[i] - 1) - 1) / strides[i]) + 1);
  }
  return out;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function reduce(n: Node, c: ShapeContext, axes: number[] | undefined): Shape {
  const x = c.shape(n.inputs[0]);
  const keep = getAttr(n, 'keepdims', 'int', 1) === 1;
  const all = axes === undefined || axes.length === 0;
  const set = new Set((axes ?? []).map((a) => normAxis(a, x.length)));
  const out: Shape = [];
  x.forEach((d, i) => {
    if (all || set.has(i)) {
      if (keep) out.push(1);
    } else out.push(d);
  });
  return out;
}

const reduceAttr: ShapeRule = (n, c) => [
  { dtype: c.dtype(n.inputs[0]), shape: reduce(n, c, n.attrs.axes ? getAttr(n, 'axes', 'ints') : undefined) },
];
const reduceInput: ShapeRule = (n, c) => [
  { dtype: c.dtype(n.inputs[0]), shape: reduce(n, c, n.inputs[1] ? ints(c, n, n.inputs[1], 'axes') : undefined) },
];

export const SHAPE_RULES: Record<string, ShapeRule> = {
  Identity: same,
  Relu: same,
  Sigmoid: same,
  Tanh: same,
  Neg: same,
  Exp: same,
  Log: same,
  Abs: same,
  Sqrt: same,
  Reciprocal: same,
  Softplus: same,
  Sign: same,
  Floor: same,
  Softmax: same,
  LogSoftmax: same,
  Clip: same,
  Dropout: same,
  Not: same,
  Add: broadcastRule(),
  Sub: broadcastRule(),
  Mul: broadcastRule(),
  Div: broadcastRule(),
  Pow: broadcastRule(),
  Max: broadcastRule(),
  Min: broadcastRule(),
  Sum: broadcastRule(),
  Where: broadcastRule(),
  Equal: broadcastRule('bool'),
  Less: broadcastRule('bool'),
  Greater: broadcastRule('bool'),
  LessOrEqual: broadcastRule('bool'),
  GreaterOrEqual: broadcastRule('bool'),
  And: broadcastRule('bool'),
  Or: broadcastRule('bool'),
  Cast: (n, c) => {
    const to = getAttr(n, 'to', 'int');
    const map: Record<number, DType> = { 1: 'float32', 11: 'float64', 7: 'int64', 6: 'int32', 2: 'uint8', 9: 'bool' };
    if (!map[to]) throw new Error(`Cast ${n.name}: unsupported target type ${to}`);
    return [{ dtype: map[to], shape: c.shape(n.inputs[0]) }];
  },
  Conv: (n, c) => [{ dtype: c.dtype(n.inputs[0]), shape: windowed(n, c, c.shape(n.inputs[1])[0]) }],
  MaxPool: (n, c) => {
    const shape = windowed(n, c, c.shape(n.inputs[0])[1]);
    const outs = [{ dtype: c.dtype(n.inputs[0]), shape }];
    if (n.outputs.length > 1) outs.push({ dtype: 'int64', shape });
    return outs;
  },
  GlobalAveragePool: (n, c) => [{ dtype: c.dtype(n.inputs[0]), shape: c.shape(n.inputs[0]).map((d, i) => (i < 2 ? d : 1)) }],
  /** Inference form only (training_mode 0): one output shaped like the input. */
  BatchNormalization: same,
  AveragePool: (n, c) => [{ dtype: c.dtype(n.inputs[0]), shape: windowed(n, c, c.shape(n.inputs[0])[1]) }],
  Flatten: (n, c) => {
    const x = c.shape(n.inputs[0]);
    const axis = normAxis(getAttr(n, 'axis', 'int', 1), x.length);
    return [{ dtype: c.dtype(n.inputs[0]), shape: [x.slice(0, axis).reduce(mul, 1), x.slice(axis).reduce(mul, 1)] }];
  },
  Reshape: (n, c) => {
    const x = c.shape(n.inputs[0]);
    const target = ints(c, n, n.inputs[1], 'shape');
    const out: Shape = target.map((d, i) => (d === 0 ? x[i] : d));
    const minus = out.indexOf(-1);
    if (minus >= 0) {
      const known = out.filter((d, i) => i !== minus).reduce(mul, 1);
      const total = x.reduce(mul, 1);
      if (typeof total === 'number' && typeof known === 'number') out[minus] = total / known;
      else {
        const sym = x.filter((d) => typeof d === 'string');
        const staticTotal = x.filter((d) => typeof d === 'number').reduce(mul, 1);
        out[minus] = sym.length === 1 && staticTotal === known ? sym[0] : `${n.outputs[0]}_d${minus}`;
      }
    }
    return [{ dtype: c.dtype(n.inputs[0]), shape: out }];
  },
  Gemm: (n, c) => {
    const a = c.shape(n.inputs[0]);
    const b = c.shape(n.inputs[1]);
    const m = getAttr(n, 'transA', 'int', 0) ? a[1] : a[0];
    const k = getAttr(n, 'transB', 'int', 0) ? b[0] : b[1];
    return [{ dtype: c.dtype(n.inputs[0]), shape: [m, k] }];
  },
  MatMul: (n, c) => {
    const a = c.shape(n.inputs[0]);
    const b = c.shape(n.inputs[1]);
    const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
    return [{ dtype: c.dtype(n.inputs[0]), shape: [...batch, a[a.length - 2], b[b.length - 1]] }];
  },
  Transpose: (n, c) => {
    const x = c.shape(n.inputs[0]);
    const perm = getAttr(n, 'perm', 'ints', x.map((_, i) => x.length - 1 - i));
    return [{ dtype: c.dtype(n.inputs[0]), shape: perm.map((p) => x[p]) }];
  },
  ReduceSum: reduceInput,
  ReduceMean: reduceAttr,
  ReduceMax: reduceAttr,
  ReduceSumSquare: reduceAttr,
  ReduceL2: reduceAttr,
  ReduceLogSumExp: reduceAttr,
  ArgMax: (n, c) => {
    const x = c.shape(n.inputs[0]);
    const axis = normAxis(getAttr(n, 'axis', 'int', 0), x.length);
    const keep = getAttr(n, 'keepdims', 'int', 1) === 1;
    const shape = keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis);
    return [{ dtype: 'int64', shape }];
  },
  Concat: (n, c) => {
    const shapes = n.inputs.map((i) => c.shape(i));
    const axis = normAxis(getAttr(n, 'axis', 'int'), shapes[0].length);
    const out = [...shapes[0]];
    out[axis] = shapes.map((s) => s[axis]).reduce((a, b) => (typeof a === 'number' && typeof b === 'number' ? a + b : `${n.outputs[0]}_d${axis}`));
    return [{ dtype: c.dtype(n.inputs[0]), shape: out }];
  },
  Slice: (n, c) => {
    const x = c.shape(n.inputs[0]);
    const starts = ints(c, n, n.inputs[1], 'starts');
    const ends = ints(c, n, n.inputs[2], 'ends');
    const axes = n.inputs[3] ? ints(c, n, n.inputs[3], 'axes') : starts.map((_, i) => i);
    const steps = n.inputs[4] ? ints(c, n, n.inputs[4], 'steps') : starts.map(() => 1);
    const out = [...x];
    axes.forEach((a0, i) => {
      const a = normAxis(a0, x.length);
      const d = x[a];
      if (typeof d !== 'number') {
        if (starts[i] === 0 && ends[i] >= 2 ** 31 - 1 && steps[i] === 1) return;
        throw new Error(`Slice ${n.name}: cannot slice symbolic dim ${d}`);
      }
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
      const s = steps[i];
      const st = clamp(starts[i] < 0 ? starts[i] + d : starts[i], s > 0 ? 0 : -1, s > 0 ? d : d - 1);
      const en = clamp(ends[i] < 0 ? ends[i] + d : ends[i], s > 0 ? 0 : -1, s > 0 ? d : d - 1);
      out[a] = Math.max(0, Math.ceil((en - st) / s));
    });
    return [{ dtype: c.dtype(n.inputs[0]), shape: out }];
  },
  Pad: (n, c) => {
    const x = c.shape(n.inputs[0]);
    const pads = ints(c, n, n.inputs[1], 'pads');
    const out = x.map((d, i) => (typeof d === 'number' ? d + pads[i] + pads[i + x.length] : d));
    return [{ dtype: c.dtype(n.inputs[0]), shape: out }];
  },
  Unsqueeze: (n, c) => {
    const x = c.shape(n.inputs[0]);
    const axes = ints(c, n, n.inputs[1], 'axes');
    const rank = x.length + axes.length;
    const set = new Set(axes.map((a) => normAxis(a, rank)));
    const out: Shape = [];
    let j = 0;
    for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : x[j++]);
    return [{ dtype: c.dtype(n.inputs[0]), shape: out }];
  },
  Squeeze: (n, c) => {
    const x = c.shape(n.inputs[0]);
    const axes = n.inputs[1] ? ints(c, n, n.inputs[1], 'axes').map((a) => normAxis(a, x.length)) : undefined;
    const out = x.filter((d, i) => (axes ? !axes.includes(i) : d !== 1));
    return [{ dtype: c.dtype(n.inputs[0]), shape: out }];
  },
  Shape: (n, c) => [{ dtype: 'int64', shape: [c.shape(n.inputs[0]).length] }],
  Expand: (n, c) => [{ dtype: c.dtype(n.inputs[0]), shape: broadcastShapes(c.shape(n.inputs[0]), ints(c, n, n.inputs[1], 'shape')) }],
  GatherElements: (n, c) => [{ dtype: c.dtype(n.inputs[0]), shape: c.shape(n.inputs[1]) }],
  ScatterElements: same,
  OneHot: (n, c) => {
    const idx = c.shape(n.inputs[0]);
    const depth = ints(c, n, n.inputs[1], 'depth')[0];
    const axis = getAttr(n, 'axis', 'int', -1);
    const out = [...idx];
    out.splice(axis < 0 ? idx.length + 1 + axis : axis, 0, depth);
    return [{ dtype: c.dtype(n.inputs[2]), shape: out }];
  },
  Gather: (n, c) => {
    const x = c.shape(n.inputs[0]);
    const idx = c.shape(n.inputs[1]);
    const axis = normAxis(getAttr(n, 'axis', 'int', 0), x.length);
    return [{ dtype: c.dtype(n.inputs[0]), shape: [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)] }];
  },
  Constant: (n) => {
    const t = getAttr(n, 'value', 'tensor');
    return [{ dtype: t.dtype, shape: t.dims }];
  },
};
