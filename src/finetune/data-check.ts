/**
 * Checks a job's data fully before the job exists: every annotation line, every image decoded,
 * every label and box checked against the model. Problems name the file and line as the client
 * knows them; nothing reaches the model.
 */
import { TridentError } from '../base/errors';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Manifest } from '../artifacts/manifest';
import { AnnotationError, loadAnnotatedDataset } from '../data/annotations';
import type { UploadLimits } from './config';
import { heldOutCount } from './hyperparams';
import type { DataInfo } from './record';

export interface CheckedData {
  info: DataInfo;
  warnings: string[];
}

export interface DataToCheck {
  /** The annotation file on disk; images are relative to its folder. */
  jsonl: string;
  /** How the client names that file, used in messages instead of the server's path. */
  displayName: string;
  source: DataInfo['source'];
  valShare: number;
}

export async function checkData(data: DataToCheck, manifest: Manifest, limits: UploadLimits): Promise<CheckedData> {
  const { jsonl, displayName } = data;
  let text: string;
  try {
    text = await fs.readFile(jsonl, 'utf8');
  } catch {
    throw new TridentError('invalid_argument', `${displayName}: the annotation file is missing`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '').length;
  if (lines === 0) throw new TridentError('invalid_argument', `${displayName}: no samples (the annotation file is empty)`);
  if (lines > limits.maxSamples) throw new TridentError('payload_too_large', `${displayName}: ${lines} samples; the limit is ${limits.maxSamples}`);

  // Messages name the client's file, never the server's paths.
  const root = path.dirname(jsonl);
  const clientView = (text: string) => text.split(jsonl).join(displayName).split(` ${root}`).join('').split(root).join('.');
  const warnings: string[] = [];
  let loaded;
  try {
    loaded = await loadAnnotatedDataset(jsonl, manifest.labels, manifest.spec.input, {
      maxPixels: limits.maxPixels,
      onWarning: (w) => warnings.push(clientView(w)),
    });
  } catch (e) {
    if (e instanceof AnnotationError) throw new TridentError('invalid_argument', `${displayName}:${e.line}: ${clientView(e.problem)}`);
    throw new TridentError('invalid_argument', clientView((e as Error).message));
  }
  const { samples, report } = loaded;
  const held = heldOutCount(samples.length, data.valShare);
  if (held < 1 || samples.length - held < 1) {
    throw new TridentError('invalid_argument', `${displayName}: ${samples.length} sample(s); a job needs at least one to train on and one held out (val_share ${data.valShare})`);
  }
  const { sha256, bytes } = await dataChecksum(jsonl, samples.map((s) => s.file));
  return {
    info: {
      source: data.source,
      annotations: displayName,
      samples: samples.length,
      withObject: report.withObject,
      withoutObject: report.withoutObject,
      sha256,
      bytes,
    },
    warnings,
  };
}

/**
 * sha256 over the annotation file and the images it names: one line "relative-path NUL sha256"
 * per file, sorted by path, so the same data gives the same checksum however it arrived.
 */
export async function dataChecksum(jsonl: string, files: readonly string[]): Promise<{ sha256: string; bytes: number }> {
  const root = path.dirname(jsonl);
  const entries = new Map<string, string>();
  let bytes = 0;
  for (const relative of new Set([path.basename(jsonl), ...files])) {
    const content = await fs.readFile(path.join(root, relative));
    bytes += content.length;
    entries.set(relative.split(path.sep).join('/'), createHash('sha256').update(content).digest('hex'));
  }
  const listing = [...entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, hash]) => `${name}\0${hash}\n`);
  return { sha256: createHash('sha256').update(listing.join('')).digest('hex'), bytes };
}
