import { GraphBuilder } from './builder';
import { attr, tensor } from './ir';
import { decodeModel, encodeModel } from './serialize';
import { runModel } from '../testing/ort';

describe('onnx IR serialisation', () => {
  function smallModel() {
    const b = new GraphBuilder('small');
    const x = b.input('x', 'float32', ['N', 3]);
    const w = b.initializer('w', tensor('float32', [2, 3], [1, 2, 3, 4, 5, 6]));
    const y = b.op('Gemm', [x, w], { transB: 1, alpha: attr.float(0.5) });
    b.output(b.op('Relu', [y]), 'y');
    return b.model({ note: 'hello' });
  }

  it('round-trips a model through ModelProto bytes', () => {
    const model = smallModel();
    const back = decodeModel(encodeModel(model));
    expect(back.opset).toBe(17);
    expect(back.irVersion).toBe(8);
    expect(back.metadata).toEqual({ note: 'hello' });
    expect(back.graph.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: ['N', 3] }]);
    expect(back.graph.nodes.map((n) => n.opType)).toEqual(['Gemm', 'Relu']);
    expect(back.graph.nodes[0].attrs.alpha).toEqual({ type: 'float', value: 0.5 });
    expect(Array.from(back.graph.initializers[0].data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(encodeModel(back)).toEqual(encodeModel(model));
  });

  it('runs in ONNX Runtime with the expected result', async () => {
    const out = await runModel(smallModel(), { x: tensor('float32', [2, 3], [1, 1, 1, -1, 0, 0]) });
    expect(out.y.dims).toEqual([2, 2]);
    expect(Array.from(out.y.data as Float32Array)).toEqual([3, 7.5, 0, 0]);
  });

  it('refuses bytes that are not a model', () => {
    expect(() => decodeModel(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(/not an ONNX model/);
  });

  it('tracks shapes through windowed ops', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 3, 28, 28]);
    const w = b.initializer('w', tensor('float32', [8, 3, 3, 3]));
    const c = b.op('Conv', [x, w], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
    const p = b.op('MaxPool', [c], { kernel_shape: [2, 2], strides: [2, 2] });
    expect(b.shape(p)).toEqual(['N', 8, 14, 14]);
    expect(b.shape(b.op('Flatten', [p], { axis: 1 }))).toEqual(['N', 8 * 14 * 14]);
  });
});

describe('graph outputs', () => {
  it('renames a node output instead of copying it, and copies graph inputs', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2]);
    const y = b.op('Neg', [x]);
    const z = b.op('Exp', [y]);
    b.output(y, 'negated');
    b.output(x, 'same');
    b.output(z, 'exp');
    const g = b.build();
    expect(g.nodes.map((n) => n.opType)).toEqual(['Neg', 'Exp', 'Identity']);
    expect(g.nodes[1].inputs).toEqual(['negated']);
    expect(g.outputs.map((o) => o.name)).toEqual(['negated', 'same', 'exp']);
  });
});
