import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildForward } from '../model/forward';
import { buildLosses } from '../model/losses';
import { TASKS, type Task } from '../model/tasks';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { initBuffers, initParams, layout, type BufferValue } from '../model/params';
import { builtinSpec, type ModelSpec } from '../model/spec';
import { chooseWeighting, STATIC_WEIGHTING, type WeightingChoice } from '../model/weighting/index';
import { GraphBuilder } from '../onnx/builder';
import { tensor, type TensorValue } from '../onnx/ir';
import { randomBatch } from '../testing/batches';
import { TINY_RESIDUAL } from '../testing/specs';
import type { TrainBatch } from '../runtime/train-step';
import { finiteDifferencesOf } from '../testing/gradcheck';
import { openSession, type OrtFeeds } from '../testing/ort';
import { saveCheckpoint } from './checkpoint';
import { buildEvalGraph, buildTrainStepGraph, IO, next, stateName } from './graphs';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from './safetensors';

/** A model to step: its spec, weights, running statistics and one batch. */
interface Fixture {
  spec: ModelSpec;
  params: Map<string, Float32Array>;
  buffers: Map<string, BufferValue>;
  batch: TrainBatch;
}
const fixture = (spec: ModelSpec): Fixture => ({ spec, params: initParams(spec, 5), buffers: initBuffers(spec), batch: randomBatch(spec, 8, 3) });

const tiny = fixture(builtinSpec('tiny'));
/** Batch norm in training mode, residual blocks and global average pooling in the trunk. */
const residual = fixture(TINY_RESIDUAL);
const { spec, params, batch } = tiny;
const lambda = [1, 0.5, 2];
const sgd = DEFAULT_OPTIMIZER.sgd;
const f32 = (t: TensorValue) => Array.from(t.data as Float32Array);
const sharedOf = (m: Fixture) => layout(m.spec).params.filter((p) => p.group === 'trunk').map((p) => p.name);
const headsOf = (m: Fixture, task: Task) => layout(m.spec).params.filter((p) => p.name.startsWith(`heads.${task}.`)).map((p) => p.name);
const shared = sharedOf(tiny);

function batchTensors(m: Fixture = tiny): OrtFeeds {
  const { channels, height, width } = m.spec.input;
  const n = m.batch.size;
  return {
    [IO.image]: tensor('float32', [n, channels, height, width], m.batch.images),
    [IO.label]: tensor('int64', [n], m.batch.labels),
    [IO.objectness]: tensor('float32', [n], m.batch.objectness),
    [IO.box]: tensor('float32', [n, 4], m.batch.boxes),
    [IO.mask]: tensor('float32', [n], m.batch.mask),
  };
}

const paramTensors = (values = params, m: Fixture = tiny): OrtFeeds =>
  Object.fromEntries(layout(m.spec).params.map((p) => [p.name, tensor('float32', p.shape, Float32Array.from(values.get(p.name)!))]));

const bufferTensors = (m: Fixture): OrtFeeds =>
  Object.fromEntries(layout(m.spec).buffers.map((d) => [d.name, tensor(d.dtype, d.shape, m.buffers.get(d.name)!.slice())]));

/**
 * One SGD step from zero momentum, with no clipping or decay: each `<param>.momentum_buffer.next`
 * is then exactly the gradient the step applied.
 */
async function step(weighting: WeightingChoice, taskWeights: number[], opts: { tasks?: Task[]; inputs?: Record<string, number[]>; model?: Fixture } = {}) {
  const m = opts.model ?? tiny;
  const graph = buildTrainStepGraph(m.spec, { optimizer: sgd, weighting, tasks: opts.tasks });
  const feeds: OrtFeeds = { ...batchTensors(m), ...paramTensors(m.params, m), ...bufferTensors(m), [IO.taskWeights]: tensor('float32', [3], taskWeights) };
  for (const input of graph.inputs) {
    if (feeds[input.name]) continue;
    const shape = input.shape as number[];
    const given = opts.inputs?.[input.name];
    feeds[input.name] = tensor('float32', shape, given ?? new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(input.name === IO.lr ? 0.1 : 0));
  }
  const session = await openSession(graph.model);
  const out = await session.run(feeds);
  await session.release();
  const grads = new Map<string, number[]>();
  for (const p of layout(m.spec).params) {
    const buffer = out[next(stateName(p.name, 'momentum_buffer'))];
    if (buffer) grads.set(p.name, f32(buffer));
  }
  return { graph, out, grads };
}

function expectClose(actual: number[], expected: number[], what: string, relative = 1e-5): void {
  const scale = Math.max(1e-8, ...expected.map(Math.abs));
  const worst = actual.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0);
  expect([what, worst / scale <= relative]).toEqual([what, true]);
}

const gramOf = (vectors: number[][]) => vectors.map((a) => vectors.map((b) => a.reduce((s, v, k) => s + v * b[k], 0)));

describe('per-task gradients in the train step', () => {
  it('loss strategies: the step applies the gradient of Σ w_t·λ_t·L_t, heads included, with w the applied weights', async () => {
    for (const choice of [chooseWeighting('uw'), chooseWeighting('famo'), chooseWeighting('gradnorm'), chooseWeighting('gradnorm', { gradients: 'parameters' })]) {
      const ours = await step(choice, lambda);
      const applied = f32(ours.out[IO.appliedWeights]);
      const reference = await step(STATIC_WEIGHTING, lambda.map((l, t) => l * applied[t]));
      for (const [name, g] of reference.grads) expectClose(ours.grads.get(name)!, g, `${choice.name} ${name}`);
    }
  });

  it('gradient strategies: shared parameters get Σ w_t·∇(λ_t·L_t), each head its own ∇(λ_t·L_t), through the representation or per parameter (batch norm and residual blocks too)', async () => {
    const weights = [0.2, 0.5, 0.3];
    for (const model of [tiny, residual]) {
      const plain = await step(STATIC_WEIGHTING, lambda, { model });
      for (const gradients of ['representation', 'parameters']) {
        const all = [chooseWeighting('cagrad', { gradients }), chooseWeighting('mgda', { gradients }), chooseWeighting('imtl-g', { gradients }), chooseWeighting('pcgrad', { gradients })];
        for (const choice of model === tiny ? all : all.slice(0, 2)) {
          const ours = await step(choice, lambda, { model, inputs: { 'weighting.cagrad.weights': weights } });
          const applied = f32(ours.out[IO.appliedWeights]);
          if (choice.name === 'cagrad') expect(applied).toEqual(weights.map(Math.fround));
          const combined = await step(STATIC_WEIGHTING, lambda.map((l, t) => l * applied[t]), { model });
          const what = `${model.spec.name} ${choice.name}/${gradients}`;
          for (const name of sharedOf(model)) expectClose(ours.grads.get(name)!, combined.grads.get(name)!, `${what} ${name}`);
          for (const task of TASKS) for (const name of headsOf(model, task)) expectClose(ours.grads.get(name)!, plain.grads.get(name)!, `${what} ${name}`);
        }
      }
    }
  });

  it('the Gram matrix of the representation gradients matches finite differences of the task losses in the features', async () => {
    // Heads and losses on the features fed as an input, for central differences in each feature.
    const b = new GraphBuilder('heads');
    const width = spec.shared[spec.shared.length - 1];
    const features = b.input('features', 'float32', [batch.size, width]);
    const head = (name: string) => b.op('Gemm', [features, b.input(`heads.${name}.weight`, 'float32', layout(spec).params.find((p) => p.name === `heads.${name}.weight`)!.shape), b.input(`heads.${name}.bias`, 'float32', layout(spec).params.find((p) => p.name === `heads.${name}.bias`)!.shape)], { transB: 1 });
    const inputs = { label: b.input(IO.label, 'int64', [batch.size]), objectness: b.input(IO.objectness, 'float32', [batch.size]), box: b.input(IO.box, 'float32', [batch.size, 4]), mask: b.input(IO.mask, 'float32', [batch.size]) };
    const losses = buildLosses(b, { features, classLogits: head('cls'), objectnessLogit: head('det'), boxLogits: head('box'), bufferUpdates: new Map() }, inputs, spec.heads.classification.labels.length);
    b.output(losses.taskLosses, 'task_losses');
    // The features themselves, from the trunk.
    const t = new GraphBuilder('trunk');
    const z = buildForward(t, spec, t.input(IO.image, 'float32', ['N', 3, 16, 16]), (n) => t.input(n, 'float32', layout(spec).params.find((p) => p.name === n)!.shape)).features;
    t.output(z, 'features');
    const trunk = await openSession(t.model());
    const zValue = (await trunk.run({ ...batchTensors(), ...paramTensors() }, ['features'])).features;
    await trunk.release();

    const session = await openSession(b.model());
    const feeds: OrtFeeds = { ...batchTensors(), ...paramTensors(), features: tensor('float32', zValue.dims, Float32Array.from(zValue.data as Float32Array)) };
    delete feeds[IO.image];
    for (const n of shared) delete feeds[n];
    const scaledLosses = async (f: OrtFeeds) => f32((await session.run(f, ['task_losses'])).task_losses).map((l, t) => lambda[t] * l);
    const perTask = (await finiteDifferencesOf(scaledLosses, feeds, 'features', 1e-2)).map((g) => Array.from(g));
    await session.release();
    const numeric = gramOf(perTask).flat();
    const ours = f32((await step(chooseWeighting('mgda'), lambda)).out[IO.taskGramian]);
    expectClose(ours, numeric, 'task_gramian (representation)', 2e-3);
  });

  it('the Gram matrix of the shared-parameter gradients matches finite differences of the task losses in the parameters', async () => {
    const session = await openSession(buildEvalGraph(spec).model);
    const feeds: OrtFeeds = { ...batchTensors(), ...paramTensors(), [IO.taskWeights]: tensor('float32', [3], [1, 1, 1]) };
    const perTask: number[][] = [[], [], []];
    const losses = async (f: OrtFeeds) => f32((await session.run(f, [IO.taskLosses]))[IO.taskLosses]).map((l, t) => lambda[t] * l);
    for (const name of shared) (await finiteDifferencesOf(losses, feeds, name, 1e-3)).forEach((g, t) => perTask[t].push(...g));
    await session.release();
    const numeric = gramOf(perTask).flat();
    const ours = f32((await step(chooseWeighting('mgda', { gradients: 'parameters' }), lambda)).out[IO.taskGramian]);
    expectClose(ours, numeric, 'task_gramian (parameters)', 5e-3);
  });

  it('--tasks: the others’ losses are left out and their heads are fed, not updated; the Gram matrix has zero rows for them', async () => {
    const sub = await step(STATIC_WEIGHTING, lambda, { tasks: ['cls', 'box'] });
    expect(sub.graph.outputs.some((o) => o.name.startsWith('heads.det.'))).toBe(false);
    expect(sub.graph.inputs.find((i) => i.name === 'heads.det.weight')!.role).toBe('parameter');
    const zeroed = await step(STATIC_WEIGHTING, [lambda[0], 0, lambda[2]]);
    for (const [name, g] of sub.grads) expectClose(g, zeroed.grads.get(name)!, `tasks cls,box ${name}`);
    expect(f32(sub.out[IO.loss])[0]).toBeCloseTo(f32(zeroed.out[IO.loss])[0], 6);

    const mgda = await step(chooseWeighting('mgda'), lambda, { tasks: ['cls', 'box'] });
    const gram = f32(mgda.out[IO.taskGramian]);
    expect([gram[1], gram[3], gram[4], gram[5], gram[7]]).toEqual([0, 0, 0, 0, 0]);
    expect(f32(mgda.out[IO.appliedWeights])[1]).toBe(0);
    const applied = f32(mgda.out[IO.appliedWeights]);
    expect(applied[0] + applied[2]).toBeCloseTo(1, 6);
    expect(() => buildTrainStepGraph(spec, { optimizer: sgd, tasks: [] })).toThrow(/non-empty list of cls, det, box/);
  });

  it('FAMO’s losses after the step are the losses of the updated weights on the same batch', async () => {
    const famo = await step(chooseWeighting('famo'), lambda);
    const updated = new Map(layout(spec).params.map((p) => [p.name, Float32Array.from(famo.out[next(p.name)].data as Float32Array)]));
    const session = await openSession(buildEvalGraph(spec).model);
    const evaluated = await session.run({ ...batchTensors(), ...paramTensors(updated), [IO.taskWeights]: tensor('float32', [3], [1, 1, 1]) });
    await session.release();
    expectClose(f32(famo.out[IO.taskLossesAfter]), f32(evaluated[IO.taskLosses]), 'task_losses_after', 1e-6);
    const logits = f32(famo.out[next('weighting.famo.logits')]);
    expect(logits.some((v) => v !== 0)).toBe(true);
  });

  it('UW trains its log-variances with the model’s optimizer: ∂/∂s_t = ½ − ½·λ_t·L_t at s = 0', async () => {
    const uw = await step(chooseWeighting('uw'), lambda);
    const losses = f32(uw.out[IO.taskLosses]);
    const grad = f32(uw.out[next('weighting.uw.log_var.momentum_buffer')]);
    grad.forEach((g, t) => expect(g).toBeCloseTo(0.5 - 0.5 * lambda[t] * losses[t], 5));
    expect(f32(uw.out[IO.appliedWeights])).toEqual([0.5, 0.5, 0.5]);
  });

  it('records every new input and output with a role', () => {
    const roles = (choice: WeightingChoice) => {
      const g = buildTrainStepGraph(spec, { optimizer: DEFAULT_OPTIMIZER.adam, weighting: choice });
      const pick = (list: typeof g.inputs) => Object.fromEntries(list.filter((t) => t.name.startsWith('weighting.') || [IO.appliedWeights, IO.taskGramian, IO.taskLossesAfter].includes(t.name as never)).map((t) => [t.name, t.role]));
      return { inputs: pick(g.inputs), outputs: pick(g.outputs) };
    };
    expect(roles(STATIC_WEIGHTING)).toEqual({ inputs: {}, outputs: {} });
    expect(roles(chooseWeighting('uw'))).toEqual({
      inputs: { 'weighting.uw.log_var': 'weighting_parameter', 'weighting.uw.log_var.exp_avg': 'optimizer_state', 'weighting.uw.log_var.exp_avg_sq': 'optimizer_state' },
      outputs: { 'weighting.uw.log_var.next': 'weighting_parameter', 'weighting.uw.log_var.exp_avg.next': 'optimizer_state', 'weighting.uw.log_var.exp_avg_sq.next': 'optimizer_state', applied_weights: 'applied_weights' },
    });
    expect(roles(chooseWeighting('cagrad'))).toEqual({
      inputs: { 'weighting.cagrad.weights': 'weighting_input' },
      outputs: { applied_weights: 'applied_weights', task_gramian: 'task_gramian' },
    });
    const famo = roles(chooseWeighting('famo'));
    expect(famo.inputs['weighting.famo.logits']).toBe('weighting_state');
    expect(famo.outputs['weighting.famo.logits.next']).toBe('weighting_state');
    expect(famo.outputs.task_losses_after).toBe('task_losses_after');
  });
});

const PYTHON = /* Debian python3-torch */ '/usr/bin/python3';
const torchAvailable = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore', timeout: 60_000 }).status === 0;
const describeTorch = torchAvailable ? describe : describe.skip;

describeTorch(`per-task gradients match PyTorch (bench/torch_reference.py taskgrads)${torchAvailable ? '' : ' [skipped: /usr/bin/python3 cannot import torch]'}`, () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'trident-taskgrads-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([['tiny', tiny], ['tiny-residual (batch norm in training mode, residual blocks, global average pooling)', residual]] as const)(
    '%s: Gram matrices over the representation and the shared parameters, and the combined update of every parameter',
    async (name, model) => {
      const alpha = [0.2, 0.5, 0.3];
      const files = { ckpt: path.join(dir, `${model.spec.name}.safetensors`), batch: path.join(dir, 'batch.safetensors'), out: path.join(dir, 'torch.safetensors') };
      await saveCheckpoint(files.ckpt, { spec: model.spec, params: model.params, buffers: model.buffers });
      const tensors = new Map<string, SafeTensor>(Object.entries(batchTensors(model)).map(([n, t]) => [n, { dtype: t.dtype === 'int64' ? 'I64' : 'F32', shape: t.dims, data: t.data as Float32Array }]));
      tensors.set('task_weights', { dtype: 'F32', shape: [3], data: Float32Array.from(lambda) });
      tensors.set('alpha', { dtype: 'F32', shape: [3], data: Float32Array.from(alpha) });
      writeFileSync(files.batch, encodeSafetensors(tensors));
      const script = path.resolve(__dirname, '..', '..', 'bench', 'torch_reference.py');
      const run = spawnSync(PYTHON, [script, 'taskgrads', files.ckpt, files.batch, files.out], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, OMP_NUM_THREADS: '1' } });
      expect({ status: run.status, error: run.error?.message, stderr: run.stderr }).toMatchObject({ status: 0, error: undefined });
      const theirs = decodeSafetensors(readFileSync(files.out), files.out).tensors;
      const value = (n: string) => Array.from(theirs.get(n)!.data as Float32Array);

      const inputs = { 'weighting.cagrad.weights': alpha };
      const rep = await step(chooseWeighting('cagrad'), lambda, { inputs, model });
      const par = await step(chooseWeighting('cagrad', { gradients: 'parameters' }), lambda, { inputs, model });
      expectClose(f32(rep.out[IO.taskGramian]), value('gram_representation'), `${name}: Gram (representation) vs PyTorch`, 1e-4);
      expectClose(f32(par.out[IO.taskGramian]), value('gram_parameters'), `${name}: Gram (parameters) vs PyTorch`, 1e-4);
      for (const p of layout(model.spec).params) {
        expectClose(rep.grads.get(p.name)!, value(`${p.name}.grad`), `${name}: ${p.name} (representation) vs PyTorch`, 1e-4);
        expectClose(par.grads.get(p.name)!, value(`${p.name}.grad`), `${name}: ${p.name} (parameters) vs PyTorch`, 1e-4);
      }
    },
  );
});
