/**
 * A training run's progress as every client sees it. StepProgress and EpochReport are made once, by
 * the trainer, and travel unchanged: the CLI's --json lines, a fine-tune job's record, its SSE events
 * and (field by field) gRPC. Pure types, shared with the web app.
 */
import type { NamedTaskValues } from '../model/tasks';
import type { Metrics } from '../runtime/metrics';

export interface StepProgress {
  /** 1-based epoch, of `epochs`. */
  epoch: number;
  epochs: number;
  /** 0-based batch within the epoch, of `stepsPerEpoch`. */
  index: number;
  stepsPerEpoch: number;
  /** Steps taken in all (1-based), of `totalSteps` (fewer than epochs × stepsPerEpoch when --max-steps ends the run sooner). */
  step: number;
  totalSteps: number;
  loss: number;
  losses: NamedTaskValues;
  gradNorm: number;
  lr: number;
  /** Samples of this step over its wall time. */
  imagesPerSecond: number;
  /** ONNX Runtime time per step (a run of several steps, divided among them). */
  stepMs: number;
  /** Wall time per step since the previous run ended, waiting for data included. */
  wallMs: number;
}

export interface EpochReport {
  /** 1-based. */
  epoch: number;
  trainLoss: number;
  trainLosses: NamedTaskValues;
  valLoss: number;
  valLosses: NamedTaskValues;
  /** Validation metrics. */
  metrics: Metrics;
  taskWeights: NamedTaskValues;
  seconds: number;
}

export interface ReadyInfo {
  provider: string;
  /** Where the run starts: 1-based epoch, 0-based batch, steps already taken. */
  epoch: number;
  index: number;
  step: number;
  resumed: boolean;
  stepsPerEpoch: number;
  totalSteps: number;
}

/** The trainer's ready report with the data set's sizes. */
export type TrainReady = ReadyInfo & { trainSamples: number; valSamples: number };

