/** Samples, datasets and batches as the trainer consumes them, and epoch order (augmentation: augment.ts). */
import type { InputSpec } from '../model/spec';
import { renderFashionLoc, fashionLocPool, type FashionLocSource, type FashionLocSplit } from './fashionloc';
import { stackSamples, type Batch, type NormalisedBox, type Sample } from './batch';
import { toCHW } from '../model/pixels';

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
