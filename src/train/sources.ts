/** Training and validation datasets from a DataConfig, and deterministic batches from them. */
import { loadAnnotatedDataset, type AnnotationReport } from '../data/annotations';
import { augmented } from '../data/augment';
import { splitSamples } from '../data/batch';
import { annotatedDataset, collate, epochOrder, fashionLocDataset, type Batch, type Dataset, type Sample } from '../data/dataset';
import { loadFashionMnistSplit } from '../data/idx';
import type { ModelSpec } from '../model/spec';
import type { DataConfig, TrainConfig } from './config';

export interface DataSources {
  train: Dataset;
  val: Dataset;
  report?: AnnotationReport;
}

export async function loadSources(spec: ModelSpec, data: DataConfig, seed: number, warn?: (line: string) => void): Promise<DataSources> {
  if (data.kind === 'fashionloc') {
    const classes = spec.heads.classification.labels.length;
    if (classes !== 10) throw new Error(`FashionLoc has the 10 Fashion-MNIST classes; architecture ${spec.name} has ${classes}`);
    // Training and validation canvases both come from Fashion-MNIST's training images.
    const source = { train: await loadFashionMnistSplit('train', data.dir) };
    return {
      train: fashionLocDataset(source, spec.input, 'train', { seed, count: data.trainCount, p: data.p }),
      val: fashionLocDataset(source, spec.input, 'val', { seed: seed + 1, count: data.valCount ?? 2000, p: data.p }),
    };
  }
  const { samples, report } = await loadAnnotatedDataset(data.file, spec.heads.classification.labels, spec.input, {
    skipBad: data.skipBad,
    maxPixels: data.maxPixels,
    onWarning: warn,
  });
  if (samples.length === 0) throw new Error(`${data.file}: no usable samples`);
  const { train, val } = splitSamples(samples, data.valShare, seed);
  return { train: annotatedDataset(train), val: annotatedDataset(val), report };
}

/** The geometric jitter a config asks for, or undefined for no augmentation at all. */
export function augmentationOf(config: Pick<TrainConfig, 'augment' | 'translate' | 'scaleJitter'>): { translate: number; scale: number } | undefined {
  return config.augment ? { translate: config.translate, scale: config.scaleJitter } : undefined;
}

/** Batch `index` of epoch `epoch`: a pure function of the dataset, seed, epoch and index. */
export class BatchMaker {
  private orders = new Map<number, Uint32Array>();
  private augmentedSets = new Map<number, Dataset>();

  constructor(
    private readonly sources: DataSources,
    private readonly spec: ModelSpec,
    private readonly batchSize: number,
    private readonly seed: number,
    /** Geometric jitter beyond flips and brightness; undefined: no augmentation at all. */
    private readonly augment: { translate: number; scale: number } | undefined,
  ) {}

  get stepsPerEpoch(): number {
    return Math.max(1, Math.floor(this.sources.train.length / this.batchSize));
  }

  get valBatches(): number {
    return Math.ceil(this.sources.val.length / this.batchSize);
  }

  train(epoch: number, index: number): Batch {
    let order = this.orders.get(epoch);
    if (!order) {
      this.orders.clear();
      this.augmentedSets.clear();
      order = epochOrder(this.sources.train.length, this.seed, epoch);
      this.orders.set(epoch, order);
    }
    let set = this.augmentedSets.get(epoch);
    if (!set) {
      set = this.augment ? augmented(this.sources.train, this.spec.input, { seed: this.seed, epoch, ...this.augment }) : this.sources.train;
      this.augmentedSets.set(epoch, set);
    }
    const start = index * this.batchSize;
    const samples: Sample[] = [];
    // Small datasets repeat within a batch rather than leave it short.
    for (let k = 0; k < this.batchSize; k++) samples.push(set.get(order[(start + k) % order.length]));
    return collate(samples, this.spec.input);
  }

  val(index: number): Batch {
    const start = index * this.batchSize;
    const end = Math.min(this.sources.val.length, start + this.batchSize);
    const samples: Sample[] = [];
    for (let k = start; k < end; k++) samples.push(this.sources.val.get(k));
    return collate(samples, this.spec.input);
  }
}
