/**
 * One arithmetic over scalars, with two implementations: plain numbers (host hooks, tests) and
 * float32 scalars emitted into an ONNX graph (the in-graph, exact variants). A weighting
 * strategy writes its math once against `Scalars`, so what the host computes and what the graph
 * computes are the same formula. Both branches of `where` are always evaluated, as in a graph.
 */
import type { GraphBuilder } from '../../onnx/builder';

export interface Scalars<S, B> {
  const(value: number): S;
  add(a: S, b: S): S;
  sub(a: S, b: S): S;
  mul(a: S, b: S): S;
  div(a: S, b: S): S;
  neg(a: S): S;
  sqrt(a: S): S;
  exp(a: S): S;
  log(a: S): S;
  abs(a: S): S;
  floor(a: S): S;
  max(a: S, b: S): S;
  min(a: S, b: S): S;
  less(a: S, b: S): B;
  and(p: B, q: B): B;
  where(condition: B, a: S, b: S): S;
}

export const numbers: Scalars<number, boolean> = Object.freeze({
  const: (v: number) => v,
  add: (a: number, b: number) => a + b,
  sub: (a: number, b: number) => a - b,
  mul: (a: number, b: number) => a * b,
  div: (a: number, b: number) => a / b,
  neg: (a: number) => -a,
  sqrt: Math.sqrt,
  exp: Math.exp,
  log: Math.log,
  abs: Math.abs,
  floor: Math.floor,
  max: (a: number, b: number) => Math.max(a, b),
  min: (a: number, b: number) => Math.min(a, b),
  less: (a: number, b: number) => a < b,
  and: (p: boolean, q: boolean) => p && q,
  where: (c: boolean, a: number, b: number) => (c ? a : b),
});

/** Float32 scalars (shape []) in `b`; every operation is one standard ai.onnx node. */
export function graphScalars(b: GraphBuilder): Scalars<string, string> {
  const constants = new Map<number, string>();
  const op = (type: string, inputs: string[]) => b.op(type, inputs);
  return {
    const: (v) => {
      let name = constants.get(v);
      if (!name) constants.set(v, (name = b.scalar(v)));
      return name;
    },
    add: (x, y) => op('Add', [x, y]),
    sub: (x, y) => op('Sub', [x, y]),
    mul: (x, y) => op('Mul', [x, y]),
    div: (x, y) => op('Div', [x, y]),
    neg: (x) => op('Neg', [x]),
    sqrt: (x) => op('Sqrt', [x]),
    exp: (x) => op('Exp', [x]),
    log: (x) => op('Log', [x]),
    abs: (x) => op('Abs', [x]),
    floor: (x) => op('Floor', [x]),
    max: (x, y) => op('Max', [x, y]),
    min: (x, y) => op('Min', [x, y]),
    less: (x, y) => op('Less', [x, y]),
    and: (p, q) => op('And', [p, q]),
    where: (c, x, y) => op('Where', [c, x, y]),
  };
}

/** The scalars of a [n] graph vector (Slice + Reshape, both differentiable). */
export function unstack(b: GraphBuilder, vector: string, indices: readonly number[]): string[] {
  const scalarShape = b.ints([], 'scalar_shape');
  return indices.map((i) => b.op('Reshape', [b.op('Slice', [vector, b.ints([i]), b.ints([i + 1]), b.ints([0])]), scalarShape]));
}

/** A [n] graph vector of scalars. */
export function stack(b: GraphBuilder, scalars: readonly string[]): string {
  const axis = b.ints([0]);
  const parts = scalars.map((s) => b.op('Unsqueeze', [s, axis]));
  return parts.length === 1 ? parts[0] : b.op('Concat', parts, { axis: 0 });
}

/** Σ_k terms[k], left to right. */
export function sum<S>(s: Scalars<S, unknown>, terms: readonly S[]): S {
  return terms.reduce((acc, t) => s.add(acc, t));
}

/** Σ_k x_k·y_k. */
export function dot<S>(s: Scalars<S, unknown>, x: readonly S[], y: readonly S[]): S {
  return sum(s, x.map((v, k) => s.mul(v, y[k])));
}

/** xᵀ·G·x for a square matrix G given as rows. */
export function quadratic<S>(s: Scalars<S, unknown>, g: readonly (readonly S[])[], x: readonly S[]): S {
  return dot(s, x, g.map((row) => dot(s, row, x)));
}

/** softmax(x). */
export function softmax<S>(s: Scalars<S, unknown>, x: readonly S[]): S[] {
  const top = x.reduce((m, v) => s.max(m, v));
  const e = x.map((v) => s.exp(s.sub(v, top)));
  const total = sum(s, e);
  return e.map((v) => s.div(v, total));
}
