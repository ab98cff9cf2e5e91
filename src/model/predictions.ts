/**
 * From the three heads' outputs to a prediction, and between normalised and pixel boxes. Pure (no
 * Node API): the server, the CLI and the web app decode the same way.
 */

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

export interface ImageSize {
  width: number;
  height: number;
}

export type Box = [x1: number, y1: number, x2: number, y2: number];

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/** One image's class probabilities, objectness probability and normalised box corners → a prediction. */
export function decodePrediction(probs: ArrayLike<number>, objectness: number, box: ArrayLike<number>, labels: readonly string[], opts: PredictOptions): Prediction {
  const [bx1, by1, bx2, by2] = [box[0], box[1], box[2], box[3]];
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

/** Normalised corners (0..1 of the model input) to original-image pixels, clamped to the image. */
export function boxToPixels(box: readonly number[], size: ImageSize): Box {
  return [clamp01(box[0]) * size.width, clamp01(box[1]) * size.height, clamp01(box[2]) * size.width, clamp01(box[3]) * size.height];
}

/** Original-image pixel corners to normalised 0..1 corners (no clamping). */
export function boxToNormalised(box: readonly number[], size: ImageSize): Box {
  return [box[0] / size.width, box[1] / size.height, box[2] / size.width, box[3] / size.height];
}
