/** Per-task quality metrics over a set of predictions and targets. */

export interface Predictions {
  count: number;
  numClasses: number;
  classProbs: Float32Array; // N·K
  objectness: Float32Array; // N, probability
  boxes: Float32Array; // N·4, normalised corners
}

export interface Targets {
  labels: ArrayLike<number | bigint>; // N
  objectness: ArrayLike<number>; // N, 0 or 1
  boxes: ArrayLike<number>; // N·4
}

export interface Metrics {
  samples: number;
  objects: number;
  classAccuracy: number;
  perClassAccuracy: number[];
  objectnessPrecision: number;
  objectnessRecall: number;
  objectnessF1: number;
  objectnessAP: number;
  boxMeanIoU: number;
  boxIoUAbove50: number;
  detectionCorrect: number;
}

export function iou(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number): number {
  const ix = Math.max(0, Math.min(a[ai + 2], b[bi + 2]) - Math.max(a[ai], b[bi]));
  const iy = Math.max(0, Math.min(a[ai + 3], b[bi + 3]) - Math.max(a[ai + 1], b[bi + 1]));
  const inter = ix * iy;
  const area = (x: ArrayLike<number>, i: number) => Math.max(0, x[i + 2] - x[i]) * Math.max(0, x[i + 3] - x[i + 1]);
  const union = area(a, ai) + area(b, bi) - inter;
  return union > 0 ? inter / union : 0;
}

function argmax(values: Float32Array, offset: number, length: number): number {
  let best = 0;
  for (let k = 1; k < length; k++) if (values[offset + k] > values[offset + best]) best = k;
  return best;
}

/** Average precision: area under the precision–recall curve with precision made monotone (all points). */
export function averagePrecision(scores: ArrayLike<number>, positives: ArrayLike<number>): number {
  const order = Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const totalPositive = Array.from(positives).filter((p) => p === 1).length;
  if (totalPositive === 0) return 0;
  const precision: number[] = [];
  const recall: number[] = [];
  let tp = 0;
  order.forEach((idx, rank) => {
    if (positives[idx] === 1) tp++;
    precision.push(tp / (rank + 1));
    recall.push(tp / totalPositive);
  });
  for (let i = precision.length - 2; i >= 0; i--) precision[i] = Math.max(precision[i], precision[i + 1]);
  let ap = 0;
  let lastRecall = 0;
  for (let i = 0; i < recall.length; i++) {
    ap += (recall[i] - lastRecall) * precision[i];
    lastRecall = recall[i];
  }
  return ap;
}

export function computeMetrics(p: Predictions, t: Targets, threshold = 0.5): Metrics {
  const k = p.numClasses;
  const perClassRight = new Array(k).fill(0);
  const perClassTotal = new Array(k).fill(0);
  let objects = 0;
  let right = 0;
  let iouSum = 0;
  let iouAbove = 0;
  let detections = 0;
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < p.count; i++) {
    const present = t.objectness[i] === 1;
    const predicted = p.objectness[i] >= threshold;
    if (present && predicted) tp++;
    else if (!present && predicted) fp++;
    else if (present && !predicted) fn++;
    if (!present) continue;
    objects++;
    const label = Number(t.labels[i]);
    const guess = argmax(p.classProbs, i * k, k);
    perClassTotal[label]++;
    const classRight = guess === label;
    if (classRight) {
      right++;
      perClassRight[label]++;
    }
    const overlap = iou(p.boxes, i * 4, t.boxes, i * 4);
    iouSum += overlap;
    if (overlap >= 0.5) iouAbove++;
    if (predicted && classRight && overlap >= 0.5) detections++;
  }
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
  const precision = ratio(tp, tp + fp);
  const recall = ratio(tp, tp + fn);
  return {
    samples: p.count,
    objects,
    classAccuracy: ratio(right, objects),
    perClassAccuracy: perClassRight.map((r, c) => ratio(r, perClassTotal[c])),
    objectnessPrecision: precision,
    objectnessRecall: recall,
    objectnessF1: ratio(2 * precision * recall, precision + recall),
    objectnessAP: averagePrecision(p.objectness, t.objectness),
    boxMeanIoU: ratio(iouSum, objects),
    boxIoUAbove50: ratio(iouAbove, objects),
    detectionCorrect: ratio(detections, objects),
  };
}
