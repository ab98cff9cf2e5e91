/**
 * Startup recovery after a crash (kill -9 at any moment): every job that was queued or running is
 * ended with the reason, staging folders and half-written temporary files are removed, and every
 * serving pointer names a version that exists. Runs before any job starts.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import {
  listVersions,
  moveServingPointer,
  readServingPointer,
  removeStaleStaging,
  removeTemporaryFiles,
  resolveLatest,
  type ServingPointer,
} from '../artifacts/repository';
import { decide } from './gate';
import { isEnded, type JobRecord } from './record';
import type { JobStore } from './store';

export const RESTART_REASON = 'server restarted during the job';

export interface RecoveryReport {
  /** Jobs ended as failed (or cancelled, when a cancel had been asked for). */
  interruptedJobs: string[];
  /** Jobs whose promotion had completed on disk; marked succeeded. */
  completedJobs: string[];
  /** Job folders without a record: uploads that never became a job. */
  abandonedUploads: string[];
  removedStaging: string[];
  repairedPointers: { model: string; from: number; to: number }[];
  problems: string[];
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export async function recover(modelsRoot: string, store: JobStore): Promise<RecoveryReport> {
  const report: RecoveryReport = { interruptedJobs: [], completedJobs: [], abandonedUploads: [], removedStaging: [], repairedPointers: [], problems: [] };
  for (const model of await modelNames(modelsRoot)) {
    const modelDir = path.join(modelsRoot, model);
    try {
      report.removedStaging.push(...(await removeStaleStaging(modelDir)).map((name) => `${model}/${name}`));
      await removeTemporaryFiles(modelDir);
      const repaired = await repairPointer(modelDir);
      if (repaired) report.repairedPointers.push({ model, ...repaired });
    } catch (e) {
      report.problems.push(`model ${model}: ${(e as Error).message}`);
    }
  }
  // After the pointers are repaired, so that completed promotions record the "latest" that serves.
  for (const id of await store.ids()) {
    try {
      await recoverJob(modelsRoot, store, id, report);
    } catch (e) {
      report.problems.push(`job ${id}: ${(e as Error).message}`);
    }
  }
  return report;
}

async function recoverJob(modelsRoot: string, store: JobStore, id: string, report: RecoveryReport): Promise<void> {
  await store.removeTemporaryFiles(id);
  if (!(await store.hasRecord(id))) {
    await store.removeFolder(id);
    report.abandonedUploads.push(id);
    return;
  }
  const record = await store.load(id);
  if (isEnded(record.state)) {
    // The crash may have come between the final record write and the upload removal.
    await store.removeUploads(id);
    return;
  }
  const modelDir = path.join(modelsRoot, record.model);
  const pointer = await readServingPointer(modelDir).catch(() => undefined);
  const written = record.version !== undefined && (await listVersions(modelDir)).includes(record.version);
  const ended: JobRecord = { ...record, endedAt: new Date().toISOString() };
  if (written && promotedBy(pointer, record) && record.evaluation) {
    const gate = decide(record.evaluation, record.force);
    ended.state = 'succeeded';
    ended.decision = { ...gate, version: record.version!, latest: pointer!.latest };
    ended.warnings = [...record.warnings, 'the server restarted after the promotion; the job was completed by recovery'];
    report.completedJobs.push(id);
  } else {
    ended.state = record.cancelRequested ? 'cancelled' : 'failed';
    ended.error = written ? `${RESTART_REASON}; version ${record.version} was written but not promoted` : RESTART_REASON;
    report.interruptedJobs.push(id);
  }
  await store.save(ended);
  await store.removeUploads(id);
}

function promotedBy(pointer: ServingPointer | undefined, record: JobRecord): boolean {
  return !!pointer?.history.some((h) => h.version === record.version && h.jobId === record.id && h.reason === 'promoted');
}

/** Points a pointer that names a missing version at the newest existing one from its history (or the highest). */
async function repairPointer(modelDir: string): Promise<{ from: number; to: number } | undefined> {
  const pointer = await readServingPointer(modelDir);
  if (!pointer) return undefined;
  const available = await listVersions(modelDir);
  if (available.includes(pointer.latest)) return undefined;
  const to = resolveLatest(pointer, available);
  if (to === undefined) return undefined;
  await moveServingPointer(modelDir, to, { reason: 'repaired' });
  return { from: pointer.latest, to };
}

async function modelNames(modelsRoot: string): Promise<string[]> {
  try {
    const entries = await fs.readdir(modelsRoot, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && MODEL_NAME.test(e.name)).map((e) => e.name);
  } catch {
    return [];
  }
}
