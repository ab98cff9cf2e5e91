/**
 * Training benchmarks, each a ratio measured side by side in one run:
 * - the train step against the forward pass alone and (where Debian's python3-torch exists) PyTorch;
 * - end-to-end training (data pipeline included) against the bare train step.
 */
import type { TaskVector } from '../model/tasks';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import * as ort from 'onnxruntime-node';
import { buildInferGraph } from '../artifacts/graphs';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { mulberry32 } from '../base/random';
import { freshCheckpoint } from '../artifacts/checkpoint';
import type { ModelSpec } from '../model/spec';
import { encodeModel } from '../onnx/serialize';
import { createSession } from '../runtime/session';
import { TrainStepRunner, type TrainBatch } from '../runtime/train-step';
import { DEFAULTS } from '../train/config';
import { TrainJob } from '../train/job';

export interface StepBenchOptions {
  spec: ModelSpec;
  batch: number;
  threads: number;
  steps: number;
  /** Turns taken by Trident and PyTorch; the steps are spread over them. */
  rounds: number;
  torch: boolean;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function randomBatch(spec: ModelSpec, n: number, seed = 1): TrainBatch {
  const random = mulberry32(seed);
  const { channels, height, width } = spec.input;
  const k = spec.heads.classification.labels.length;
  const images = new Float32Array(n * channels * height * width).map(() => random() * 2 - 1);
  const mask = new Float32Array(n).map(() => (random() < 0.8 ? 1 : 0));
  const boxes = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = random() * 0.5;
    const y = random() * 0.5;
    boxes.set([x, y, x + 0.3 + random() * 0.2, y + 0.3 + random() * 0.2], i * 4);
  }
  const labels = BigInt64Array.from({ length: n }, () => BigInt(Math.floor(random() * k)));
  return { size: n, images, labels, objectness: Float32Array.from(mask), boxes, mask };
}

/** Milliseconds per call of `fn`, divided by `per` (the steps one call takes). */
async function timeIt(runs: number, fn: () => Promise<unknown>, per = 1): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / per);
  }
  return times;
}

/** Train steps as training runs them: the provider's steps per run to an ONNX Runtime run. */
function stepsAsTrainingRunsThem(runner: TrainStepRunner, batch: TrainBatch) {
  const hyper = { lr: 1e-4, weightDecay: 0, clipNorm: 0, taskWeights: [1, 1, 1] as TaskVector };
  const batches = Array.from({ length: runner.stepsPerRun }, () => batch);
  const hypers = batches.map(() => hyper);
  return {
    run: () => runner.runSteps(batches, hypers),
    single: () => runner.run(batch, hyper),
  };
}

function torchAvailable(): boolean {
  return spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

const OPENBLAS_PTHREAD = '/usr/lib/x86_64-linux-gnu/openblas-pthread';

/**
 * PyTorch set up two ways. 'issue' is the baseline the benchmark was specified with: OpenBLAS's
 * pthread build beside torch.set_num_threads(threads). There OpenBLAS starts its own threads next to
 * PyTorch's, the two oversubscribe the cores and step times jump between two modes. 'tuned' is the
 * fastest setup found here: OpenBLAS single-threaded (PyTorch's own threads share the work) and
 * glibc's mmap/trim thresholds raised so large tensors are not returned to the OS and faulted back
 * in on every step.
 */
export const TORCH_SETUPS = {
  issue: {},
  tuned: { OPENBLAS_NUM_THREADS: '1', MALLOC_MMAP_THRESHOLD_: '4294967296', MALLOC_TRIM_THRESHOLD_: '4294967296' },
} as const;
export type TorchSetup = keyof typeof TORCH_SETUPS;

/** The PyTorch reference as a child process that times N steps or forward passes on request. */
class TorchTimer {
  private readonly lines: AsyncIterator<string>;

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly dir: string,
  ) {
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  static async start(spec: ModelSpec, batch: number, threads: number, setup: TorchSetup): Promise<TorchTimer> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'trident-bench-'));
    const specFile = path.join(dir, 'spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    const env = { ...process.env, ...(existsSync(OPENBLAS_PTHREAD) ? { LD_LIBRARY_PATH: OPENBLAS_PTHREAD } : {}), ...TORCH_SETUPS[setup] };
    const script = path.join(__dirname, '..', '..', 'bench', 'torch_reference.py');
    const child = spawn('/usr/bin/python3', [script, 'serve', specFile, String(batch), String(threads)], { env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = new TorchTimer(child, dir);
    try {
      await timer.reply();
    } catch (e) {
      timer.close();
      throw new Error(`PyTorch reference failed to start: ${stderr || (e as Error).message}`);
    }
    return timer;
  }

  async time(what: 'step' | 'forward', count: number): Promise<number[]> {
    this.child.stdin.write(`${what} ${count}\n`);
    return ((await this.reply()) as { ms: number[] }).ms;
  }

  close(): void {
    this.child.stdin.end('quit\n');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async reply(): Promise<unknown> {
    const next = await this.lines.next();
    if (next.done) throw new Error('the PyTorch reference exited');
    return JSON.parse(next.value);
  }
}

export interface TorchFigures {
  stepMs: number;
  forwardMs: number;
  /** Trident's median step over PyTorch's, round by round. */
  stepRatioPerRound: number[];
}

export interface StepBenchResult {
  /** Per step, `stepsPerRun` steps to a run as training takes them. */
  stepMs: number;
  stepsPerRun: number;
  /** Per step, one step to a run. */
  singleStepMs: number;
  forwardMs: number;
  rounds: number;
  /** Where PyTorch is installed: its figures per setup, and the BLAS it ran on. */
  torch?: { blas: string } & Record<TorchSetup, TorchFigures>;
}

const WARM_UP_RUNS = 3;

/**
 * Trident and PyTorch take turns, a round of `steps` each, so that both meet the same machine
 * (other tenants, clock changes) and the ratio does not depend on when each happened to run.
 */
export async function benchTrainStep(opts: StepBenchOptions): Promise<StepBenchResult> {
  const start = freshCheckpoint(opts.spec, 0);
  const runner = await TrainStepRunner.create(start, { optimizer: DEFAULT_OPTIMIZER.adam, threads: opts.threads });
  const { session } = await createSession(encodeModel(buildInferGraph(opts.spec, start.params, start.buffers).model), { threads: opts.threads });
  const setups = Object.keys(TORCH_SETUPS) as TorchSetup[];
  const torch = new Map<TorchSetup, TorchTimer>();
  try {
    if (opts.torch && torchAvailable()) for (const setup of setups) torch.set(setup, await TorchTimer.start(opts.spec, opts.batch, opts.threads, setup));
    const batch = randomBatch(opts.spec, opts.batch);
    const { channels, height, width } = opts.spec.input;
    const image = new ort.Tensor('float32', batch.images, [opts.batch, channels, height, width]);
    const steps = stepsAsTrainingRunsThem(runner, batch);
    const ours = {
      step: (runs: number) => timeIt(runs, steps.run, runner.stepsPerRun),
      single: (runs: number) => timeIt(runs, steps.single),
      forward: (runs: number) => timeIt(runs, () => session.run({ image })),
    };
    await ours.step(1);
    await ours.single(WARM_UP_RUNS);
    await ours.forward(WARM_UP_RUNS);
    for (const timer of torch.values()) {
      await timer.time('step', WARM_UP_RUNS);
      await timer.time('forward', WARM_UP_RUNS);
    }

    const perRound = Math.max(1, Math.ceil(opts.steps / opts.rounds));
    const step: number[] = [];
    const single: number[] = [];
    const forward: number[] = [];
    const theirs = new Map(setups.map((s) => [s, { step: [] as number[], forward: [] as number[], ratios: [] as number[] }]));
    for (let r = 0; r < opts.rounds; r++) {
      const ourRound = await ours.step(Math.ceil(perRound / runner.stepsPerRun));
      step.push(...ourRound);
      single.push(...(await ours.single(perRound)));
      forward.push(...(await ours.forward(perRound)));
      for (const [setup, timer] of torch) {
        const t = theirs.get(setup)!;
        const theirRound = await timer.time('step', perRound);
        t.step.push(...theirRound);
        t.forward.push(...(await timer.time('forward', perRound)));
        t.ratios.push(median(ourRound) / median(theirRound));
      }
    }
    const figures = (setup: TorchSetup): TorchFigures => {
      const t = theirs.get(setup)!;
      return { stepMs: median(t.step), forwardMs: median(t.forward), stepRatioPerRound: t.ratios };
    };
    return {
      stepMs: median(step),
      stepsPerRun: runner.stepsPerRun,
      singleStepMs: median(single),
      forwardMs: median(forward),
      rounds: opts.rounds,
      torch: torch.size ? { blas: existsSync(OPENBLAS_PTHREAD) ? 'OpenBLAS (pthread)' : "Debian's default BLAS", issue: figures('issue'), tuned: figures('tuned') } : undefined,
    };
  } finally {
    for (const timer of torch.values()) timer.close();
    await runner.release();
    await session.release();
  }
}

export interface PipelineBenchResult {
  endToEndImagesPerSecond: number;
  bareImagesPerSecond: number;
}

/**
 * Images/s of a real FashionLoc training job (data rendered, augmented and batched) vs the bare
 * step, in alternating rounds: a short job, then as many bare steps, and again.
 */
export async function benchPipeline(spec: ModelSpec, batch: number, threads: number, steps: number, rounds = 2): Promise<PipelineBenchResult> {
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'trident-pipeline-'));
  const runner = await TrainStepRunner.create(freshCheckpoint(spec, 0), { optimizer: DEFAULT_OPTIMIZER.adam, threads });
  const skip = 2 * runner.stepsPerRun;
  try {
    const run = stepsAsTrainingRunsThem(runner, randomBatch(spec, batch)).run;
    await timeIt(1, run);
    const endToEnd: number[] = [];
    const bare: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const job = await TrainJob.start({
        ...DEFAULTS,
        spec,
        data: { kind: 'fashionloc', trainCount: batch * (steps + skip), valCount: batch },
        outDir: path.join(outDir, String(r)),
        epochs: 1,
        batchSize: batch,
        threads,
        maxSteps: steps + skip,
      });
      job.on('step', (m) => {
        if (m.index >= skip) endToEnd.push(m.imagesPerSecond);
      });
      await job.done;
      for (const ms of await timeIt(Math.ceil(steps / runner.stepsPerRun), run, runner.stepsPerRun)) bare.push((batch * 1000) / ms);
    }
    return { endToEndImagesPerSecond: median(endToEnd), bareImagesPerSecond: median(bare) };
  } finally {
    await runner.release();
    rmSync(outDir, { recursive: true, force: true });
  }
}
