/** A training job's configuration: plain data, so it can cross into the trainer worker and into checkpoints. */
import { TASKS, type Task, type TaskVector } from '../model/tasks';
import { STATIC_WEIGHTING, type WeightingChoice } from '../model/weighting/index';
import type { OptimizerName } from '../model/optimizers';
import type { MonitorName } from './monitors';
import type { ScheduleName } from './schedules';
import type { ModelSpec } from '../model/spec';
import type { Device } from '../runtime/execution-providers';

export type DataConfig =
  | {
      kind: 'fashionloc';
      /** Folder with the Fashion-MNIST IDX files; default: found automatically. */
      dir?: string;
      trainCount?: number;
      valCount?: number;
      /** Probability that a canvas holds an item. */
      p?: number;
    }
  | {
      kind: 'annotations';
      /** JSONL annotation file; images are relative to its folder. */
      file: string;
      skipBad?: boolean;
      /** Share of the samples held out for validation (deterministic from the seed). */
      valShare: number;
      maxPixels?: number;
    };

export interface TrainConfig {
  spec: ModelSpec;
  data: DataConfig;
  outDir: string;
  epochs: number;
  batchSize: number;
  lr: number;
  /** Cosine decay to lr·0.01 over the run, or a constant rate, after `warmupSteps` (see schedules.ts). */
  schedule: ScheduleName;
  /** Steps of linear warmup from lr/warmupSteps to lr before the schedule; 0: none. */
  warmupSteps: number;
  optimizer: OptimizerName;
  weightDecay: number;
  /** Clip by global gradient norm; 0 disables. */
  clipNorm: number;
  taskWeights: TaskVector;
  /** How the task losses are combined: a strategy of the registry (model/weighting) with its options. */
  weighting: WeightingChoice;
  /** The tasks trained; the others' losses are left out and their heads kept as they are. */
  tasks: Task[];
  /** Label smoothing ε of the class loss (PyTorch's CrossEntropyLoss(label_smoothing=ε)); 0: none. */
  labelSmoothing: number;
  seed: number;
  device: Device;
  threads: number;
  /** Train steps per ONNX Runtime run; default: the execution provider's (runtime/execution-providers.ts). */
  stepsPerRun?: number;
  /** Flips and brightness jitter, plus the geometric jitter below when set. */
  augment: boolean;
  /** Largest random shift as a fraction of the image size (boxes move with it); 0: none. */
  translate: number;
  /** Largest relative change of scale about the image centre (boxes scale with it); 0: none. */
  scaleJitter: number;
  /** Continue from outDir/checkpoint.safetensors. */
  resume: boolean;
  /** Fine-tune from this model folder or checkpoint file. */
  from?: string;
  freezeTrunk: boolean;
  /** Stop after this many epochs without improvement of `monitor`; 0 disables. */
  patience: number;
  monitor: MonitorName;
  /** Stop after this many steps in total (for quick runs and tests); 0 means no limit. */
  maxSteps: number;
  name?: string;
  lineage?: Record<string, unknown>;
}

export const DEFAULTS: Omit<TrainConfig, 'spec' | 'data' | 'outDir'> = {
  epochs: 10,
  batchSize: 64,
  lr: 2e-3,
  schedule: 'cosine',
  warmupSteps: 0,
  optimizer: 'adam',
  weightDecay: 0,
  clipNorm: 0,
  taskWeights: [1, 1, 1],
  weighting: STATIC_WEIGHTING,
  tasks: [...TASKS],
  labelSmoothing: 0,
  seed: 0,
  device: 'cpu',
  threads: 0,
  augment: true,
  translate: 0,
  scaleJitter: 0,
  resume: false,
  freezeTrunk: false,
  patience: 0,
  monitor: 'val_loss',
  maxSteps: 0,
};
