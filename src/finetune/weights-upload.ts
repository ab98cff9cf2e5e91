/**
 * Weights trained elsewhere (the web app trains on the user's device) become a new version of a
 * served model: the key is checked, the file's SHA-256 against the one the client sent, the
 * checkpoint's own checksum and every parameter's shape against the serving version; then the
 * candidate folder is built and evaluated in a worker, and the promotion gate that fine-tune jobs
 * pass decides whether "latest" moves. The model's job slot is held meanwhile, so that no job
 * and no other upload promotes the same model at the same time.
 */
import { TridentError } from '../base/errors';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { decodeCheckpoint, specDifference, type Checkpoint } from '../artifacts/checkpoint';
import { sha256 } from '../artifacts/files';
import { readManifest } from '../artifacts/manifest';
import { servingVersion, stagingDir } from '../artifacts/repository';
import { WorkerChannel } from '../runtime/worker-channel';
import { decide } from './gate';
import type { JobManager } from './manager';
import { annotateCandidate, promote, revertPromotion, versionDir } from './promotion';
import type { Decision, Evaluation, MetricsPair } from './record';
import type { WeightsPlan, WeightsWorkerReply } from './weights-protocol';

export interface WeightsUpload {
  model: string;
  /** The fine-tune key the client presented. */
  key: string | undefined;
  /** A Trident checkpoint (safetensors). */
  checkpoint: Uint8Array;
  /** SHA-256 (hex) of `checkpoint` as the client computed it. */
  sha256: string | undefined;
  /** The client's own evaluation on data it keeps: { samples, candidate, serving } metrics. */
  heldOut?: unknown;
  force: boolean;
}

export interface WeightsUploadResult {
  model: string;
  parentVersion: number;
  version: number;
  latest: number;
  evaluation: Evaluation;
  decision: Decision;
}

export interface WeightsUploadOptions {
  /** The model repository root. */
  models: string;
  /** Called after "latest" moved, e.g. to reload the model in the server's registry. */
  onServingChanged?: (model: string, latest: number) => Promise<void> | void;
  log?: (message: string) => void;
}

/** Largest upload for a model: its parameters with two optimizer-state copies, plus headers. */
export function maxWeightsBytes(parameterCount: number): number {
  return parameterCount * 4 * 3 + 1024 * 1024;
}

export const CLIENT_HELD_OUT = 'held-out (measured by the client)';

const unit = z.number().min(0).max(1);
const MetricsSchema = z.object({
  samples: z.number().int().nonnegative(),
  objects: z.number().int().nonnegative(),
  classAccuracy: unit,
  perClassAccuracy: z.array(unit).max(10_000),
  objectnessPrecision: unit,
  objectnessRecall: unit,
  objectnessF1: unit,
  objectnessAP: unit,
  boxMeanIoU: unit,
  boxIoUAbove50: unit,
  detectionCorrect: unit,
});
const HeldOutSchema = z.object({ samples: z.number().int().positive(), candidate: MetricsSchema, serving: MetricsSchema });

export async function uploadWeights(manager: JobManager, upload: WeightsUpload, options: WeightsUploadOptions): Promise<WeightsUploadResult> {
  manager.authorize(upload.key, 'weights upload');
  if (!upload.sha256 || !/^[0-9a-f]{64}$/i.test(upload.sha256)) throw new TridentError('invalid_argument', 'give the SHA-256 of the checkpoint file (64 hex digits)');
  if (sha256(upload.checkpoint) !== upload.sha256.toLowerCase()) throw new TridentError('invalid_argument', 'checksum mismatch: the checkpoint arrived damaged or is not the file the SHA-256 was computed on');
  const heldOut = parseHeldOut(upload.heldOut);
  const reservation = await manager.reserve(upload.model);
  const model = reservation.model;
  const modelDir = path.join(options.models, model);
  const staging = stagingDir(modelDir, reservation.id);
  let committed = false;
  try {
    const parentVersion = (await servingVersion(modelDir))!;
    const servingDir = versionDir(modelDir, parentVersion);
    const serving = await readManifest(servingDir);
    const uploaded = checkWeights(upload.checkpoint, serving.spec, serving.labels, `model "${model}" version ${parentVersion}`);
    const lineage = {
      from: `${model}/${parentVersion}`,
      model,
      parentVersion,
      source: 'weights upload',
      uploadId: reservation.id,
      uploadSha256: upload.sha256.toLowerCase(),
    };
    const config = manager.config;
    const measured = await runWorker({
      model,
      weights: { params: uploaded.params, buffers: uploaded.buffers },
      staging,
      servingDir,
      lineage,
      reference: config.reference || undefined,
      device: config.device,
      threads: config.threads,
      nice: config.nice,
    });
    if (measured.warning) options.log?.(`weights upload ${reservation.id}: ${measured.warning}`);
    const sets = [heldOut ? { name: CLIENT_HELD_OUT, ...heldOut } : undefined, measured.reference].filter((s): s is MetricsPair => s !== undefined);
    if (sets.length === 0) {
      throw new TridentError(
        'invalid_argument',
        `nothing to judge the weights on: the upload carries no held-out evaluation and the model has no reference set here${measured.referenceSkipped ? ` (${measured.referenceSkipped})` : ''}`,
      );
    }
    const evaluation: Evaluation = {
      metric: config.gate.metric,
      tolerance: config.gate.tolerance,
      heldOut: sets[0],
      ...(sets[1] ? { reference: sets[1] } : {}),
      ...(measured.referenceSkipped ? { referenceSkipped: measured.referenceSkipped } : {}),
    };
    const gate = decide(evaluation, upload.force);
    await annotateCandidate(staging, model, evaluation, gate, { ...lineage, heldOutMeasuredBy: heldOut ? 'client' : undefined });
    const record = { id: reservation.id, parentVersion };
    const promoted = await manager.runExclusive(model, async () => {
      const previous = (await servingVersion(modelDir))!;
      const result = await promote(modelDir, staging, record, gate, { recordVersion: async () => {}, phase: () => {} });
      return { ...result, previous };
    });
    committed = true;
    let decision: Decision = { ...gate, version: promoted.version, latest: promoted.latest };
    if (gate.promoted) {
      try {
        await options.onServingChanged?.(model, promoted.version);
      } catch (e) {
        await manager.runExclusive(model, () => revertPromotion(modelDir, promoted.previous, reservation.id));
        decision = { ...decision, promoted: false, latest: promoted.previous, reason: `${gate.reason}; but the server could not load it (${(e as Error).message}), so "latest" stays ${promoted.previous}` };
      }
    }
    options.log?.(`weights upload ${reservation.id}: ${model} version ${promoted.version} written; ${decision.reason}`);
    return { model, parentVersion, version: promoted.version, latest: decision.latest, evaluation, decision };
  } finally {
    if (!committed) await fs.rm(staging, { recursive: true, force: true });
    await reservation.release();
  }
}

/** Checksum, architecture, labels and finiteness of uploaded weights; each failure says what is wrong. */
function checkWeights(bytes: Uint8Array, spec: Checkpoint['spec'], labels: readonly string[], target: string): Checkpoint {
  let ckpt: Checkpoint;
  try {
    ckpt = decodeCheckpoint(bytes, 'uploaded weights');
  } catch (e) {
    throw new TridentError('invalid_argument', (e as Error).message);
  }
  const difference = specDifference(spec, ckpt.spec);
  if (difference) throw new TridentError('invalid_argument', `the weights do not fit ${target}: ${difference}`);
  const given = ckpt.spec.heads.classification.labels;
  if (given.length !== labels.length || given.some((l, i) => l !== labels[i])) throw new TridentError('invalid_argument', `the weights' labels differ from those of ${target}`);
  for (const [name, values] of ckpt.params) {
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) throw new TridentError('invalid_argument', `parameter ${name} holds a non-finite value (the training diverged)`);
  }
  return ckpt;
}

function parseHeldOut(value: unknown): z.infer<typeof HeldOutSchema> | undefined {
  if (value === undefined || value === null) return undefined;
  const parsed = HeldOutSchema.safeParse(value);
  if (!parsed.success) {
    throw new TridentError('invalid_argument', `invalid held-out evaluation: ${parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

const WEIGHTS_WORKER = path.join(__dirname, 'weights-worker.js');

function runWorker(plan: WeightsPlan): Promise<Extract<WeightsWorkerReply, { type: 'done' }>> {
  return new Promise((resolve, reject) => {
    const channel: WorkerChannel<WeightsPlan, WeightsWorkerReply> = new WorkerChannel(
      WEIGHTS_WORKER,
      {
        message: (reply) => {
          void channel.stop();
          if (reply.type === 'done') resolve(reply);
          else reject(new Error(`building the candidate version failed: ${reply.message}`));
        },
        failed: reject,
      },
      {},
      'the weights worker',
    );
    channel.send(plan);
  });
}
