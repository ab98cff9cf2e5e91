import { firstBitDifference } from '../testing/compare';
import type { TaskVector } from '../model/tasks';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeCheckpoint, encodeCheckpoint, freshCheckpoint, saveCheckpoint, type Checkpoint } from '../artifacts/checkpoint';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../artifacts/safetensors';
import { DEFAULT_OPTIMIZER, type OptimizerName } from '../model/optimizers';
import { initBuffers, initParams, layout } from '../model/params';
import { TINY_RESIDUAL } from '../testing/specs';
import { builtinSpec } from '../model/spec';
import { maxAbsDiff, randomBatch } from '../testing/batches';
import * as ort from 'onnxruntime-node';
import { buildTrainStepGraph } from '../artifacts/graphs';
import { encodeModel } from '../onnx/serialize';
import { TrainStepRunner, batchFeeds, type StepHyper, type TrainBatch } from './train-step';

const spec = builtinSpec('tiny');
const start = (seed = 1): Checkpoint => ({ spec, params: initParams(spec, seed), buffers: new Map() });
const hyper = (h: Partial<StepHyper> = {}): StepHyper => ({ lr: 1e-3, weightDecay: 0, clipNorm: 0, taskWeights: [1, 1, 1], ...h });
const runner = (name: OptimizerName, from: Checkpoint = start(), frozen: ('trunk' | 'head')[] = []) =>
  TrainStepRunner.create(from, { optimizer: DEFAULT_OPTIMIZER[name], threads: 1, frozen });
const norm = (arrays: Iterable<Float32Array>) => {
  let sum = 0;
  for (const a of arrays) for (const v of a) sum += v * v;
  return Math.sqrt(sum);
};

describe('TrainStepRunner', () => {
  const batch = randomBatch(spec, 16, 2);

  it.each([
    ['adam', 3e-3],
    ['adamw', 3e-3],
    ['sgd', 0.05],
  ] as [OptimizerName, number][])('%s: the losses fall over 25 steps on a fixed batch', async (name, lr) => {
    const r = await runner(name);
    const losses: number[] = [];
    const tasks: TaskVector[] = [];
    const steps = 25;
    for (let i = 0; i < steps; i++) {
      const out = await r.run(batch, hyper({ lr, weightDecay: name === 'adamw' ? 0.01 : 0 }));
      losses.push(out.loss);
      tasks.push(out.taskLosses);
      expect(Number.isFinite(out.loss)).toBe(true);
    }
    await r.release();
    expect(r.stepsTaken).toBe(steps);
    expect(losses[steps - 1]).toBeLessThan(0.8 * losses[0]);
    // Mostly monotone on a fixed batch, and every task improves.
    expect(losses.filter((l, i) => i > 0 && l > losses[i - 1]).length).toBeLessThanOrEqual(3);
    for (let t = 0; t < 3; t++) expect(tasks[steps - 1][t]).toBeLessThan(tasks[0][t]);
  });

  it('clipping by global norm bounds the update, and grad_norm is the norm before clipping', async () => {
    const lr = 0.1;
    const free = await runner('sgd');
    const freeOut = await free.run(batch, hyper({ lr }));
    const gradients = free.optimizerState().state; // SGD after one step from zero: buffer = g
    expect(freeOut.gradNorm).toBeGreaterThan(0.01);
    expect(Math.abs(norm(gradients.values()) - freeOut.gradNorm)).toBeLessThan(1e-5 * freeOut.gradNorm);

    const clip = 1e-3;
    const clipped = await runner('sgd');
    const clippedOut = await clipped.run(batch, hyper({ lr, clipNorm: clip }));
    expect(clippedOut.gradNorm).toBeCloseTo(freeOut.gradNorm, 5);
    expect(clippedOut.loss).toBe(freeOut.loss);
    const initial = initParams(spec, 1);
    const delta = (r: TrainStepRunner) => [...r.params()].map(([k, v]) => v.map((x, i) => x - initial.get(k)![i]));
    const freeStep = norm(delta(free));
    const clippedStep = norm(delta(clipped));
    expect(freeStep).toBeCloseTo(lr * freeOut.gradNorm, 4);
    // ‖Δp‖ = lr · clip (up to float rounding of p + Δp), far below the unclipped step.
    expect(clippedStep).toBeLessThan(lr * clip * 1.01);
    expect(clippedStep).toBeGreaterThan(lr * clip * 0.9);
    expect(clippedStep).toBeLessThan(freeStep / 10);
    // The clipped gradient is the free one scaled by clip / (norm + 1e-6).
    const factor = clip / (freeOut.gradNorm + 1e-6);
    const clippedGrads = clipped.optimizerState().state;
    for (const [k, g] of gradients) expect(maxAbsDiff(clippedGrads.get(k)!, g.map((v) => v * factor))).toBeLessThan(1e-9);
    // A clip norm above the gradient norm changes nothing.
    const loose = await runner('sgd');
    await loose.run(batch, hyper({ lr, clipNorm: freeOut.gradNorm * 10 }));
    expect(firstBitDifference(loose.params(), free.params())).toBeUndefined();
    await Promise.all([free.release(), clipped.release(), loose.release()]);
  });

  it('task weights: λ = (0, 0, 0) leaves every weight unchanged; a zero λ_t leaves that head unchanged', async () => {
    const sgd = await runner('sgd');
    const out = await sgd.run(batch, hyper({ lr: 0.1, taskWeights: [0, 0, 0] }));
    expect(out.loss).toBe(0);
    expect(out.gradNorm).toBe(0);
    expect(out.taskLosses.every((l) => l > 0)).toBe(true);
    expect(firstBitDifference(sgd.params(), initParams(spec, 1))).toBeUndefined();
    await sgd.release();

    const adam = await runner('adam');
    await adam.run(batch, hyper({ lr: 0.01, taskWeights: [1, 0, 0] }));
    const after = adam.params();
    const initial = initParams(spec, 1);
    for (const name of ['heads.det.weight', 'heads.det.bias', 'heads.box.weight', 'heads.box.bias']) expect(maxAbsDiff(after.get(name)!, initial.get(name)!)).toBe(0);
    for (const name of ['heads.cls.weight', 'trunk.0.weight']) expect(maxAbsDiff(after.get(name)!, initial.get(name)!)).toBeGreaterThan(0);
    await adam.release();
  });

  it('frozen trunk: only the heads change', async () => {
    const r = await runner('adam', start(), ['trunk']);
    await r.run(batch, hyper({ lr: 0.01 }));
    const initial = initParams(spec, 1);
    for (const p of layout(spec).params) {
      const d = maxAbsDiff(r.params().get(p.name)!, initial.get(p.name)!);
      if (p.group === 'trunk') expect(d).toBe(0);
      else expect(d).toBeGreaterThan(0);
    }
    expect([...r.optimizerState().state.keys()].every((k) => k.startsWith('heads.'))).toBe(true);
    await r.release();
  });

  const specs = [['tiny', spec], ['tiny-residual (BatchNorm)', TINY_RESIDUAL]] as const;

  it.each(specs)('%s: a checkpoint taken mid-way continues bit for bit like an uninterrupted run', async (_name, s) => {
    const batches = [0, 1, 2, 3].map((i) => randomBatch(s, 8, 100 + i));
    const h = hyper({ lr: 0.01, weightDecay: 0.001 });
    const make = (from: Checkpoint) => TrainStepRunner.create(from, { optimizer: DEFAULT_OPTIMIZER.adamw, threads: 1 });
    const straight = await make(freshCheckpoint(s, 1));
    for (const b of batches) await straight.run(b, h);
    const first = await make(freshCheckpoint(s, 1));
    for (const b of batches.slice(0, 2)) await first.run(b, h);
    const saved = decodeCheckpoint(encodeCheckpoint(first.checkpoint({ epoch: 0 })));
    expect(saved.optimizer!.step).toBe(2);
    const second = await make(saved);
    expect(second.stepsTaken).toBe(2);
    for (const b of batches.slice(2)) await second.run(b, h);
    expect(firstBitDifference(second.params(), straight.params())).toBeUndefined();
    expect(firstBitDifference(second.buffers(), straight.buffers())).toBeUndefined();
    expect(firstBitDifference(second.optimizerState().state, straight.optimizerState().state)).toBeUndefined();
    await Promise.all([straight.release(), first.release(), second.release()]);
  });

  it.each(specs)('%s: steps grouped into runs give the same losses, weights and buffers bit for bit as one run per step, and as train_step.onnx', async (_name, s) => {
    const batches = [1, 2, 3, 4, 5].map((seed) => randomBatch(s, 8, 10 + seed));
    const hypers = batches.map((_, i) => hyper({ lr: 3e-3 / (i + 1), weightDecay: 1e-3, clipNorm: 5 }));
    const make = () => TrainStepRunner.create(freshCheckpoint(s, 1), { optimizer: DEFAULT_OPTIMIZER.adam, threads: 1 });
    const single = await make();
    const one: number[] = [];
    for (let i = 0; i < batches.length; i++) one.push((await single.run(batches[i], hypers[i])).loss);
    const grouped = await make();
    const many = [...(await grouped.runSteps(batches.slice(0, 3), hypers.slice(0, 3))), ...(await grouped.runSteps(batches.slice(3), hypers.slice(3)))];
    expect(many.map((r) => r.loss)).toEqual(one);
    expect(grouped.stepsTaken).toBe(5);
    expect(firstBitDifference(single.params(), grouped.params())).toBeUndefined();
    expect(firstBitDifference(single.buffers(), grouped.buffers())).toBeUndefined();
    expect(firstBitDifference(single.optimizerState().state, grouped.optimizerState().state)).toBeUndefined();

    // The exported single-step graph, fed step by step from the manifest's roles, lands on the same weights and buffers.
    const graph = buildTrainStepGraph(s, { optimizer: DEFAULT_OPTIMIZER.adam });
    const session = await ort.InferenceSession.create(encodeModel(graph.model), { intraOpNumThreads: 1 });
    const fresh = freshCheckpoint(s, 1);
    const state: Record<string, ort.Tensor> = {};
    for (const input of graph.inputs) {
      const shape = input.shape as number[];
      if (input.role === 'parameter') state[input.name] = new ort.Tensor('float32', fresh.params.get(input.name)!, shape);
      else if (input.role === 'buffer') state[input.name] = new ort.Tensor(input.dtype as 'float32' | 'int64', fresh.buffers.get(input.name)!, shape);
      else if (input.role === 'optimizer_state') state[input.name] = new ort.Tensor('float32', new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
    }
    const carried = graph.outputs.filter((o) => o.name.endsWith('.next') && o.role !== 'step').map((o) => o.name.slice(0, -'.next'.length)).sort();
    expect(carried).toEqual(Object.keys(state).sort());
    expect(graph.inputs.filter((i) => i.role === 'buffer').map((i) => i.name)).toEqual(layout(s).buffers.map((d) => d.name));
    for (let i = 0; i < batches.length; i++) {
      const h = hypers[i];
      const scalar = (v: number) => new ort.Tensor('float32', Float32Array.of(v), []);
      const out = await session.run({
        ...state,
        ...batchFeeds(s, batches[i]),
        step: scalar(i), lr: scalar(h.lr), weight_decay: scalar(h.weightDecay), clip_norm: scalar(h.clipNorm),
        task_weights: new ort.Tensor('float32', Float32Array.from(h.taskWeights), [3]),
      });
      expect((out.loss.data as Float32Array)[0]).toBe(one[i]);
      for (const k of Object.keys(state)) state[k] = out[`${k}.next`];
    }
    const exported = new Map(layout(s).params.map((p) => [p.name, state[p.name].data as Float32Array]));
    expect(firstBitDifference(exported, single.params())).toBeUndefined();
    const exportedBuffers = new Map(layout(s).buffers.map((d) => [d.name, state[d.name].data as Float32Array | BigInt64Array]));
    expect(firstBitDifference(exportedBuffers, single.buffers())).toBeUndefined();
    for (const d of layout(s).buffers) if (d.role === 'num_batches_tracked') expect(single.buffers().get(d.name)).toEqual(BigInt64Array.of(5n));
    await Promise.all([single.release(), grouped.release(), session.release()]);
  });

  it('BatchNorm with a frozen trunk: running statistics are read, not updated; without: they move towards the batch statistics', async () => {
    const s = TINY_RESIDUAL;
    const frozen = await TrainStepRunner.create(freshCheckpoint(s, 1), { optimizer: DEFAULT_OPTIMIZER.adam, threads: 1, frozen: ['trunk'] });
    await frozen.run(randomBatch(s, 8, 3), hyper({ lr: 0.01 }));
    expect(firstBitDifference(frozen.buffers(), initBuffers(s))).toBeUndefined();
    await frozen.release();
    const training = await TrainStepRunner.create(freshCheckpoint(s, 1), { optimizer: DEFAULT_OPTIMIZER.adam, threads: 1 });
    await training.run(randomBatch(s, 8, 3), hyper({ lr: 0.01 }));
    const after = training.buffers();
    for (const d of layout(s).buffers) {
      const v = after.get(d.name)!;
      if (d.role === 'num_batches_tracked') expect(v).toEqual(BigInt64Array.of(1n));
      // From mean 0 / variance 1: 0.9·initial + 0.1·batch statistic, never the initial value exactly.
      else for (const x of v as Float32Array) expect(x).not.toBe(d.role === 'running_var' ? 1 : 0);
    }
    await training.release();
  });

  it('refuses a run of batches of different sizes, or of steps whose hyperparameters differ beyond the learning rate', async () => {
    const r = await runner('adam');
    await expect(r.runSteps([batch, randomBatch(spec, 8, 3)], [hyper(), hyper()])).rejects.toThrow(/batches of sizes 16, 8; one run takes batches of one size/);
    await expect(r.runSteps([batch, batch], [hyper(), hyper({ clipNorm: 1 })])).rejects.toThrow(/weight decay, clip norm, task weights and weighting inputs must be the same/);
    await expect(r.runSteps([batch], [])).rejects.toThrow(/1 batches and 0 hyperparameter sets/);
    expect(r.stepsTaken).toBe(0);
    await r.release();
  });

  it('another optimizer than the checkpoint’s starts from fresh state with the same weights', async () => {
    const a = await runner('adam');
    await a.run(batch, hyper());
    const ckpt = a.checkpoint();
    const sgd = await runner('sgd', ckpt);
    expect(sgd.stepsTaken).toBe(0);
    expect(firstBitDifference(sgd.params(), ckpt.params)).toBeUndefined();
    await Promise.all([a.release(), sgd.release()]);
  });
});

const PYTHON = /* Debian python3-torch */ '/usr/bin/python3';
const torchAvailable = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
const describeTorch = torchAvailable ? describe : describe.skip;

/** Every other image made of flat 8×8 quadrants (like flat regions of real images), so max-pool windows hold exact ties (~900 of 4096 in the first pool). */
function blockyBatch(size: number, seed: number): TrainBatch {
  const b = randomBatch(spec, size, seed);
  const { channels, height, width } = spec.input;
  for (let n = 0; n < size; n++) {
    if (n % 2) continue;
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const at = ((n * channels + c) * height + y) * width;
          b.images[at + x] = Math.round(b.images[((n * channels + c) * height + (y & ~7)) * width + (x & ~7)] * 2) / 2;
        }
      }
    }
  }
  return b;
}

interface TorchComparison {
  diffs: Record<string, number>;
  maxParam: number;
  maxParamName: string;
  maxStepRel: number;
  maxGrad: number;
  maxGradRel: number;
  maxBuffer: number;
}

/**
 * One Adam step of ours and of bench/torch_reference.py (the checkpoint loaded with
 * load_state_dict(strict=True), the module in training mode) from the same weights on the same batch.
 */
async function compareWithTorch(dir: string, ckpt: Checkpoint, batch: TrainBatch, labelSmoothing: number): Promise<TorchComparison> {
  const { spec: s } = ckpt;
  const lr = 1e-3;
  const taskWeights: [number, number, number] = [1, 0.5, 2];
  const ckptFile = path.join(dir, 'checkpoint.safetensors');
  const batchFile = path.join(dir, 'batch.safetensors');
  const outFile = path.join(dir, 'torch.safetensors');
  await saveCheckpoint(ckptFile, ckpt);
  const { channels, height, width } = s.input;
  const tensors = new Map<string, SafeTensor>([
    ['image', { dtype: 'F32', shape: [batch.size, channels, height, width], data: batch.images }],
    ['label', { dtype: 'I64', shape: [batch.size], data: batch.labels }],
    ['objectness', { dtype: 'F32', shape: [batch.size], data: batch.objectness }],
    ['box', { dtype: 'F32', shape: [batch.size, 4], data: batch.boxes }],
    ['mask', { dtype: 'F32', shape: [batch.size], data: batch.mask }],
    ['task_weights', { dtype: 'F32', shape: [3], data: Float32Array.from(taskWeights) }],
  ]);
  writeFileSync(batchFile, encodeSafetensors(tensors));

  const script = path.resolve(__dirname, '..', '..', 'bench', 'torch_reference.py');
  const torchRun = spawnSync(PYTHON, [script, 'check', ckptFile, batchFile, outFile, String(lr), String(labelSmoothing)], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  // On failure the received object shows Python's stderr.
  expect({ status: torchRun.status, error: torchRun.error?.message, stderr: torchRun.stderr }).toMatchObject({ status: 0, error: undefined });

  const r = await TrainStepRunner.create(ckpt, { optimizer: DEFAULT_OPTIMIZER.adam, threads: 1, labelSmoothing });
  const ours = await r.run(batch, { lr, weightDecay: 0, clipNorm: 0, taskWeights });
  const updated = r.params();
  const buffers = r.buffers();
  const state = r.optimizerState().state;
  await r.release();

  const theirs = decodeSafetensors(readFileSync(outFile), outFile).tensors;
  const value = (name: string) => theirs.get(name)!.data as Float32Array;
  const diffs: Record<string, number> = {};
  const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
  diffs.loss = relative(ours.loss, value('loss')[0]);
  for (let t = 0; t < 3; t++) diffs[`task_losses[${t}]`] = relative(ours.taskLosses[t], value('task_losses')[t]);
  for (const [name, v] of Object.entries(diffs)) expect([name, v < 1e-5]).toEqual([name, true]);

  const c: TorchComparison = { diffs, maxParam: 0, maxParamName: '', maxStepRel: 0, maxGrad: 0, maxGradRel: 0, maxBuffer: 0 };
  // The module after the step holds exactly our tensors, parameters and buffers, under the same names.
  expect([...theirs.keys()].filter((k) => k !== 'loss' && k !== 'task_losses' && !k.endsWith('.exp_avg') && !k.endsWith('.exp_avg_sq')).sort())
    .toEqual([...layout(s).params, ...layout(s).buffers].map((p) => p.name).sort());
  for (const p of layout(s).params) {
    const a = updated.get(p.name)!;
    const b = value(p.name);
    expect(theirs.get(p.name)!.shape).toEqual(p.shape);
    const before = ckpt.params.get(p.name)!;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      expect(d).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(b[i]));
      if (d > c.maxParam) [c.maxParam, c.maxParamName] = [d, p.name];
      // Relative to the size of the update itself (≈ lr for Adam's first step).
      c.maxStepRel = Math.max(c.maxStepRel, d / Math.max(Math.abs(b[i] - before[i]), 1e-12));
    }
  }
  // Adam's first update is ≈ lr·sign(g), blind to the size of g; its state is not: exp_avg = 0.1·g.
  for (const p of layout(s).params) {
    const a = state.get(`${p.name}.exp_avg`)!.map((v) => v / 0.1);
    const b = value(`${p.name}.exp_avg`).map((v) => v / 0.1);
    const scale = Math.max(...b.map(Math.abs));
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(a[i] - b[i]);
      expect(d).toBeLessThanOrEqual(1e-6 + 1e-5 * scale);
      c.maxGrad = Math.max(c.maxGrad, d);
      c.maxGradRel = Math.max(c.maxGradRel, d / scale);
    }
    expect(maxAbsDiff(state.get(`${p.name}.exp_avg_sq`)!, value(`${p.name}.exp_avg_sq`))).toBeLessThanOrEqual(1e-9);
  }
  for (const d of layout(s).buffers) {
    const t = theirs.get(d.name)!;
    expect([d.name, t.dtype, t.shape]).toEqual([d.name, d.dtype === 'int64' ? 'I64' : 'F32', d.shape]);
    const a = buffers.get(d.name)!;
    if (a instanceof BigInt64Array) expect([d.name, a[0]]).toEqual([d.name, (t.data as BigInt64Array)[0]]);
    else {
      const b = t.data as Float32Array;
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(b[i]));
      c.maxBuffer = Math.max(c.maxBuffer, maxAbsDiff(a, b));
    }
  }
  return c;
}

function report(what: string, c: TorchComparison): void {
  process.stdout.write(
    `PyTorch comparison (${what}): loss rel diff ${c.diffs.loss.toExponential(2)}, task losses rel diff ` +
      `${Math.max(c.diffs['task_losses[0]'], c.diffs['task_losses[1]'], c.diffs['task_losses[2]']).toExponential(2)}, ` +
      `max |Δparam| ${c.maxParam.toExponential(2)} (${c.maxParamName}), max diff relative to the update ${c.maxStepRel.toExponential(2)}, ` +
      `max |Δgrad| ${c.maxGrad.toExponential(2)} (relative to the tensor's largest gradient ${c.maxGradRel.toExponential(2)})` +
      (c.maxBuffer ? `, max |Δ running statistic| ${c.maxBuffer.toExponential(2)}` : '') + '\n',
  );
}

describeTorch(`one Adam step matches PyTorch (bench/torch_reference.py check)${torchAvailable ? '' : ' [skipped: /usr/bin/python3 cannot import torch]'}`, () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'trident-torch-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loss, task losses and every updated parameter agree', async () => {
    report('tiny', await compareWithTorch(dir, { spec, params: initParams(spec, 42), buffers: new Map() }, blockyBatch(16, 7), 0));
  });

  it('BatchNorm, residual blocks, global average pooling and label smoothing: the checkpoint loads into the torch module by name, and parameters and running statistics agree after the step', async () => {
    const s = TINY_RESIDUAL;
    // Running statistics away from their initial values, so that the blend with the batch's shows.
    const buffers = initBuffers(s);
    for (const [name, v] of buffers) {
      if (v instanceof BigInt64Array) v[0] = 5n;
      else v.forEach((_, i) => (v[i] = name.endsWith('running_var') ? 0.5 + 0.1 * i : 0.05 * i - 0.1));
    }
    report('tiny-residual', await compareWithTorch(dir, { spec: s, params: initParams(s, 42), buffers }, randomBatch(s, 16, 7), 0.1));
  });
});
