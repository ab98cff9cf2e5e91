import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadCheckpoint } from '../artifacts/checkpoint';
import { exportModel, FILES } from '../artifacts/export';
import { buildEvalGraph, IO } from '../artifacts/graphs';
import { readManifest } from '../artifacts/manifest';
import { encodeModel } from '../onnx/serialize';
import { builtinSpec, FASHION_LABELS, parseSpec, type ModelSpec } from '../model/spec';
import { batchFeeds, paramFeeds } from '../testing/batches';
import { writeTrainingFixture } from '../testing/fashion-mnist';
import { chooseWeighting } from '../model/weighting/index';
import { TINY_RESIDUAL } from '../testing/specs';
import { DEFAULTS, type TrainConfig } from './config';
import { TrainJob, type TrainDone } from './job';
import type { StepProgress } from './protocol';
import { augmentationOf, BatchMaker, loadSources } from './sources';

/** The tiny architecture with FashionLoc's 10 classes. */
const spec: ModelSpec = parseSpec({ ...builtinSpec('tiny'), name: 'tiny10', heads: { classification: { labels: FASHION_LABELS }, detection: {}, box: {} } });

let root: string;
/** A small Fashion-MNIST training split made from the committed test split (testing/fashion-mnist). */
let fashionMnist: string;
beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'trident-train-'));
  fashionMnist = await writeTrainingFixture(path.join(root, 'fashion-mnist'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function config(name: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...DEFAULTS,
    spec,
    data: { kind: 'fashionloc', dir: fashionMnist, trainCount: 256, valCount: 64 },
    outDir: path.join(root, name),
    epochs: 2,
    batchSize: 32,
    lr: 1e-2,
    threads: 1,
    seed: 3,
    ...overrides,
  };
}

interface Run {
  job: TrainJob;
  done: TrainDone;
  steps: StepProgress[];
}

async function run(cfg: TrainConfig, onStep?: (m: StepProgress, job: TrainJob) => void): Promise<Run> {
  const job = await TrainJob.start(cfg);
  const steps: StepProgress[] = [];
  job.on('step', (m) => {
    steps.push(m);
    onStep?.(m, job);
  });
  const done = await job.done;
  return { job, done, steps };
}

const params = async (dir: string) => (await loadCheckpoint(path.join(dir, FILES.checkpoint))).params;

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let max = 0;
  for (const [k, v] of a) {
    const w = b.get(k)!;
    for (let i = 0; i < v.length; i++) max = Math.max(max, Math.abs(v[i] - w[i]));
  }
  return max;
}

describe('TrainJob on FashionLoc', () => {
  let straight: Run;
  beforeAll(async () => {
    straight = await run(config('straight'));
  });

  it('trains: the loss falls and the folder holds a servable model with metrics', async () => {
    const { done, steps } = straight;
    expect(done.reason).toBe('finished');
    expect(steps).toHaveLength(16); // 256 / 32 per epoch, 2 epochs
    expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    expect(done.epochs).toHaveLength(2);
    const [first, second] = done.epochs;
    // The tiny model learns slowly (class loss stays near ln 10), but the totals fall and objectness clearly does.
    expect(second.trainLoss).toBeLessThan(first.trainLoss);
    expect(second.valLoss).toBeLessThan(first.valLoss);
    expect(first.valLoss).toBeLessThan(steps[0].loss);
    expect(second.valLosses.objectness).toBeLessThan(0.8 * steps[0].losses.objectness);
    // Cosine schedule from lr down towards lr·0.01.
    expect(steps[0].lr).toBeCloseTo(1e-2, 10);
    expect(steps[15].lr).toBeLessThan(steps[8].lr);

    const dir = done.outDir;
    for (const f of [FILES.checkpoint, FILES.infer, FILES.manifest]) expect(existsSync(path.join(dir, f))).toBe(true);
    const manifest = await readManifest(dir, { verify: true });
    expect(manifest.labels).toEqual(FASHION_LABELS);
    expect(manifest.metrics).toMatchObject({ epochs: 2, validationLoss: second.valLoss });
    const validation = manifest.metrics.validation as Record<string, number>;
    for (const key of ['classAccuracy', 'objectnessF1', 'boxMeanIoU', 'detectionCorrect']) expect(typeof validation[key]).toBe('number');
    expect(validation).toEqual(second.metrics);
    expect(manifest.lineage).toMatchObject({ seed: 3, optimizer: 'adam', from: null });
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('stop() finishes the step, writes a checkpoint and ends with reason stopped; resume equals the uninterrupted run', async () => {
    const stopped = await run(config('resumed'), (m, job) => {
      if (m.step === 3) job.stop();
    });
    expect(stopped.done.reason).toBe('stopped');
    const last = stopped.steps[stopped.steps.length - 1];
    expect(last.step).toBeLessThan(16);
    const ckpt = await loadCheckpoint(path.join(stopped.done.outDir, FILES.checkpoint));
    expect(ckpt.optimizer!.step).toBe(last.step);
    // The checkpoint resumes right after the last step; a stop seen after an epoch's last step may
    // land before or after that epoch's validation, and both resume to the same run.
    const { epoch, index } = ckpt.progress as { epoch: number; index: number };
    const endsEpoch = last.index + 1 === 256 / 32;
    // Progress events count epochs from 1, the checkpoint's position from 0.
    const at = last.epoch - 1;
    expect(endsEpoch ? [[at, last.index + 1], [at + 1, 0]] : [[at, last.index + 1]]).toContainEqual([epoch, index]);
    expect(existsSync(path.join(stopped.done.outDir, FILES.manifest))).toBe(false);

    const resumed = await run(config('resumed', { resume: true }));
    expect(resumed.done.reason).toBe('finished');
    expect(resumed.steps[0].step).toBe(last.step + 1);
    expect([...stopped.steps, ...resumed.steps].map((s) => s.loss)).toEqual(straight.steps.map((s) => s.loss));
    expect(maxDiff(await params(resumed.done.outDir), await params(straight.done.outDir))).toBe(0);
    expect(resumed.done.epochs.map((e) => e.valLoss)).toEqual(straight.done.epochs.map((e) => e.valLoss));
  });

  it('maxSteps mid-epoch, then resume, also equals the uninterrupted run', async () => {
    const partial = await run(config('max-steps', { maxSteps: 11 }));
    expect(partial.done.reason).toBe('max_steps');
    expect(partial.steps).toHaveLength(11);
    const resumed = await run(config('max-steps', { resume: true }));
    expect(resumed.done.reason).toBe('finished');
    expect(resumed.steps.map((s) => s.step)).toEqual([12, 13, 14, 15, 16]);
    expect(maxDiff(await params(resumed.done.outDir), await params(straight.done.outDir))).toBe(0);
    expect(resumed.done.epochs.map((e) => e.valLoss)).toEqual(straight.done.epochs.map((e) => e.valLoss));
  });

  it('with DWA task weighting, a stop in the third epoch and resume also equal the uninterrupted run', async () => {
    const dwa = (name: string, extra: Partial<TrainConfig> = {}) =>
      config(name, { data: { kind: 'fashionloc', dir: fashionMnist, trainCount: 192, valCount: 32 }, epochs: 4, weighting: chooseWeighting('dwa'), augment: true, ...extra });
    const whole = await run(dwa('dwa-straight'));
    expect(whole.steps).toHaveLength(24);
    // DWA changes λ from the third epoch on (it needs two epochs of losses).
    const equal = { classification: 1, objectness: 1, box: 1 };
    expect(whole.done.epochs[1].taskWeights).toEqual(equal);
    expect(whole.done.epochs[2].taskWeights).not.toEqual(equal);
    // A stop sent at step 13 (the third epoch's first) lands in the third epoch or at its end,
    // however late the message arrives, and a fourth epoch is always left to resume.
    const stopped = await run(dwa('dwa-resumed'), (m, job) => {
      if (m.step === 13) job.stop();
    });
    expect(stopped.done.reason).toBe('stopped');
    expect(stopped.steps.length).toBeLessThan(24);
    const resumed = await run(dwa('dwa-resumed', { resume: true }));
    expect([...stopped.steps, ...resumed.steps].map((s) => s.loss)).toEqual(whole.steps.map((s) => s.loss));
    expect(resumed.done.epochs.map((e) => e.taskWeights)).toEqual(whole.done.epochs.map((e) => e.taskWeights));
    expect(maxDiff(await params(resumed.done.outDir), await params(whole.done.outDir))).toBe(0);
  });

  it('--from starts from the given weights: the first step’s loss is the source model’s loss on that batch', async () => {
    const cfg = config('fine-tuned', { from: straight.done.outDir, epochs: 1, maxSteps: 2, seed: 9 });
    const tuned = await run(cfg);
    expect(tuned.steps[0].step).toBe(1); // the optimizer starts afresh

    // The source model's loss on batch 0 of epoch 0 of the fine-tuning run, through eval.onnx.
    const sources = await loadSources(spec, cfg.data, cfg.seed);
    const batch = new BatchMaker(sources, spec, cfg.batchSize, cfg.seed, augmentationOf(cfg)).train(0, 0);
    const session = await ort.InferenceSession.create(encodeModel(buildEvalGraph(spec).model), { intraOpNumThreads: 1 });
    const out = await session.run({ ...batchFeeds(spec, batch, cfg.taskWeights), ...paramFeeds(spec, await params(straight.done.outDir)) });
    await session.release();
    const expected = (out[IO.loss].data as Float32Array)[0];
    expect(Math.abs(tuned.steps[0].loss - expected)).toBeLessThan(1e-5 * expected);
    expect((await readManifest(tuned.done.outDir)).lineage).toMatchObject({ from: straight.done.outDir, seed: 9 });
  });

  it('refuses a checkpoint of another architecture for --from and --resume, saying what differs', async () => {
    const other = parseSpec({ ...spec, shared: [24] });
    const otherDir = path.join(root, 'other');
    await exportModel({ spec: other, outDir: otherDir, training: false });
    const fromFile = path.join(otherDir, FILES.checkpoint);
    const from = await TrainJob.start(config('from-other', { from: fromFile }));
    await expect(from.done).rejects.toThrow(`--from: ${fromFile} is of another architecture (shared.1.weight is 16×128 vs 24×128; shared.1.bias is 16 vs 24; heads.cls.weight is 10×16 vs 10×24`);
    const resume = await TrainJob.start(config('other', { resume: true }));
    await expect(resume.done).rejects.toThrow(`--resume: ${fromFile} is of another architecture (shared.1.weight is 16×128 vs 24×128`);
    const nothing = await TrainJob.start(config('nothing-here', { resume: true }));
    await expect(nothing.done).rejects.toThrow(`--resume: no checkpoint at ${path.join(root, 'nothing-here', FILES.checkpoint)}`);
  });

  it('stops early when the monitored validation loss has not improved for `patience` epochs', async () => {
    // lr 0: the weights never change, so the validation loss never improves after the first epoch.
    const flat = await run(config('early', { data: { kind: 'fashionloc', dir: fashionMnist, trainCount: 64, valCount: 32 }, epochs: 6, lr: 0, patience: 2 }));
    expect(flat.done.reason).toBe('early_stop');
    expect(flat.done.epochs).toHaveLength(3);
    expect(new Set(flat.done.epochs.map((e) => e.valLoss)).size).toBe(1);
    expect((await readManifest(flat.done.outDir, { verify: true })).metrics).toMatchObject({ epochs: 3 });
  });

  it('a BatchNorm/residual model with warmup, label smoothing and geometric jitter: stop and resume equal the uninterrupted run, running statistics included; --from carries them', async () => {
    const bn = parseSpec({ ...TINY_RESIDUAL, heads: { classification: { labels: FASHION_LABELS }, detection: {}, box: {} } });
    const cfg = (name: string, extra: Partial<TrainConfig> = {}) =>
      config(name, { spec: bn, data: { kind: 'fashionloc', dir: fashionMnist, trainCount: 128, valCount: 32 }, warmupSteps: 3, labelSmoothing: 0.1, translate: 0.1, scaleJitter: 0.15, ...extra });
    const whole = await run(cfg('bn-straight'));
    expect(whole.steps).toHaveLength(8);
    expect(whole.steps.slice(0, 4).map((s) => s.lr)).toEqual([1e-2 / 3, 2e-2 / 3, 1e-2, 1e-2]);
    const stopped = await run(cfg('bn-resumed'), (m, job) => {
      if (m.step === 2) job.stop();
    });
    expect(stopped.done.reason).toBe('stopped');
    const resumed = await run(cfg('bn-resumed', { resume: true }));
    expect([...stopped.steps, ...resumed.steps].map((s) => s.loss)).toEqual(whole.steps.map((s) => s.loss));
    const [a, b] = await Promise.all([whole, resumed].map((r) => loadCheckpoint(path.join(r.done.outDir, FILES.checkpoint))));
    expect(maxDiff(a.params, b.params)).toBe(0);
    expect(b.buffers).toEqual(a.buffers);
    expect(a.buffers.get('trunk.1.num_batches_tracked')).toEqual(BigInt64Array.of(8n));
    expect(resumed.done.epochs.map((e) => e.valLoss)).toEqual(whole.done.epochs.map((e) => e.valLoss));
    // Fine-tuning from it starts from its weights and its running statistics.
    const tuned = await run(cfg('bn-tuned', { from: whole.done.outDir, epochs: 1, maxSteps: 1, freezeTrunk: true }));
    const after = await loadCheckpoint(path.join(tuned.done.outDir, FILES.checkpoint));
    expect(after.buffers).toEqual(a.buffers);
    // Without a frozen trunk the statistics continue from the source's: 8 batches counted, then 2 more.
    const continued = await run(cfg('bn-continued', { from: whole.done.outDir, epochs: 1, maxSteps: 2 }));
    const next = await loadCheckpoint(path.join(continued.done.outDir, FILES.checkpoint));
    expect(next.buffers.get('trunk.4.bn2.num_batches_tracked')).toEqual(BigInt64Array.of(10n));
    expect(next.buffers.get('trunk.1.running_mean')).not.toEqual(a.buffers.get('trunk.1.running_mean'));
  });

  it('refuses FashionLoc for an architecture without 10 classes', async () => {
    await expect(TrainJob.start(config('three', { spec: builtinSpec('tiny') }))).rejects.toThrow('FashionLoc has the 10 Fashion-MNIST classes; architecture tiny has 3');
  });
});

describe('TrainJob on user data', () => {
  let data: string;
  beforeAll(async () => {
    data = path.join(root, 'user');
    mkdirSync(data, { recursive: true });
    for (let i = 0; i < 6; i++) {
      const png = await sharp({ create: { width: 20, height: 24, channels: 3, background: { r: 40 * i, g: 100, b: 200 - 30 * i } } }).png().toBuffer();
      writeFileSync(path.join(data, `${i}.png`), png);
    }
  });

  const write = (name: string, lines: object[]) => {
    const file = path.join(data, name);
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    return file;
  };
  const good = (i: number) => ({ file: `${i}.png`, label: FASHION_LABELS[i], box: [2, 3, 12 + i, 20] });

  it('a bad annotation line is an error naming the file and the line', async () => {
    const unknown = write('unknown.jsonl', [good(0), good(1), { file: '2.png', label: 'Hat', box: [1, 1, 5, 5] }, good(3)]);
    await expect(TrainJob.start(config('user-bad', { data: { kind: 'annotations', file: unknown, valShare: 0.25 } }))).rejects.toThrow(
      `${unknown}:3: unknown label "Hat"`,
    );
    const outside = write('outside.jsonl', [good(0), { file: '1.png', label: 0, box: [0, 0, 30, 10] }]);
    await expect(TrainJob.start(config('user-bad', { data: { kind: 'annotations', file: outside, valShare: 0.25 } }))).rejects.toThrow(`${outside}:2:`);
    const missing = write('missing.jsonl', [good(0), good(1), good(2), { file: 'nope.png', box: null }]);
    await expect(TrainJob.start(config('user-bad', { data: { kind: 'annotations', file: missing, valShare: 0.25 } }))).rejects.toThrow(
      new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:4: .*nope\\.png`),
    );
  });

  it('trains on user data; with skipBad the bad line becomes a warning', async () => {
    const file = write('mixed.jsonl', [good(0), good(1), { file: '2.png', label: 'Hat', box: [1, 1, 5, 5] }, good(3), good(4), { file: '5.png', box: null }]);
    const job = await TrainJob.start(config('user', { data: { kind: 'annotations', file, valShare: 0.25, skipBad: true }, epochs: 1, batchSize: 4 }));
    const warnings: string[] = [];
    job.on('warning', (w) => warnings.push(w));
    const done = await job.done;
    expect(done.reason).toBe('finished');
    expect(warnings).toEqual([expect.stringContaining(`${file}:3: unknown label "Hat"`)]);
    expect(job.sources.train.length + job.sources.val.length).toBe(5);
    expect(existsSync(path.join(done.outDir, FILES.infer))).toBe(true);
  });
});
