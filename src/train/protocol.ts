/** Messages between a training job (main thread: data, progress, signals) and its trainer worker. */
import type { Batch } from '../data/dataset';
import type { Metrics } from '../runtime/metrics';
import type { TrainConfig } from './config';

export interface EpochSummary {
  epoch: number;
  trainLosses: [number, number, number];
  trainLoss: number;
  valLoss: number;
  valLosses: [number, number, number];
  metrics: Metrics;
  taskWeights: [number, number, number];
  seconds: number;
}

export type ToWorker =
  | { type: 'start'; config: TrainConfig; stepsPerEpoch: number; valBatches: number }
  | { type: 'batch'; kind: 'train' | 'val'; epoch: number; index: number; batch: Batch }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready'; provider: string; epoch: number; index: number; step: number; resumed: boolean }
  | { type: 'need'; kind: 'train' | 'val'; epoch: number; index: number }
  | {
      type: 'step';
      epoch: number;
      index: number;
      step: number;
      loss: number;
      taskLosses: [number, number, number];
      gradNorm: number;
      lr: number;
      /** ONNX Runtime time per step (a run of several steps, divided among them). */
      stepMs: number;
      /** Wall time per step since the previous run ended, waiting for data included. */
      wallMs: number;
    }
  | { type: 'epoch'; summary: EpochSummary }
  | { type: 'checkpoint'; file: string; epoch: number; index: number }
  | { type: 'done'; reason: 'finished' | 'early_stop' | 'stopped' | 'max_steps'; epochs: EpochSummary[]; outDir: string }
  | { type: 'error'; message: string };
