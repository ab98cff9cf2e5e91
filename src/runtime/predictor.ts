/** Runs images through a model version and turns its three heads into one prediction per image. */
import { TridentError } from '../base/errors';
import { decodePrediction, type PredictOptions, type Prediction } from '../model/predictions';
import type { SubmitOptions } from './batcher';
import type { ModelVersion } from './model-version';
import type { HostTensor } from './tensor';
import type { HostFeeds } from './worker-protocol';

export type { Corners, Prediction, PredictOptions, ScoredLabel } from '../model/predictions';

export const HEAD_OUTPUTS = { classProbs: 'class_probs', objectness: 'objectness', box: 'box' } as const;

/** Decodes row `row` of the model's outputs. */
export function decodeHeads(outputs: HostFeeds, row: number, labels: readonly string[], opts: PredictOptions): Prediction {
  return decodePrediction(rowOf(outputs, HEAD_OUTPUTS.classProbs, row), rowOf(outputs, HEAD_OUTPUTS.objectness, row)[0], rowOf(outputs, HEAD_OUTPUTS.box, row), labels, opts);
}

function rowOf(outputs: HostFeeds, name: string, row: number): Float32Array {
  const t: HostTensor | undefined = outputs[name];
  if (!t || t.dtype !== 'float32') throw new TridentError('internal', `the model has no float32 output "${name}"`);
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
