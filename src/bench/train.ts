/**
 * Training benchmarks, each a ratio measured side by side in one run:
 * - the train step against the forward pass alone and (where Debian's python3-torch exists) PyTorch;
 * - end-to-end training (data pipeline included) against the bare train step.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildInferGraph } from '../artifacts/graphs';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { initParams, seededRandom } from '../model/params';
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
  torch: boolean;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function randomBatch(spec: ModelSpec, n: number, seed = 1): TrainBatch {
  const random = seededRandom(seed);
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

async function timeIt(runs: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 3; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function torchAvailable(): boolean {
  return spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
}

function torchTimes(spec: ModelSpec, opts: StepBenchOptions): { stepMs: number; forwardMs: number; blas: string } | undefined {
  if (!opts.torch || !torchAvailable()) return undefined;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trident-bench-'));
  try {
    const specFile = path.join(dir, 'spec.json');
    writeFileSync(specFile, JSON.stringify(spec));
    const openblas = '/usr/lib/x86_64-linux-gnu/openblas-pthread';
    const env = { ...process.env, ...(existsSync(openblas) ? { LD_LIBRARY_PATH: openblas } : {}) };
    const script = path.join(__dirname, '..', '..', 'bench', 'torch_reference.py');
    const r = spawnSync('/usr/bin/python3', [script, 'time', specFile, String(opts.batch), String(opts.threads), String(opts.steps)], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`PyTorch reference failed: ${r.stderr}`);
    const parsed = JSON.parse(r.stdout.trim().split('\n').pop()!);
    return { stepMs: parsed.median_ms, forwardMs: parsed.forward_ms, blas: existsSync(openblas) ? 'OpenBLAS (pthread)' : "Debian's default BLAS" };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface StepBenchResult {
  stepMs: number;
  forwardMs: number;
  torch?: { stepMs: number; forwardMs: number; blas: string };
}

export async function benchTrainStep(opts: StepBenchOptions): Promise<StepBenchResult> {
  const params = initParams(opts.spec, 0);
  const runner = await TrainStepRunner.create({ spec: opts.spec, params }, { optimizer: DEFAULT_OPTIMIZER.adam, threads: opts.threads });
  const batch = randomBatch(opts.spec, opts.batch);
  const hyper = { lr: 1e-4, weightDecay: 0, clipNorm: 0, taskWeights: [1, 1, 1] as [number, number, number] };
  const stepMs = await timeIt(opts.steps, () => runner.run(batch, hyper));
  await runner.release();

  const { session } = await createSession(encodeModel(buildInferGraph(opts.spec, params).model), { threads: opts.threads });
  const { channels, height, width } = opts.spec.input;
  const image = new ort.Tensor('float32', batch.images, [opts.batch, channels, height, width]);
  const forwardMs = await timeIt(opts.steps, () => session.run({ image }));
  await session.release();

  return { stepMs, forwardMs, torch: torchTimes(opts.spec, opts) };
}

export interface PipelineBenchResult {
  endToEndImagesPerSecond: number;
  bareImagesPerSecond: number;
}

/** Images/s of a real FashionLoc training job (data rendered, augmented and batched) vs the bare step. */
export async function benchPipeline(spec: ModelSpec, batch: number, threads: number, steps: number): Promise<PipelineBenchResult> {
  const outDir = mkdtempSync(path.join(os.tmpdir(), 'trident-pipeline-'));
  try {
    const job = await TrainJob.start({
      ...DEFAULTS,
      spec,
      data: { kind: 'fashionloc', trainCount: batch * (steps + 5), valCount: batch },
      outDir,
      epochs: 1,
      batchSize: batch,
      threads,
      maxSteps: steps + 5,
    });
    const times: number[] = [];
    job.on('step', (m) => {
      if (m.index >= 5) times.push(m.imagesPerSecond);
    });
    await job.done;
    const endToEndImagesPerSecond = median(times);
    const params = initParams(spec, 0);
    const runner = await TrainStepRunner.create({ spec, params }, { optimizer: DEFAULT_OPTIMIZER.adam, threads });
    const data = randomBatch(spec, batch);
    const hyper = { lr: 1e-4, weightDecay: 0, clipNorm: 0, taskWeights: [1, 1, 1] as [number, number, number] };
    const ms = await timeIt(steps, () => runner.run(data, hyper));
    await runner.release();
    return { endToEndImagesPerSecond, bareImagesPerSecond: (batch * 1000) / ms };
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}
