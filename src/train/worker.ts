/**
 * The trainer worker: owns the ONNX Runtime sessions, runs steps and validation, writes checkpoints.
 * Batches come from the main thread on request, a few ahead, so data preparation overlaps the steps.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { freshCheckpoint, loadCheckpointSync, saveCheckpointSync, specDifference, type Checkpoint } from '../artifacts/checkpoint';
import { checkpointFileOf, exportModel, FILES } from '../artifacts/export';
import { IO, buildEvalGraph } from '../artifacts/graphs';
import type { Batch } from '../data/dataset';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { computeMetrics } from '../runtime/metrics';
import { createSession } from '../runtime/session';
import { STEPS_PER_RUN, TrainStepRunner, batchFeeds, type StepHyper } from '../runtime/train-step';
import { exitWhenAsked } from '../runtime/worker-exit';
import { encodeModel } from '../onnx/serialize';
import type { TrainConfig } from './config';
import type { EpochSummary, FromWorker, ToWorker } from './protocol';
import { learningRate } from './schedule';
import { recordEpoch, taskWeightsFor, type WeightingState } from './weighting';

/** Batches requested ahead: two runs' worth, so the next run's batches are ready when one ends. */
const PREFETCH = 2 * STEPS_PER_RUN;

interface Progress {
  epoch: number;
  index: number;
  weighting: WeightingState;
  best: number | null;
  badEpochs: number;
  epochs: EpochSummary[];
  /** Sum of task losses over the batches of the current epoch so far, for the epoch mean. */
  lossSums: [number, number, number];
  seed: number;
}

const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

const requested = new Set<string>();
const arrived = new Map<string, Batch>();
const waiters = new Map<string, (b: Batch) => void>();
const valCache: Batch[] = [];
let stopRequested = false;
const key = (kind: string, epoch: number, index: number) => `${kind}:${epoch}:${index}`;

function request(kind: 'train' | 'val', epoch: number, index: number): void {
  const k = key(kind, epoch, index);
  if (requested.has(k) || arrived.has(k)) return;
  requested.add(k);
  post({ type: 'need', kind, epoch, index });
}

function take(kind: 'train' | 'val', epoch: number, index: number): Promise<Batch> {
  const k = key(kind, epoch, index);
  const ready = arrived.get(k);
  if (ready) {
    arrived.delete(k);
    return Promise.resolve(ready);
  }
  request(kind, epoch, index);
  return new Promise((resolve) => waiters.set(k, resolve));
}

function deliver(kind: string, epoch: number, index: number, batch: Batch): void {
  const k = key(kind, epoch, index);
  requested.delete(k);
  const resolve = waiters.get(k);
  if (resolve) {
    waiters.delete(k);
    resolve(batch);
  } else arrived.set(k, batch);
}

/** Validation batches never change, so they are fetched once and kept. */
async function valBatch(index: number, count: number): Promise<Batch> {
  if (valCache.length === 0) for (let i = 0; i < count; i++) request('val', 0, i);
  if (!valCache[index]) valCache[index] = await take('val', 0, index);
  return valCache[index];
}

function startingPoint(config: TrainConfig): { checkpoint: Checkpoint; progress?: Progress } {
  const own = path.join(config.outDir, FILES.checkpoint);
  if (config.resume) {
    if (!existsSync(own)) throw new Error(`--resume: no checkpoint at ${own}`);
    const checkpoint = loadCheckpointSync(own);
    const diff = specDifference(config.spec, checkpoint.spec);
    if (diff) throw new Error(`--resume: ${own} is of another architecture (${diff})`);
    return { checkpoint, progress: checkpoint.progress as Progress | undefined };
  }
  if (config.from) {
    const file = checkpointFileOf(config.from);
    const loaded = loadCheckpointSync(file);
    const diff = specDifference(config.spec, loaded.spec);
    if (diff) throw new Error(`--from: ${file} is of another architecture (${diff})`);
    // Fine-tuning keeps the weights and starts the optimizer afresh.
    return { checkpoint: { spec: config.spec, params: loaded.params, buffers: loaded.buffers } };
  }
  return { checkpoint: freshCheckpoint(config.spec, config.seed) };
}

async function validate(
  config: TrainConfig,
  evalSession: ort.InferenceSession,
  runner: TrainStepRunner,
  valBatches: number,
  weights: [number, number, number],
) {
  const numClasses = config.spec.heads.classification.labels.length;
  const probs: number[] = [];
  const obj: number[] = [];
  const boxes: number[] = [];
  const labels: bigint[] = [];
  const objT: number[] = [];
  const boxT: number[] = [];
  const lossSums: [number, number, number] = [0, 0, 0];
  let count = 0;
  for (let i = 0; i < valBatches; i++) {
    const batch = await valBatch(i, valBatches);
    const n = batch.size;
    const feeds: Record<string, ort.Tensor> = {
      ...batchFeeds(config.spec, batch),
      [IO.taskWeights]: new ort.Tensor('float32', Float32Array.from(weights), [3]),
      ...runner.evalTensors(),
    };
    const out = await evalSession.run(feeds);
    const tl = out[IO.taskLosses].data as Float32Array;
    for (let t = 0; t < 3; t++) lossSums[t] += tl[t] * n;
    count += n;
    probs.push(...(out[IO.classProbs].data as Float32Array));
    obj.push(...(out.objectness_prob.data as Float32Array));
    boxes.push(...(out.box_pred.data as Float32Array));
    labels.push(...batch.labels);
    objT.push(...batch.objectness);
    boxT.push(...batch.boxes);
  }
  const valLosses = lossSums.map((s) => s / Math.max(count, 1)) as [number, number, number];
  const metrics = computeMetrics(
    { count, numClasses, classProbs: Float32Array.from(probs), objectness: Float32Array.from(obj), boxes: Float32Array.from(boxes) },
    { labels, objectness: objT, boxes: boxT },
  );
  return { valLosses, metrics };
}

async function train(config: TrainConfig, stepsPerEpoch: number, valBatches: number): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const start = startingPoint(config);
  const optimizer = DEFAULT_OPTIMIZER[config.optimizer];
  const runner = await TrainStepRunner.create(start.checkpoint, {
    optimizer,
    frozen: config.freezeTrunk ? ['trunk'] : [],
    labelSmoothing: config.labelSmoothing,
    device: config.device,
    threads: config.threads,
    log,
  });
  const evalSession = (await createSession(encodeModel(buildEvalGraph(config.spec).model), { device: runner.provider, threads: config.threads })).session;
  const progress: Progress = start.progress ?? {
    epoch: 0,
    index: 0,
    weighting: { history: [] },
    best: null,
    badEpochs: 0,
    epochs: [],
    lossSums: [0, 0, 0],
    seed: config.seed,
  };
  post({ type: 'ready', provider: runner.provider, epoch: progress.epoch, index: progress.index, step: runner.stepsTaken, resumed: !!start.progress });

  const totalSteps = config.epochs * stepsPerEpoch;
  const own = path.join(config.outDir, FILES.checkpoint);
  const saveCheckpoint = () => {
    saveCheckpointSync(own, runner.checkpoint({ ...progress }));
    post({ type: 'checkpoint', file: own, epoch: progress.epoch, index: progress.index });
  };
  let reason: 'finished' | 'early_stop' | 'stopped' | 'max_steps' = 'finished';
  /** Summary of an epoch cut short by maxSteps: reported and exported, but not part of the resumable progress. */
  let partial: EpochSummary | undefined;

  outer: while (progress.epoch < config.epochs) {
    const epochStart = Date.now();
    const weights = taskWeightsFor(config.weighting, config.taskWeights, progress.weighting);
    const summarise = async (): Promise<EpochSummary> => {
      const done = progress.index;
      const trainLosses = progress.lossSums.map((s) => s / Math.max(done, 1)) as [number, number, number];
      const { valLosses, metrics } = await validate(config, evalSession, runner, valBatches, weights);
      return {
        epoch: progress.epoch,
        trainLosses,
        trainLoss: trainLosses.reduce((a, l, t) => a + l * weights[t], 0),
        valLoss: valLosses.reduce((a, l, t) => a + l * weights[t], 0),
        valLosses,
        metrics,
        taskWeights: weights,
        seconds: (Date.now() - epochStart) / 1000,
      };
    };
    for (let k = 0; k < PREFETCH; k++) if (progress.index + k < stepsPerEpoch) request('train', progress.epoch, progress.index + k);
    let lastRunEnd = performance.now();
    while (progress.index < stepsPerEpoch) {
      const { epoch } = progress;
      const stepsLeft = config.maxSteps > 0 ? config.maxSteps - runner.stepsTaken : Infinity;
      const count = Math.min(STEPS_PER_RUN, stepsPerEpoch - progress.index, stepsLeft);
      if (count <= 0) {
        reason = 'max_steps';
        break;
      }
      const batches: Batch[] = [];
      const hypers: StepHyper[] = [];
      for (let j = 0; j < count; j++) {
        const index = progress.index + j;
        const batch = await take('train', epoch, index);
        if (j > 0 && batch.size !== batches[0].size) {
          arrived.set(key('train', epoch, index), batch); // a batch of another size starts the next run
          break;
        }
        if (index + PREFETCH < stepsPerEpoch) request('train', epoch, index + PREFETCH);
        batches.push(batch);
        const lr = learningRate(config, runner.stepsTaken + j, totalSteps);
        hypers.push({ lr, weightDecay: config.weightDecay, clipNorm: config.clipNorm, taskWeights: weights });
      }
      const t0 = performance.now();
      const results = await runner.runSteps(batches, hypers);
      const ended = performance.now();
      const stepMs = (ended - t0) / results.length;
      const wallMs = (ended - lastRunEnd) / results.length;
      lastRunEnd = ended;
      for (const [j, result] of results.entries()) {
        const index = progress.index;
        if (!Number.isFinite(result.loss)) throw new Error(`loss became ${result.loss} at epoch ${epoch + 1}, step ${index + 1}; lower the learning rate`);
        for (let t = 0; t < 3; t++) progress.lossSums[t] += result.taskLosses[t];
        progress.index += 1;
        post({ type: 'step', epoch, index, step: runner.stepsTaken - results.length + j + 1, ...result, lr: hypers[j].lr, stepMs, wallMs });
      }
      if (stopRequested) {
        reason = 'stopped';
        saveCheckpoint();
        break outer;
      }
      if (config.maxSteps > 0 && runner.stepsTaken >= config.maxSteps) {
        reason = 'max_steps';
        break;
      }
    }
    if (reason === 'max_steps' && progress.index < stepsPerEpoch) {
      // Cut short inside an epoch: validate for the report and the exported metrics, but keep the
      // position (epoch, batch, loss sums, weighting, best) so that --resume finishes this epoch exactly.
      partial = await summarise();
      post({ type: 'epoch', summary: partial });
      saveCheckpoint();
      break;
    }
    const summary = await summarise();
    const { valLoss, metrics } = summary;
    progress.epochs.push(summary);
    progress.weighting = recordEpoch(progress.weighting, summary.trainLosses);
    const score = config.monitor === 'val_loss' ? -valLoss : metrics.detectionCorrect;
    if (progress.best === null || score > progress.best) {
      progress.best = score;
      progress.badEpochs = 0;
    } else progress.badEpochs += 1;
    progress.epoch += 1;
    progress.index = 0;
    progress.lossSums = [0, 0, 0];
    post({ type: 'epoch', summary });
    saveCheckpoint();
    if (reason === 'max_steps') break;
    if (config.patience > 0 && progress.badEpochs >= config.patience) {
      reason = 'early_stop';
      break;
    }
    if (stopRequested) {
      reason = 'stopped';
      break;
    }
  }

  if (reason !== 'stopped') {
    const last = partial ?? progress.epochs[progress.epochs.length - 1];
    await exportModel({
      spec: config.spec,
      outDir: config.outDir,
      checkpoint: runner.checkpoint({ ...progress }),
      name: config.name,
      metrics: last ? { validation: last.metrics, validationLoss: last.valLoss, epochs: progress.epochs.length } : {},
      lineage: { ...(config.lineage ?? {}), from: config.from ?? null, seed: config.seed, optimizer: optimizer.name },
    });
  }
  await evalSession.release();
  await runner.release();
  post({ type: 'done', reason, epochs: progress.epochs, outDir: config.outDir });
}

exitWhenAsked();

port.on('message', (m: ToWorker) => {
  if (m.type === 'batch') deliver(m.kind, m.epoch, m.index, m.batch);
  else if (m.type === 'stop') stopRequested = true;
  else if (m.type === 'start') {
    train(m.config, m.stepsPerEpoch, m.valBatches).catch((e: Error) => post({ type: 'error', message: e.message }));
  }
});
