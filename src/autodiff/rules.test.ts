import type { GraphBuilder } from '../onnx/builder';
import { type TensorValue, attr, tensor } from '../onnx/ir';
import { type GradCheckCase, analyticGradients, gradCheck, randomValues } from '../testing/gradcheck';

async function expectGradientsMatch(c: GradCheckCase) {
  const report = await gradCheck(c);
  expect(report.failures).toEqual([]);
  return report;
}

/** Random values kept at least `margin` away from zero (for kinks at 0). */
function awayFromZero(count: number, seed: number, margin = 0.2): number[] {
  return randomValues(count, seed).map((v) => v + Math.sign(v || 1) * margin);
}

function expectValues(t: TensorValue, expected: number[]) {
  const actual = Array.from(t.data as ArrayLike<number>);
  expect(actual).toHaveLength(expected.length);
  actual.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
}

const positive = (count: number, seed: number) => randomValues(count, seed, 0.5, 2);

function unary(op: string, shape: number[], extra: Partial<GradCheckCase> & { values?: number[] } = {}): GradCheckCase {
  const { values, ...rest } = extra;
  return { inputs: { x: { shape, values } }, build: (b, { x }) => b.op(op, [x]), ...rest };
}

describe('gradient rules: elementwise ops', () => {
  const cases: [string, GradCheckCase][] = [
    ['Identity', unary('Identity', [3, 4])],
    ['Neg', unary('Neg', [3, 4])],
    ['Relu', unary('Relu', [3, 4], { values: awayFromZero(12, 3) })],
    ['Sigmoid', unary('Sigmoid', [3, 4])],
    ['Tanh', unary('Tanh', [3, 4])],
    ['Softplus (float32)', unary('Softplus', [3, 4], { dtype: 'float32' })],
    ['Exp', unary('Exp', [3, 4])],
    ['Log', unary('Log', [3, 4], { values: positive(12, 4) })],
    ['Abs', unary('Abs', [3, 4], { values: awayFromZero(12, 5) })],
    ['Sqrt', unary('Sqrt', [3, 4], { values: positive(12, 6) })],
    ['Reciprocal', unary('Reciprocal', [3, 4], { values: positive(12, 7) })],
  ];
  it.each(cases)('%s', async (_name, c) => {
    await expectGradientsMatch(c);
  });
});

function binary(op: string, aShape: number[], bShape: number[], values: { a?: number[]; b?: number[] } = {}): GradCheckCase {
  return {
    inputs: { a: { shape: aShape, values: values.a }, b: { shape: bShape, values: values.b } },
    build: (b, { a, b: v }) => b.op(op, [a, v]),
  };
}

describe('gradient rules: broadcasting binary ops', () => {
  const cases: [string, GradCheckCase][] = [
    ['Add [2,3,4] + [3,1]', binary('Add', [2, 3, 4], [3, 1])],
    ['Add [4] + [2,3,1] (both broadcast)', binary('Add', [4], [2, 3, 1])],
    ['Sub [2,3,4] - [4]', binary('Sub', [2, 3, 4], [4])],
    ['Mul [2,3,4] * [1,3,1]', binary('Mul', [2, 3, 4], [1, 3, 1])],
    ['Mul [2,3] * scalar', binary('Mul', [2, 3], [])],
    ['Div [3,4] / [2,1,4]', binary('Div', [3, 4], [2, 1, 4], { b: positive(8, 11) })],
    ['Pow [2,3] ^ [3] (any exponent)', binary('Pow', [2, 3], [3], { a: positive(6, 12), b: [-1.5, 0.7, 2.3] })],
    ['Max [2,3] with [3]', binary('Max', [2, 3], [3])],
    ['Min [3,1] with [1,4]', binary('Min', [3, 1], [1, 4])],
  ];
  it.each(cases)('%s', async (_name, c) => {
    await expectGradientsMatch(c);
  });

  it('adds a bias to a symbolic batch', async () => {
    await expectGradientsMatch({
      inputs: { x: { shape: [2, 3], declared: ['N', 3] }, bias: { shape: [3] } },
      build: (b, { x, bias }) => b.op('Add', [x, bias]),
    });
  });

  it('Pow with a constant exponent, including 0 at a zero base', async () => {
    const report = await expectGradientsMatch({
      inputs: { x: { shape: [4], values: [0, 0.5, 1.5, 2] } },
      build: (b, { x }) => b.op('Pow', [x, b.const(tensor('float64', [4], [0, 2, 3, 0.5]))]),
      cotangent: [1, 1, 1, 1],
    });
    expectValues(report.grads.x, [0, 2 * 0.5, 3 * 1.5 ** 2, 0.5 / Math.sqrt(2)]);
  });

  it('Max gives the gradient to the first input on ties, Min too, for any number of inputs', async () => {
    const values = { a: [1, 2, 3], b: [1, 5, 3], c: [0, 5, 3] };
    const build = (op: string) => (b: GraphBuilder, v: Record<string, string>) => b.op(op, [v.a, v.b, v.c]);
    const inputs = { a: { shape: [3], values: values.a }, b: { shape: [3], values: values.b }, c: { shape: [3], values: values.c } };
    const max = await analyticGradients({ inputs, build: build('Max'), cotangent: [10, 20, 30] });
    expect(Array.from(max.grads.a.data as Float64Array)).toEqual([10, 0, 30]);
    expect(Array.from(max.grads.b.data as Float64Array)).toEqual([0, 20, 0]);
    expect(Array.from(max.grads.c.data as Float64Array)).toEqual([0, 0, 0]);
    const min = await analyticGradients({ inputs, build: build('Min'), cotangent: [10, 20, 30] });
    expect(Array.from(min.grads.a.data as Float64Array)).toEqual([0, 20, 30]);
    expect(Array.from(min.grads.c.data as Float64Array)).toEqual([10, 0, 0]);
  });

  it('Min of three inputs against finite differences', async () => {
    await expectGradientsMatch({
      inputs: { a: { shape: [2, 3] }, b: { shape: [3] }, c: { shape: [2, 1] } },
      build: (b, { a, b: v, c }) => b.op('Min', [a, v, c]),
    });
  });

  it('Where passes the gradient to the branch taken and none to the condition', async () => {
    const report = await expectGradientsMatch({
      inputs: {
        cond: { shape: [2, 3], dtype: 'bool', values: [1, 0, 1, 0, 0, 1] },
        p: { shape: [2, 3] },
        q: { shape: [3] },
      },
      build: (b, { cond, p, q }) => b.op('Where', [cond, p, q]),
    });
    expect(Object.keys(report.grads).sort()).toEqual(['p', 'q']);
  });
});

describe('gradient rules: Clip, Softmax, LogSoftmax, reductions', () => {
  const clip = (lo?: number, hi?: number): GradCheckCase => ({
    inputs: { x: { shape: [4, 5], values: randomValues(20, 21, -1.5, 1.5) } },
    build: (b, { x }) => {
      const bound = (v?: number) => (v === undefined ? '' : b.const(tensor('float64', [], [v])));
      const inputs = [x, bound(lo), bound(hi)];
      while (inputs[inputs.length - 1] === '') inputs.pop();
      return b.op('Clip', inputs);
    },
  });
  const reduce = (op: string, shape: number[], attrs: Record<string, number | number[]>, axesInput?: number[]): GradCheckCase => ({
    inputs: { x: { shape, values: op === 'ReduceL2' ? awayFromZero(shape.reduce((p, q) => p * q), 22) : undefined } },
    build: (b, { x }) => b.op(op, axesInput ? [x, b.ints(axesInput)] : [x], attrs),
  });
  const cases: [string, GradCheckCase][] = [
    ['Clip min and max', clip(-0.5, 0.7)],
    ['Clip min only', clip(-0.5)],
    ['Clip max only', clip(undefined, 0.3)],
    ['Softmax axis 1', { inputs: { x: { shape: [2, 3, 4] } }, build: (b, { x }) => b.op('Softmax', [x], { axis: 1 }) }],
    ['Softmax default axis', unary('Softmax', [3, 5])],
    ['LogSoftmax axis 1', { inputs: { x: { shape: [3, 5] } }, build: (b, { x }) => b.op('LogSoftmax', [x], { axis: 1 }) }],
    ['LogSoftmax axis 0 of 3-D', { inputs: { x: { shape: [3, 2, 4] } }, build: (b, { x }) => b.op('LogSoftmax', [x], { axis: 0 }) }],
    ['ReduceSum axes [1] keepdims 0', reduce('ReduceSum', [2, 3, 4], { keepdims: 0 }, [1])],
    ['ReduceSum all axes', reduce('ReduceSum', [2, 3, 4], {})],
    ['ReduceSum axes [-1, 0] keepdims 1', reduce('ReduceSum', [2, 3, 4], { keepdims: 1 }, [-1, 0])],
    ['ReduceMean axes [0, 2]', reduce('ReduceMean', [2, 3, 4], { axes: [0, 2] })],
    ['ReduceMean all, keepdims 0', reduce('ReduceMean', [2, 3, 4], { keepdims: 0 })],
    ['ReduceSumSquare axes [-1]', reduce('ReduceSumSquare', [2, 3, 4], { axes: [-1] })],
    ['ReduceL2 axes [1] keepdims 0', reduce('ReduceL2', [2, 3, 4], { axes: [1], keepdims: 0 })],
  ];
  it.each(cases)('%s', async (_name, c) => {
    await expectGradientsMatch(c);
  });

  it('ReduceMean over a symbolic batch divides by the runtime count', async () => {
    await expectGradientsMatch({
      inputs: { x: { shape: [3, 4], declared: ['N', 4] } },
      build: (b, { x }) => b.op('ReduceMean', [x], { axes: [0] }),
    });
  });

  it('ReduceSum with noop_with_empty_axes passes the gradient through', async () => {
    await expectGradientsMatch({
      inputs: { x: { shape: [2, 3] } },
      build: (b, { x }) => b.op('ReduceSum', [x, b.ints([])], { noop_with_empty_axes: 1 }, { types: [{ dtype: 'float64', shape: [2, 3] }] }),
    });
  });

  it('ReduceL2 of an all-zero row gives a zero gradient, not NaN', async () => {
    const report = await analyticGradients({
      inputs: { x: { shape: [2, 2], values: [0, 0, 3, 4] } },
      build: (b, { x }) => b.op('ReduceL2', [x], { axes: [1] }),
      cotangent: [1, 1],
    });
    expectValues(report.grads.x, [0, 0, 0.6, 0.8]);
  });
});

describe('gradient rules: Gemm and MatMul', () => {
  const gemm = (aShape: number[], bShape: number[], cShape: number[] | undefined, attrs: Record<string, ReturnType<typeof attr.float> | number>) => ({
    inputs: { a: { shape: aShape }, w: { shape: bShape }, ...(cShape ? { c: { shape: cShape } } : {}) },
    build: (b: GraphBuilder, v: Record<string, string>) => b.op('Gemm', v.c ? [v.a, v.w, v.c] : [v.a, v.w], attrs),
  });
  const matmul = (aShape: number[], bShape: number[]): GradCheckCase => ({
    inputs: { a: { shape: aShape }, w: { shape: bShape } },
    build: (b, { a, w }) => b.op('MatMul', [a, w]),
  });
  const cases: [string, GradCheckCase][] = [
    ['Gemm transB=1 with bias [N]', gemm([4, 3], [5, 3], [5], { transB: 1 })],
    ['Gemm plain with C [M,N], alpha, beta', gemm([4, 3], [3, 5], [4, 5], { alpha: attr.float(0.5), beta: attr.float(2) })],
    ['Gemm transA=1 with C [1,N]', gemm([3, 4], [3, 5], [1, 5], { transA: 1 })],
    ['Gemm transA=1 transB=1 with scalar C', gemm([3, 4], [5, 3], [], { transA: 1, transB: 1, alpha: attr.float(-1.5) })],
    ['Gemm without C', gemm([2, 3], [3, 2], undefined, {})],
    ['MatMul 2-D', matmul([3, 4], [4, 2])],
    ['MatMul batched', matmul([2, 3, 4], [2, 4, 5])],
    ['MatMul batched with broadcast', matmul([2, 1, 3, 4], [3, 4, 2])],
    ['MatMul matrix by batch', matmul([3, 4], [2, 4, 5])],
  ];
  it.each(cases)('%s', async (_name, c) => {
    await expectGradientsMatch(c);
  });

  it('refuses 1-D MatMul operands clearly', async () => {
    await expect(analyticGradients(matmul([4], [4, 3]))).rejects.toThrow(/MatMul gradient \(node n_MatMul\) supports operands of rank >= 2/);
  });
});

describe('gradient rules: layout and indexing ops', () => {
  const shaped = (shape: number[], build: GradCheckCase['build'], declared?: (string | number)[]): GradCheckCase => ({
    inputs: { x: { shape, declared } },
    build,
  });
  const cases: [string, GradCheckCase][] = [
    ['Transpose perm [2,0,1]', shaped([2, 3, 4], (b, { x }) => b.op('Transpose', [x], { perm: [2, 0, 1] }))],
    ['Transpose default perm', shaped([2, 3, 4], (b, { x }) => b.op('Transpose', [x]))],
    ['Reshape with a symbolic batch', shaped([2, 3, 4], (b, { x }) => b.op('Reshape', [x, b.ints([-1, 12])]), ['N', 3, 4])],
    ['Reshape with 0 (copy) dims', shaped([2, 3, 4], (b, { x }) => b.op('Reshape', [x, b.ints([0, 2, 6])]), ['N', 3, 4])],
    ['Flatten axis 1, symbolic batch', shaped([2, 2, 3, 2], (b, { x }) => b.op('Flatten', [x], { axis: 1 }), ['N', 2, 3, 2])],
    ['Flatten axis 2', shaped([2, 2, 3, 2], (b, { x }) => b.op('Flatten', [x], { axis: 2 }))],
    ['Unsqueeze axes [0, 3]', shaped([2, 3], (b, { x }) => b.op('Unsqueeze', [x, b.ints([0, 3])]))],
    ['Squeeze axes [1]', shaped([2, 1, 3], (b, { x }) => b.op('Squeeze', [x, b.ints([1])]))],
    ['Squeeze all unit dims', shaped([1, 3, 1], (b, { x }) => b.op('Squeeze', [x]))],
    ['Expand [3,1] to [2,3,4]', shaped([3, 1], (b, { x }) => b.op('Expand', [x, b.ints([2, 3, 4])]))],
    ['Slice one axis', shaped([3, 5], (b, { x }) => b.op('Slice', [x, b.ints([1]), b.ints([4]), b.ints([1])]))],
    ['Slice several axes, negative bounds', shaped([4, 5, 3], (b, { x }) => b.op('Slice', [x, b.ints([-3, 1]), b.ints([-1, 100]), b.ints([0, 2])]))],
    ['Slice with step 2', shaped([3, 7], (b, { x }) => b.op('Slice', [x, b.ints([1]), b.ints([7]), b.ints([1]), b.ints([2])]))],
    ['Slice with step -2', shaped([3, 7], (b, { x }) => b.op('Slice', [x, b.ints([5]), b.ints([0]), b.ints([-1]), b.ints([-2])]))],
    ['Slice reversing a whole axis', shaped([3, 4], (b, { x }) => b.op('Slice', [x, b.ints([-1]), b.ints([-100]), b.ints([0]), b.ints([-1])]))],
    ['Slice steps 3 and -1 on two axes', shaped([7, 5], (b, { x }) => b.op('Slice', [x, b.ints([0, 3]), b.ints([7, 0]), b.ints([0, 1]), b.ints([3, -1])]))],
  ];
  it.each(cases)('%s', async (_name, c) => {
    await expectGradientsMatch(c);
  });

  it('Slice that keeps nothing gives a zero gradient', async () => {
    const report = await analyticGradients({
      inputs: { x: { shape: [2, 3] } },
      build: (b, { x }) => b.op('Add', [b.op('ReduceSum', [x], { keepdims: 0 }), b.op('ReduceSum', [b.op('Slice', [x, b.ints([2]), b.ints([1]), b.ints([1])])], { keepdims: 0 })]),
      cotangent: [1],
    });
    expect(Array.from(report.grads.x.data as Float64Array)).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('Concat along axis 1 of three inputs', async () => {
    await expectGradientsMatch({
      inputs: { p: { shape: [2, 2, 3] }, q: { shape: [2, 1, 3] }, r: { shape: [2, 3, 3] } },
      build: (b, { p, q, r }) => b.op('Concat', [p, q, r], { axis: 1 }),
    });
  });

  it('Concat along a negative axis with a symbolic batch', async () => {
    await expectGradientsMatch({
      inputs: { p: { shape: [2, 2], declared: ['N', 2] }, q: { shape: [2, 3], declared: ['N', 3] } },
      build: (b, { p, q }) => b.op('Concat', [p, q], { axis: -1 }),
    });
  });

  it('GatherElements accumulates repeated (and negative) indices', async () => {
    await expectGradientsMatch({
      inputs: {
        data: { shape: [2, 3] },
        indices: { shape: [2, 4], dtype: 'int64', values: [0, 0, 2, -1, 1, 1, 1, 0] },
      },
      build: (b, { data, indices }) => b.op('GatherElements', [data, indices], { axis: 1 }),
    });
  });

  it('Cast float32 → float64 → float32 passes the gradient through', async () => {
    await expectGradientsMatch({
      dtype: 'float32',
      inputs: { x: { shape: [2, 3] } },
      build: (b, { x }) => {
        const wide = b.op('Cast', [x], { to: 11 });
        const scaled = b.op('Mul', [wide, b.const(tensor('float64', [3], [1, -2, 3]))]);
        return b.op('Cast', [scaled], { to: 1 });
      },
    });
  });
});
