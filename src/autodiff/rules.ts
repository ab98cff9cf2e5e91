/** The gradient rule table: op type → vector-Jacobian product emitted as standard ONNX ops. */
import type { GraphBuilder } from '../onnx/builder';
import type { GradRule } from './types';

/** Sums a broadcast gradient back down to the shape of the input it came from. */
export function unbroadcast(b: GraphBuilder, grad: string, target: string): string {
  const gs = b.shape(grad);
  const ts = b.shape(target);
  const lead = gs.length - ts.length;
  const axes: number[] = [];
  for (let i = 0; i < gs.length; i++) {
    const td = i < lead ? undefined : ts[i - lead];
    if (td === undefined || (td === 1 && gs[i] !== 1)) axes.push(i);
  }
  if (axes.length === 0) return grad;
  const summed = b.op('ReduceSum', [grad, b.ints(axes)], { keepdims: 1 });
  if (lead === 0) return summed;
  return b.op('Reshape', [summed, b.ints(ts.map((d) => (typeof d === 'number' ? d : 0)))]);
}

export const GRAD_RULES: Record<string, GradRule> = {
  Identity: ({ dy }) => [dy[0]],
  Add: ({ b, node, dy }) => node.inputs.map((x) => unbroadcast(b, dy[0]!, x)),
  Sub: ({ b, node, dy, needs }) => [
    needs[0] ? unbroadcast(b, dy[0]!, node.inputs[0]) : undefined,
    needs[1] ? unbroadcast(b, b.op('Neg', [dy[0]!]), node.inputs[1]) : undefined,
  ],
  Relu: ({ b, node, dy }) => {
    const y = node.outputs[0];
    const positive = b.op('Greater', [y, b.scalar(0)]);
    return [b.op('Where', [positive, dy[0]!, b.scalar(0)])];
  },
};
