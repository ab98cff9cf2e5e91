import { firstBitDifference } from '../testing/compare';
import * as ort from 'onnxruntime-node';
import { decodeCheckpoint, encodeCheckpoint } from '../artifacts/checkpoint';
import { buildEvalGraph, buildTrainStepGraph } from '../artifacts/graphs';
import type { GraphInfo } from '../artifacts/manifest';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { initParams, layout } from '../model/params';
import { builtinSpec } from '../model/spec';
import { encodeModel } from '../onnx/serialize';
import { randomBatch } from '../testing/batches';
import { batchIndices, checkpointOfState, initialState, planTrainStep, StepDriver, WeightsEvaluator, type StepHyper } from './step-driver';
import { TrainStepRunner } from './train-step';

const spec = builtinSpec('tiny');
const optimizer = DEFAULT_OPTIMIZER.adam;
const built = buildTrainStepGraph(spec, { optimizer });
const graph: GraphInfo = { file: 'train_step.onnx', inputs: built.inputs, outputs: built.outputs };
const bytes = encodeModel(built.model);
const hyper: StepHyper = { values: { lr: 3e-3, weight_decay: 0, clip_norm: 1 }, taskWeights: [1, 1, 1] };
const options = { intraOpNumThreads: 1 };

describe('planTrainStep', () => {
  it('finds the carried state from the manifest: every parameter, its Adam state and the step', () => {
    const plan = planTrainStep(graph);
    const params = layout(spec).params.map((p) => p.name);
    expect(plan.carried.map((t) => t.name).sort()).toEqual([...params, ...params.flatMap((p) => [`${p}.exp_avg`, `${p}.exp_avg_sq`]), 'step'].sort());
    expect(plan.hyper.sort()).toEqual(['clip_norm', 'lr', 'weight_decay']);
    expect(plan.batch.map((b) => b.part).sort()).toEqual(['boxes', 'images', 'labels', 'mask', 'objectness']);
  });

  it('carries a new kind of state without being told, and refuses an input it cannot feed', () => {
    const extra: GraphInfo = {
      ...graph,
      inputs: [...graph.inputs, { name: 'bn.running_mean', dtype: 'float32', shape: [4], role: 'buffer' }],
      outputs: [...graph.outputs, { name: 'bn.running_mean.next', dtype: 'float32', shape: [4], role: 'buffer' }],
    };
    expect(planTrainStep(extra).carried.find((t) => t.name === 'bn.running_mean')).toMatchObject({ next: 'bn.running_mean.next', role: 'buffer' });
    const unknown: GraphInfo = { ...graph, inputs: [...graph.inputs, { name: 'temperature', dtype: 'float32', shape: [], role: 'mystery' }] };
    expect(() => planTrainStep(unknown)).toThrow(/"temperature" has role "mystery"/);
  });
});

describe('batchIndices', () => {
  it('covers every sample once per epoch in full batches, and is a pure function of the step', () => {
    const seen = [0, 1, 2].flatMap((s) => Array.from(batchIndices(10, 3, 7, s)));
    expect(new Set(seen).size).toBe(9);
    expect(batchIndices(10, 3, 7, 4)).toEqual(batchIndices(10, 3, 7, 4));
    expect(batchIndices(2, 8, 7, 0).length).toBe(2);
  });
});

describe('StepDriver on onnxruntime-node', () => {
  it('takes the same steps as the trainer, bit for bit, and its checkpoint round-trips', async () => {
    const params = initParams(spec, 3);
    const driver = await StepDriver.create(ort, bytes, graph, initialState(planTrainStep(graph), params), options);
    const runner = await TrainStepRunner.create({ spec, params, buffers: new Map() }, { optimizer, threads: 1 });
    const losses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const batch = randomBatch(spec, 8, 1 + (i % 2));
      losses.push((await driver.run(batch, hyper)).loss);
      await runner.run(batch, { lr: 3e-3, weightDecay: 0, clipNorm: 1, taskWeights: [1, 1, 1] });
    }
    expect(losses[5]).toBeLessThan(losses[0]);
    expect(driver.step).toBe(6);
    expect(firstBitDifference(runner.params(), driver.state as Map<string, Float32Array>)).toBeUndefined();

    const ckpt = decodeCheckpoint(encodeCheckpoint(checkpointOfState(spec, optimizer, driver.plan, driver.state)));
    expect(ckpt.optimizer!.step).toBe(6);
    expect(ckpt.params.get('heads.cls.weight')).toEqual(driver.state.get('heads.cls.weight'));
    expect(ckpt.optimizer!.state.get('heads.cls.weight.exp_avg')).toEqual(driver.state.get('heads.cls.weight.exp_avg'));

    const evalBuilt = buildEvalGraph(spec);
    const evaluator = await WeightsEvaluator.create(ort, encodeModel(evalBuilt.model), { file: 'eval.onnx', inputs: evalBuilt.inputs, outputs: evalBuilt.outputs }, options);
    const metrics = await evaluator.metrics(driver.state, [randomBatch(spec, 8, 1), randomBatch(spec, 5, 2)], 3);
    expect(metrics.samples).toBe(13);
    await Promise.all([driver.release(), runner.release(), evaluator.release()]);
  });
});
