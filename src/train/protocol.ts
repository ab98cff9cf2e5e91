/** Messages between a training job (main thread: data, progress, signals) and its trainer worker. */
import type { Batch } from '../data/dataset';
import type { BatchKind } from './batch-queue';
import type { TrainConfig } from './config';
import type { EpochReport, ReadyInfo, StepProgress } from './progress';

export type { EpochReport, ReadyInfo, StepProgress };

export type StopReason = 'finished' | 'early_stop' | 'stopped' | 'max_steps';

export type ToTrainer =
  | { type: 'start'; config: TrainConfig; stepsPerEpoch: number; valBatches: number }
  | { type: 'batch'; kind: BatchKind; epoch: number; index: number; batch: Batch }
  | { type: 'stop' };

export type FromTrainer =
  | { type: 'ready'; ready: ReadyInfo }
  | { type: 'need'; kind: BatchKind; epoch: number; index: number }
  | { type: 'step'; step: StepProgress }
  | { type: 'epoch'; epoch: EpochReport }
  | { type: 'checkpoint'; file: string; epoch: number; index: number }
  | { type: 'done'; reason: StopReason; epochs: EpochReport[]; outDir: string }
  | { type: 'error'; message: string };
