/**
 * The epoch loop: steps through each epoch's batches a run of several steps at a time, validates at
 * the end of each epoch, keeps the resumable progress, and decides when training stops.
 */
import type * as ort from 'onnxruntime-node';
import type { Batch } from '../data/dataset';
import { namedTaskValues, TASK_COUNT, type TaskVector } from '../model/tasks';
import type { StepHyper, TrainStepRunner } from '../runtime/train-step';
import type { BatchQueue } from './batch-queue';
import type { TrainConfig } from './config';
import { MONITORS } from './monitors';
import type { EpochReport, FromTrainer, StepProgress, StopReason } from './protocol';
import type { TrainProgress } from './resume';
import { learningRate } from './schedules';
import { validate } from './validation';
import type { HostWeighting } from './weighting';

export interface EpochLoop {
  config: TrainConfig;
  runner: TrainStepRunner;
  evalSession: ort.InferenceSession;
  batches: BatchQueue;
  stepsPerEpoch: number;
  valBatches: number;
  /** Changed in place as training goes; what checkpoints save. */
  progress: TrainProgress;
  /** The weighting strategy's host side. */
  weighting: HostWeighting;
  stopRequested: () => boolean;
  post: (message: FromTrainer) => void;
  saveCheckpoint: () => void;
}

export interface LoopEnd {
  reason: StopReason;
  /** The report of an epoch cut short by --max-steps: exported, but not part of the resumable progress. */
  partial?: EpochReport;
}

/** Steps in the whole run: every epoch's, or --max-steps where that ends it sooner. */
export function totalSteps(config: TrainConfig, stepsPerEpoch: number): number {
  const all = config.epochs * stepsPerEpoch;
  return config.maxSteps > 0 ? Math.min(all, config.maxSteps) : all;
}

export async function runEpochs(loop: EpochLoop): Promise<LoopEnd> {
  const { config, progress } = loop;
  while (progress.epoch < config.epochs) {
    const started = Date.now();
    // The epoch's λ (DWA changes it per epoch), as reports weigh the losses.
    const weights = loop.weighting.taskWeights();
    const ended = await trainEpoch(loop, weights);
    if (ended === 'stopped') {
      loop.saveCheckpoint();
      return { reason: 'stopped' };
    }
    const trainLosses = progress.lossSums.map((s) => s / Math.max(progress.index, 1)) as TaskVector;
    if (ended === 'max_steps' && progress.index < loop.stepsPerEpoch) {
      // Cut short inside an epoch: validate for the report and the exported metrics, but keep the
      // position (epoch, batch, loss sums, weighting, best) so that --resume finishes this epoch exactly.
      const partial = await report(loop, weights, trainLosses, started);
      loop.post({ type: 'epoch', epoch: partial });
      loop.saveCheckpoint();
      return { reason: 'max_steps', partial };
    }
    const epoch = await report(loop, weights, trainLosses, started);
    closeEpoch(loop, epoch, trainLosses);
    loop.post({ type: 'epoch', epoch });
    loop.saveCheckpoint();
    if (ended === 'max_steps') return { reason: 'max_steps' };
    if (config.patience > 0 && progress.badEpochs >= config.patience) return { reason: 'early_stop' };
    if (loop.stopRequested()) return { reason: 'stopped' };
  }
  return { reason: 'finished' };
}

/** Trains the rest of the current epoch; how it ended. */
async function trainEpoch(loop: EpochLoop, weights: TaskVector): Promise<'complete' | 'stopped' | 'max_steps'> {
  const { config, runner, batches, progress, stepsPerEpoch } = loop;
  const epoch = progress.epoch;
  const total = totalSteps(config, stepsPerEpoch);
  // The schedule spans every epoch: --max-steps interrupts a run (to be resumed), it does not shorten it.
  const scheduled = config.epochs * stepsPerEpoch;
  /** Batches requested ahead: two runs' worth, so the next run's batches are ready when one ends. */
  const prefetch = 2 * runner.stepsPerRun;
  for (let k = 0; k < prefetch; k++) if (progress.index + k < stepsPerEpoch) batches.request('train', epoch, progress.index + k);
  let lastRunEnd = performance.now();
  while (progress.index < stepsPerEpoch) {
    const stepsLeft = config.maxSteps > 0 ? config.maxSteps - runner.stepsTaken : Infinity;
    const count = Math.min(runner.stepsPerRun, loop.weighting.stepsPerRun, stepsPerEpoch - progress.index, stepsLeft);
    const fed = loop.weighting.hyper();
    if (count <= 0) return 'max_steps';
    const run: Batch[] = [];
    const hypers: StepHyper[] = [];
    for (let j = 0; j < count; j++) {
      const index = progress.index + j;
      const batch = await batches.take('train', epoch, index);
      if (j > 0 && batch.size !== run[0].size) {
        batches.putBack('train', epoch, index, batch); // a batch of another size starts the next run
        break;
      }
      if (index + prefetch < stepsPerEpoch) batches.request('train', epoch, index + prefetch);
      run.push(batch);
      const lr = learningRate(config, runner.stepsTaken + j, scheduled);
      hypers.push({ lr, weightDecay: config.weightDecay, clipNorm: config.clipNorm, ...fed });
    }
    const t0 = performance.now();
    const results = await runner.runSteps(run, hypers);
    const ended = performance.now();
    const stepMs = (ended - t0) / results.length;
    const wallMs = (ended - lastRunEnd) / results.length;
    lastRunEnd = ended;
    for (const [j, result] of results.entries()) {
      if (!Number.isFinite(result.loss)) throw new Error(`loss became ${result.loss} at epoch ${epoch + 1}, step ${progress.index + 1}; lower the learning rate`);
      for (let t = 0; t < TASK_COUNT; t++) progress.lossSums[t] += result.taskLosses[t];
      loop.weighting.afterStep(result);
      const step: StepProgress = {
        epoch: epoch + 1,
        epochs: config.epochs,
        index: progress.index,
        stepsPerEpoch,
        step: runner.stepsTaken - results.length + j + 1,
        totalSteps: total,
        loss: result.loss,
        losses: namedTaskValues(result.taskLosses),
        gradNorm: result.gradNorm,
        lr: hypers[j].lr,
        imagesPerSecond: (run[j].size * 1000) / Math.max(wallMs, 1e-3),
        stepMs,
        wallMs,
      };
      if (result.appliedWeights) step.appliedWeights = namedTaskValues(result.appliedWeights as TaskVector);
      progress.index += 1;
      loop.post({ type: 'step', step });
    }
    progress.weighting = loop.weighting.progress();
    if (loop.stopRequested()) return 'stopped';
    if (config.maxSteps > 0 && runner.stepsTaken >= config.maxSteps) return 'max_steps';
  }
  return 'complete';
}

/** Validates and reports the epoch so far; `trainLosses` are its mean task losses. */
async function report(loop: EpochLoop, weights: TaskVector, trainLosses: TaskVector, started: number): Promise<EpochReport> {
  const { valLosses, metrics } = await validate(loop.config.spec, loop.evalSession, loop.runner, loop.batches, loop.valBatches, weights);
  const weighted = (losses: TaskVector) => losses.reduce((a, l, t) => a + l * weights[t], 0);
  return {
    epoch: loop.progress.epoch + 1,
    trainLoss: weighted(trainLosses),
    trainLosses: namedTaskValues(trainLosses),
    valLoss: weighted(valLosses),
    valLosses: namedTaskValues(valLosses),
    metrics,
    taskWeights: namedTaskValues(weights),
    seconds: (Date.now() - started) / 1000,
  };
}

/** Records a finished epoch: weighting history, best score, patience, and the next epoch's start. */
function closeEpoch(loop: EpochLoop, epoch: EpochReport, trainLosses: TaskVector): void {
  const { progress, config } = loop;
  progress.epochs.push(epoch);
  loop.weighting.onEpochEnd(trainLosses);
  const score = MONITORS[config.monitor].score(epoch);
  if (progress.best === null || score > progress.best) {
    progress.best = score;
    progress.badEpochs = 0;
  } else progress.badEpochs += 1;
  progress.weighting = loop.weighting.progress();
  progress.epoch += 1;
  progress.index = 0;
  progress.lossSums.fill(0);
}
