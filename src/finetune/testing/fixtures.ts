/** Test helpers: a model repository with a tiny model, and a small labelled image set the tiny model can learn. */
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { exportModel } from '../../artifacts/export';
import { mulberry32 } from '../../base/random';
import { builtinSpec, type ModelSpec } from '../../model/spec';
import { finetuneConfig, type FinetuneConfig } from '../config';

const COLOURS: [number, number, number][] = [
  [220, 40, 40],
  [40, 200, 60],
  [40, 60, 220],
];

export function tinySpec(): ModelSpec {
  return builtinSpec('tiny');
}

export async function makeRepository(name = 'tiny', versions = 1, spec: ModelSpec = tinySpec()): Promise<string> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'trident-ft-'));
  for (let v = 1; v <= versions; v++) await exportModel({ spec, outDir: path.join(root, name, String(v)), training: false, seed: v, name });
  return root;
}

export interface LabelledSet {
  dir: string;
  jsonl: string;
  /** Relative image paths, in line order. */
  files: string[];
  lines: string[];
}

/**
 * `count` PNGs of `size`×`size`: a grey background and, in five of every six, one coloured
 * rectangle whose colour is its label (red, green, blue for the first three `names`). Files go to
 * DIR/images/, annotations to DIR/annotations.jsonl.
 */
export async function makeLabelledSet(dir: string, count = 24, size = 32, seed = 1, names: readonly string[] = ['a', 'b', 'c']): Promise<LabelledSet> {
  await fs.mkdir(path.join(dir, 'images'), { recursive: true });
  const rand = mulberry32(seed);
  const labels = names.slice(0, COLOURS.length);
  const files: string[] = [];
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const pixels = Buffer.alloc(size * size * 3, 128);
    const file = `images/${String(i).padStart(3, '0')}.png`;
    let line: Record<string, unknown> = { file, box: null };
    if (i % 6 !== 5) {
      const k = i % labels.length;
      const label = labels[k];
      const w = Math.round(size * (0.4 + rand() * 0.4));
      const h = Math.round(size * (0.4 + rand() * 0.4));
      const x = Math.floor(rand() * (size - w));
      const y = Math.floor(rand() * (size - h));
      for (let yy = y; yy < y + h; yy++) for (let xx = x; xx < x + w; xx++) pixels.set(COLOURS[k], (yy * size + xx) * 3);
      line = { file, label, box: [x, y, x + w, y + h] };
    }
    await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).png().toFile(path.join(dir, file));
    files.push(file);
    lines.push(JSON.stringify(line));
  }
  const jsonl = path.join(dir, 'annotations.jsonl');
  await fs.writeFile(jsonl, lines.join('\n') + '\n');
  return { dir, jsonl, files, lines };
}

/** A configuration for tests: one thread, no reference set, the given keys and folders. */
export function testConfig(overrides: Partial<FinetuneConfig> = {}): FinetuneConfig {
  return finetuneConfig({ apiKeys: ['ft-key'], reference: false, nice: 0, cancelGraceMs: 5000, ...overrides });
}

/** Params for a quick job: a few steps of batch 8. */
export const QUICK = { steps: 4, batch_size: 8, lr: 0.01, val_share: 0.25 };
