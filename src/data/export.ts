/** Writes FashionLoc samples as PNG files plus annotations.jsonl in the user-data format. */
import { mkdir } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { writeFileAtomic } from '../artifacts/files';
import { FASHION_LABELS } from '../model/spec';
import { ANNOTATIONS_FILE } from './annotations';
import { renderFashionLoc, type FashionLocSource, type FashionLocSplit } from './fashionloc';

export { ANNOTATIONS_FILE };

export const IMAGES_FOLDER = 'images';

export interface FashionLocExportOptions {
  out: string;
  count: number;
  split: FashionLocSplit;
  seed: number;
  /** Square canvas side; default 64. */
  size?: number;
  p?: number;
  /** PNG encodes in flight; default min(4, available cores). */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface FashionLocExportResult {
  annotations: string;
  written: number;
  withObject: number;
}

/**
 * Renders samples 0..count-1 of the split and writes out/images/NNNNNN.png and
 * out/annotations.jsonl (labels by name, boxes in pixels, `box: null` for no object). The
 * annotations file is written last, through a rename, so it only ever lists complete images.
 */
export async function exportFashionLoc(source: FashionLocSource, opts: FashionLocExportOptions): Promise<FashionLocExportResult> {
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`count must be a positive integer, got ${opts.count}`);
  const size = opts.size ?? 64;
  const render = { seed: opts.seed, width: size, height: size, p: opts.p };
  await mkdir(path.join(opts.out, IMAGES_FOLDER), { recursive: true });
  const digits = Math.max(6, String(opts.count - 1).length);
  const lines: string[] = new Array(opts.count);
  let next = 0;
  let done = 0;
  let withObject = 0;
  const worker = async () => {
    while (next < opts.count) {
      const index = next++;
      const sample = renderFashionLoc(source, render, opts.split, index);
      const file = `${IMAGES_FOLDER}/${String(index).padStart(digits, '0')}.png`;
      await sharp(sample.rgb, { raw: { width: sample.width, height: sample.height, channels: 3 } })
        .png()
        .toFile(path.join(opts.out, file));
      const hasObject = sample.label !== null && sample.box !== null;
      if (hasObject) withObject++;
      lines[index] = JSON.stringify(
        sample.label !== null && sample.box !== null ? { file, label: FASHION_LABELS[sample.label], box: sample.box } : { file, box: null },
      );
      opts.onProgress?.(++done, opts.count);
    }
  };
  const concurrency = opts.concurrency ?? Math.max(1, Math.min(4, os.availableParallelism()));
  await Promise.all(Array.from({ length: Math.min(concurrency, opts.count) }, worker));
  const annotations = path.join(opts.out, ANNOTATIONS_FILE);
  await writeFileAtomic(annotations, lines.join('\n') + '\n');
  return { annotations, written: opts.count, withObject };
}
