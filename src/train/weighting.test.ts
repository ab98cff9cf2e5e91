import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadCheckpoint } from '../artifacts/checkpoint';
import { FILES } from '../artifacts/export';
import { readManifest } from '../artifacts/manifest';
import { initParams } from '../model/params';
import { builtinSpec, FASHION_LABELS, parseSpec, type ModelSpec } from '../model/spec';
import { chooseWeighting } from '../model/weighting/index';
import { firstBitDifference } from '../testing/compare';
import { writeTrainingFixture } from '../testing/fashion-mnist';
import { DEFAULTS, type TrainConfig } from './config';
import { TrainJob } from './job';
import type { StepProgress } from './progress';
import { checkWeighting, HostWeighting } from './weighting';

describe('HostWeighting', () => {
  it('DWA on two trained tasks: its history holds those two; λ is scaled for them and 0 for the third', () => {
    const host = new HostWeighting(chooseWeighting('dwa'), [2, 1, 1], ['cls', 'box']);
    expect(host.taskWeights()).toEqual([2, 0, 1]);
    host.onEpochEnd([1, 9, 1]);
    host.onEpochEnd([0.5, 9, 1]);
    expect(host.progress()).toEqual({ strategy: 'dwa', history: [[1, 1], [0.5, 1]] });
    const [cls, det, box] = host.taskWeights();
    expect(det).toBe(0);
    expect(cls / 2 + box).toBeCloseTo(2, 12);
    expect(cls / 2).toBeLessThan(box);
    expect(host.stepsPerRun).toBe(Infinity);
  });

  it('CAGrad: host inputs as [3] vectors by graph input name, updated after each step from its Gram matrix', () => {
    const host = new HostWeighting(chooseWeighting('cagrad'), [1, 1, 1], ['cls', 'box']);
    expect(host.hyper()).toEqual({ taskWeights: [1, 0, 1], weightingInputs: { 'weighting.cagrad.weights': [0.5, 0, 0.5] } });
    host.afterStep({ loss: 1, taskLosses: [1, 1, 1], gradNorm: 1, gram: [1, 5, 0, 5, 5, 5, 0, 5, 1] });
    const w = host.hyper().weightingInputs!['weighting.cagrad.weights'];
    expect(w[1]).toBe(0);
    expect(w[0]).toBeCloseTo(1.4 / 2 / 1.16, 6);
    expect(host.stepsPerRun).toBe(1);
  });

  it('restores its own state from progress (also an untagged DWA history of older checkpoints), and starts afresh otherwise', () => {
    const old = new HostWeighting(chooseWeighting('dwa'), [1, 1, 1], ['cls', 'det', 'box'], { history: [[1, 1, 1], [1, 2, 1]] });
    expect(old.progress()).toEqual({ strategy: 'dwa', history: [[1, 1, 1], [1, 2, 1]] });
    const other = new HostWeighting(chooseWeighting('cagrad'), [1, 1, 1], ['cls', 'det', 'box'], { strategy: 'dwa', history: [] });
    expect(other.progress()).toEqual({ strategy: 'cagrad', weights: [1 / 3, 1 / 3, 1 / 3] });
  });

  it('refuses λ = 0 on a trained task for an adaptive strategy, but not for static λ', () => {
    expect(() => checkWeighting(chooseWeighting('mgda'), [1, 0, 1], ['cls', 'det', 'box'])).toThrow(/det has λ = 0.*--tasks/);
    expect(() => checkWeighting(chooseWeighting('mgda'), [1, 0, 1], ['cls', 'box'])).not.toThrow();
    expect(() => checkWeighting(chooseWeighting('static'), [1, 0, 1], ['cls', 'det', 'box'])).not.toThrow();
  });
});

describe('training with a weighting strategy', () => {
  const spec: ModelSpec = parseSpec({ ...builtinSpec('tiny'), name: 'tiny10', heads: { classification: { labels: FASHION_LABELS }, detection: {}, box: {} } });
  let root: string;
  let fashionMnist: string;
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'trident-weighting-'));
    fashionMnist = await writeTrainingFixture(path.join(root, 'fashion-mnist'), 400);
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const config = (name: string, overrides: Partial<TrainConfig>): TrainConfig => ({
    ...DEFAULTS,
    spec,
    data: { kind: 'fashionloc', dir: fashionMnist, trainCount: 128, valCount: 32 },
    outDir: path.join(root, name),
    epochs: 2,
    batchSize: 16,
    lr: 1e-2,
    threads: 1,
    seed: 5,
    ...overrides,
  });
  const run = async (cfg: TrainConfig, onStep?: (s: StepProgress, job: TrainJob) => void) => {
    const job = await TrainJob.start(cfg);
    const steps: StepProgress[] = [];
    job.on('step', (s) => {
      steps.push(s);
      onStep?.(s, job);
    });
    return { done: await job.done, steps };
  };

  it('CAGrad (host hook after every step): a stop and --resume equal the uninterrupted run, weights included', async () => {
    const cagrad = chooseWeighting('cagrad', { c: '0.5' });
    const whole = await run(config('cagrad', { weighting: cagrad }));
    expect(whole.steps).toHaveLength(16);
    expect(whole.steps[0].appliedWeights).toEqual({ classification: expect.closeTo(1 / 3, 6), objectness: expect.closeTo(1 / 3, 6), box: expect.closeTo(1 / 3, 6) });
    expect(whole.steps[5].appliedWeights).not.toEqual(whole.steps[0].appliedWeights);
    const stopped = await run(config('cagrad-resumed', { weighting: cagrad }), (s, job) => s.step === 5 && job.stop());
    expect(stopped.done.reason).toBe('stopped');
    const resumed = await run(config('cagrad-resumed', { weighting: cagrad, resume: true }));
    expect([...stopped.steps, ...resumed.steps].map((s) => [s.loss, s.appliedWeights])).toEqual(whole.steps.map((s) => [s.loss, s.appliedWeights]));
    const [a, b] = await Promise.all([loadCheckpoint(path.join(whole.done.outDir, FILES.checkpoint)), loadCheckpoint(path.join(resumed.done.outDir, FILES.checkpoint))]);
    expect(firstBitDifference(a.params, b.params)).toBeUndefined();
  });

  it('--tasks cls with UW: only the class head and the trunk train; the lineage and the exported train step say so', async () => {
    const uw = chooseWeighting('uw');
    const { done } = await run(config('cls-only', { weighting: uw, tasks: ['cls'], epochs: 1 }));
    const trained = (await loadCheckpoint(path.join(done.outDir, FILES.checkpoint))).params;
    const initial = initParams(spec, 5);
    const same = (name: string) => Buffer.from(trained.get(name)!.buffer).equals(Buffer.from(initial.get(name)!.buffer));
    for (const name of ['heads.det.weight', 'heads.det.bias', 'heads.box.weight', 'heads.box.bias']) expect([name, same(name)]).toEqual([name, true]);
    for (const name of ['heads.cls.weight', 'trunk.0.weight', 'shared.1.weight']) expect([name, same(name)]).toEqual([name, false]);
    const manifest = await readManifest(done.outDir);
    expect(manifest.lineage).toMatchObject({ weighting: { name: 'uw', options: {} }, tasks: ['cls'] });
    const step = manifest.graphs.train_step;
    expect(step.inputs.find((i) => i.name === 'weighting.uw.log_var')?.role).toBe('weighting_parameter');
    expect(step.outputs.some((o) => o.name.startsWith('heads.det.'))).toBe(false);
    expect(done.epochs[0].taskWeights).toEqual({ classification: 1, objectness: 0, box: 0 });
  });
});
