import { gramian } from './gramian';
import { GraphBuilder } from '../onnx/builder';
import { tensor } from '../onnx/ir';
import { runModel } from '../testing/ort';

describe('gramian()', () => {
  it('sums the inner products of every task pair over all the tensors', async () => {
    const b = new GraphBuilder();
    const a = [b.input('a1', 'float32', [2, 2]), b.input('a2', 'float32', [3])];
    const c = [b.input('c1', 'float32', [2, 2]), b.input('c2', 'float32', [3])];
    b.output(gramian(b, [a, c]), 'g');
    const f = (v: number[], dims: number[]) => tensor('float32', dims, v);
    const out = await runModel(b.model(), {
      a1: f([1, 2, 3, 4], [2, 2]), a2: f([1, 0, -1], [3]),
      c1: f([0, 1, 0, 1], [2, 2]), c2: f([2, 2, 2], [3]),
    });
    // ⟨a, a⟩ = 30 + 2, ⟨a, c⟩ = 6 + 0, ⟨c, c⟩ = 2 + 12.
    expect(Array.from(out.g.data as Float32Array)).toEqual([32, 6, 6, 14]);
    expect(out.g.dims).toEqual([2, 2]);
  });

  it('refuses tasks with different numbers of tensors', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    expect(() => gramian(b, [[x], [x, x]])).toThrow('tasks have 1, 2 gradient tensors');
  });
});
