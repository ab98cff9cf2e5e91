/** Reverse-mode differentiation over the graph a GraphBuilder holds. */
import type { GraphBuilder } from '../onnx/builder';
import type { Node } from '../onnx/ir';
import { tensor } from '../onnx/ir';
import { GRAD_RULES } from './rules';

export interface Seed {
  /** A value of the forward graph. */
  value: string;
  /** The cotangent to start from (same shape as `value`); defaults to ones for a scalar. */
  grad?: string;
}

/** Ops whose outputs carry no gradient (indices, shapes, comparisons). */
const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'And', 'Or', 'Not',
  'ArgMax', 'ArgMin', 'OneHot', 'Sign', 'Floor', 'Ceil', 'Round', 'Constant', 'ConstantOfShape',
]);

/**
 * Appends the backward pass of `seeds` to the builder and returns, for each name in `wrt`,
 * the value holding its gradient. A parameter that does not influence the seeds gets an explicit zero.
 */
export function gradients(b: GraphBuilder, seeds: Seed[] | string, wrt: string[]): Map<string, string> {
  const seedList: Seed[] = typeof seeds === 'string' ? [{ value: seeds }] : seeds;
  const forward = [...b.nodes];

  // Values that depend on something in `wrt`.
  const dependsOnWrt = new Set(wrt);
  for (const node of forward) {
    if (NON_DIFFERENTIABLE.has(node.opType)) continue;
    if (node.inputs.some((i) => dependsOnWrt.has(i))) node.outputs.forEach((o) => dependsOnWrt.add(o));
  }
  // Values that influence a seed.
  const reachesSeed = new Set(seedList.map((s) => s.value));
  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    if (node.outputs.some((o) => reachesSeed.has(o))) node.inputs.forEach((v) => reachesSeed.add(v));
  }

  const seedValues = new Set(seedList.map((s) => s.value));
  const wrtValues = new Set(wrt);
  const producer = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const node of forward) {
    node.outputs.forEach((o) => producer.set(o, node));
    for (const v of node.inputs) {
      const list = consumers.get(v);
      if (list) list.push(node);
      else consumers.set(v, [node]);
    }
  }
  const wants = (v: string) => v !== '' && dependsOnWrt.has(v) && reachesSeed.has(v);
  const soleProducerFor = (consumer: Node) => (value: string): Node | undefined => {
    const node = producer.get(value);
    if (!node || NON_DIFFERENTIABLE.has(node.opType)) return undefined;
    const private_ = (o: string) =>
      !seedValues.has(o) && !wrtValues.has(o) && !b.outputs.some((out) => out.name === o) &&
      (consumers.get(o) ?? []).every((c) => c === consumer);
    return node.outputs.every(private_) ? node : undefined;
  };
  const absorbed = new Set<Node>();

  const pending = new Map<string, string[]>();
  const accumulate = (value: string, grad: string) => {
    const list = pending.get(value);
    if (list) list.push(grad);
    else pending.set(value, [grad]);
  };
  const total = (value: string): string | undefined => {
    const list = pending.get(value);
    if (!list || list.length === 0) return undefined;
    if (list.length > 1) {
      const sum = list.length === 2 ? b.op('Add', list) : b.op('Sum', list);
      pending.set(value, [sum]);
      return sum;
    }
    return list[0];
  };

  for (const s of seedList) {
    const shape = b.shape(s.value);
    if (!s.grad && shape.length !== 0) throw new Error(`seed ${s.value} is not a scalar; give its cotangent`);
    accumulate(s.value, s.grad ?? b.const(tensor(b.dtype(s.value), [], [1]), `${s.value}_grad_seed`));
  }

  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    if (NON_DIFFERENTIABLE.has(node.opType) || absorbed.has(node)) continue;
    const needs = node.inputs.map(wants);
    if (!needs.some(Boolean)) continue;
    const dy = node.outputs.map(total);
    if (dy.every((g) => g === undefined)) continue;
    const rule = GRAD_RULES[node.opType];
    if (!rule) throw new Error(`no gradient rule for op ${node.opType} (node ${node.name})`);
    const result = rule({ b, node, dy, needs, soleProducer: soleProducerFor(node), wants });
    const [target, dx] = Array.isArray(result) ? [node, result] : [result.through, result.grads];
    if (target !== node) absorbed.add(target);
    target.inputs.forEach((v, k) => {
      const g = dx[k];
      if (wants(v) && g !== undefined) accumulate(v, g);
    });
  }

  const result = new Map<string, string>();
  for (const w of wrt) {
    let g = total(w);
    if (!g) {
      const zero = tensor(b.dtype(w), b.staticShape(w));
      g = b.const(zero, `${w}_zero_grad`);
    }
    result.set(w, g);
  }
  return result;
}
