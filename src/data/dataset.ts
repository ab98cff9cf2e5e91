/** Samples, datasets and batches as the trainer consumes them, and epoch order (augmentation: augment.ts). */
import type { InputSpec } from '../model/spec';
import { renderFashionLoc, fashionLocPool, type FashionLocSource, type FashionLocSplit } from './fashionloc';
import { toCHW } from './image';
import { hashSeed, mulberry32 } from './random';

export type NormalisedBox = [x1: number, y1: number, x2: number, y2: number];

export interface Sample {
  /** channels × height × width, normalised as the model input. */
  image: Float32Array;
  /** Class index, -1 when there is no object. */
  label: number;
  objectness: 0 | 1;
  /** Normalised corners in 0..1 of the image; zeros when there is no object. */
  box: NormalisedBox;
}

/** Synchronous random access, so that order, resume and parallel loading stay the caller's choice. */
export interface Dataset {
  readonly length: number;
  get(index: number): Sample;
}

export interface Batch {
  size: number;
  /** size × channels × height × width. */
  images: Float32Array;
  /** Class indices; samples without an object hold 0 and are masked out. */
  labels: BigInt64Array;
  objectness: Float32Array;
  /** size × 4 normalised corners. */
  boxes: Float32Array;
  /** 1 where an object is present (class and box losses count), else 0. */
  mask: Float32Array;
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

/** Stacks samples into one batch; every image must match the input's C·H·W. */
export function collate(samples: readonly Sample[], input: InputSpec): Batch {
  return stack(samples, input.channels * input.height * input.width);
}

function stack(samples: readonly Sample[], pixels: number): Batch {
  const size = samples.length;
  const batch: Batch = {
    size,
    images: new Float32Array(size * pixels),
    labels: new BigInt64Array(size),
    objectness: new Float32Array(size),
    boxes: new Float32Array(size * 4),
    mask: new Float32Array(size),
  };
  samples.forEach((sample, i) => {
    if (sample.image.length !== pixels) {
      throw new Error(`sample ${i} of the batch has ${sample.image.length} image values, expected ${pixels}`);
    }
    batch.images.set(sample.image, i * pixels);
    const present = sample.objectness === 1;
    batch.labels[i] = BigInt(present ? sample.label : 0);
    batch.objectness[i] = sample.objectness;
    batch.mask[i] = present ? 1 : 0;
    if (present) batch.boxes.set(sample.box, i * 4);
  });
  return batch;
}

/** A permutation of 0..length-1 (Fisher–Yates), a pure function of (length, seed, epoch). */
export function epochOrder(length: number, seed: number, epoch: number): Uint32Array {
  const order = new Uint32Array(length);
  for (let i = 0; i < length; i++) order[i] = i;
  const random = mulberry32(hashSeed(seed, epoch, 0x5eed));
  for (let i = length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  return order;
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
    yield stack(samples, samples[0].image.length);
  }
}
