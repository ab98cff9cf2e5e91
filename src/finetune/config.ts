/** Everything the fine-tune job system can be told, with defaults sized for a 2-core server. */
import type { Metrics } from '../runtime/metrics';
import type { Device } from '../runtime/execution-providers';

/** Metrics where higher is better; the promotion gate compares one of them. */
export type GateMetric = keyof Omit<Metrics, 'samples' | 'objects' | 'perClassAccuracy'>;

export const GATE_METRICS: readonly GateMetric[] = [
  'classAccuracy',
  'objectnessPrecision',
  'objectnessRecall',
  'objectnessF1',
  'objectnessAP',
  'boxMeanIoU',
  'boxIoUAbove50',
  'detectionCorrect',
];

export interface UploadLimits {
  /** All files of one upload together. */
  maxUploadBytes: number;
  maxFileBytes: number;
  maxFiles: number;
  /** Non-blank annotation lines. */
  maxSamples: number;
  /** Largest image (width × height) decoded. */
  maxPixels: number;
}

export interface FinetuneConfig {
  /** Keys for creating and cancelling jobs, rollback and uploads; separate from inference keys. */
  apiKeys: string[];
  /** Allows those actions without a key; must be set on purpose. */
  authDisabled: boolean;
  limits: UploadLimits;
  /** Jobs waiting to start (all models together); one more is refused as unavailable. */
  maxQueuedJobs: number;
  /** Jobs training at once (all models together). */
  maxRunningJobs: number;
  /**
   * ONNX Runtime intra-op threads of the trainer and the evaluation. On 2 cores: 1, so that
   * serving keeps the other core.
   */
  threads: number;
  device: Device;
  /** Nice value of the job's threads (Linux): serving wins the cores when both want them; 0 keeps normal priority. */
  nice: number;
  gate: {
    metric: GateMetric;
    /** The candidate passes when metric ≥ serving's metric − tolerance, on every evaluation set. */
    tolerance: number;
  };
  /**
   * The reference evaluation set used for models whose labels are Fashion-MNIST's: this many
   * FashionLoc test canvases (fixed seed), or false to judge on the held-out share alone.
   */
  reference: { count: number; fashionMnistDir?: string } | false;
  /** Folders whose data a job may name instead of uploading it (absolute paths). */
  dataFolders: string[];
  /** Upper bounds for hyper-parameters a request may ask for. */
  maxEpochs: number;
  maxSteps: number;
  maxBatchSize: number;
  /** How long a cancelled job may take to stop before its worker is terminated. */
  cancelGraceMs: number;
}

const MIB = 1024 * 1024;

export const DEFAULT_FINETUNE_CONFIG: Readonly<FinetuneConfig> = Object.freeze({
  apiKeys: [],
  authDisabled: false,
  limits: Object.freeze({
    maxUploadBytes: 256 * MIB,
    maxFileBytes: 16 * MIB,
    maxFiles: 10_000,
    // Decoded samples stay in memory while training: 5000 at 64×64 RGB are about 250 MB.
    maxSamples: 5_000,
    maxPixels: 16_000_000,
  }),
  maxQueuedJobs: 4,
  maxRunningJobs: 1,
  threads: 1,
  device: 'cpu',
  nice: 10,
  gate: Object.freeze({ metric: 'detectionCorrect', tolerance: 0 }),
  reference: Object.freeze({ count: 500 }),
  dataFolders: [],
  maxEpochs: 200,
  maxSteps: 1_000_000,
  maxBatchSize: 1024,
  cancelGraceMs: 10_000,
}) as Readonly<FinetuneConfig>;

export function finetuneConfig(overrides: Partial<FinetuneConfig> = {}): FinetuneConfig {
  const base = DEFAULT_FINETUNE_CONFIG;
  return {
    ...base,
    ...overrides,
    limits: { ...base.limits, ...overrides.limits },
    gate: { ...base.gate, ...overrides.gate },
  };
}
