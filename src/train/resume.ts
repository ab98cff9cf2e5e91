/** Where a run starts: fresh weights, a model to fine-tune (--from), or its own checkpoint (--resume). */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { freshCheckpoint, loadCheckpointSync, specDifference, type Checkpoint } from '../artifacts/checkpoint';
import { checkpointFileOf, FILES } from '../artifacts/export';
import { taskVector, type TaskVector } from '../model/tasks';
import type { TrainConfig } from './config';
import type { EpochReport } from './protocol';
import type { WeightingProgress } from './weighting';

/** Everything a checkpoint must hold for --resume to continue exactly where the run stopped. */
export interface TrainProgress {
  /** 0-based epoch and batch of the next step. */
  epoch: number;
  index: number;
  /** The weighting strategy's host state. */
  weighting: WeightingProgress;
  best: number | null;
  badEpochs: number;
  epochs: EpochReport[];
  /** Sums of the task losses over the batches of the current epoch so far, for the epoch mean. */
  lossSums: TaskVector;
  seed: number;
}

export function freshProgress(seed: number): TrainProgress {
  return { epoch: 0, index: 0, weighting: {}, best: null, badEpochs: 0, epochs: [], lossSums: taskVector(), seed };
}

export function startingPoint(config: TrainConfig): { checkpoint: Checkpoint; progress?: TrainProgress } {
  const own = path.join(config.outDir, FILES.checkpoint);
  if (config.resume) {
    if (!existsSync(own)) throw new Error(`--resume: no checkpoint at ${own}`);
    const checkpoint = loadCheckpointSync(own);
    const diff = specDifference(config.spec, checkpoint.spec);
    if (diff) throw new Error(`--resume: ${own} is of another architecture (${diff})`);
    return { checkpoint, progress: checkpoint.progress as TrainProgress | undefined };
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
