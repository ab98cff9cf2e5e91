/** Runs images through a model version and turns its three heads into one prediction per image. */
import type { SubmitOptions } from './batcher';
import { RuntimeError } from './errors';
import type { ModelVersion } from './model-version';
import type { HostTensor } from './tensor';
import type { Feeds } from './worker-protocol';

export interface ScoredLabel {
  label: string;
  index: number;
  score: number;
}

export interface Corners {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
}

export interface Prediction {
  class: ScoredLabel & { topK: ScoredLabel[] };
  object: { present: boolean; score: number };
  /** Normalised to 0..1 of the image. */
  box: Corners;
}

export interface PredictOptions {
  topK: number;
  objectThreshold: number;
}

export const HEAD_OUTPUTS = { classProbs: 'class_probs', objectness: 'objectness', box: 'box' } as const;

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** Decodes row `row` of the model's outputs. */
export function decodeHeads(outputs: Feeds, row: number, labels: readonly string[], opts: PredictOptions): Prediction {
  const probs = rowOf(outputs, HEAD_OUTPUTS.classProbs, row);
  const objectness = rowOf(outputs, HEAD_OUTPUTS.objectness, row)[0];
  const [bx1, by1, bx2, by2] = rowOf(outputs, HEAD_OUTPUTS.box, row);
  const ranked = Array.from(probs, (score, index) => ({ label: labels[index] ?? String(index), index, score }));
  ranked.sort((a, b) => b.score - a.score || a.index - b.index);
  const topK = ranked.slice(0, Math.max(1, Math.min(opts.topK, ranked.length)));
  return {
    class: { ...ranked[0], topK },
    object: { present: objectness >= opts.objectThreshold, score: objectness },
    box: {
      x1: clamp01(Math.min(bx1, bx2)),
      y1: clamp01(Math.min(by1, by2)),
      x2: clamp01(Math.max(bx1, bx2)),
      y2: clamp01(Math.max(by1, by2)),
    },
  };
}

function rowOf(outputs: Feeds, name: string, row: number): Float32Array {
  const t: HostTensor | undefined = outputs[name];
  if (!t || t.dtype !== 'float32') throw new RuntimeError('internal', `the model has no float32 output "${name}"`);
  const width = t.data.length / t.dims[0];
  return (t.data as Float32Array).subarray(row * width, (row + 1) * width);
}

export class Predictor {
  constructor(private readonly model: ModelVersion) {}

  /** Each image is a normalised C·H·W tensor; each goes through the batcher as its own sample. */
  predict(images: readonly Float32Array[], opts: PredictOptions & SubmitOptions): Promise<Prediction[]> {
    const input = this.model.inputs[0];
    const dims = [1, ...input.shape.slice(1)];
    return Promise.all(
      images.map(async (data) => {
        const outputs = await this.model.infer({ [input.name]: { dtype: 'float32', dims, data } }, opts);
        return decodeHeads(outputs, 0, this.model.labels, opts);
      }),
    );
  }
}
