/**
 * Turning a job's staging folder into a version: record the evaluation in its manifest, pin the
 * pointer (so a new highest version never becomes latest by default), rename the folder to the
 * next version number (the commit point), then move the pointer if the gate allows.
 */
import path from 'node:path';
import { readManifest, writeManifest } from '../artifacts/manifest';
import {
  commitStaging,
  listVersions,
  moveServingPointer,
  nextVersion,
  readServingPointer,
  resolveLatest,
  writeServingPointer,
} from '../artifacts/repository';
import type { GateResult } from './gate';
import type { Evaluation, MetricsPair, JobRecord } from './record';

export type PromotionPhase = 'staged' | 'committed' | 'promoted';

export interface PromotionSteps {
  /** Persists the chosen version number in the job record before the rename. */
  recordVersion(version: number): Promise<void>;
  /** Called right after each step's file operations (for logs and fault-injection tests). */
  phase(phase: PromotionPhase): void;
}

const COMMIT_ATTEMPTS = 5;

/** Lineage and evaluation written into a candidate's manifest (inside its staging folder), for a job's result and a weights upload alike. */
export async function annotateCandidate(staging: string, model: string, evaluation: Evaluation, gate: GateResult, lineage: Record<string, unknown>): Promise<void> {
  const manifest = await readManifest(staging);
  const summary = (pair: MetricsPair) => ({ name: pair.name, samples: pair.samples, candidate: pair.candidate, serving: pair.serving });
  await writeManifest(staging, {
    ...manifest,
    name: model,
    metrics: {
      ...manifest.metrics,
      finetune: {
        metric: evaluation.metric,
        tolerance: evaluation.tolerance,
        heldOut: summary(evaluation.heldOut),
        ...(evaluation.reference ? { reference: summary(evaluation.reference) } : {}),
      },
    },
    lineage: {
      ...manifest.lineage,
      ...lineage,
      gate: { metric: evaluation.metric, tolerance: evaluation.tolerance, passed: gate.passed, forced: gate.forced },
    },
  });
}

/** Where a fine-tune job's candidate comes from. */
export function jobLineage(record: JobRecord): Record<string, unknown> {
  return {
    // The trainer wrote the serving folder's absolute path; this says the same portably.
    from: `${record.model}/${record.parentVersion}`,
    model: record.model,
    parentVersion: record.parentVersion,
    jobId: record.id,
    dataSha256: record.data.sha256,
    dataSamples: record.data.samples,
  };
}

/** Returns the version written and "latest" afterwards. */
export async function promote(
  modelDir: string,
  staging: string,
  record: Pick<JobRecord, 'id' | 'parentVersion'>,
  gate: GateResult,
  steps: PromotionSteps,
): Promise<{ version: number; latest: number }> {
  steps.phase('staged');
  const available = await listVersions(modelDir);
  const pointer = await readServingPointer(modelDir);
  const current = resolveLatest(pointer, available) ?? record.parentVersion;
  if (!pointer) {
    await writeServingPointer(modelDir, { latest: current, history: [{ version: current, at: new Date().toISOString(), reason: 'pinned' }] });
  }
  let version = 0;
  for (let attempt = 1; ; attempt++) {
    version = await nextVersion(modelDir);
    await steps.recordVersion(version);
    try {
      await commitStaging(staging, modelDir, version);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Someone else created that version meanwhile (e.g. `trident train --out` into the repository).
      if ((code === 'EEXIST' || code === 'ENOTEMPTY') && attempt < COMMIT_ATTEMPTS) continue;
      throw e;
    }
  }
  steps.phase('committed');
  if (!gate.promoted) return { version, latest: current };
  await moveServingPointer(modelDir, version, { reason: 'promoted', jobId: record.id });
  steps.phase('promoted');
  return { version, latest: version };
}

/** Puts "latest" back after a promotion the server could not load. */
export async function revertPromotion(modelDir: string, to: number, jobId: string): Promise<void> {
  await moveServingPointer(modelDir, to, { reason: 'repaired', jobId });
}

export const versionDir = (modelDir: string, version: number) => path.join(modelDir, String(version));
