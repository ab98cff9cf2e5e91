/**
 * The phases of the GPU run (bench/gpu/run.sh starts each in its own process, so that one failing
 * or overrunning phase costs only itself, and so that the environment, such as
 * NVIDIA_TF32_OVERRIDE, can differ per phase). Each writes RESULTS/<phase>.json; `report` merges
 * them into one JSON file and a text summary. With --device cpu the same run checks itself on a
 * CPU-only machine.
 *
 *   node dist/bench/gpu/device.js check     --device D --results DIR [--label L]
 *   node dist/bench/gpu/device.js placement --device D --results DIR
 *   node dist/bench/gpu/device.js step      --device D --results DIR [--quick]
 *   node dist/bench/gpu/device.js serve     --device D --results DIR [--quick]
 *   node dist/bench/gpu/device.js train     --device D --results DIR --seconds S [--quick]
 *   node dist/bench/gpu/device.js report    --results DIR --out DIR
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildTrainStepGraph } from '../../artifacts/graphs';
import { buildMultiStepGraph } from '../../artifacts/multi-step';
import { exportModel } from '../../artifacts/export';
import { freshCheckpoint, loadCheckpoint } from '../../artifacts/checkpoint';
import { fashionLocDataset } from '../../data/dataset';
import { exportFashionLoc } from '../../data/export';
import { FASHIONLOC_EVAL_SEED } from '../../data/fashionloc';
import { findFashionMnistDir, loadFashionMnistSplit } from '../../data/idx';
import { DEFAULT_OPTIMIZER } from '../../model/optimizers';
import { builtinSpec, type ModelSpec } from '../../model/spec';
import { encodeModel } from '../../onnx/serialize';
import { parseProvider, type ProviderName } from '../../runtime/execution-providers';
import { createSession } from '../../runtime/session';
import { TrainStepRunner, type StepHyper } from '../../runtime/train-step';
import { table } from '../../base/table';
import { DEFAULTS } from '../../train/config';
import { evaluateModel } from '../../train/evaluate';
import { TrainJob } from '../../train/job';
import { runServeBenchmark, type ServeBenchResult } from '../serve';
import { median, randomBatch } from '../train';

const ROOT = path.resolve(__dirname, '..', '..', '..');
/** The embedded default model and how it was trained (README, "The embedded default model"): a real `train` phase continues it. */
const DEFAULT_MODEL = {
  folder: 'models/fashionloc/3',
  arch: 'fashionloc-res',
  hyper: { taskWeights: [1, 1, 5] as [number, number, number], optimizer: 'adamw' as const, weightDecay: 0.01, labelSmoothing: 0.1, translate: 0.1, scaleJitter: 0.1 },
};
const HYPER: StepHyper = { lr: 1e-3, weightDecay: 0, clipNorm: 0, taskWeights: [1, 1, 1] };
/** The tolerance for CUDA against CPU after three steps. */
const TOLERANCE = 1e-4;

interface Args {
  phase: string;
  device: ProviderName;
  results: string;
  out?: string;
  label: string;
  quick: boolean;
  seconds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { phase: argv[0], device: 'cuda', results: '', label: 'default', quick: false, seconds: 60 };
  for (let i = 1; i < argv.length; i++) {
    const value = () => argv[++i];
    switch (argv[i]) {
      case '--device': args.device = parseProvider(value()); break;
      case '--results': args.results = value(); break;
      case '--out': args.out = value(); break;
      case '--label': args.label = value(); break;
      case '--seconds': args.seconds = Number(value()); break;
      case '--quick': args.quick = true; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  if (!args.results) throw new Error('--results DIR is required');
  return args;
}

function save(args: Args, name: string, value: unknown): void {
  mkdirSync(args.results, { recursive: true });
  writeFileSync(path.join(args.results, `${name}.json`), `${JSON.stringify(value, null, 1)}\n`);
}

function relL2(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < a.length; i++) {
    diff += (a[i] - b[i]) ** 2;
    norm += b[i] ** 2;
  }
  return Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-30);
}

const relative = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

/**
 * Three steps of `seed` and `fashionloc` on the device and on the CPU from the same weights and
 * batches: losses, parameters and Adam state compared (relative L2 per tensor), once step by step
 * and once as one three-step Scan run.
 */
async function check(args: Args): Promise<void> {
  const specs = args.quick ? ['tiny', 'seed'] : ['seed', 'fashionloc'];
  const rows = [];
  for (const name of specs) {
    const spec = builtinSpec(name);
    const start = freshCheckpoint(spec, 0);
    const batches = [1, 2, 3].map((s) => randomBatch(spec, 32, s));
    const make = (device: ProviderName) => TrainStepRunner.create(start, { optimizer: DEFAULT_OPTIMIZER.adam, device, threads: 0 });
    const reference = await make('cpu');
    const refLosses: number[] = [];
    for (const b of batches) refLosses.push((await reference.run(b, HYPER)).loss);
    for (const grouping of ['one step per run', 'three steps in one run'] as const) {
      const runner = await make(args.device);
      const losses = grouping === 'one step per run' ? [] as number[] : (await runner.runSteps(batches, batches.map(() => HYPER))).map((r) => r.loss);
      if (grouping === 'one step per run') for (const b of batches) losses.push((await runner.run(b, HYPER)).loss);
      const params = runner.params();
      const state = runner.optimizerState().state;
      let worstParam = { name: '', rel: 0 };
      for (const [k, v] of reference.params()) {
        const rel = relL2(params.get(k)!, v);
        if (rel >= worstParam.rel) worstParam = { name: k, rel };
      }
      let worstState = 0;
      for (const [k, v] of reference.optimizerState().state) worstState = Math.max(worstState, relL2(state.get(k)!, v));
      const lossRel = Math.max(...losses.map((l, i) => relative(l, refLosses[i])));
      rows.push({
        spec: name,
        grouping,
        provider: runner.provider,
        losses,
        cpuLosses: refLosses,
        lossRel,
        paramRel: worstParam.rel,
        worstParam: worstParam.name,
        adamStateRel: worstState,
        pass: lossRel <= TOLERANCE && worstParam.rel <= TOLERANCE && worstState <= TOLERANCE,
      });
      await runner.release();
    }
    await reference.release();
  }
  save(args, `check-${args.label}`, { label: args.label, tf32Override: process.env.NVIDIA_TF32_OVERRIDE ?? null, tolerance: TOLERANCE, rows });
}

/** Median milliseconds per run of `fn`, after one warm-up run, over at least `minRuns` runs and `seconds`. */
async function timeRuns(fn: () => Promise<unknown>, seconds: number, minRuns = 3): Promise<number> {
  await fn();
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (times.length < minRuns || performance.now() < end) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/**
 * What onnxruntime-node can keep on the device between runs: outputs asked for as 'gpu-buffer'
 * (its only device location), and the IO-binding path it takes for any preferredOutputLocation,
 * against a plain run. ORT's verbose log (stderr, kept by run.sh) lists where each node landed.
 */
async function placement(args: Args): Promise<void> {
  const spec = builtinSpec(args.quick ? 'tiny' : 'seed');
  const graph = buildMultiStepGraph(buildTrainStepGraph(spec, { optimizer: DEFAULT_OPTIMIZER.adam }));
  const bytes = encodeModel(graph.model);
  const runner = await TrainStepRunner.create(freshCheckpoint(spec, 0), { optimizer: DEFAULT_OPTIMIZER.adam, device: args.device });
  const batch = randomBatch(spec, 64);
  // One verbose session: ORT logs the node placement while it partitions the graph.
  const verbose = await createSession(bytes, { device: args.device, ortOptions: { logSeverityLevel: 0, logVerbosityLevel: 0 } });
  await verbose.session.release();
  const feeds = runner.feedsFor([batch], [HYPER]);
  const probes: Record<string, unknown> = {};
  const seconds = args.quick ? 0.5 : 2;
  const { session } = await createSession(bytes, { device: args.device });
  probes.plain = { ok: true, msPerRun: await timeRuns(() => session.run(feeds), seconds) };
  await session.release();
  // The riskiest probe last, and the result saved after each, in case one takes the process down.
  for (const location of ['cpu', 'gpu-buffer'] as const) {
    save(args, 'placement', { spec: spec.name, batch: 64, stepsPerRun: 1, probes: { ...probes, [location]: { ok: false, error: 'did not finish' } } });
    try {
      const { session: s } = await createSession(bytes, { device: args.device, ortOptions: { preferredOutputLocation: location } });
      const out = await s.run(feeds);
      const locations = [...new Set(Object.values(out).map((t) => t.location))];
      probes[location] = { ok: true, outputLocations: locations, msPerRun: await timeRuns(() => s.run(feeds), seconds) };
      await s.release();
    } catch (e) {
      probes[location] = { ok: false, error: (e as Error).message.split('\n')[0] };
    }
  }
  await runner.release();
  save(args, 'placement', { spec: spec.name, batch: 64, stepsPerRun: 1, probes });
}

/** Per-step milliseconds at each batch size and steps per run, fitted as a fixed cost per run plus a cost per step. */
async function step(args: Args): Promise<void> {
  const plan = args.quick
    ? [{ spec: 'tiny', batches: [64], ks: [1, 4] }]
    : [
        { spec: 'seed', batches: [64, 256], ks: [1, 4, 16, 64] },
        { spec: 'fashionloc', batches: [64, 256], ks: [1, 4, 16] },
      ];
  const seconds = args.quick ? 0.3 : 1.5;
  const rows = [];
  const torch = [];
  for (const p of plan) {
    const spec = builtinSpec(p.spec);
    const runner = await TrainStepRunner.create(freshCheckpoint(spec, 0), { optimizer: DEFAULT_OPTIMIZER.adam, device: args.device });
    for (const batch of p.batches) {
      const b = randomBatch(spec, batch);
      const perK: { k: number; msPerStep: number }[] = [];
      for (const k of p.ks) {
        const batches = Array.from({ length: k }, () => b);
        const ms = await timeRuns(() => runner.runSteps(batches, batches.map(() => HYPER)), seconds);
        perK.push({ k, msPerStep: ms / k });
      }
      // time(run of k steps) = perRun + k · perStep, least squares over the k measured.
      const xs = perK.map((r) => r.k);
      const ys = perK.map((r) => r.msPerStep * r.k);
      const mx = xs.reduce((a, x) => a + x, 0) / xs.length;
      const my = ys.reduce((a, y) => a + y, 0) / ys.length;
      const slope = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0) / Math.max(xs.reduce((a, x) => a + (x - mx) ** 2, 0), 1e-12);
      rows.push({ spec: p.spec, batch, provider: runner.provider, perK, fit: { msPerRun: my - slope * mx, msPerStep: slope } });
    }
    await runner.release();
    torch.push(...torchTimes(args, spec, p.batches, args.quick ? 0.5 : 2));
    save(args, 'step', { rows, torch }); // after each model, so that a phase cut short keeps what it measured
  }
}

function torchTimes(args: Args, spec: ModelSpec, batches: number[], seconds: number): unknown[] {
  const python = process.env.TRIDENT_PYTHON ?? 'python3';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trident-torch-'));
  try {
    const specFile = path.join(dir, 'spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    const r = spawnSync(python, [path.join(ROOT, 'bench', 'gpu', 'torch_step.py'), args.device, specFile, batches.join(','), String(seconds)], { encoding: 'utf8', timeout: 240_000 });
    if (r.status !== 0) return [{ spec: spec.name, error: (r.error?.message ?? r.stderr).trim().split('\n').slice(-3).join(' | ') }];
    return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The project's server and raw ONNX Runtime on the CPU and on the device, REST and gRPC at c=1 and c=64. */
async function serve(args: Args): Promise<void> {
  const devices: ProviderName[] = args.device === 'cpu' ? ['cpu'] : ['cpu', args.device];
  const cpus = os.cpus().length;
  const half = Math.max(1, Math.floor(cpus / 2));
  const pinning = cpus >= 4 ? { serverCpus: `0-${half - 1}`, clientCpus: `${half}-${cpus - 1}` } : {};
  const results: ServeBenchResult[] = [];
  for (const device of devices) {
    // The CPU server gets the pinned half of the cores (two sessions); the GPU one two sessions too.
    const threads = device === 'cpu' ? Math.max(1, Math.floor(half / 2)) : 1;
    results.push(
      await runServeBenchmark({
        models: path.join(ROOT, 'models'),
        device,
        threads,
        instances: 2,
        seconds: args.quick ? 1 : 3,
        concurrencies: [1, 64],
        nodeClient: !existsSync('/usr/bin/wrk'),
        ...pinning,
      }),
    );
  }
  save(args, 'serve', results);
}

/**
 * Training on the device for `seconds`. With Fashion-MNIST's training split on this machine, the
 * default model is trained further and evaluated; without it (it does not fit the carry), the
 * end-to-end throughput of a real job is measured on canvases rendered from the test split, and the
 * weights are thrown away.
 */
async function train(args: Args): Promise<void> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'trident-gpu-train-'));
  try {
    const spec = builtinSpec(DEFAULT_MODEL.arch);
    let dataDir: string | undefined;
    try {
      dataDir = findFashionMnistDir('train', process.env.TRIDENT_FASHION_MNIST_TRAIN);
    } catch {
      dataDir = undefined; // no training split here: the throughput run below
    }
    const real = !args.quick && !!dataDir;
    let data: Parameters<typeof TrainJob.start>[0]['data'];
    let mode: string;
    if (real) {
      data = { kind: 'fashionloc', dir: dataDir };
      mode = `FashionLoc from the Fashion-MNIST training split, continuing ${DEFAULT_MODEL.folder}`;
    } else {
      const test = await loadFashionMnistSplit('test');
      const out = path.join(work, 'canvases');
      await exportFashionLoc({ test }, { out, count: args.quick ? 256 : 4096, split: 'test', seed: 7, size: spec.input.width });
      data = { kind: 'annotations', file: path.join(out, 'annotations.jsonl'), valShare: 0.05 };
      mode = `throughput only: canvases rendered from the test split (${args.quick ? 'a dry run' : 'the training split is not on this machine'}); weights discarded`;
    }
    const batch = args.quick ? 32 : 256;
    const job = await TrainJob.start({
      ...DEFAULTS,
      spec,
      data,
      outDir: path.join(work, 'model'),
      epochs: 1000,
      batchSize: batch,
      lr: real ? 4e-4 : DEFAULTS.lr,
      device: args.device,
      threads: 0,
      ...(real ? { from: path.join(ROOT, DEFAULT_MODEL.folder), ...DEFAULT_MODEL.hyper } : {}),
    });
    const rates: number[] = [];
    let provider = '';
    let steps = 0;
    job.on('ready', (m) => (provider = m.provider));
    job.on('step', (m) => {
      steps += 1;
      if (steps > 8) rates.push(m.imagesPerSecond);
    });
    // A real run keeps time to export and evaluate what it trained.
    const timer = setTimeout(() => job.stop(), Math.max(5, args.seconds - (real ? 45 : 0)) * 1000);
    const done = await job.done;
    clearTimeout(timer);
    const result: Record<string, unknown> = { mode, spec: spec.name, batch, provider, seconds: args.seconds, steps, imagesPerSecond: rates.length ? median(rates) : null, reason: done.reason, epochs: done.epochs.length };
    if (real) result.trained = await exportTrained(args, spec, path.join(work, 'model'));
    save(args, 'train', result);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The stopped run's checkpoint as a model folder, its FashionLoc test metrics, and the folder packed into OUT. */
async function exportTrained(args: Args, spec: ModelSpec, trainDir: string): Promise<unknown> {
  const dir = path.join(trainDir, 'export', 'fashionloc', 'gpu');
  const checkpoint = await loadCheckpoint(path.join(trainDir, 'checkpoint.safetensors'));
  await exportModel({ spec, outDir: dir, checkpoint, training: false, name: 'fashionloc', lineage: { from: DEFAULT_MODEL.folder, trainedOn: args.device } });
  const test = fashionLocDataset({ test: await loadFashionMnistSplit('test') }, spec.input, 'test', { seed: FASHIONLOC_EVAL_SEED, count: 10_000 });
  const { metrics } = await evaluateModel(dir, test, { device: args.device });
  if (args.out) spawnSync('sh', ['-c', `tar -C "${path.dirname(dir)}" -cf - gpu | xz -6 > "${path.join(args.out, 'model.tar.xz')}"`]);
  return { metrics, packed: args.out ? 'model.tar.xz' : null };
}

function fmt(n: unknown, digits = 3): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return String(n);
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(digits);
}

/** Everything the phases wrote, as one JSON file and a text summary with the targets. */
function report(args: Args): void {
  const results: Record<string, unknown> = {};
  for (const f of existsSync(args.results) ? readdirSync(args.results).filter((x) => x.endsWith('.json')).sort() : []) {
    results[f.replace(/\.json$/, '')] = JSON.parse(readFileSync(path.join(args.results, f), 'utf8'));
  }
  const lines: string[] = [];
  for (const [name, value] of Object.entries(results).filter(([k]) => k.startsWith('check-'))) {
    const v = value as { rows: { spec: string; grouping: string; provider: string; lossRel: number; paramRel: number; adamStateRel: number; pass: boolean }[]; tf32Override: string | null };
    lines.push(`${name} (NVIDIA_TF32_OVERRIDE=${v.tf32Override ?? 'unset'}): device against CPU after 3 steps, relative`);
    lines.push(table(['spec', 'grouping', 'on', 'loss', 'params (worst tensor)', 'Adam state', '≤ 1e-4'], v.rows.map((r) => [r.spec, r.grouping, r.provider, fmt(r.lossRel), fmt(r.paramRel), fmt(r.adamStateRel), r.pass ? 'yes' : 'NO'])));
  }
  const step = results.step as { rows: { spec: string; batch: number; provider: string; perK: { k: number; msPerStep: number }[]; fit: { msPerRun: number; msPerStep: number } }[]; torch: { spec: string; batch: number; resident_ms?: number; from_host_ms?: number; error?: string }[] } | undefined;
  if (step) {
    lines.push('', 'train step, ms per step (Adam) by steps per run; fit: fixed ms per run + ms per step; PyTorch eager on the same device');
    lines.push(
      table(
        ['spec', 'batch', 'on', ...['k=1', 'k=4', 'k=16', 'k=64'], 'per run', 'per step', 'torch resident', 'torch from host', 'best / torch resident'],
        step.rows.map((r) => {
          const t = step.torch.find((x) => x.spec === r.spec && x.batch === r.batch);
          const best = Math.min(...r.perK.map((k) => k.msPerStep));
          const col = (k: number) => fmt(r.perK.find((x) => x.k === k)?.msPerStep ?? '-');
          return [r.spec, r.batch, r.provider, col(1), col(4), col(16), col(64), fmt(r.fit.msPerRun), fmt(r.fit.msPerStep), fmt(t?.resident_ms ?? t?.error ?? '-'), fmt(t?.from_host_ms ?? '-'), t?.resident_ms ? fmt(best / t.resident_ms) : '-'];
        }),
      ),
    );
  }
  const placementResult = results.placement as { spec: string; probes: Record<string, { ok: boolean; msPerRun?: number; outputLocations?: string[]; error?: string }> } | undefined;
  if (placementResult) {
    lines.push('', `outputs kept on the device? (one-step run of ${placementResult.spec}, batch 64)`);
    lines.push(table(['preferredOutputLocation', 'result', 'ms per run'], Object.entries(placementResult.probes).map(([k, p]) => [k, p.ok ? `ok, outputs on ${p.outputLocations?.join(', ') ?? 'cpu'}` : `error: ${p.error}`, fmt(p.msPerRun ?? '-')])));
  }
  const serveResult = results.serve as ServeBenchResult[] | undefined;
  if (serveResult) {
    lines.push('', 'serving fashionloc: samples/s (p50 ms)');
    const rows: (string | number)[][] = [];
    for (const r of serveResult) {
      rows.push([r.options.device, 'raw ONNX Runtime batch 1', fmt(r.raw.batch1.throughput), fmt(r.raw.batch1.p50Ms)]);
      rows.push([r.options.device, `raw ONNX Runtime batch ${r.options.maxBatch}`, fmt(r.raw.batched.throughput), fmt(r.raw.batched.p50Ms)]);
      for (const m of r.served) rows.push([r.options.device, `${m.name} c=${m.concurrency}`, fmt(m.throughput), fmt(m.p50Ms)]);
    }
    lines.push(table(['device', 'measure', 'samples/s', 'p50 ms'], rows));
    const at64 = (device: string) => serveResult.find((r) => r.options.device === device)?.served.find((m) => m.name.startsWith('REST tensor') && m.concurrency === 64)?.throughput;
    const cpu = at64('cpu');
    const gpu = serveResult.find((r) => r.options.device !== 'cpu') && at64(serveResult.find((r) => r.options.device !== 'cpu')!.options.device);
    if (cpu && gpu) lines.push(`REST tensor infer c=64, device / CPU server: ${fmt(gpu / cpu)} (target ≥ 5)`);
  }
  const trainResult = results.train as { mode: string; imagesPerSecond: number | null; steps: number; provider: string; batch: number } | undefined;
  if (trainResult) lines.push('', `training on ${trainResult.provider}, batch ${trainResult.batch}: ${fmt(trainResult.imagesPerSecond ?? 'no')} images/s end to end over ${trainResult.steps} steps (${trainResult.mode})`);
  const missing = ['check-fp32', 'step', 'placement', 'serve', 'train'].filter((k) => !(k in results));
  if (missing.length) lines.push('', `phases with no result (failed or out of time; see run.log): ${missing.join(', ')}`);
  const out = args.out ?? args.results;
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, 'results.json'), `${JSON.stringify(results, null, 1)}\n`);
  writeFileSync(path.join(out, 'summary.txt'), `${lines.join('\n')}\n`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

const PHASES: Record<string, (args: Args) => Promise<void> | void> = { check, placement, step, serve, train, report };

if (require.main === module) {
  const args = parseArgs(process.argv.slice(2));
  const phase = PHASES[args.phase];
  if (!phase) throw new Error(`unknown phase "${args.phase}"; phases: ${Object.keys(PHASES).join(', ')}`);
  Promise.resolve(phase(args)).then(
    () => process.exit(0),
    (e: Error) => {
      process.stderr.write(`gpu ${args.phase}: ${e.stack ?? e.message}\n`);
      process.exit(1);
    },
  );
}
