/** Messages between the job manager (main thread) and a job's runner worker. */
import type { Device } from '../runtime/execution-providers';
import type { Metrics } from '../runtime/metrics';
import type { TrainConfig } from '../train/config';
import type { EpochReport, StepProgress, TrainReady } from './record';
import type { ReferenceOptions } from './reference';

export interface RunPlan {
  train: TrainConfig;
  /** The serving version's folder, evaluated beside the candidate. */
  servingDir: string;
  reference?: ReferenceOptions;
  device: Device;
  threads: number;
  nice: number;
}

export interface SetMetrics {
  name: string;
  samples: number;
  candidate: Metrics;
  serving: Metrics;
}

export type ToRunner = { type: 'start'; plan: RunPlan } | { type: 'cancel' };

export type FromRunner =
  | { type: 'ready'; ready: TrainReady }
  | { type: 'step'; step: StepProgress }
  | { type: 'epoch'; epoch: EpochReport }
  | { type: 'warning'; message: string }
  | { type: 'trained'; reason: string }
  | { type: 'evaluated'; heldOut: SetMetrics; reference?: SetMetrics; referenceSkipped?: string }
  | { type: 'cancelled' }
  | { type: 'failed'; message: string };
