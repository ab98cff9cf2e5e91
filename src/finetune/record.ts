/** A job's persistent record and the progress events it emits; both are also what the transports send. */
import type { NamedTaskValues } from '../model/tasks';
import type { Metrics } from '../runtime/metrics';
import type { EpochReport, StepProgress, TrainReady } from '../train/progress';

export type { EpochReport, StepProgress, TrainReady };
import type { GateMetric } from './config';
import type { HyperParams } from './hyperparams';

export type JobState = 'queued' | 'running' | 'evaluating' | 'promoting' | 'succeeded' | 'failed' | 'cancelled';

export const ENDED_STATES: readonly JobState[] = ['succeeded', 'failed', 'cancelled'];

export const isEnded = (state: JobState) => ENDED_STATES.includes(state);

export interface DataInfo {
  source: 'upload' | 'folder';
  /** The annotation file as the client named it (upload) or the folder reference it gave. */
  annotations: string;
  samples: number;
  withObject: number;
  withoutObject: number;
  /** Over the annotation file and every image it names, in a fixed order (see dataChecksum). */
  sha256: string;
  bytes: number;
}

export interface Progress {
  step: number;
  totalSteps: number;
  /** 1-based epoch being trained. */
  epoch: number;
  epochs: number;
  loss?: number;
  losses?: NamedTaskValues;
  imagesPerSecond?: number;
}

export interface MetricsPair {
  /** Which set: "held-out" or e.g. "fashionloc-test". */
  name: string;
  samples: number;
  candidate: Metrics;
  serving: Metrics;
}

export interface Evaluation {
  metric: GateMetric;
  tolerance: number;
  heldOut: MetricsPair;
  reference?: MetricsPair;
  /** Why there is no reference set evaluation, when the model has one but it could not be used. */
  referenceSkipped?: string;
}

export interface Decision {
  /** The candidate is not worse than the serving version on every evaluation set. */
  passed: boolean;
  forced: boolean;
  promoted: boolean;
  reason: string;
  /** The version written (whether promoted or not). */
  version: number;
  /** "latest" after the job. */
  latest: number;
}

export interface JobRecord {
  id: string;
  model: string;
  state: JobState;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  /** The serving version the job fine-tunes and is compared against. */
  parentVersion: number;
  params: HyperParams;
  force: boolean;
  data: DataInfo;
  progress: Progress;
  epochs: EpochReport[];
  evaluation?: Evaluation;
  decision?: Decision;
  /** Set once the version number is chosen, before the staging folder is renamed to it. */
  version?: number;
  cancelRequested?: boolean;
  error?: string;
  warnings: string[];
}

/** What a watcher receives, in order: a snapshot first, then live events, `end` last. */
export type JobEvent =
  | { type: 'snapshot'; job: JobRecord }
  | { type: 'state'; state: JobState }
  | { type: 'ready'; ready: TrainReady }
  | { type: 'step'; step: StepProgress }
  | { type: 'epoch'; epoch: EpochReport }
  | { type: 'evaluation'; evaluation: Evaluation }
  | { type: 'decision'; decision: Decision }
  | { type: 'warning'; warning: string }
  | { type: 'end'; job: JobRecord };

export type JobEventType = JobEvent['type'];

/** One version of a model as the fine-tune API lists it. */
export interface VersionInfo {
  version: number;
  latest: boolean;
  createdAt?: string;
  metrics?: Record<string, unknown>;
  lineage?: Record<string, unknown>;
  /** Why the manifest could not be read. */
  error?: string;
}

export interface ModelVersions {
  model: string;
  latest: number;
  versions: VersionInfo[];
  /** Every move of "latest" (artifacts/repository.ts's pointer history). */
  history: { version: number; at: string; reason: string; jobId?: string }[];
}
