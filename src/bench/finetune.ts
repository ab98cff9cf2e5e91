/**
 * Fine-tuning while serving, measured side by side in one run:
 * - serving latency (p50/p99) at concurrency 16, idle and while a fine-tune job trains, in rounds
 *   (idle, job, idle) whose median ratio is reported; target: p99 during the job ≤ 2 × idle p99;
 * - the job's training throughput (alone and under that load) against the CLI's training on the
 *   same data (TrainJob in-process, as `trident train --from` runs it).
 *
 * Everything goes through the public REST API: POST /v2/models/NAME/predict for the load,
 * POST /v2/models/NAME/finetune, GET …/events and POST …/cancel for the job.
 *
 *   node dist/bench/finetune.js                      # starts its own server (see finetune-server.ts)
 *   node dist/bench/finetune.js --server URL --models DIR --api-key KEY --data DIR/annotations.jsonl
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { readManifest } from '../artifacts/manifest';
import { servingVersion } from '../artifacts/repository';
import { exportFashionLoc } from '../data/export';
import { loadFashionMnistSplit } from '../data/idx';
import type { StepProgress } from '../finetune/record';
import { SERVER_NODE_FLAGS } from '../serve/node-flags';
import { readSseEvents } from '../serve/rest/sse';
import { DEFAULTS } from '../train/config';
import { TrainJob } from '../train/job';
import { median } from './train';
import { BENCH_KEY } from './finetune-server';

export interface FinetuneBenchOptions {
  /** A server with predict and fine-tune on one URL; default: start one (inference + fine-tune router). */
  server?: string;
  model: string;
  /** annotations.jsonl to fine-tune on; default: FashionLoc canvases exported for the run. */
  data?: string;
  /** The model repository on this machine, for the CLI comparison (taken from the started server by default). */
  models?: string;
  apiKey?: string;
  concurrency: number;
  /** Length of each measured phase. */
  seconds: number;
  rounds: number;
  batch: number;
  samples: number;
  /** ONNX Runtime threads of the started server's inference session. */
  servingThreads: number;
  /** Nice value of the started server's job threads. */
  nice: number;
}

export interface LatencyResult {
  requests: number;
  errors: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

export interface FinetuneBenchReport {
  idle: LatencyResult;
  duringJob: LatencyResult;
  /** Median over the rounds of p99 during the job / idle p99 of the same round. */
  p99Ratio: number;
  roundRatios: number[];
  jobAloneImagesPerSecond: number;
  jobUnderLoadImagesPerSecond: number;
  cliImagesPerSecond?: { oneThread: number; allThreads: number };
  batch: number;
  samples: number;
}

const MODEL_ROOT = path.join(__dirname, '..', '..', 'models');

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))];
}

interface Measured extends LatencyResult {
  latencies: number[];
  seconds: number;
}

function summarise(latencies: number[], errors: number, seconds: number): Measured {
  const sorted = [...latencies].sort((a, b) => a - b);
  return { latencies: sorted, seconds, requests: sorted.length, errors, perSecond: sorted.length / seconds, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) };
}

const merge = (a: Measured, b: Measured): Measured => summarise([...a.latencies, ...b.latencies], a.errors + b.errors, a.seconds + b.seconds);

const result = ({ latencies: _, seconds: __, ...r }: Measured): LatencyResult => r;

/** Closed-loop load: `concurrency` clients each send one predict after another for `seconds`. */
async function load(url: string, images: Buffer[], concurrency: number, seconds: number): Promise<Measured> {
  const latencies: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const client = async (k: number) => {
    for (let i = k; performance.now() < deadline; i += concurrency) {
      const t0 = performance.now();
      try {
        const response = await fetch(url, { method: 'POST', body: images[i % images.length], headers: { 'content-type': 'image/png' } });
        await response.arrayBuffer();
        if (response.ok) latencies.push(performance.now() - t0);
        else errors++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, k) => client(k)));
  return summarise(latencies, errors, (performance.now() - started) / 1000);
}

async function uploadForm(jsonl: string, params: Record<string, unknown>): Promise<FormData> {
  const root = path.dirname(jsonl);
  const text = await fs.readFile(jsonl, 'utf8');
  const form = new FormData();
  form.append('params', JSON.stringify(params));
  form.append('annotations', new Blob([text]), 'annotations.jsonl');
  const files = new Set(text.split('\n').filter((l) => l.trim()).map((l) => (JSON.parse(l) as { file: string }).file));
  for (const file of files) form.append('images', new Blob([await fs.readFile(path.join(root, file))]), file);
  return form;
}

/** A running fine-tune job followed through its event stream. */
class FollowedJob {
  readonly steps: { at: number; step: StepProgress }[] = [];
  readonly ended: Promise<string>;
  private readyResolve!: () => void;
  readonly ready = new Promise<void>((resolve) => (this.readyResolve = resolve));

  constructor(
    private readonly server: string,
    readonly id: string,
    private readonly key: string,
  ) {
    this.ended = this.follow();
  }

  private async follow(): Promise<string> {
    const response = await fetch(`${this.server}/v2/finetune/jobs/${this.id}/events`);
    for await (const event of readSseEvents(response.body!)) {
      if (event.event === 'step') {
        this.steps.push({ at: performance.now(), step: JSON.parse(event.data) as StepProgress });
        if (this.steps.length === 3) this.readyResolve();
      }
      if (event.event === 'end') {
        this.readyResolve();
        return (JSON.parse(event.data) as { state: string; error?: string }).state;
      }
    }
    return 'stream ended';
  }

  /** Training images per second over steps that finished within [from, to]. */
  imagesPerSecond(from: number, to: number, batch: number): number {
    const inside = this.steps.filter((s) => s.at >= from && s.at <= to);
    return inside.length < 2 ? NaN : ((inside.length - 1) * batch * 1000) / (inside[inside.length - 1].at - inside[0].at);
  }

  async cancel(): Promise<void> {
    await fetch(`${this.server}/v2/finetune/jobs/${this.id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${this.key}` } });
    await this.ended;
  }
}

/** Images/s of the CLI's training path (TrainJob in this process) on the same data and model. */
async function cliThroughput(modelDir: string, jsonl: string, batch: number, threads: number, steps: number): Promise<number> {
  const manifest = await readManifest(modelDir);
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'trident-bench-cli-'));
  try {
    const job = await TrainJob.start({
      ...DEFAULTS,
      spec: manifest.spec,
      data: { kind: 'annotations', file: jsonl, valShare: 0.1 },
      outDir,
      from: modelDir,
      epochs: 1000,
      maxSteps: steps,
      batchSize: batch,
      lr: 1e-4,
      threads,
    });
    const rates: number[] = [];
    job.on('step', (m) => {
      if (m.step > 3) rates.push(m.imagesPerSecond);
    });
    await job.done;
    return median(rates);
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

interface Target {
  inference: string;
  finetune: string;
  models?: string;
  jsonl: string;
  key: string;
  close(): Promise<void>;
}

/** Copies the embedded default model into a scratch repository, exports FashionLoc canvases as the upload, starts the server. */
async function startOwnServer(opts: FinetuneBenchOptions): Promise<Target> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'trident-bench-ft-'));
  const models = path.join(scratch, 'models');
  cpSync(path.join(MODEL_ROOT, opts.model), path.join(models, opts.model), { recursive: true });
  const dataFolder = path.join(scratch, 'data');
  const jsonl = opts.data ?? (await exportFashionLoc({ test: await loadFashionMnistSplit('test') }, { out: path.join(dataFolder, 'set'), count: opts.samples, split: 'test', seed: 7 })).annotations;
  const child: ChildProcess = spawn(process.execPath, [...SERVER_NODE_FLAGS, path.join(__dirname, 'finetune-server.js'), models, dataFolder, String(opts.servingThreads), String(opts.nice)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const ports = await new Promise<{ inference: number; finetune: number }>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
    child.once('exit', (code) => reject(new Error(`the benchmark server exited with code ${code}`)));
  });
  return {
    inference: `http://127.0.0.1:${ports.inference}`,
    finetune: `http://127.0.0.1:${ports.finetune}`,
    models,
    jsonl,
    key: BENCH_KEY,
    close: async () => {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}

interface Round {
  idle: Measured;
  during: Measured;
  aloneImagesPerSecond?: number;
  underLoadImagesPerSecond: number;
}

/**
 * Idle load (half before the job, half after it), a job started, optionally its training alone,
 * the same load while it trains, the job cancelled. Rounds repeat this, so that bursts of other
 * work on the machine do not decide the outcome.
 */
async function round(target: Target, opts: FinetuneBenchOptions, predict: string, images: Buffer[], form: () => Promise<FormData>, measureAlone: boolean): Promise<Round> {
  const idleBefore = await load(predict, images, opts.concurrency, opts.seconds / 2);
  const created = await fetch(`${target.finetune}/v2/models/${opts.model}/finetune`, { method: 'POST', body: await form(), headers: { authorization: `Bearer ${target.key}` } });
  if (created.status !== 201) throw new Error(`the server refused the job (${created.status}): ${await created.text()}`);
  const job = new FollowedJob(target.finetune, ((await created.json()) as { id: string }).id, target.key);
  await job.ready;
  let aloneImagesPerSecond: number | undefined;
  if (measureAlone) {
    const from = performance.now();
    await new Promise((resolve) => setTimeout(resolve, (opts.seconds * 1000) / 2));
    aloneImagesPerSecond = job.imagesPerSecond(from, performance.now(), opts.batch);
  }
  const loadFrom = performance.now();
  const during = await load(predict, images, opts.concurrency, opts.seconds);
  const underLoadImagesPerSecond = job.imagesPerSecond(loadFrom, performance.now(), opts.batch);
  await job.cancel();
  const idle = merge(idleBefore, await load(predict, images, opts.concurrency, opts.seconds / 2));
  return { idle, during, aloneImagesPerSecond, underLoadImagesPerSecond };
}

export async function benchFinetune(opts: FinetuneBenchOptions): Promise<FinetuneBenchReport> {
  let target: Target;
  if (opts.server) {
    if (!opts.data) throw new Error('--data is needed with --server');
    target = { inference: opts.server, finetune: opts.server, models: opts.models, jsonl: opts.data, key: opts.apiKey ?? '', close: async () => {} };
  } else target = await startOwnServer(opts);
  try {
    const text = await fs.readFile(target.jsonl, 'utf8');
    const files = text.split('\n').filter((l) => l.trim()).slice(0, 32).map((l) => (JSON.parse(l) as { file: string }).file);
    const images = await Promise.all(files.map((f) => fs.readFile(path.join(path.dirname(target.jsonl), f))));
    const predict = `${target.inference}/v2/models/${opts.model}/predict`;

    await load(predict, images, opts.concurrency, Math.min(3, opts.seconds)); // warm-up
    const form = () => uploadForm(target.jsonl, { steps: 1_000_000, batch_size: opts.batch, lr: 1e-4, val_share: 0.1 });
    const rounds: Round[] = [];
    for (let r = 0; r < opts.rounds; r++) rounds.push(await round(target, opts, predict, images, form, r === 0));
    const idle = rounds.map((r) => r.idle).reduce(merge);
    const duringJob = rounds.map((r) => r.during).reduce(merge);
    const ratios = rounds.map((r) => r.during.p99Ms / r.idle.p99Ms);

    let cliImagesPerSecond: FinetuneBenchReport['cliImagesPerSecond'];
    if (target.models) {
      const modelDir = path.join(target.models, opts.model);
      const from = path.join(modelDir, String(await servingVersion(modelDir)));
      const steps = 25;
      cliImagesPerSecond = {
        oneThread: await cliThroughput(from, target.jsonl, opts.batch, 1, steps),
        allThreads: await cliThroughput(from, target.jsonl, opts.batch, 0, steps),
      };
    }
    return {
      idle: result(idle),
      duringJob: result(duringJob),
      p99Ratio: median(ratios),
      roundRatios: ratios,
      jobAloneImagesPerSecond: rounds[0].aloneImagesPerSecond!,
      jobUnderLoadImagesPerSecond: median(rounds.map((r) => r.underLoadImagesPerSecond)),
      cliImagesPerSecond,
      batch: opts.batch,
      samples: text.split('\n').filter((l) => l.trim()).length,
    };
  } finally {
    await target.close();
  }
}

export function formatFinetuneBench(r: FinetuneBenchReport, opts: FinetuneBenchOptions): string {
  const ms = (v: number) => v.toFixed(1);
  const rate = (v: number) => v.toFixed(0);
  const lines = [
    `serving ${opts.model}: POST predict, concurrency ${opts.concurrency}, ${opts.rounds} rounds of ${opts.seconds} s idle + ${opts.seconds} s during a job; fine-tune batch ${r.batch} on ${r.samples} samples`,
    opts.server
      ? `server ${opts.server}`
      : `started server: inference ${opts.servingThreads} thread(s); job 1 ONNX Runtime thread at nice ${opts.nice}; ${os.availableParallelism()} cores`,
    '',
    'serving latency      requests   req/s   p50 ms   p99 ms   errors',
    `idle                 ${String(r.idle.requests).padStart(8)} ${rate(r.idle.perSecond).padStart(7)} ${ms(r.idle.p50Ms).padStart(8)} ${ms(r.idle.p99Ms).padStart(8)} ${String(r.idle.errors).padStart(8)}`,
    `during fine-tune     ${String(r.duringJob.requests).padStart(8)} ${rate(r.duringJob.perSecond).padStart(7)} ${ms(r.duringJob.p50Ms).padStart(8)} ${ms(r.duringJob.p99Ms).padStart(8)} ${String(r.duringJob.errors).padStart(8)}`,
    `p99 during / idle, median of rounds: ${r.p99Ratio.toFixed(2)} (rounds: ${r.roundRatios.map((x) => x.toFixed(2)).join(', ')}; target ≤ 2: ${r.p99Ratio <= 2 ? 'met' : 'NOT met'})`,
    '',
    'training throughput (images/s)',
    `server job, alone            ${rate(r.jobAloneImagesPerSecond)}`,
    `server job, under the load   ${rate(r.jobUnderLoadImagesPerSecond)}`,
  ];
  if (r.cliImagesPerSecond) {
    lines.push(
      `CLI (TrainJob), 1 thread     ${rate(r.cliImagesPerSecond.oneThread)}`,
      `CLI (TrainJob), all threads  ${rate(r.cliImagesPerSecond.allThreads)}`,
      `server job alone / CLI 1 thread: ${(r.jobAloneImagesPerSecond / r.cliImagesPerSecond.oneThread).toFixed(2)}`,
    );
  } else lines.push('CLI comparison skipped: give --models (the repository on this machine)');
  return lines.join('\n');
}

if (require.main === module) {
  const program = new Command('bench-finetune')
    .option('--server <url>', 'an integrated server (predict + fine-tune on one URL); default: start one')
    .option('--model <name>', 'served model', 'fashionloc')
    .option('--data <annotations.jsonl>', 'data to fine-tune on (default: exported FashionLoc canvases)')
    .option('--models <dir>', "the server's model repository on this machine, for the CLI comparison")
    .option('--api-key <key>', 'fine-tune API key (with --server)', process.env.TRIDENT_API_KEY)
    .option('--concurrency <n>', 'concurrent predict clients', '16')
    .option('--seconds <s>', 'length of each measured phase', '8')
    .option('--rounds <n>', 'idle / during-job rounds (the median ratio is reported)', '3')
    .option('--batch <n>', 'fine-tune batch size', '32')
    .option('--samples <n>', 'exported FashionLoc samples', '512')
    .option('--serving-threads <n>', 'inference threads of the started server', '1')
    .option('--nice <n>', "nice value of the started server's job threads (0: normal priority)", '10')
    .option('--json', 'also print the figures as JSON')
    .parse();
  const o = program.opts();
  const opts: FinetuneBenchOptions = {
    server: o.server,
    model: o.model,
    data: o.data,
    models: o.models,
    apiKey: o.apiKey,
    concurrency: Number(o.concurrency),
    seconds: Number(o.seconds),
    rounds: Number(o.rounds),
    batch: Number(o.batch),
    samples: Number(o.samples),
    servingThreads: Number(o.servingThreads),
    nice: Number(o.nice),
  };
  benchFinetune(opts).then(
    (report) => process.stdout.write(`${formatFinetuneBench(report, opts)}\n${o.json ? `${JSON.stringify(report)}\n` : ''}`),
    (e: Error) => {
      process.stderr.write(`bench-finetune: ${e.message}\n`);
      process.exitCode = 1;
    },
  );
}
