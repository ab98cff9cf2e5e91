/**
 * `trident bench mtl`: multi-task learning measured the way LibMTL reports it. Under one budget
 * (training samples, seed, schedule) it trains the three single-task models (the same trunk,
 * `--tasks cls|det|box`) and the multi-task model once per weighting strategy, evaluates each on
 * FashionLoc's test canvases, and reports every task's metric, Δm against the single-task models
 * (Maninis et al. 2019), train time, each strategy's step time against static λ (measured side by
 * side, interleaved) and the inference cost against running three single-task models.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { freshCheckpoint } from '../artifacts/checkpoint';
import { FILES } from '../artifacts/export';
import { IO } from '../artifacts/graphs';
import { fashionLocDataset } from '../data/dataset';
import { FASHIONLOC_EVAL_SEED } from '../data/fashionloc';
import { loadFashionMnistSplit } from '../data/idx';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { trunkOutput, type ModelSpec } from '../model/spec';
import { TASKS, type Task, type TaskVector } from '../model/tasks';
import { STATIC_WEIGHTING, weightingLabel, type WeightingChoice } from '../model/weighting/index';
import type { Metrics } from '../runtime/metrics';
import { createSession } from '../runtime/session';
import { TrainStepRunner } from '../runtime/train-step';
import { formatNumber, table } from '../base/table';
import { DEFAULTS, type TrainConfig } from '../train/config';
import { evaluateModel } from '../train/evaluate';
import { TrainJob } from '../train/job';
import { HostWeighting } from '../train/weighting';
import { median, randomBatch } from './train';

/** The metric each task is judged by, and its direction (for Δm's sign). */
export const TASK_METRICS = Object.freeze({
  cls: { key: 'classAccuracy', label: 'class acc', higherIsBetter: true },
  det: { key: 'objectnessF1', label: 'obj F1', higherIsBetter: true },
  box: { key: 'boxMeanIoU', label: 'box mIoU', higherIsBetter: true },
} as const satisfies Record<Task, { key: keyof Metrics; label: string; higherIsBetter: boolean }>);

export type TaskScores = Record<Task, number>;

/**
 * Δm % = (100 / T) · Σ_t (−1)^l_t · (M_m,t − M_b,t) / M_b,t, with l_t = 1 where lower is better
 * (Maninis et al. 2019): the mean relative gain of the multi-task model over the single-task ones.
 */
export function deltaM(multi: TaskScores, single: TaskScores): number {
  const terms = TASKS.map((t) => (TASK_METRICS[t].higherIsBetter ? 1 : -1) * ((multi[t] - single[t]) / single[t]));
  return (100 * terms.reduce((a, b) => a + b, 0)) / TASKS.length;
}

export function scoresOf(m: Metrics): TaskScores {
  return Object.fromEntries(TASKS.map((t) => [t, m[TASK_METRICS[t].key]])) as TaskScores;
}

/** Multiply-accumulates of one image through the trunk (convolutions; batch norm folded) and the given heads. */
export function inferenceMacs(spec: ModelSpec, heads: readonly Task[]): number {
  let macs = 0;
  let channels: number = spec.input.channels;
  let [h, w] = [spec.input.height, spec.input.width];
  const conv = (out: number, kernel: number, stride: number, padding: number) => {
    h = Math.floor((h + 2 * padding - kernel) / stride) + 1;
    w = Math.floor((w + 2 * padding - kernel) / stride) + 1;
    macs += h * w * out * channels * kernel * kernel;
    channels = out;
  };
  for (const block of spec.trunk) {
    if (block.type === 'globalAvgPool') [h, w] = [Math.min(h, 1), Math.min(w, 1)];
    else if (block.type === 'residual') {
      const inC = channels;
      conv(block.outChannels, 3, block.stride, 1);
      conv(block.outChannels, 3, 1, 1);
      // The 1×1 projection of the shortcut, where the shape changes.
      if (block.stride !== 1 || inC !== block.outChannels) macs += h * w * block.outChannels * inC;
    } else {
      conv(block.outChannels, block.kernel, block.stride, block.padding);
      if (block.pool) [h, w] = [Math.floor(h / block.pool), Math.floor(w / block.pool)];
    }
  }
  const out = trunkOutput(spec);
  let width = out.channels * out.height * out.width;
  for (const units of spec.shared) {
    macs += width * units;
    width = units;
  }
  const units: Record<Task, number> = { cls: spec.heads.classification.labels.length, det: 1, box: 4 };
  return macs + heads.reduce((a, t) => a + width * units[t], 0);
}

export interface MtlBenchOptions {
  spec: ModelSpec;
  /** Training samples each model sees. */
  budget: number;
  strategies: WeightingChoice[];
  seed: number;
  threads: number;
  batch: number;
  lr: number;
  taskWeights: TaskVector;
  /** Folder of the Fashion-MNIST IDX files for the training split (default: found automatically). */
  fashionMnist?: string;
  /** Passes over the distinct training canvases (default: as few as the budget allows with at most 55 000 canvases). */
  epochs?: number;
  valCount: number;
  testCount: number;
  /** Timed steps per strategy for the step-time comparison (0: skip it). */
  overheadSteps: number;
  /** Timed batch-1 inferences per model for the inference cost. */
  inferenceRuns: number;
  log?: (line: string) => void;
}

export interface MtlRow {
  /** `single cls`, `single det`, `single box` or `multi`. */
  model: string;
  tasks: Task[];
  weighting: string;
  metrics: Metrics;
  scores: TaskScores;
  /** Against the single-task models (multi-task rows only). */
  deltaM?: number;
  trainSeconds: number;
  /** Median ONNX Runtime time per step during training. */
  trainStepMs: number;
}

export interface StepOverhead {
  weighting: string;
  stepMs: number;
  /** stepMs over static λ's, measured interleaved in the same run. */
  ratio: number;
  stepsPerRun: number;
}

export interface InferenceCost {
  /** Batch-1 latency of the multi-task model and of the three single-task models one after another. */
  multiMs: number;
  singlesMs: number;
  ratio: number;
  /** Multiply-accumulates: the multi-task model over three single-task models with one head each. */
  macsRatio: number;
}

export interface MtlBenchResult {
  arch: string;
  samples: number;
  epochs: number;
  trainCount: number;
  batch: number;
  lr: number;
  seed: number;
  threads: number;
  testCount: number;
  rows: MtlRow[];
  overhead: StepOverhead[];
  inference: InferenceCost;
}

/** Epochs and distinct canvases that spend the budget in whole batches. */
export function planBudget(budget: number, batch: number, epochs?: number): { epochs: number; trainCount: number; samples: number } {
  const e = epochs ?? Math.max(1, Math.ceil(budget / 55_000));
  const trainCount = Math.max(batch, Math.floor(budget / e / batch) * batch);
  return { epochs: e, trainCount, samples: e * trainCount };
}

export async function benchMtl(opts: MtlBenchOptions): Promise<MtlBenchResult> {
  const log = opts.log ?? (() => {});
  const plan = planBudget(opts.budget, opts.batch, opts.epochs);
  const root = mkdtempSync(path.join(os.tmpdir(), 'trident-bench-mtl-'));
  try {
    const test = fashionLocDataset({ test: await loadFashionMnistSplit('test') }, opts.spec.input, 'test', { seed: FASHIONLOC_EVAL_SEED, count: opts.testCount });
    const runs: { model: string; tasks: Task[]; weighting: WeightingChoice }[] = [
      ...TASKS.map((t) => ({ model: `single ${t}`, tasks: [t], weighting: STATIC_WEIGHTING })),
      ...opts.strategies.map((w) => ({ model: 'multi', tasks: [...TASKS], weighting: w })),
    ];
    const rows: MtlRow[] = [];
    const dirs: string[] = [];
    for (const [i, run] of runs.entries()) {
      const outDir = path.join(root, `run-${i}`);
      const config: TrainConfig = {
        ...DEFAULTS,
        spec: opts.spec,
        data: { kind: 'fashionloc', dir: opts.fashionMnist, trainCount: plan.trainCount, valCount: opts.valCount },
        outDir,
        epochs: plan.epochs,
        batchSize: opts.batch,
        lr: opts.lr,
        taskWeights: opts.taskWeights,
        weighting: run.weighting,
        tasks: run.tasks,
        seed: opts.seed,
        threads: opts.threads,
        name: 'bench-mtl',
      };
      const label = `${run.model} (${weightingLabel(run.weighting)})`;
      log(`training ${label}: ${plan.epochs} × ${plan.trainCount} samples`);
      const started = performance.now();
      const job = await TrainJob.start(config);
      const stepMs: number[] = [];
      job.on('step', (s) => stepMs.push(s.stepMs));
      const done = await job.done;
      const trainSeconds = (performance.now() - started) / 1000;
      const { metrics } = await evaluateModel(done.outDir, test, { threads: opts.threads });
      rows.push({ model: run.model, tasks: run.tasks, weighting: weightingLabel(run.weighting), metrics, scores: scoresOf(metrics), trainSeconds, trainStepMs: median(stepMs) });
      dirs.push(done.outDir);
      log(`  ${trainSeconds.toFixed(1)} s; test: ${TASKS.map((t) => `${TASK_METRICS[t].label} ${formatNumber(scoresOf(metrics)[t])}`).join(', ')}`);
    }
    const single = Object.fromEntries(TASKS.map((t, i) => [t, rows[i].scores[t]])) as TaskScores;
    for (const row of rows.slice(TASKS.length)) row.deltaM = deltaM(row.scores, single);

    const overhead = opts.overheadSteps > 0 ? await measureOverhead(opts, log) : [];
    const inference = await measureInference(opts, dirs[TASKS.length] ?? dirs[0], dirs.slice(0, TASKS.length), log);
    return { arch: opts.spec.name, ...plan, batch: opts.batch, lr: opts.lr, seed: opts.seed, threads: opts.threads, testCount: opts.testCount, rows, overhead, inference };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * Each strategy's train step (with its host hooks, and its runs of one step where it needs them)
 * against static λ's: rounds alternate between the strategies, so all share the machine's state.
 */
async function measureOverhead(opts: MtlBenchOptions, log: (line: string) => void): Promise<StepOverhead[]> {
  const choices = [STATIC_WEIGHTING, ...opts.strategies.filter((w) => weightingLabel(w) !== 'static')];
  const batch = randomBatch(opts.spec, opts.batch, opts.seed + 1);
  const contenders: { weighting: WeightingChoice; runner: TrainStepRunner; run: () => Promise<number>; perRun: number; times: number[] }[] = [];
  for (const weighting of choices) {
    const runner = await TrainStepRunner.create(freshCheckpoint(opts.spec, opts.seed), { optimizer: DEFAULT_OPTIMIZER.adam, weighting, threads: opts.threads });
    const host = new HostWeighting(weighting, opts.taskWeights, TASKS);
    const perRun = Math.min(runner.stepsPerRun, host.stepsPerRun);
    const run = async () => {
      const t0 = performance.now();
      const fed = host.hyper();
      const results = await runner.runSteps(Array.from({ length: perRun }, () => batch), Array.from({ length: perRun }, () => ({ lr: 1e-4, weightDecay: 0, clipNorm: 0, ...fed })));
      for (const r of results) host.afterStep(r);
      return (performance.now() - t0) / perRun;
    };
    await run(); // warm-up
    contenders.push({ weighting, runner, run, perRun, times: [] });
  }
  const rounds = 5;
  const longest = Math.max(...contenders.map((c) => c.perRun));
  const runsPerRound = Math.max(1, Math.round(opts.overheadSteps / rounds / longest));
  for (let round = 0; round < rounds; round++) {
    // Each round starts with another strategy, so that none always runs first (or after the same one).
    const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]);
    for (const c of order) for (let k = 0; k < runsPerRound * (longest / c.perRun); k++) c.times.push(await c.run());
  }
  const base = median(contenders[0].times);
  const out = contenders.map((c) => ({ weighting: weightingLabel(c.weighting), stepMs: median(c.times), ratio: median(c.times) / base, stepsPerRun: c.perRun }));
  for (const o of out) log(`step ${o.weighting}: ${o.stepMs.toFixed(2)} ms (×${o.ratio.toFixed(3)})`);
  await Promise.all(contenders.map((c) => c.runner.release()));
  return out;
}

/** Batch-1 latency of the multi-task model against the three single-task models run one after another, interleaved. */
async function measureInference(opts: MtlBenchOptions, multiDir: string, singleDirs: string[], log: (line: string) => void): Promise<InferenceCost> {
  const { channels, height, width } = opts.spec.input;
  const image = new ort.Tensor('float32', randomBatch(opts.spec, 1, opts.seed).images, [1, channels, height, width]);
  const open = async (dir: string) => (await createSession(path.join(dir, FILES.infer), { threads: opts.threads })).session;
  const multi = await open(multiDir);
  const singles = await Promise.all(singleDirs.map(open));
  const once = async (sessions: ort.InferenceSession[]) => {
    const t0 = performance.now();
    for (const s of sessions) await s.run({ [IO.image]: image });
    return performance.now() - t0;
  };
  await once([multi, ...singles]);
  const multiTimes: number[] = [];
  const singleTimes: number[] = [];
  for (let i = 0; i < opts.inferenceRuns; i++) {
    multiTimes.push(await once([multi]));
    singleTimes.push(await once(singles));
  }
  await Promise.all([multi, ...singles].map((s) => s.release()));
  const multiMs = median(multiTimes);
  const singlesMs = median(singleTimes);
  const macsRatio = inferenceMacs(opts.spec, TASKS) / TASKS.reduce((a, t) => a + inferenceMacs(opts.spec, [t]), 0);
  log(`inference at batch 1: multi-task ${multiMs.toFixed(3)} ms, three single-task ${singlesMs.toFixed(3)} ms`);
  return { multiMs, singlesMs, ratio: multiMs / singlesMs, macsRatio };
}

/** The LibMTL-style table: one row per model, each task's metric, Δm, train time, step and inference cost. */
export function formatMtlTable(r: MtlBenchResult): string {
  const overhead = new Map(r.overhead.map((o) => [o.weighting, o]));
  const dash = '—';
  const headers = ['model', 'weighting', ...TASKS.map((t) => `${TASK_METRICS[t].label} ↑`), 'obj AP ↑', 'Δm % ↑', 'train s', 'step ms', 'step × static', 'inference × 3 single'];
  const rows = r.rows.map((row) => {
    const trained = (t: Task) => row.tasks.includes(t);
    const o = row.model === 'multi' ? overhead.get(row.weighting) : undefined;
    return [
      row.model,
      row.weighting,
      ...TASKS.map((t) => (trained(t) ? row.scores[t] : dash)),
      trained('det') ? row.metrics.objectnessAP : dash,
      row.deltaM === undefined ? dash : `${row.deltaM >= 0 ? '+' : ''}${row.deltaM.toFixed(2)}`,
      row.trainSeconds,
      row.trainStepMs,
      o ? o.ratio : dash,
      row.model === 'multi' ? r.inference.ratio : dash,
    ] as (string | number)[];
  });
  const head = `${r.arch}: ${r.samples} training samples per model (${r.epochs} × ${r.trainCount}), batch ${r.batch}, Adam, lr ${r.lr} cosine, seed ${r.seed}, ${r.threads} threads; test: ${r.testCount} FashionLoc test canvases`;
  const foot = [
    'Δm: mean relative gain over the single-task rows, every metric higher-is-better (Maninis et al. 2019). Single-task rows show only the task they train.',
    `inference: batch-1 latency of one multi-task model over three single-task models run one after another (${r.inference.multiMs.toFixed(3)} vs ${r.inference.singlesMs.toFixed(3)} ms); multiply-accumulates ×${r.inference.macsRatio.toFixed(3)}.`,
    r.overhead.length ? 'step × static: each strategy’s train step (host hooks included) over static λ’s, median of interleaved rounds on one fixed batch.' : 'step × static: not measured.',
  ];
  return [head, table(headers, rows), ...foot].join('\n');
}
