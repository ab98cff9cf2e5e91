/**
 * Dumps inputs, cotangents and analytic gradients of a few small graphs as JSON on stdout, for
 * bench/torch_crosscheck.py to recompute with PyTorch autograd (optional; needs python3-torch).
 *
 *   node dist/testing/torch-crosscheck.js > cases.json
 */
import type { GraphBuilder } from '../onnx/builder';
import { tensor } from '../onnx/ir';
import { type GradCheckCase, analyticGradients, randomValues } from './gradcheck';

const ints = (count: number, seed: number, lo: number, hi: number) => randomValues(count, seed, lo, hi).map(Math.round);

function conv(b: GraphBuilder, x: string, w: string, attrs: Record<string, number[]>, bias?: string): string {
  return b.op('Conv', bias ? [x, w, bias] : [x, w], { kernel_shape: [3, 3], ...attrs });
}

export const TORCH_CASES: Record<string, GradCheckCase> = {
  /** Integer inputs and weights make pooled windows tie often (zeros after ReLU, repeated values). */
  network_with_ties: {
    dtype: 'float32',
    inputs: {
      x: { shape: [2, 3, 8, 8], values: ints(384, 1, -2, 2) },
      w1: { shape: [4, 3, 3, 3], values: ints(108, 2, -1, 1) },
      b1: { shape: [4], values: [0, 1, -1, 0] },
      w2: { shape: [5, 64] },
      b2: { shape: [5] },
    },
    build: (b, v) => {
      const pooled = b.op('MaxPool', [b.op('Relu', [conv(b, v.x, v.w1, { pads: [1, 1, 1, 1] }, v.b1)])], { kernel_shape: [2, 2], strides: [2, 2] });
      const logits = b.op('Gemm', [b.op('Flatten', [pooled]), v.w2, v.b2], { transB: 1 });
      return b.op('LogSoftmax', [logits], { axis: 1 });
    },
  },
  conv_stride2_pad1: {
    dtype: 'float32',
    inputs: { x: { shape: [2, 3, 8, 8] }, w: { shape: [4, 3, 3, 3] }, bias: { shape: [4] } },
    build: (b, v) => conv(b, v.x, v.w, { strides: [2, 2], pads: [1, 1, 1, 1] }, v.bias),
  },
  conv_strides21_asymmetric_pads: {
    dtype: 'float32',
    inputs: { x: { shape: [2, 3, 7, 6] }, w: { shape: [4, 3, 3, 3] } },
    build: (b, v) => conv(b, v.x, v.w, { strides: [2, 1], pads: [0, 1, 1, 0] }),
  },
  maxpool3_leftover_ties: {
    dtype: 'float32',
    inputs: { x: { shape: [2, 3, 7, 8], values: ints(336, 3, -2, 3).map((v) => Math.max(0, v)) } },
    build: (b, v) => b.op('MaxPool', [v.x], { kernel_shape: [3, 3], strides: [3, 3] }),
  },
  elementwise_mix: {
    dtype: 'float32',
    inputs: { a: { shape: [3, 4] }, p: { shape: [3, 4], values: randomValues(12, 4, 0.5, 2) } },
    build: (b, v) => {
      const softmax = b.op('Softmax', [b.op('Mul', [v.a, v.p])], { axis: 0 });
      const smooth = b.op('Div', [b.op('Softplus', [v.a]), b.op('Add', [b.op('Sqrt', [v.p]), b.op('Exp', [b.op('Tanh', [v.a])])])]);
      const powered = b.op('Pow', [v.p, b.op('Sigmoid', [v.a])]);
      const norm = b.op('ReduceL2', [b.op('Sub', [powered, b.op('Clip', [v.a, b.const(tensor('float32', [], [-0.5])), b.const(tensor('float32', [], [0.5]))])])], { axes: [1] });
      return b.op('Add', [b.op('Mul', [softmax, smooth]), norm]);
    },
  },
};

async function main(): Promise<void> {
  const out: Record<string, unknown> = {};
  for (const [name, c] of Object.entries(TORCH_CASES)) {
    const r = await analyticGradients(c);
    const plain = (t: { dims: number[]; data: ArrayLike<number> | ArrayLike<bigint> }) => ({ dims: t.dims, data: Array.from(t.data as ArrayLike<number>) });
    out[name] = {
      inputs: Object.fromEntries(Object.entries(r.feeds).map(([k, t]) => [k, plain(t)])),
      output: plain(r.output),
      cotangent: plain(r.cotangent),
      grads: Object.fromEntries(Object.entries(r.grads).map(([k, t]) => [k, plain(t)])),
    };
  }
  process.stdout.write(JSON.stringify(out));
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
