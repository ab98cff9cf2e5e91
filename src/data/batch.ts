/** Samples and batches as the train step takes them, and the epoch order. Pure (no Node API): the web app shares it. */
import type { InputSpec } from '../model/spec';
import { hashSeed, mulberry32 } from '../base/random';

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

/** Stacks samples into one batch; every image must match the input's C·H·W. */
export function collate(samples: readonly Sample[], input: InputSpec): Batch {
  return stackSamples(samples, input.channels * input.height * input.width);
}

export function stackSamples(samples: readonly Sample[], pixels: number): Batch {
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

/** Splits loaded samples into train and validation shares, deterministically from the seed. */
export function splitSamples<T>(samples: readonly T[], valShare: number, seed: number): { train: T[]; val: T[] } {
  const order = epochOrder(samples.length, seed, -1);
  const valCount = samples.length > 1 ? Math.min(samples.length - 1, Math.max(valShare > 0 ? 1 : 0, Math.round(samples.length * valShare))) : 0;
  const val: T[] = [];
  const train: T[] = [];
  order.forEach((idx, k) => (k < valCount ? val : train).push(samples[idx]));
  return { train, val };
}
