/**
 * What each trunk feature costs on the train step, measured side by side in one run: every variant
 * takes a turn each round (so that all meet the same machine), and each is reported against the
 * variant it differs from by that one feature. Augmentation costs data preparation, not graph time:
 * it is timed as FashionLoc batches rendered with and without the geometric jitter.
 */
import { freshCheckpoint } from '../artifacts/checkpoint';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { builtinSpec, parseSpec, type ModelSpec, type TrunkBlock } from '../model/spec';
import { EXECUTION_PROVIDERS } from '../runtime/execution-providers';
import { TrainStepRunner, type StepHyper } from '../runtime/train-step';
import { BatchMaker, loadSources } from '../train/sources';
import { median, randomBatch } from './train';

/** Steps per ONNX Runtime run, as the CPU trainer runs them. */
export const STEPS_PER_RUN = EXECUTION_PROVIDERS.cpu.stepsPerRun;

export interface TrunkVariant {
  name: string;
  /** The variant this one adds a feature to; absent for the baselines. */
  against?: string;
  spec: ModelSpec;
  labelSmoothing?: number;
}

/** Every conv block with BatchNorm. */
function withBatchNorm(spec: ModelSpec): ModelSpec {
  return parseSpec({ ...spec, name: `${spec.name}-bn`, trunk: spec.trunk.map((b) => (b.type === 'conv' ? { ...b, batchNorm: true } : b)) });
}

/** Global average pooling after the trunk (the shared layers then read C features instead of C·H·W). */
function withGlobalPooling(spec: ModelSpec): ModelSpec {
  return parseSpec({ ...spec, name: `${spec.name}-gap`, trunk: [...spec.trunk, { type: 'globalAvgPool' }] });
}

/** Each residual block as the two conv blocks it holds, without the shortcut (and its projection). */
export function withoutShortcuts(spec: ModelSpec): ModelSpec {
  const trunk = spec.trunk.flatMap((b): TrunkBlock[] =>
    b.type !== 'residual'
      ? [b]
      : [
          { type: 'conv', outChannels: b.outChannels, kernel: 3, stride: b.stride, padding: 1, batchNorm: b.batchNorm, relu: true },
          { type: 'conv', outChannels: b.outChannels, kernel: 3, stride: 1, padding: 1, batchNorm: b.batchNorm, relu: true },
        ],
  );
  return parseSpec({ ...spec, name: `${spec.name}-plain`, trunk });
}

export function trunkVariants(): TrunkVariant[] {
  const base = builtinSpec('fashionloc');
  const res = builtinSpec('fashionloc-res');
  return [
    { name: 'fashionloc', spec: base },
    { name: '+ BatchNorm', against: 'fashionloc', spec: withBatchNorm(base) },
    { name: '+ global average pooling', against: 'fashionloc', spec: withGlobalPooling(base) },
    { name: '+ label smoothing 0.1', against: 'fashionloc', spec: base, labelSmoothing: 0.1 },
    { name: 'fashionloc-res without shortcuts', spec: withoutShortcuts(res) },
    { name: 'fashionloc-res (+ shortcuts)', against: 'fashionloc-res without shortcuts', spec: res },
  ];
}

export interface TrunkBenchOptions {
  batch: number;
  threads: number;
  /** Runs of STEPS_PER_RUN steps per variant per round. */
  runs: number;
  rounds: number;
  /** Folder of Fashion-MNIST for the augmentation timing; found automatically when omitted. */
  fashionMnist?: string;
}

export interface TrunkBenchResult {
  steps: { name: string; against?: string; stepMs: number; ratio?: number }[];
  /** Undefined where Fashion-MNIST is not found. */
  augmentation?: { flipBrightnessMs: number; geometricMs: number; ratio: number; shareOfStep: number } | { skipped: string };
}

export async function benchTrunk(opts: TrunkBenchOptions): Promise<TrunkBenchResult> {
  const variants = trunkVariants();
  const hyper: StepHyper = { lr: 1e-4, weightDecay: 0, clipNorm: 0, taskWeights: [1, 1, 1] };
  const runners: TrainStepRunner[] = [];
  try {
    for (const v of variants) {
      runners.push(await TrainStepRunner.create(freshCheckpoint(v.spec, 0), { optimizer: DEFAULT_OPTIMIZER.adam, threads: opts.threads, labelSmoothing: v.labelSmoothing }));
    }
    const batches = variants.map((v) => Array.from({ length: STEPS_PER_RUN }, () => randomBatch(v.spec, opts.batch)));
    const hypers = batches[0].map(() => hyper);
    const times: number[][] = variants.map(() => []);
    for (const [i, r] of runners.entries()) await r.runSteps(batches[i], hypers); // warm-up
    const augment = await augmentationTimer(opts);
    const dataTimes = { plain: [] as number[], geometric: [] as number[] };
    for (let round = 0; round < opts.rounds; round++) {
      for (const [i, r] of runners.entries()) {
        for (let k = 0; k < opts.runs; k++) {
          const t0 = performance.now();
          await r.runSteps(batches[i], hypers);
          times[i].push((performance.now() - t0) / STEPS_PER_RUN);
        }
      }
      if (augment && 'time' in augment) {
        dataTimes.plain.push(augment.time('plain', round));
        dataTimes.geometric.push(augment.time('geometric', round));
      }
    }
    const stepMs = new Map(variants.map((v, i) => [v.name, median(times[i])]));
    const steps = variants.map((v) => ({ name: v.name, against: v.against, stepMs: stepMs.get(v.name)!, ratio: v.against ? stepMs.get(v.name)! / stepMs.get(v.against)! : undefined }));
    let augmentation: TrunkBenchResult['augmentation'];
    if (augment && 'time' in augment) {
      const plain = median(dataTimes.plain);
      const geometric = median(dataTimes.geometric);
      augmentation = { flipBrightnessMs: plain, geometricMs: geometric, ratio: geometric / plain, shareOfStep: (geometric - plain) / stepMs.get('fashionloc')! };
    } else augmentation = augment;
    return { steps, augmentation };
  } finally {
    await Promise.all(runners.map((r) => r.release()));
  }
}

/** Times one FashionLoc training batch (rendered, augmented, collated) without and with translation and scale jitter. */
async function augmentationTimer(opts: TrunkBenchOptions): Promise<{ time: (kind: 'plain' | 'geometric', round: number) => number } | { skipped: string }> {
  const spec = builtinSpec('fashionloc');
  let sources;
  try {
    sources = await loadSources(spec, { kind: 'fashionloc', dir: opts.fashionMnist, trainCount: opts.batch * 64, valCount: opts.batch }, 0);
  } catch (e) {
    return { skipped: (e as Error).message };
  }
  const makers = {
    plain: new BatchMaker(sources, spec, opts.batch, 0, { translate: 0, scale: 0 }),
    geometric: new BatchMaker(sources, spec, opts.batch, 0, { translate: 0.1, scale: 0.15 }),
  };
  return {
    time(kind, round) {
      const t0 = performance.now();
      const batchesPerRound = 4;
      for (let k = 0; k < batchesPerRound; k++) makers[kind].train(round, k);
      return (performance.now() - t0) / batchesPerRound;
    },
  };
}
