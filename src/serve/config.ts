/** Everything the server can be told, with the defaults the CLI starts from. */
import type { Device } from '../runtime/execution-providers';
import type { VersionPolicy } from '../runtime/model-registry';
import type { FinetuneConfig } from '../finetune/config';

export interface ServeConfig {
  /** Model repository root: NAME/VERSION/ folders. */
  models: string;
  host: string;
  httpPort: number;
  /** gRPC port; undefined disables gRPC. */
  grpcPort?: number;
  device: Device;
  /** Worker threads (sessions) per model version. */
  instances: number;
  /** ONNX Runtime intra-op threads per session. */
  threads: number;
  maxBatch: number;
  maxQueueDelayMs: number;
  /** Samples allowed to wait per model version before requests are refused as overload. */
  maxQueueSize: number;
  versionPolicy: VersionPolicy;
  /** Largest accepted HTTP body (after decompression). */
  maxBodyBytes: number;
  /** Largest accepted gRPC message. */
  maxGrpcMessageBytes: number;
  /** Largest image (width × height) decoded. */
  maxPixels: number;
  /** Most images in one predict request. */
  maxImages: number;
  topK: number;
  objectThreshold: number;
  /** Model used by `/v2/predict` and gRPC Predict when no name is given. */
  defaultModel?: string;
  /** Allowed CORS origins; empty = no CORS headers, ['*'] = any origin. */
  corsOrigins: string[];
  /** Keys accepted for repository load/unload. */
  apiKeys: string[];
  /** Allows repository load/unload without a key; must be set on purpose. */
  authDisabled: boolean;
  drainTimeoutMs: number;
  /** Fine-tuning through the server; undefined turns it off. */
  finetune?: FinetuneConfig;
  /**
   * A replica on a shared repository: writes nothing (no fine-tuning, no recovery, no lock) and
   * reloads models whose versions or serving pointer change on disk.
   */
  readOnly: boolean;
  /** How often a read-only server looks for changes in the repository. */
  watchIntervalMs: number;
  /** Comment lines on idle event streams, so that proxies keep them open. */
  sseHeartbeatMs: number;
}

export const DEFAULT_CONFIG: Readonly<ServeConfig> = Object.freeze({
  models: 'models',
  host: '0.0.0.0',
  httpPort: 8000,
  grpcPort: 8001,
  device: 'cpu',
  instances: 1,
  threads: 0,
  maxBatch: 32,
  maxQueueDelayMs: 0,
  maxQueueSize: 1024,
  versionPolicy: 'all',
  maxBodyBytes: 64 * 1024 * 1024,
  maxGrpcMessageBytes: 64 * 1024 * 1024,
  maxPixels: 40_000_000,
  maxImages: 64,
  topK: 5,
  objectThreshold: 0.5,
  corsOrigins: [],
  apiKeys: [],
  authDisabled: false,
  drainTimeoutMs: 30_000,
  readOnly: false,
  watchIntervalMs: 2000,
  sseHeartbeatMs: 15_000,
});

export function serveConfig(overrides: Partial<ServeConfig> = {}): ServeConfig {
  return { ...DEFAULT_CONFIG, ...overrides };
}
