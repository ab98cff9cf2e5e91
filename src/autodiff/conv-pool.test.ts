import { gradients } from './grad';
import { GraphBuilder } from '../onnx/builder';
import type { TensorValue } from '../onnx/ir';
import { type GradCheckCase, analyticGradients, gradCheck, randomValues } from '../testing/gradcheck';

async function expectGradientsMatch(c: GradCheckCase) {
  const report = await gradCheck(c);
  expect(report.failures).toEqual([]);
  return report;
}

interface ConvCase {
  x: number[];
  w: number[];
  bias?: boolean;
  strides?: number[];
  pads?: number[];
}

function convCase({ x, w, bias = false, strides = [1, 1], pads = [0, 0, 0, 0] }: ConvCase): GradCheckCase {
  return {
    dtype: 'float32',
    inputs: { x: { shape: x }, w: { shape: w }, ...(bias ? { bias: { shape: [w[0]] } } : {}) },
    build: (b, v) => b.op('Conv', v.bias ? [v.x, v.w, v.bias] : [v.x, v.w], { kernel_shape: w.slice(2), strides, pads }),
  };
}

describe('Conv gradient', () => {
  const cases: [string, ConvCase][] = [
    ['stride 1, pad 0, bias', { x: [2, 3, 6, 6], w: [4, 3, 3, 3], bias: true }],
    ['stride 1, pad 1, no bias', { x: [2, 3, 6, 6], w: [4, 3, 3, 3], pads: [1, 1, 1, 1] }],
    ['stride 2, pad 0, no bias', { x: [2, 3, 7, 7], w: [4, 3, 3, 3], strides: [2, 2] }],
    ['stride 2, pad 1, bias, even input (unused last row)', { x: [2, 3, 8, 8], w: [4, 3, 3, 3], bias: true, strides: [2, 2], pads: [1, 1, 1, 1] }],
    ['strides [2, 1], asymmetric pads, rectangular kernel', { x: [1, 2, 7, 6], w: [3, 2, 2, 3], strides: [2, 1], pads: [0, 1, 1, 0] }],
    ['5×5 kernel, stride 2, pad 2', { x: [1, 2, 9, 9], w: [2, 2, 5, 5], bias: true, strides: [2, 2], pads: [2, 2, 2, 2] }],
    ['1×1 kernel, stride 1', { x: [2, 3, 4, 4], w: [5, 3, 1, 1], bias: true }],
    ['1×1 kernel with padding wider than the kernel', { x: [1, 2, 4, 3], w: [3, 2, 1, 1], pads: [1, 2, 1, 0] }],
    ['1×1 kernel, stride 2', { x: [1, 2, 5, 5], w: [3, 2, 1, 1], strides: [2, 2] }],
  ];
  it.each(cases)('%s', async (_name, c) => {
    await expectGradientsMatch(convCase(c));
  });

  it('skips the input gradient of the image and handles a symbolic batch', async () => {
    const report = await expectGradientsMatch({
      dtype: 'float32',
      inputs: { x: { shape: [2, 3, 6, 6], declared: ['N', 3, 6, 6], check: false }, w: { shape: [4, 3, 3, 3] }, bias: { shape: [4] } },
      build: (b, { x, w, bias }) => b.op('Conv', [x, w, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2] }),
    });
    const ops = report.backward.graph.nodes.map((n) => n.opType);
    expect(ops.filter((op) => op === 'Conv' || op === 'ConvTranspose')).toEqual(['Conv']);
  });

  it('refuses grouped and dilated convolutions clearly', () => {
    for (const attrs of [{ group: 2 }, { dilations: [2, 2] }]) {
      const b = new GraphBuilder();
      const x = b.input('x', 'float32', [1, 4, 6, 6]);
      const w = b.input('w', 'float32', attrs.group ? [4, 2, 3, 3] : [4, 4, 3, 3]);
      const y = b.op('Conv', [x, w], { kernel_shape: [3, 3], ...attrs });
      expect(() => gradients(b, b.op('ReduceSum', [y], { keepdims: 0 }), [w])).toThrow(/Conv gradient \(node n_Conv\) supports group=1, dilations=1/);
    }
  });
});

/** PyTorch's rule: each window's gradient goes to its first maximum in row-major order. */
function firstMaxPoolGrad(x: TensorValue, dy: TensorValue, [kh, kw]: [number, number]): number[] {
  const [n, c, h, w] = x.dims;
  const [ho, wo] = [dy.dims[2], dy.dims[3]];
  const xs = x.data as ArrayLike<number>;
  const gs = dy.data as ArrayLike<number>;
  const out = new Array<number>(xs.length).fill(0);
  for (let plane = 0; plane < n * c; plane++) {
    for (let oh = 0; oh < ho; oh++) {
      for (let ow = 0; ow < wo; ow++) {
        let best = -1;
        for (let i = 0; i < kh; i++) {
          for (let j = 0; j < kw; j++) {
            const at = plane * h * w + (oh * kh + i) * w + ow * kw + j;
            if (best < 0 || xs[at] > xs[best]) best = at;
          }
        }
        out[best] += gs[plane * ho * wo + oh * wo + ow];
      }
    }
  }
  return out;
}

function maxPoolCase(shape: number[], kernel: [number, number], values?: number[]): GradCheckCase {
  return {
    dtype: 'float32',
    inputs: { x: { shape, values } },
    build: (b, { x }) => b.op('MaxPool', [x], { kernel_shape: kernel, strides: kernel }),
  };
}

/** Small integers clamped at zero: mostly ties (as after a ReLU on real images). */
function tiedValues(count: number, seed: number): number[] {
  return randomValues(count, seed, -3, 3).map((v) => Math.max(0, Math.round(v)));
}

describe('MaxPool gradient', () => {
  it.each([
    ['kernel 2', [2, 3, 6, 6], [2, 2]],
    ['kernel 3 with leftover rows and columns', [1, 2, 7, 8], [3, 3]],
    ['kernel [2, 3]', [1, 2, 4, 6], [2, 3]],
  ] as [string, number[], [number, number]][])('matches finite differences: %s', async (_name, shape, kernel) => {
    await expectGradientsMatch({ ...maxPoolCase(shape, kernel), dtype: 'float64' });
  });

  it.each([
    ['kernel 2', [2, 4, 8, 8], [2, 2]],
    ['kernel 3, leftover rows', [2, 3, 7, 9], [3, 3]],
    ['kernel [1, 2]', [1, 2, 3, 6], [1, 2]],
  ] as [string, number[], [number, number]][])('sends the gradient to the first maximum on exact ties: %s', async (_name, shape, kernel) => {
    const values = tiedValues(shape.reduce((p, q) => p * q), 5);
    const r = await analyticGradients(maxPoolCase(shape, kernel, values));
    expect(Array.from(r.grads.x.data as Float32Array)).toEqual(firstMaxPoolGrad(r.feeds.x, r.cotangent, kernel));
  });

  it('handles ties behind a ReLU (all-zero windows) exactly', async () => {
    const shape = [2, 3, 6, 6];
    const values = randomValues(shape.reduce((p, q) => p * q), 9, -3, 2).map(Math.round);
    const r = await analyticGradients({
      dtype: 'float32',
      inputs: { x: { shape, values } },
      build: (b, { x }) => b.op('MaxPool', [b.op('Relu', [x])], { kernel_shape: [2, 2], strides: [2, 2] }),
    });
    const relu = { ...r.feeds.x, data: Float32Array.from(values, (v) => Math.max(0, v)) };
    const expected = firstMaxPoolGrad(relu, r.cotangent, [2, 2]).map((g, i) => (values[i] > 0 ? g : 0));
    expect(Array.from(r.grads.x.data as Float32Array)).toEqual(expected);
  });

  it.each([
    ['kernel 2', [2, 3, 6, 6], [2, 2]],
    ['kernel 3, leftover rows and columns', [2, 2, 7, 8], [3, 3]],
  ] as [string, number[], [number, number]][])('masks a ReLU read only by the pool at pooled resolution, exactly: %s', async (_name, shape, kernel) => {
    // Mostly ties, at zero and above it.
    const values = randomValues(shape.reduce((p, q) => p * q), 11, -3, 3).map(Math.round);
    const r = await analyticGradients({
      dtype: 'float32',
      inputs: { x: { shape, values } },
      build: (b, { x }) => b.op('MaxPool', [b.op('Relu', [x])], { kernel_shape: kernel, strides: kernel }),
    });
    const relu = { ...r.feeds.x, data: Float32Array.from(values, (v) => Math.max(0, v)) };
    const expected = firstMaxPoolGrad(relu, r.cotangent, kernel).map((g, i) => (values[i] > 0 ? g : 0));
    expect(Array.from(r.grads.x.data as Float32Array)).toEqual(expected);

    const b = new GraphBuilder();
    const x = b.input('x', 'float32', shape);
    const y = b.op('MaxPool', [b.op('Relu', [x])], { kernel_shape: kernel, strides: kernel });
    const forwardCount = b.nodes.length;
    gradients(b, b.op('ReduceSum', [y], { keepdims: 0 }), [x]);
    const fullSizeMasks = b.nodes.slice(forwardCount).filter((n) => n.opType === 'Where' && String(b.shape(n.outputs[0])) === String(shape));
    expect(fullSizeMasks).toEqual([]);
  });

  it('differentiates a ReLU that the pool shares with another consumer on its own', async () => {
    const shape = [2, 3, 4, 4];
    const values = randomValues(shape.reduce((p, q) => p * q), 12, -3, 3).map(Math.round);
    const r = await analyticGradients({
      dtype: 'float32',
      inputs: { x: { shape, values } },
      build: (b, { x }) => {
        const relu = b.op('Relu', [x]);
        const pooled = b.op('MaxPool', [relu], { kernel_shape: [2, 2], strides: [2, 2] });
        const summed = b.op('ReduceSum', [relu, b.ints([2, 3])], { keepdims: 0 });
        return b.op('Concat', [b.op('Flatten', [pooled], { axis: 1 }), summed], { axis: 1 });
      },
    });
    const cot = r.cotangent.data as Float32Array; // [2, 15]: 12 pooled entries, then 3 channel sums
    const pooledCot = { ...r.cotangent, dims: [2, 3, 2, 2], data: Float32Array.from({ length: 24 }, (_, i) => cot[Math.floor(i / 12) * 15 + (i % 12)]) };
    const relu = { ...r.feeds.x, data: Float32Array.from(values, (v) => Math.max(0, v)) };
    const viaPool = firstMaxPoolGrad(relu, pooledCot, [2, 2]);
    const expected = viaPool.map((g, i) => {
      const [n, c] = [Math.floor(i / 48), Math.floor(i / 16) % 3];
      return values[i] > 0 ? g + cot[n * 15 + 12 + c] : 0;
    });
    expect(Array.from(r.grads.x.data as Float32Array)).toEqual(expected.map((v) => Math.fround(v)));
  });

  it('refuses overlapping or padded pooling clearly', () => {
    for (const attrs of [{ kernel_shape: [3, 3], strides: [2, 2] }, { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1] }]) {
      const b = new GraphBuilder();
      const x = b.input('x', 'float32', [1, 1, 6, 6]);
      const y = b.op('MaxPool', [x], attrs);
      expect(() => gradients(b, b.op('ReduceSum', [y], { keepdims: 0 }), [x])).toThrow(
        /MaxPool gradient \(node n_MaxPool\) supports 2-D pooling with kernel_shape == strides and no padding only/,
      );
    }
  });
});

describe('chained ops', () => {
  it('conv → relu → pool → flatten → gemm → log-softmax, end to end with a symbolic batch', async () => {
    await expectGradientsMatch({
      dtype: 'float32',
      // With seed 1 a ReLU/pool kink lies within eps of one input, which finite differences cannot handle.
      seed: 2,
      inputs: {
        x: { shape: [2, 3, 8, 8], declared: ['N', 3, 8, 8] },
        w1: { shape: [4, 3, 3, 3] },
        b1: { shape: [4] },
        w2: { shape: [5, 64] },
        b2: { shape: [5] },
      },
      build: (b, v) => {
        const conv = b.op('Conv', [v.x, v.w1, v.b1], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
        const pooled = b.op('MaxPool', [b.op('Relu', [conv])], { kernel_shape: [2, 2], strides: [2, 2] });
        const logits = b.op('Gemm', [b.op('Flatten', [pooled], { axis: 1 }), v.w2, v.b2], { transB: 1 });
        return b.op('LogSoftmax', [logits], { axis: 1 });
      },
    });
  });

  it('a value used twice accumulates both gradients', async () => {
    await expectGradientsMatch({
      inputs: { x: { shape: [2, 3] }, w: { shape: [3, 3] } },
      build: (b, { x, w }) => b.op('Mul', [b.op('Tanh', [b.op('MatMul', [x, w])]), x]),
    });
  });
});
