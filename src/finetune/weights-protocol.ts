/** Messages between weights-upload.ts and its worker (weights-worker.ts). */
import type { Checkpoint } from '../artifacts/checkpoint-codec';
import type { Device } from '../runtime/execution-providers';
import type { ReferenceOptions } from './reference';
import type { SetMetrics } from './runner-protocol';

export interface WeightsPlan {
  model: string;
  /** The uploaded weights, decoded and checked on the way in. */
  weights: Pick<Checkpoint, 'params' | 'buffers'>;
  staging: string;
  servingDir: string;
  lineage: Record<string, unknown>;
  reference?: ReferenceOptions;
  device: Device;
  threads: number;
  nice: number;
}

export type WeightsWorkerReply =
  | { type: 'done'; reference?: SetMetrics; referenceSkipped?: string; warning?: string }
  | { type: 'failed'; message: string };
