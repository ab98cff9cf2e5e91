/** The reference evaluation set of a model: FashionLoc test canvases for models with Fashion-MNIST's labels. */
import type { Manifest } from '../artifacts/manifest';
import { fashionLocDataset, type Dataset } from '../data/dataset';
import { FASHIONLOC_EVAL_SEED } from '../data/fashionloc';
import { loadFashionMnistSplit } from '../data/idx';
import { FASHION_LABELS } from '../model/spec';

/** `trident eval`'s seed, so figures compare with manifests' metrics.test. */
export const REFERENCE_SEED = FASHIONLOC_EVAL_SEED;
export const REFERENCE_NAME = 'fashionloc-test';

export interface ReferenceOptions {
  count: number;
  fashionMnistDir?: string;
}

export type ReferenceSet = { name: string; dataset: Dataset } | { skipped: string } | undefined;

export function hasFashionLabels(manifest: Pick<Manifest, 'labels'>): boolean {
  return manifest.labels.length === FASHION_LABELS.length && manifest.labels.every((l, i) => l === FASHION_LABELS[i]);
}

/** Undefined when the model has no reference set; `skipped` when it has one that cannot be built here. */
export async function referenceSet(manifest: Pick<Manifest, 'labels' | 'spec'>, options: ReferenceOptions | undefined): Promise<ReferenceSet> {
  if (!options || !hasFashionLabels(manifest)) return undefined;
  try {
    const test = await loadFashionMnistSplit('test', options.fashionMnistDir);
    return { name: REFERENCE_NAME, dataset: fashionLocDataset({ test }, manifest.spec.input, 'test', { seed: REFERENCE_SEED, count: options.count }) };
  } catch (e) {
    return { skipped: (e as Error).message };
  }
}
