/**
 * Training augmentation with the box transformed consistently with the image: scale jitter about
 * the image centre and translation (bilinear resampling, borders repeat the edge pixels), then an
 * optional horizontal flip, then a brightness change.
 *
 * Geometry in normalised coordinates (0..1 across the image, pixel i covering [i/W, (i+1)/W]):
 * a point x goes to s·(x − ½) + ½ + t, then to 1 − x if flipped. A box's corners map the same way,
 * so the box stays the tight box of the moved object. Translations are drawn so that a box stays
 * inside the image (as FashionLoc's objects always are), within ±translate where possible.
 */
import type { InputSpec } from '../model/spec';
import type { Dataset, NormalisedBox, Sample } from './dataset';
import { hashSeed, mulberry32 } from '../base/random';

export interface AugmentOptions {
  seed: number;
  epoch: number;
  /** Probability of a horizontal flip (box mirrored); default 0.5. */
  flip?: number;
  /** Largest relative brightness change, e.g. 0.1 for ±10 %; default 0.1. */
  brightness?: number;
  /** Largest shift as a fraction of the image size, e.g. 0.1 for ±10 %; default 0 (none). */
  translate?: number;
  /** Largest relative change of scale, e.g. 0.15 for ×0.85…×1.15; default 0 (none). */
  scale?: number;
}

/** One sample's transform. */
export interface Transform {
  flip: boolean;
  /** Brightness factor in pixel space (1: unchanged). */
  brightness: number;
  /** Scale about the image centre (1: unchanged). */
  scale?: number;
  /** Shift [x, y] as a fraction of the image size. */
  shift?: [number, number];
}

/**
 * Training augmentation as a Dataset wrapper: sample i of the wrapped set is transformed
 * deterministically from (seed, epoch, i). Make one wrapper per epoch.
 */
export function augmented(dataset: Dataset, input: InputSpec, opts: AugmentOptions): Dataset {
  const flipProbability = opts.flip ?? 0.5;
  const brightness = opts.brightness ?? 0.1;
  const translate = opts.translate ?? 0;
  const scaleJitter = opts.scale ?? 0;
  return {
    length: dataset.length,
    get(index: number): Sample {
      const sample = dataset.get(index);
      const random = mulberry32(hashSeed(opts.seed, opts.epoch, index, 0xa06));
      const flip = random() < flipProbability;
      const factor = 1 + (random() * 2 - 1) * brightness;
      // Drawn after the flip and brightness, so that without geometry those stay as they always were.
      const u = [random(), random(), random()];
      if (translate === 0 && scaleJitter === 0) return augmentSample(sample, input, { flip, brightness: factor });
      const box = sample.objectness === 1 ? sample.box : undefined;
      let scale = 1 + (u[0] * 2 - 1) * scaleJitter;
      if (box) scale = Math.min(scale, 1 / Math.max(box[2] - box[0], box[3] - box[1], 1e-6));
      const shift = (k: 0 | 1, draw: number): number => {
        if (!box) return (draw * 2 - 1) * translate;
        // The shifts that keep the scaled box inside the image, met with ±translate.
        const lo = -(scale * (box[k] - 0.5) + 0.5);
        const hi = 1 - (scale * (box[k + 2] - 0.5) + 0.5);
        const from = Math.max(lo, -translate);
        const to = Math.min(hi, translate);
        return from <= to ? from + draw * (to - from) : Math.min(Math.max(0, lo), hi);
      };
      return augmentSample(sample, input, { flip, brightness: factor, scale, shift: [shift(0, u[1]), shift(1, u[2])] });
    },
  };
}

/** Where output pixel `o` (of `size`) reads in the input, in pixel units (pixel centres at integers). */
function sourceCoordinate(o: number, size: number, scale: number, shift: number): number {
  const x = (o + 0.5) / size;
  return ((x - 0.5 - shift) / scale + 0.5) * size - 0.5;
}

/** Applies `t` to one sample: geometry (bilinear, edge pixels repeated), flip, brightness (clamped to the valid pixel range). */
export function augmentSample(sample: Sample, input: InputSpec, t: Transform): Sample {
  const { width, height, channels } = input;
  const plane = width * height;
  const scale = t.scale ?? 1;
  const [dx, dy] = t.shift ?? [0, 0];
  const moved = scale !== 1 || dx !== 0 || dy !== 0;
  // Per output column/row: the two source indices and the weight of the second.
  const axis = (size: number, shift: number) => {
    const lo = new Int32Array(size);
    const hi = new Int32Array(size);
    const w = new Float32Array(size);
    for (let o = 0; o < size; o++) {
      const s = Math.min(Math.max(sourceCoordinate(o, size, scale, shift), 0), size - 1);
      lo[o] = Math.floor(s);
      hi[o] = Math.min(lo[o] + 1, size - 1);
      w[o] = s - lo[o];
    }
    return { lo, hi, w };
  };
  const cols = moved ? axis(width, dx) : undefined;
  const rows = moved ? axis(height, dy) : undefined;

  const image = new Float32Array(sample.image.length);
  for (let c = 0; c < channels; c++) {
    const mean = input.mean[c];
    const std = input.std[c];
    // pixel/255 = v·std + mean; scaling it by k gives v·k + mean·(k-1)/std
    const shift = (mean * (t.brightness - 1)) / std;
    const low = -mean / std;
    const high = (1 - mean) / std;
    const base = c * plane;
    for (let y = 0; y < height; y++) {
      const row = base + y * width;
      for (let x = 0; x < width; x++) {
        const xa = t.flip ? width - 1 - x : x;
        let v: number;
        if (!cols || !rows) v = sample.image[row + xa];
        else {
          const top = base + rows.lo[y] * width;
          const bottom = base + rows.hi[y] * width;
          const [l, r, wx] = [cols.lo[xa], cols.hi[xa], cols.w[xa]];
          const upper = sample.image[top + l] + (sample.image[top + r] - sample.image[top + l]) * wx;
          const lower = sample.image[bottom + l] + (sample.image[bottom + r] - sample.image[bottom + l]) * wx;
          v = upper + (lower - upper) * rows.w[y];
        }
        v = v * t.brightness + shift;
        image[row + x] = v < low ? low : v > high ? high : v;
      }
    }
  }
  if (sample.objectness !== 1) return { image, label: sample.label, objectness: sample.objectness, box: [...sample.box] };
  const map = (v: number, d: number) => (moved ? scale * (v - 0.5) + 0.5 + d : v);
  const [x1, y1, x2, y2] = [map(sample.box[0], dx), map(sample.box[1], dy), map(sample.box[2], dx), map(sample.box[3], dy)];
  const clamp = (v: number) => Math.min(Math.max(v, 0), 1);
  const box: NormalisedBox = t.flip ? [1 - x2, y1, 1 - x1, y2] : [x1, y1, x2, y2];
  return { image, label: sample.label, objectness: sample.objectness, box: box.map(clamp) as NormalisedBox };
}
