/** The gradient rule table: op type → vector-Jacobian product emitted as standard ONNX ops (opset 17). */
import type { GraphBuilder } from '../onnx/builder';
import { attr, getAttr } from '../onnx/ir';
import { batchNormGrad, globalAveragePoolGrad } from './batch-norm';
import { convGrad } from './conv';
import {
  castTo,
  isFloat,
  reducedCount,
  reshapeLike,
  scalarLike,
  spreadReduced,
  transposeLastTwo,
  unbroadcast,
} from './helpers';
import { concatGrad, gatherElementsGrad, sliceGrad } from './indexing';
import { maxPoolGrad } from './pool';
import type { GradContext, GradRule } from './types';

export { unbroadcast } from './helpers';

type Grads = (string | undefined)[];

/** Rule for a one-input op whose gradient is `dy` times a local derivative. */
function elementwise(derivative: (b: GraphBuilder, x: string, y: string) => string): GradRule {
  return ({ b, node, dy }) => [b.op('Mul', [dy[0]!, derivative(b, node.inputs[0], node.outputs[0])])];
}

/** Rule for ops that only rearrange elements of their first input (shape inputs get no gradient). */
const reshapeBack: GradRule = ({ b, node, dy }) => [reshapeLike(b, dy[0]!, node.inputs[0])];

function oneMinus(b: GraphBuilder, v: string): string {
  return b.op('Sub', [scalarLike(b, 1, v), v]);
}

function transposeGrad({ b, node, dy }: GradContext): Grads {
  const rank = b.shape(node.inputs[0]).length;
  const perm = getAttr(node, 'perm', 'ints', Array.from({ length: rank }, (_, i) => rank - 1 - i));
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => (inverse[p] = i));
  return [b.op('Transpose', [dy[0]!], { perm: inverse })];
}

function gemmGrad({ b, node, dy, needs }: GradContext): Grads {
  const [a, m, c] = node.inputs;
  const transA = getAttr(node, 'transA', 'int', 0) === 1;
  const transB = getAttr(node, 'transB', 'int', 0) === 1;
  const alpha = attr.float(getAttr(node, 'alpha', 'float', 1));
  const beta = getAttr(node, 'beta', 'float', 1);
  const g = dy[0]!;
  const da = () =>
    transA
      ? b.op('Gemm', [m, g], { transA: transB ? 1 : 0, transB: 1, alpha })
      : b.op('Gemm', [g, m], { transB: transB ? 0 : 1, alpha });
  const dm = () =>
    transB
      ? b.op('Gemm', [g, a], { transA: 1, transB: transA ? 1 : 0, alpha })
      : b.op('Gemm', [a, g], { transA: transA ? 0 : 1, alpha });
  const dc = () => unbroadcast(b, beta === 1 ? g : b.op('Mul', [g, scalarLike(b, beta, g)]), c);
  return [needs[0] ? da() : undefined, needs[1] ? dm() : undefined, c && needs[2] ? dc() : undefined];
}

/** MatMul of matrices or batches of matrices (batch dims broadcast). */
function matMulGrad({ b, node, dy, needs }: GradContext): Grads {
  const [a, m] = node.inputs;
  if (b.shape(a).length < 2 || b.shape(m).length < 2) {
    throw new Error(`MatMul gradient (node ${node.name}) supports operands of rank >= 2 only; got [${b.shape(a)}] and [${b.shape(m)}]`);
  }
  const g = dy[0]!;
  return [
    needs[0] ? unbroadcast(b, b.op('MatMul', [g, transposeLastTwo(b, m)]), a) : undefined,
    needs[1] ? unbroadcast(b, b.op('MatMul', [transposeLastTwo(b, a), g]), m) : undefined,
  ];
}

function addGrad({ b, node, dy, needs }: GradContext): Grads {
  return node.inputs.map((x, k) => (needs[k] ? unbroadcast(b, dy[0]!, x) : undefined));
}

function subGrad({ b, node, dy, needs }: GradContext): Grads {
  const [p, q] = node.inputs;
  return [needs[0] ? unbroadcast(b, dy[0]!, p) : undefined, needs[1] ? unbroadcast(b, b.op('Neg', [dy[0]!]), q) : undefined];
}

function mulGrad({ b, node, dy, needs }: GradContext): Grads {
  const [p, q] = node.inputs;
  const g = dy[0]!;
  return [
    needs[0] ? unbroadcast(b, b.op('Mul', [g, q]), p) : undefined,
    needs[1] ? unbroadcast(b, b.op('Mul', [g, p]), q) : undefined,
  ];
}

function divGrad({ b, node, dy, needs }: GradContext): Grads {
  const [p, q] = node.inputs;
  const g = dy[0]!;
  const dq = () => b.op('Neg', [b.op('Div', [b.op('Mul', [g, node.outputs[0]]), q])]);
  return [needs[0] ? unbroadcast(b, b.op('Div', [g, q]), p) : undefined, needs[1] ? unbroadcast(b, dq(), q) : undefined];
}

function mayContainZero(b: GraphBuilder, v: string): boolean {
  const c = b.constant(v);
  return !c || Array.from(c.data as ArrayLike<number | bigint>).some((e) => Number(e) === 0);
}

/** d(a^e)/da = e·a^(e-1) (0 where e = 0); d(a^e)/de = a^e·ln a (0 where a = 0). */
function powGrad({ b, node, dy, needs }: GradContext): Grads {
  const [base, exponent] = node.inputs;
  const g = dy[0]!;
  const zero = scalarLike(b, 0, base);
  const e = castTo(b, exponent, b.dtype(base));
  const baseGrad = () => {
    let slope = b.op('Mul', [e, b.op('Pow', [base, b.op('Sub', [e, scalarLike(b, 1, e)])])]);
    if (mayContainZero(b, exponent)) slope = b.op('Where', [b.op('Equal', [e, zero]), zero, slope]);
    return unbroadcast(b, b.op('Mul', [g, slope]), base);
  };
  const exponentGrad = () => {
    const rate = b.op('Where', [b.op('Equal', [base, zero]), zero, b.op('Mul', [node.outputs[0], b.op('Log', [base])])]);
    return unbroadcast(b, b.op('Mul', [g, rate]), exponent);
  };
  return [needs[0] ? baseGrad() : undefined, needs[1] && isFloat(b.dtype(exponent)) ? exponentGrad() : undefined];
}

/** Max/Min: the gradient goes to the first input equal to the result (ties resolve to the earliest input). */
function firstExtremumGrad({ b, node, dy, needs }: GradContext): Grads {
  const y = node.outputs[0];
  const zero = scalarLike(b, 0, dy[0]!);
  const last = node.inputs.length - 1;
  let untaken = dy[0]!;
  return node.inputs.map((x, k) => {
    if (k === last) return needs[k] ? unbroadcast(b, untaken, x) : undefined;
    const isResult = b.op('Equal', [x, y]);
    const grad = needs[k] ? unbroadcast(b, b.op('Where', [isResult, untaken, zero]), x) : undefined;
    if (needs.slice(k + 1).some(Boolean)) untaken = b.op('Where', [isResult, zero, untaken]);
    return grad;
  });
}

function whereGrad({ b, node, dy, needs }: GradContext): Grads {
  const [condition, p, q] = node.inputs;
  const g = dy[0]!;
  const zero = scalarLike(b, 0, g);
  return [
    undefined,
    needs[1] ? unbroadcast(b, b.op('Where', [condition, g, zero]), p) : undefined,
    needs[2] ? unbroadcast(b, b.op('Where', [condition, zero, g]), q) : undefined,
  ];
}

/** Clip passes the gradient where min < x < max; a bound gets it where x lies strictly beyond that bound. */
function clipGrad({ b, node, dy, needs }: GradContext): Grads {
  const [x, lo, hi] = node.inputs;
  const g = dy[0]!;
  const zero = scalarLike(b, 0, g);
  const conditions = [lo ? b.op('Greater', [x, lo]) : undefined, hi ? b.op('Less', [x, hi]) : undefined].filter((c) => c !== undefined);
  const inside = conditions.length === 2 ? b.op('And', conditions) : conditions[0];
  const beyond = (bound: string, test: string) => unbroadcast(b, b.op('Where', [b.op(test, [x, bound]), g, zero]), bound);
  return [
    needs[0] ? (inside ? b.op('Where', [inside, g, zero]) : g) : undefined,
    lo && needs[1] ? beyond(lo, 'Less') : undefined,
    hi && needs[2] ? beyond(hi, 'Greater') : undefined,
  ];
}

function softmaxGrad({ b, node, dy }: GradContext): Grads {
  const y = node.outputs[0];
  const axis = getAttr(node, 'axis', 'int', -1);
  const weighted = b.op('ReduceSum', [b.op('Mul', [dy[0]!, y]), b.ints([axis])], { keepdims: 1 });
  return [b.op('Mul', [y, b.op('Sub', [dy[0]!, weighted])])];
}

function logSoftmaxGrad({ b, node, dy }: GradContext): Grads {
  const axis = getAttr(node, 'axis', 'int', -1);
  const total = b.op('ReduceSum', [dy[0]!, b.ints([axis])], { keepdims: 1 });
  const softmax = b.op('Exp', [node.outputs[0]]);
  return [b.op('Sub', [dy[0]!, b.op('Mul', [softmax, total])])];
}

function reduceL2Grad({ b, node, dy }: GradContext): Grads {
  const [x, y] = [node.inputs[0], node.outputs[0]];
  const zero = scalarLike(b, 0, y);
  const perNorm = b.op('Where', [b.op('Equal', [y, zero]), zero, b.op('Div', [dy[0]!, y])]);
  return [b.op('Mul', [x, spreadReduced(b, node, perNorm)])];
}

function castGrad({ b, node, dy }: GradContext): Grads {
  const [x, y] = [node.inputs[0], node.outputs[0]];
  if (!isFloat(b.dtype(x)) || !isFloat(b.dtype(y))) return [undefined];
  return [castTo(b, dy[0]!, b.dtype(x))];
}

export const GRAD_RULES: Record<string, GradRule> = {
  Identity: ({ dy }) => [dy[0]],
  Neg: ({ b, dy }) => [b.op('Neg', [dy[0]!])],
  Relu: ({ b, node, dy }) => {
    const y = node.outputs[0];
    const zero = scalarLike(b, 0, y);
    return [b.op('Where', [b.op('Greater', [y, zero]), dy[0]!, zero])];
  },
  Sigmoid: elementwise((b, x, y) => b.op('Mul', [y, oneMinus(b, y)])),
  Tanh: elementwise((b, x, y) => oneMinus(b, b.op('Mul', [y, y]))),
  Softplus: elementwise((b, x) => b.op('Sigmoid', [x])),
  Exp: elementwise((b, x, y) => y),
  Log: ({ b, node, dy }) => [b.op('Div', [dy[0]!, node.inputs[0]])],
  Abs: elementwise((b, x) => b.op('Sign', [x])),
  Sqrt: ({ b, node, dy }) => [b.op('Div', [dy[0]!, b.op('Mul', [node.outputs[0], scalarLike(b, 2, dy[0]!)])])],
  Reciprocal: elementwise((b, x, y) => b.op('Neg', [b.op('Mul', [y, y])])),
  Flatten: reshapeBack,
  Reshape: reshapeBack,
  Squeeze: reshapeBack,
  Unsqueeze: reshapeBack,
  Transpose: transposeGrad,
  Expand: ({ b, node, dy }) => [unbroadcast(b, dy[0]!, node.inputs[0])],
  Cast: castGrad,
  Gemm: gemmGrad,
  MatMul: matMulGrad,
  Add: addGrad,
  Sum: addGrad,
  Sub: subGrad,
  Mul: mulGrad,
  Div: divGrad,
  Pow: powGrad,
  Max: firstExtremumGrad,
  Min: firstExtremumGrad,
  Where: whereGrad,
  Clip: clipGrad,
  Softmax: softmaxGrad,
  LogSoftmax: logSoftmaxGrad,
  ReduceSum: ({ b, node, dy }) => [spreadReduced(b, node, dy[0]!)],
  ReduceMean: ({ b, node, dy }) => [spreadReduced(b, node, b.op('Div', [dy[0]!, reducedCount(b, node)]))],
  ReduceSumSquare: ({ b, node, dy }) => {
    const x = node.inputs[0];
    return [b.op('Mul', [spreadReduced(b, node, dy[0]!), b.op('Mul', [x, scalarLike(b, 2, x)])])];
  },
  ReduceL2: reduceL2Grad,
  Concat: concatGrad,
  Slice: sliceGrad,
  GatherElements: gatherElementsGrad,
  Conv: convGrad,
  MaxPool: maxPoolGrad,
  BatchNormalization: batchNormGrad,
  GlobalAveragePool: globalAveragePoolGrad,
};
