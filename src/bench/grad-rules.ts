/**
 * Times the MaxPool and Conv gradient rules against the alternatives they were chosen over
 * (a short developer benchmark, not a test):
 *
 *   npm run build && node dist/bench/grad-rules.js [threads=1]
 *
 * Each graph ends in a ReduceSum so that only a scalar leaves ONNX Runtime.
 */
import { GRAD_RULES } from '../autodiff/rules';
import { GraphBuilder } from '../onnx/builder';
import type { Model, Shape } from '../onnx/ir';
import { numel, tensor } from '../onnx/ir';
import { openSession } from '../testing/ort';
import { randomValues } from '../testing/gradcheck';

type Emit = (b: GraphBuilder, x: string, w: string, dy: string) => string;

interface Scenario {
  title: string;
  x: number[];
  w?: number[];
  forward: (b: GraphBuilder, x: string, w: string) => string;
  candidates: Record<string, Emit>;
}

/** The table's rule for the last node added, for the given input. */
function rule(inputIndex: number): Emit {
  return (b, x, w, dy) => {
    const node = b.nodes.find((n) => n.opType === 'Conv' || n.opType === 'MaxPool')!;
    const needs = node.inputs.map((_, i) => i === inputIndex);
    const grads = GRAD_RULES[node.opType]({ b, node, dy: [dy], needs, soleProducer: () => undefined, wants: () => true });
    if (!Array.isArray(grads)) throw new Error(`${node.opType} rule differentiated through another node`);
    return grads[inputIndex]!;
  };
}

const pool2 = { kernel_shape: [2, 2], strides: [2, 2] };

const maxPoolByIndices: Emit = (b, x, _w, dy) => {
  const [, indices] = b.opN('MaxPool', [x], pool2, { outputs: 2 });
  const flat = b.op('Reshape', [x, b.ints([-1])]);
  const zeros = b.op('ConstantOfShape', [b.op('Shape', [flat])], { value: { type: 'tensor', value: tensor('float32', [1], [0]) } }, { types: [{ dtype: 'float32', shape: b.shape(flat) }] });
  const scattered = b.op('ScatterElements', [zeros, b.op('Reshape', [indices, b.ints([-1])]), b.op('Reshape', [dy, b.ints([-1])])], { axis: 0, reduction: 'add' });
  return b.op('Reshape', [scattered, b.op('Shape', [x])], {}, { types: [{ dtype: 'float32', shape: b.shape(x) }] });
};

function convInputByConvTranspose(stride: number, pad: number): Emit {
  return (b, x, w, dy) => {
    const [h, k] = [b.shape(x)[2] as number, b.shape(w)[2] as number];
    const extra = h + 2 * pad - k - stride * ((b.shape(dy)[2] as number) - 1);
    const attrs = { kernel_shape: [k, k], strides: [stride, stride], pads: [pad, pad, pad, pad], output_padding: [extra, extra] };
    return b.op('ConvTranspose', [dy, w], attrs, { types: [{ dtype: 'float32', shape: b.shape(x) }] });
  };
}

function convInputByZeroInsertedConv(stride: number, pad: number): Emit {
  return (b, x, w, dy) => {
    const [n, m, ho, wo] = b.shape(dy) as number[];
    const [h, k] = [b.shape(x)[2] as number, b.shape(w)[2] as number];
    const split = b.op('Reshape', [dy, b.ints([n, m, ho, 1, wo, 1])]);
    const spread = b.op('Pad', [split, b.ints([0, 0, 0, 0, 0, 0, 0, 0, 0, stride - 1, 0, stride - 1])]);
    const span = h + 2 * pad - k + 1;
    const z = b.op('Slice', [b.op('Reshape', [spread, b.ints([n, m, ho * stride, wo * stride])]), b.ints([0, 0]), b.ints([span, span]), b.ints([2, 3])]);
    const flipped = b.op('Slice', [b.op('Transpose', [w], { perm: [1, 0, 2, 3] }), b.ints([-1, -1]), b.ints([-k - 1, -k - 1]), b.ints([2, 3]), b.ints([-1, -1])]);
    const q = k - 1 - pad;
    return b.op('Conv', [z, flipped], { kernel_shape: [k, k], pads: [q, q, q, q] });
  };
}

function convWeightBySwappedConv(stride: number, pad: number): Emit {
  return (b, x, w, dy) => {
    const [m, c, k] = b.shape(w) as number[];
    const [ho, wo] = [b.shape(dy)[2] as number, b.shape(dy)[3] as number];
    const xt = b.op('Transpose', [x], { perm: [1, 0, 2, 3] });
    const dyt = b.op('Transpose', [dy], { perm: [1, 0, 2, 3] });
    const full = b.op('Conv', [xt, dyt], { kernel_shape: [ho, wo], pads: [pad, pad, pad, pad], dilations: [stride, stride] });
    const cropped = b.op('Slice', [full, b.ints([0, 0]), b.ints([k, k]), b.ints([2, 3])]);
    return b.op('Transpose', [cropped], { perm: [1, 0, 2, 3] }, { types: [{ dtype: 'float32', shape: [m, c, k, k] }] });
  };
}

function convScenarios(x: number[], w: number[], stride: number, pad: number): Scenario[] {
  const forward = (b: GraphBuilder, xv: string, wv: string) => b.op('Conv', [xv, wv], { kernel_shape: w.slice(2), strides: [stride, stride], pads: [pad, pad, pad, pad] });
  const tag = `x [${x}] w [${w}] stride ${stride} pad ${pad}`;
  return [
    {
      title: `Conv input gradient, ${tag}`,
      x, w, forward,
      candidates: { 'rule (flipped Conv at stride 1, ConvTranspose otherwise)': rule(0), 'ConvTranspose': convInputByConvTranspose(stride, pad), 'Conv over zero-inserted dy': convInputByZeroInsertedConv(stride, pad) },
    },
    {
      title: `Conv weight gradient, ${tag}`,
      x, w, forward,
      candidates: { 'rule (im2col + one Gemm)': rule(1), 'batch/channel-swapped Conv': convWeightBySwappedConv(stride, pad) },
    },
  ];
}

const SCENARIOS: Scenario[] = [
  ...[[64, 64, 28, 28], [64, 128, 14, 14]].map((x) => ({
    title: `MaxPool 2×2 gradient, x [${x}] (integer values ≥ 0: many ties)`,
    x,
    forward: (b: GraphBuilder, xv: string) => b.op('MaxPool', [xv], pool2),
    candidates: { 'rule (strided sub-grids, first match)': rule(0), 'MaxPool Indices + ScatterElements': maxPoolByIndices },
  })),
  ...convScenarios([64, 64, 28, 28], [64, 64, 3, 3], 1, 1),
  ...convScenarios([64, 32, 28, 28], [64, 32, 3, 3], 2, 1),
];

function buildModel(s: Scenario, emit: Emit): { model: Model; dyShape: Shape } {
  const b = new GraphBuilder('bench');
  const x = b.input('x', 'float32', s.x);
  const w = s.w ? b.input('w', 'float32', s.w) : '';
  const y = s.forward(b, x, w);
  const dy = b.input('dy', 'float32', b.shape(y));
  b.output(b.op('ReduceSum', [emit(b, x, w, dy)], { keepdims: 0 }), 'out');
  const model = b.model();
  // ONNX Runtime would still run the forward op when the gradient does not read its output.
  const used = model.graph.nodes.some((n) => n.inputs.includes(y));
  if (!used) model.graph.nodes = model.graph.nodes.filter((n) => !n.outputs.includes(y));
  return { model, dyShape: b.shape(dy) };
}

async function timeScenario(s: Scenario, threads: number): Promise<void> {
  console.log(s.title);
  const ints = randomValues(numel(s.x), 1, -4, 4).map((v) => Math.max(0, Math.round(v)));
  for (const [name, emit] of Object.entries(s.candidates)) {
    const { model, dyShape } = buildModel(s, emit);
    const dims = dyShape as number[];
    const feeds = {
      x: tensor('float32', s.x, ints),
      ...(s.w ? { w: tensor('float32', s.w, randomValues(numel(s.w), 2)) } : {}),
      dy: tensor('float32', dims, randomValues(numel(dims), 3)),
    };
    const session = await openSession(model, threads);
    await session.run(feeds);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t0);
    }
    await session.release();
    console.log(`  ${name.padEnd(58)} best ${Math.min(...times).toFixed(1)} ms`);
  }
}

async function main(): Promise<void> {
  const threads = Number(process.argv[2] ?? 1);
  console.log(`ONNX Runtime CPU, ${threads} intra-op thread(s); best of 5 runs; the forward op is included only where the gradient reads its output`);
  for (const s of SCENARIOS) await timeScenario(s, threads);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
