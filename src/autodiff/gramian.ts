/** The Gram matrix of per-task gradients, emitted as standard ops: G_ij = Σ_p ⟨g_i,p, g_j,p⟩. */
import type { GraphBuilder } from '../onnx/builder';

/**
 * `perTask[t]` lists task t's gradient tensors, in the same order and shapes for every task (one
 * per parameter, or the single gradient of a shared representation). Returns G, float [T, T].
 */
export function gramian(b: GraphBuilder, perTask: readonly (readonly string[])[]): string {
  const T = perTask.length;
  const count = perTask[0]?.length ?? 0;
  if (T === 0 || count === 0) throw new Error('gramian: no gradients');
  if (perTask.some((g) => g.length !== count)) throw new Error(`gramian: tasks have ${perTask.map((g) => g.length).join(', ')} gradient tensors; they need the same`);
  const row = b.ints([1, -1]);
  const parts = Array.from({ length: count }, (_, p) => {
    const rows = perTask.map((grads) => b.op('Reshape', [grads[p], row]));
    const matrix = T === 1 ? rows[0] : b.op('Concat', rows, { axis: 0 });
    return b.op('MatMul', [matrix, b.op('Transpose', [matrix], { perm: [1, 0] })]);
  });
  return parts.length === 1 ? parts[0] : b.op('Sum', parts);
}
