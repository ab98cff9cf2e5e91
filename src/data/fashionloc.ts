/**
 * FashionLoc: a multi-task set synthesised from Fashion-MNIST. Each sample is an RGB canvas with
 * a textured, cluttered background and, with probability p, one tinted Fashion-MNIST item pasted
 * at a random scale and position. Sample i is a pure function of (seed, split, i).
 *
 * Box convention: [x1, y1, x2, y2] in canvas pixels, x1/y1 inclusive and x2/y2 exclusive, so the
 * box covers columns x1..x2-1 and rows y1..y2-1 and its width is x2 - x1. Only the item's pixels
 * whose intensity after scaling exceeds ITEM_THRESHOLD are drawn, and the box is their tight box.
 */
import { FASHION_MNIST_SIDE, type FashionMnist, type FashionMnistSplit } from './idx';
import { hashSeed, mulberry32, randomInt, randomRange, type Random } from '../base/random';

export type FashionLocSplit = 'train' | 'val' | 'test';
export const FASHIONLOC_SPLITS: readonly FashionLocSplit[] = ['train', 'val', 'test'];

/** Either source split may be absent when only the other is needed. */
export type FashionLocSource = Partial<FashionMnist>;

export interface FashionLocOptions {
  seed: number;
  /** Canvas size in pixels; default 64×64. */
  width?: number;
  height?: number;
  /** Probability that a sample holds an item; default 0.8. */
  p?: number;
}

export type PixelBox = [x1: number, y1: number, x2: number, y2: number];

export interface FashionLocSample {
  /** height × width × 3 bytes, RGB, row-major (HWC). */
  rgb: Uint8Array;
  width: number;
  height: number;
  /** Fashion-MNIST class index, or null when the canvas holds no item. */
  label: number | null;
  box: PixelBox | null;
}

/** Scaled item pixels above this intensity (0..255) are drawn and define the box; fainter ones are not drawn. */
export const ITEM_THRESHOLD = 32;
export const DEFAULT_SIZE = 64;
export const DEFAULT_OBJECT_PROBABILITY = 0.8;
/** The seed evaluation sets are rendered with, so every model is judged on the same canvases. */
export const FASHIONLOC_EVAL_SEED = 20240;
/** Item height range as a fraction of the canvas's shorter side: 20..44 px on a 64 px canvas. */
const ITEM_SCALE = [20 / 64, 44 / 64] as const;
const MIN_ITEM_PIXELS = 4;
const MIN_CANVAS = 8;
/** The last twelfth of Fashion-MNIST's training images (5 000 of 60 000) is reserved for 'val'. */
const VAL_FRACTION = 1 / 12;
const SPLIT_CODES: Record<FashionLocSplit, number> = { train: 1, val: 2, test: 3 };
const ITEM_ATTEMPTS = 4;
const ITEM_PIXELS = FASHION_MNIST_SIDE * FASHION_MNIST_SIDE;

/** The source images a split draws from: a contiguous range of one Fashion-MNIST split. */
export interface FashionLocPool {
  images: Uint8Array;
  labels: Uint8Array;
  start: number;
  count: number;
}

export function fashionLocPool(source: FashionLocSource, split: FashionLocSplit): FashionLocPool {
  const from: FashionMnistSplit | undefined = split === 'test' ? source.test : source.train;
  if (!from) {
    throw new Error(`FashionLoc split '${split}' needs Fashion-MNIST's ${split === 'test' ? 'test' : 'training'} images, which were not loaded`);
  }
  const valCount = Math.floor(from.count * VAL_FRACTION);
  if (split !== 'test' && valCount < 1) {
    throw new Error(`FashionLoc needs at least ${Math.ceil(1 / VAL_FRACTION)} training images to split off 'val', got ${from.count}`);
  }
  const range =
    split === 'test' ? { start: 0, count: from.count }
    : split === 'train' ? { start: 0, count: from.count - valCount }
    : { start: from.count - valCount, count: valCount };
  if (range.count < 1) throw new Error(`FashionLoc split '${split}' has no source images`);
  return { images: from.images, labels: from.labels, ...range };
}

interface Resolved {
  width: number;
  height: number;
  p: number;
}

function resolveOptions(opts: FashionLocOptions): Resolved {
  const width = opts.width ?? DEFAULT_SIZE;
  const height = opts.height ?? DEFAULT_SIZE;
  const p = opts.p ?? DEFAULT_OBJECT_PROBABILITY;
  for (const [name, size] of [['width', width], ['height', height]] as const) {
    if (!Number.isInteger(size) || size < MIN_CANVAS) throw new Error(`FashionLoc ${name} must be an integer ≥ ${MIN_CANVAS}, got ${size}`);
  }
  if (!(p >= 0 && p <= 1)) throw new Error(`FashionLoc p must be in [0, 1], got ${p}`);
  if (!Number.isSafeInteger(opts.seed)) throw new Error(`FashionLoc seed must be an integer, got ${opts.seed}`);
  return { width, height, p };
}

/** Renders sample `index` of `split`; pure in (opts.seed, split, index) for a given source. */
export function renderFashionLoc(source: FashionLocSource, opts: FashionLocOptions, split: FashionLocSplit, index: number): FashionLocSample {
  if (!Number.isSafeInteger(index) || index < 0) throw new Error(`FashionLoc index must be a non-negative integer, got ${index}`);
  const { width, height, p } = resolveOptions(opts);
  const pool = fashionLocPool(source, split);
  const random = mulberry32(hashSeed(opts.seed, SPLIT_CODES[split], index));
  const canvas = new Float32Array(width * height * 3);
  paintBackground(canvas, width, height, random);
  paintClutter(canvas, width, height, pool, random);
  let label: number | null = null;
  let box: PixelBox | null = null;
  if (random() < p) {
    for (let attempt = 0; attempt < ITEM_ATTEMPTS && !box; attempt++) {
      const item = pool.start + Math.floor(random() * pool.count);
      box = pasteItem(canvas, width, height, pool.images, item, random);
      if (box) label = pool.labels[item];
    }
  }
  return { rgb: toBytes(canvas), width, height, label, box };
}

/** Two-colour linear gradient, a separable sinusoidal texture, and per-pixel luminance noise. */
function paintBackground(canvas: Float32Array, width: number, height: number, random: Random): void {
  const from = [randomRange(random, 110, 235), randomRange(random, 110, 235), randomRange(random, 110, 235)];
  const to = [randomRange(random, 110, 235), randomRange(random, 110, 235), randomRange(random, 110, 235)];
  const angle = random() * 2 * Math.PI;
  const span = Math.abs(Math.cos(angle)) * width + Math.abs(Math.sin(angle)) * height;
  const gx = Math.cos(angle) / span;
  const gy = Math.sin(angle) / span;
  const t0 = 0.5 - gx * (width / 2) - gy * (height / 2);
  // amplitude · sin(fx·x + fy·y + φ) = amplitude · (sin(fx·x + φ)·cos(fy·y) + cos(fx·x + φ)·sin(fy·y))
  const amplitude = randomRange(random, 0, 14);
  const fx = randomRange(random, 0.1, 1.2);
  const fy = randomRange(random, 0.1, 1.2);
  const phase = random() * 2 * Math.PI;
  const sinX = new Float32Array(width);
  const cosX = new Float32Array(width);
  for (let x = 0; x < width; x++) {
    sinX[x] = amplitude * Math.sin(fx * x + phase);
    cosX[x] = amplitude * Math.cos(fx * x + phase);
  }
  const noise = randomRange(random, 4, 16);
  const [r0, g0, b0] = from;
  const dr = to[0] - r0;
  const dg = to[1] - g0;
  const db = to[2] - b0;
  let o = 0;
  for (let y = 0; y < height; y++) {
    const sinY = Math.sin(fy * y);
    const cosY = Math.cos(fy * y);
    let t = t0 + gy * y;
    for (let x = 0; x < width; x++, o += 3, t += gx) {
      const shade = sinX[x] * cosY + cosX[x] * sinY + (random() - 0.5) * 2 * noise;
      canvas[o] = r0 + dr * t + shade;
      canvas[o + 1] = g0 + dg * t + shade;
      canvas[o + 2] = b0 + db * t + shade;
    }
  }
}

/** Faint, partial fragments of other items and soft colour blobs, anywhere on the canvas. */
function paintClutter(canvas: Float32Array, width: number, height: number, pool: FashionLocPool, random: Random): void {
  const side = Math.min(width, height);
  const fragments = randomInt(random, 1, 3);
  for (let f = 0; f < fragments; f++) {
    const item = pool.start + Math.floor(random() * pool.count);
    const cropSide = randomInt(random, 8, 16);
    const cropX = randomInt(random, 0, FASHION_MNIST_SIDE - cropSide);
    const cropY = randomInt(random, 0, FASHION_MNIST_SIDE - cropSide);
    const outSide = Math.max(2, Math.round(cropSide * randomRange(random, 0.6, 1.4) * (side / 64)));
    const x0 = randomInt(random, -Math.floor(outSide / 2), width - Math.ceil(outSide / 2));
    const y0 = randomInt(random, -Math.floor(outSide / 2), height - Math.ceil(outSide / 2));
    const strength = randomRange(random, 0.12, 0.3);
    const tint = randomTint(random);
    const step = cropSide / outSide;
    const base = item * ITEM_PIXELS + cropY * FASHION_MNIST_SIDE + cropX;
    const uFrom = Math.max(0, -x0);
    const uTo = Math.min(outSide, width - x0);
    for (let v = Math.max(0, -y0); v < outSide && y0 + v < height; v++) {
      const row = base + ((v + 0.5) * step | 0) * FASHION_MNIST_SIDE;
      for (let u = uFrom; u < uTo; u++) {
        const a = pool.images[row + ((u + 0.5) * step | 0)];
        if (a === 0) continue;
        multiply(canvas, ((y0 + v) * width + x0 + u) * 3, (strength * a) / 255, tint);
      }
    }
  }
  const blobs = randomInt(random, 0, 3);
  for (let b = 0; b < blobs; b++) {
    const radius = randomRange(random, 0.05, 0.16) * side;
    const cx = random() * width;
    const cy = random() * height;
    const colour = [random() * 255, random() * 255, random() * 255];
    const strength = randomRange(random, 0.1, 0.3);
    const yFrom = Math.max(0, Math.floor(cy - radius));
    const yTo = Math.min(height - 1, Math.ceil(cy + radius));
    const xFrom = Math.max(0, Math.floor(cx - radius));
    const xTo = Math.min(width - 1, Math.ceil(cx + radius));
    for (let y = yFrom; y <= yTo; y++) {
      for (let x = xFrom; x <= xTo; x++) {
        const d2 = ((x - cx) ** 2 + (y - cy) ** 2) / (radius * radius);
        if (d2 >= 1) continue;
        const w = strength * (1 - d2);
        const o = (y * width + x) * 3;
        canvas[o] += w * (colour[0] - canvas[o]);
        canvas[o + 1] += w * (colour[1] - canvas[o + 1]);
        canvas[o + 2] += w * (colour[2] - canvas[o + 2]);
      }
    }
  }
}

/** A multiplicative colour that visibly darkens a mid-to-light background. */
function randomTint(random: Random): [number, number, number] {
  return [random() * 0.55, random() * 0.55, random() * 0.55];
}

/** canvas *= 1 - amount·(1 - tint): amount 0 leaves it, amount 1 multiplies by the tint. */
function multiply(canvas: Float32Array, o: number, amount: number, tint: readonly number[]): void {
  canvas[o] *= 1 - amount * (1 - tint[0]);
  canvas[o + 1] *= 1 - amount * (1 - tint[1]);
  canvas[o + 2] *= 1 - amount * (1 - tint[2]);
}

/**
 * Pastes item `item` (bilinearly scaled) fully inside the canvas and returns its tight box, or
 * null, drawing nothing, if no scaled pixel is visible.
 */
function pasteItem(canvas: Float32Array, width: number, height: number, images: Uint8Array, item: number, random: Random): PixelBox | null {
  const side = Math.min(width, height);
  const minSide = Math.max(MIN_ITEM_PIXELS, Math.round(side * ITEM_SCALE[0]));
  const maxSide = Math.max(minSide, Math.round(side * ITEM_SCALE[1]));
  const itemHeight = randomInt(random, minSide, maxSide);
  const itemWidth = Math.min(width, Math.max(MIN_ITEM_PIXELS, Math.round(itemHeight * randomRange(random, 0.85, 1.15))));
  const x0 = randomInt(random, 0, width - itemWidth);
  const y0 = randomInt(random, 0, height - itemHeight);
  const tint = randomTint(random);
  const strength = randomRange(random, 0.75, 1);
  const scaled = scaleItem(images, item * ITEM_PIXELS, itemWidth, itemHeight);
  let x1 = Infinity;
  let y1 = Infinity;
  let x2 = -Infinity;
  let y2 = -Infinity;
  for (let v = 0; v < itemHeight; v++) {
    for (let u = 0; u < itemWidth; u++) {
      if (scaled[v * itemWidth + u] <= ITEM_THRESHOLD) continue;
      if (u < x1) x1 = u;
      if (u > x2) x2 = u;
      if (v < y1) y1 = v;
      if (v > y2) y2 = v;
    }
  }
  if (x2 < 0) return null;
  for (let v = 0; v < itemHeight; v++) {
    for (let u = 0; u < itemWidth; u++) {
      const a = scaled[v * itemWidth + u];
      if (a > ITEM_THRESHOLD) multiply(canvas, ((y0 + v) * width + x0 + u) * 3, (strength * a) / 255, tint);
    }
  }
  return [x0 + x1, y0 + y1, x0 + x2 + 1, y0 + y2 + 1];
}

/** Bilinear resampling of one 28×28 item to outWidth×outHeight (pixel centres aligned). */
function scaleItem(images: Uint8Array, base: number, outWidth: number, outHeight: number): Float32Array {
  const n = FASHION_MNIST_SIDE;
  const out = new Float32Array(outWidth * outHeight);
  const left = new Int32Array(outWidth);
  const fracX = new Float32Array(outWidth);
  for (let u = 0; u < outWidth; u++) {
    const sx = Math.min(n - 1, Math.max(0, ((u + 0.5) * n) / outWidth - 0.5));
    left[u] = Math.min(n - 2, Math.floor(sx));
    fracX[u] = sx - left[u];
  }
  for (let v = 0; v < outHeight; v++) {
    const sy = Math.min(n - 1, Math.max(0, ((v + 0.5) * n) / outHeight - 0.5));
    const top = Math.min(n - 2, Math.floor(sy));
    const fy = sy - top;
    const row0 = base + top * n;
    const row1 = row0 + n;
    for (let u = 0; u < outWidth; u++) {
      const x = left[u];
      const fx = fracX[u];
      const upper = images[row0 + x] + (images[row0 + x + 1] - images[row0 + x]) * fx;
      const lower = images[row1 + x] + (images[row1 + x + 1] - images[row1 + x]) * fx;
      out[v * outWidth + u] = upper + (lower - upper) * fy;
    }
  }
  return out;
}

function toBytes(canvas: Float32Array): Uint8Array {
  const bytes = new Uint8Array(canvas.length);
  for (let i = 0; i < canvas.length; i++) {
    const v = canvas[i];
    bytes[i] = v <= 0 ? 0 : v >= 255 ? 255 : (v + 0.5) | 0;
  }
  return bytes;
}
