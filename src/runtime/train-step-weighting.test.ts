import * as ort from 'onnxruntime-node';
import { decodeCheckpoint, encodeCheckpoint, freshCheckpoint, type Checkpoint } from '../artifacts/checkpoint';
import { buildTrainStepGraph } from '../artifacts/graphs';
import type { GraphInfo } from '../artifacts/manifest';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { builtinSpec } from '../model/spec';
import { chooseWeighting, type WeightingChoice } from '../model/weighting/index';
import { encodeModel } from '../onnx/serialize';
import { randomBatch } from '../testing/batches';
import { TINY_RESIDUAL } from '../testing/specs';
import { firstBitDifference } from '../testing/compare';
import { checkpointOfState, initialState, planTrainStep, StepDriver } from './step-driver';
import { TrainStepRunner, type StepHyper } from './train-step';

const spec = builtinSpec('tiny');
const optimizer = DEFAULT_OPTIMIZER.adam;
const start = (): Checkpoint => freshCheckpoint(spec, 4);
const batches = [1, 2, 3, 4, 5].map((seed) => randomBatch(spec, 8, 30 + seed));
const hypers: StepHyper[] = batches.map((_, i) => ({ lr: 3e-3 / (i + 1), weightDecay: 0, clipNorm: 0, taskWeights: [1, 0.5, 2] }));
const runner = (weighting: WeightingChoice, from = start()) => TrainStepRunner.create(from, { optimizer, weighting, threads: 1 });
function expectBitwiseEqual(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  expect(firstBitDifference(a, b)).toBeUndefined();
}

const STRATEGIES = [
  chooseWeighting('uw'),
  chooseWeighting('famo'),
  chooseWeighting('famo', { update: 'next_batch' }),
  chooseWeighting('gradnorm'),
  chooseWeighting('mgda', { normalization: 'loss+' }),
  chooseWeighting('imtl-g'),
  chooseWeighting('pcgrad', { gradients: 'parameters' }),
];

describe('train steps with a weighting strategy in the graph', () => {
  it.each(STRATEGIES.map((w) => [`${w.name} ${JSON.stringify(w.options)}`, w] as const))('%s: runs of several steps equal one run per step, bit for bit, state included', async (_, weighting) => {
    const single = await runner(weighting);
    const one = [];
    for (let i = 0; i < batches.length; i++) one.push(await single.run(batches[i], hypers[i]));
    const grouped = await runner(weighting);
    const many = [...(await grouped.runSteps(batches.slice(0, 3), hypers.slice(0, 3))), ...(await grouped.runSteps(batches.slice(3), hypers.slice(3)))];
    expect(many).toEqual(one);
    expect(one.every((r) => r.appliedWeights?.length === 3 && r.appliedWeights.every(Number.isFinite))).toBe(true);
    expectBitwiseEqual(single.params(), grouped.params());
    expectBitwiseEqual(single.optimizerState().state, grouped.optimizerState().state);
    // The strategy's own state (or parameters) moved.
    const own = [...single.optimizerState().state].filter(([k]) => k.startsWith(`weighting.${weighting.name}.`));
    if (weighting.name !== 'mgda' && weighting.name !== 'imtl-g' && weighting.name !== 'pcgrad') expect(own.some(([, v]) => v.some((x) => x !== 0))).toBe(true);
    await Promise.all([single.release(), grouped.release()]);
  });

  it('with batch norm in the trunk: runs of several steps equal one run per step, running statistics and the strategy’s state included (FAMO, MGDA on parameters)', async () => {
    const residualBatches = [1, 2, 3].map((seed) => randomBatch(TINY_RESIDUAL, 8, 50 + seed));
    for (const weighting of [chooseWeighting('famo'), chooseWeighting('mgda', { gradients: 'parameters' })]) {
      const make = () => TrainStepRunner.create(freshCheckpoint(TINY_RESIDUAL, 2), { optimizer, weighting, threads: 1 });
      const single = await make();
      for (let i = 0; i < 3; i++) await single.run(residualBatches[i], hypers[i]);
      const grouped = await make();
      await grouped.runSteps(residualBatches, hypers.slice(0, 3));
      expectBitwiseEqual(single.params(), grouped.params());
      expectBitwiseEqual(single.optimizerState().state, grouped.optimizerState().state);
      const f32Buffers = (r: TrainStepRunner) => new Map([...r.buffers()].filter(([, v]) => v instanceof Float32Array) as [string, Float32Array][]);
      expectBitwiseEqual(f32Buffers(single), f32Buffers(grouped));
      await Promise.all([single.release(), grouped.release()]);
    }
  });

  it('a checkpoint taken mid-way continues bit for bit, the strategy’s state included (FAMO, GradNorm, UW)', async () => {
    for (const weighting of [chooseWeighting('famo'), chooseWeighting('gradnorm'), chooseWeighting('uw')]) {
      const straight = await runner(weighting);
      for (let i = 0; i < 4; i++) await straight.run(batches[i], hypers[i]);
      const first = await runner(weighting);
      for (let i = 0; i < 2; i++) await first.run(batches[i], hypers[i]);
      const saved = decodeCheckpoint(encodeCheckpoint(first.checkpoint()));
      expect([...saved.optimizer!.state.keys()].some((k) => k.startsWith(`weighting.${weighting.name}.`))).toBe(true);
      const second = await runner(weighting, saved);
      for (let i = 2; i < 4; i++) await second.run(batches[i], hypers[i]);
      expectBitwiseEqual(second.params(), straight.params());
      expectBitwiseEqual(second.optimizerState().state, straight.optimizerState().state);
      await Promise.all([straight.release(), first.release(), second.release()]);
    }
  });

  it('the browser’s step driver runs the exported graph of an in-graph strategy from its roles alone, like the trainer', async () => {
    for (const weighting of [chooseWeighting('famo'), chooseWeighting('uw')]) {
      const built = buildTrainStepGraph(spec, { optimizer, weighting });
      const graph: GraphInfo = { file: 'train_step.onnx', inputs: built.inputs, outputs: built.outputs };
      const plan = planTrainStep(graph);
      expect(plan.carried.map((c) => c.name).filter((n) => n.startsWith('weighting.')).length).toBeGreaterThan(0);
      const driver = await StepDriver.create(ort, encodeModel(built.model), graph, initialState(plan, start().params), { intraOpNumThreads: 1 });
      const trainer = await runner(weighting);
      for (let i = 0; i < 3; i++) {
        await driver.run(batches[i], { values: { lr: hypers[i].lr, weight_decay: 0, clip_norm: 0 }, taskWeights: hypers[i].taskWeights });
        await trainer.run(batches[i], hypers[i]);
      }
      const ckpt = checkpointOfState(spec, optimizer, plan, driver.state);
      expectBitwiseEqual(ckpt.params, trainer.params());
      expectBitwiseEqual(ckpt.optimizer!.state, trainer.optimizerState().state);
      await Promise.all([driver.release(), trainer.release()]);
    }
  });

  it('a strategy with host inputs: the trainer feeds them; the step driver says it cannot', async () => {
    const cagrad = chooseWeighting('cagrad');
    const built = buildTrainStepGraph(spec, { optimizer, weighting: cagrad });
    expect(() => planTrainStep({ file: 'train_step.onnx', inputs: built.inputs, outputs: built.outputs })).toThrow(/"weighting.cagrad.weights" has role "weighting_input"/);
    const r = await runner(cagrad);
    await expect(r.run(batches[0], hypers[0])).rejects.toThrow(/no value for the weighting input weighting.cagrad.weights/);
    const out = await r.run(batches[0], { ...hypers[0], weightingInputs: { 'weighting.cagrad.weights': [0.2, 0.3, 0.5] } });
    expect(out.appliedWeights).toEqual([0.2, 0.3, 0.5].map(Math.fround));
    expect(out.gram).toHaveLength(9);
    await r.release();
  });
});
