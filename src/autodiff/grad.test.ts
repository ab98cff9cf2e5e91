import { gradients } from './grad';
import { GRAD_RULES } from './rules';
import { GraphBuilder } from '../onnx/builder';

describe('gradients()', () => {
  it('names the op and the node when a gradient rule is missing', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const y = b.op('Erf', [x], {}, { types: [{ dtype: 'float32', shape: [2, 3] }] });
    const loss = b.op('ReduceSum', [y], { keepdims: 0 });
    expect(GRAD_RULES.Erf).toBeUndefined();
    expect(() => gradients(b, loss, [x])).toThrow('no gradient rule for op Erf (node n_Erf)');
  });

  it('does not ask for rules of ops that no requested gradient passes through', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const w = b.input('w', 'float32', [2, 3]);
    const constantBranch = b.op('Erf', [x], {}, { types: [{ dtype: 'float32', shape: [2, 3] }] });
    const loss = b.op('ReduceSum', [b.op('Mul', [constantBranch, w])], { keepdims: 0 });
    expect(() => gradients(b, loss, [w])).not.toThrow();
  });
});
