import { gradients } from './grad';
import { batchStatistics, BN_EPSILON } from './batch-norm';
import { GraphBuilder } from '../onnx/builder';
import { type GradCheckCase, gradCheck, randomValues } from '../testing/gradcheck';
import { runModel } from '../testing/ort';
import { attr, tensor } from '../onnx/ir';

async function expectGradientsMatch(c: GradCheckCase) {
  const report = await gradCheck(c);
  expect(report.failures).toEqual([]);
  return report;
}

const bn = (b: GraphBuilder, x: string, scale: string, bias: string, mean: string, variance: string) =>
  b.op('BatchNormalization', [x, scale, bias, mean, variance], { epsilon: attr.float(BN_EPSILON) });

describe('BatchNormalization gradient', () => {
  it('evaluation form: all five inputs against finite differences (float64)', async () => {
    await expectGradientsMatch({
      inputs: {
        x: { shape: [3, 4, 3, 2] },
        scale: { shape: [4] },
        bias: { shape: [4] },
        mean: { shape: [4] },
        variance: { shape: [4], values: randomValues(4, 5, 0.2, 2) },
      },
      build: (b, v) => bn(b, v.x, v.scale, v.bias, v.mean, v.variance),
    });
  });

  it('training form (batch statistics of x): the fused rule against finite differences through mean and variance', async () => {
    const report = await expectGradientsMatch({
      inputs: { x: { shape: [3, 4, 3, 2], values: randomValues(72, 9, -2, 3) }, scale: { shape: [4] }, bias: { shape: [4] } },
      build: (b, v) => {
        const stats = batchStatistics(b, v.x);
        return bn(b, v.x, v.scale, v.bias, stats.mean, stats.variance);
      },
    });
    // The statistics are not differentiated node by node: the only Expand is the check's own loss
    // (ReduceSum of output·cotangent); the two ReduceMean nodes would add one each.
    const backwardOps = report.backward.graph.nodes.slice(report.forward.graph.nodes.length).map((n) => n.opType);
    expect(backwardOps.filter((op) => op === 'Expand')).toEqual(['Expand']);
  });

  it('training form over a symbolic batch in float32, followed by ReLU and a loss that also reads the batch mean', async () => {
    await expectGradientsMatch({
      dtype: 'float32',
      inputs: {
        x: { shape: [4, 3, 4, 4], declared: ['N', 3, 4, 4] },
        scale: { shape: [3], values: [0.5, 1.5, -1] },
        bias: { shape: [3] },
      },
      build: (b, v) => {
        const stats = batchStatistics(b, v.x);
        const y = b.op('Relu', [bn(b, v.x, v.scale, v.bias, stats.mean, stats.variance)]);
        // Another path through the statistics: the generic rules add it to the fused one.
        const pooled = b.op('ReduceMean', [y], { axes: [2, 3], keepdims: 0 });
        return b.op('Add', [pooled, b.op('Unsqueeze', [b.op('Mul', [stats.mean, stats.variance]), b.ints([0])])]);
      },
    });
  });

  it('batch statistics equal the mean and the biased variance per channel', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['N', 2, 1, 2]);
    const stats = batchStatistics(b, x);
    b.output(stats.mean, 'mean');
    b.output(stats.variance, 'variance');
    b.output(stats.count, 'count');
    // Channel 0 holds 1, 3 | 5, 7; channel 1 holds 0, 0 | 4, 0.
    const out = await runModel(b.model(), { x: tensor('float32', [2, 2, 1, 2], [1, 3, 0, 0, 5, 7, 4, 0]) });
    expect(Array.from(out.mean.data as Float32Array)).toEqual([4, 1]);
    expect(Array.from(out.variance.data as Float32Array)).toEqual([5, 3]);
    expect(Array.from(out.count.data as Float32Array)).toEqual([4]);
  });

  it('refuses training_mode 1 clearly', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 2, 2, 2]);
    const p = ['s', 'b', 'm', 'v'].map((n) => b.input(n, 'float32', [2]));
    const y = b.op('BatchNormalization', [x, ...p], { training_mode: 1 });
    expect(() => gradients(b, b.op('ReduceSum', [y], { keepdims: 0 }), [x])).toThrow(/supports training_mode 0 only/);
  });
});

describe('GlobalAveragePool gradient', () => {
  it('against finite differences, with a symbolic batch (float32: ONNX Runtime has no float64 kernel)', async () => {
    await expectGradientsMatch({
      dtype: 'float32',
      inputs: { x: { shape: [2, 3, 4, 5], declared: ['N', 3, 4, 5] } },
      build: (b, v) => b.op('GlobalAveragePool', [v.x]),
    });
  });
});
