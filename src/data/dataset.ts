/** Samples, datasets and batches as the trainer consumes them, plus epoch order and augmentation. */
import type { InputSpec } from '../model/spec';
import { renderFashionLoc, fashionLocPool, type FashionLocSource, type FashionLocSplit } from './fashionloc';
import { stackSamples, type Batch, type NormalisedBox, type Sample } from './batch';
import { toCHW } from '../model/pixels';
import { hashSeed, mulberry32 } from '../base/random';

export { collate, epochOrder, type Batch, type NormalisedBox, type Sample } from './batch';

/** Synchronous random access, so that order, resume and parallel loading stay the caller's choice. */
export interface Dataset {
  readonly length: number;
  get(index: number): Sample;
}

const NO_BOX: NormalisedBox = [0, 0, 0, 0];

function checkIndex(index: number, length: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= length) {
    throw new RangeError(`sample index ${index} is out of range 0..${length - 1}`);
  }
}

export interface FashionLocDatasetOptions {
  seed: number;
  /** Number of samples; default the number of source images of the split. */
  count?: number;
  /** Probability of an item; default 0.8. */
  p?: number;
}

/** FashionLoc rendered on demand at the input's size. */
export function fashionLocDataset(source: FashionLocSource, input: InputSpec, split: FashionLocSplit, opts: FashionLocDatasetOptions): Dataset {
  const length = opts.count ?? fashionLocPool(source, split).count;
  if (!Number.isInteger(length) || length < 0) throw new Error(`FashionLoc count must be a non-negative integer, got ${length}`);
  const render = { seed: opts.seed, width: input.width, height: input.height, p: opts.p };
  return {
    length,
    get(index: number): Sample {
      checkIndex(index, length);
      const sample = renderFashionLoc(source, render, split, index);
      const image = toCHW(sample.rgb, input);
      if (!sample.box || sample.label === null) return { image, label: -1, objectness: 0, box: [...NO_BOX] };
      const [x1, y1, x2, y2] = sample.box;
      return { image, label: sample.label, objectness: 1, box: [x1 / input.width, y1 / input.height, x2 / input.width, y2 / input.height] };
    },
  };
}

/** In-memory samples (e.g. from loadAnnotatedDataset) as a Dataset. */
export function annotatedDataset(samples: readonly Sample[]): Dataset {
  return {
    length: samples.length,
    get(index: number): Sample {
      checkIndex(index, samples.length);
      return samples[index];
    },
  };
}

export interface BatchOptions {
  /** Leave out a last batch smaller than batchSize. */
  dropLast?: boolean;
}

/** Batches in `order`; with the same inputs, batch k is always the same (skip k batches to resume). */
export function* batches(dataset: Dataset, order: ArrayLike<number>, batchSize: number, opts: BatchOptions = {}): Generator<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batch size must be a positive integer, got ${batchSize}`);
  for (let start = 0; start < order.length; start += batchSize) {
    const end = Math.min(order.length, start + batchSize);
    if (end - start < batchSize && opts.dropLast) return;
    const samples: Sample[] = [];
    for (let k = start; k < end; k++) samples.push(dataset.get(order[k]));
    yield stackSamples(samples, samples[0].image.length);
  }
}

export interface AugmentOptions {
  seed: number;
  epoch: number;
  /** Probability of a horizontal flip (box mirrored); default 0.5. */
  flip?: number;
  /** Largest relative brightness change, e.g. 0.1 for ±10 %; default 0.1. */
  brightness?: number;
}

/**
 * Training augmentation as a Dataset wrapper: sample i of the wrapped set is flipped and/or
 * brightened deterministically from (seed, epoch, i). Make one wrapper per epoch.
 */
export function augmented(dataset: Dataset, input: InputSpec, opts: AugmentOptions): Dataset {
  const flipProbability = opts.flip ?? 0.5;
  const brightness = opts.brightness ?? 0.1;
  return {
    length: dataset.length,
    get(index: number): Sample {
      const sample = dataset.get(index);
      const random = mulberry32(hashSeed(opts.seed, opts.epoch, index, 0xa06));
      const flip = random() < flipProbability;
      const factor = 1 + (random() * 2 - 1) * brightness;
      return augmentSample(sample, input, flip, factor);
    },
  };
}

/** Mirrors (box too) and scales brightness in pixel space, clamped to the valid pixel range. */
export function augmentSample(sample: Sample, input: InputSpec, flip: boolean, brightnessFactor: number): Sample {
  const { width, height, channels } = input;
  const plane = width * height;
  const image = new Float32Array(sample.image.length);
  for (let c = 0; c < channels; c++) {
    const mean = input.mean[c];
    const std = input.std[c];
    // pixel/255 = v·std + mean; scaling it by k gives v·k + mean·(k-1)/std
    const shift = (mean * (brightnessFactor - 1)) / std;
    const low = -mean / std;
    const high = (1 - mean) / std;
    for (let y = 0; y < height; y++) {
      const row = c * plane + y * width;
      for (let x = 0; x < width; x++) {
        const v = sample.image[row + (flip ? width - 1 - x : x)] * brightnessFactor + shift;
        image[row + x] = v < low ? low : v > high ? high : v;
      }
    }
  }
  const [x1, y1, x2, y2] = sample.box;
  const box: NormalisedBox = flip && sample.objectness === 1 ? [1 - x2, y1, 1 - x1, y2] : [x1, y1, x2, y2];
  return { image, label: sample.label, objectness: sample.objectness, box };
}
