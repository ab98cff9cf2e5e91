import { averagePrecision, computeMetrics, iou } from './metrics';

describe('metrics', () => {
  it('computes IoU of normalised corner boxes', () => {
    expect(iou([0, 0, 1, 1], 0, [0, 0, 1, 1], 0)).toBe(1);
    expect(iou([0, 0, 0.5, 1], 0, [0.25, 0, 0.75, 1], 0)).toBeCloseTo(1 / 3);
    expect(iou([0, 0, 0.1, 0.1], 0, [0.5, 0.5, 1, 1], 0)).toBe(0);
  });

  it('computes average precision by hand on a small ranking', () => {
    // Ranking: P N P → precision 1, 1/2, 2/3 at recalls 1/2, 1/2, 1 → monotone 1, 2/3, 2/3 → AP = 0.5·1 + 0.5·2/3.
    expect(averagePrecision([0.9, 0.8, 0.7], [1, 0, 1])).toBeCloseTo(0.5 + 1 / 3);
    expect(averagePrecision([0.9, 0.1], [1, 0])).toBe(1);
  });

  it('matches a hand-built case for every task', () => {
    // Four samples: three with objects (labels 0, 1, 1), one empty.
    const metrics = computeMetrics(
      {
        count: 4,
        numClasses: 2,
        classProbs: Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.7, 0.3, 0.5, 0.5]),
        objectness: Float32Array.from([0.9, 0.8, 0.3, 0.6]),
        boxes: Float32Array.from([0, 0, 0.5, 0.5, 0, 0, 0.5, 1, 0, 0, 1, 1, 0, 0, 1, 1]),
      },
      {
        labels: [0, 1, 1, 0],
        objectness: [1, 1, 1, 0],
        boxes: [0, 0, 0.5, 0.5, 0.25, 0, 0.75, 1, 0.5, 0.5, 1, 1, 0, 0, 0, 0],
      },
    );
    expect(metrics.objects).toBe(3);
    expect(metrics.classAccuracy).toBeCloseTo(2 / 3);
    expect(metrics.perClassAccuracy).toEqual([1, 0.5]);
    // Objectness at 0.5: TP = 2 (samples 0, 1), FN = 1 (sample 2), FP = 1 (sample 3).
    expect(metrics.objectnessPrecision).toBeCloseTo(2 / 3);
    expect(metrics.objectnessRecall).toBeCloseTo(2 / 3);
    expect(metrics.objectnessF1).toBeCloseTo(2 / 3);
    // IoUs: 1, 1/3, 1/4.
    expect(metrics.boxMeanIoU).toBeCloseTo((1 + 1 / 3 + 0.25) / 3);
    expect(metrics.boxIoUAbove50).toBeCloseTo(1 / 3);
    // Only sample 0 is found, right and well placed.
    expect(metrics.detectionCorrect).toBeCloseTo(1 / 3);
  });
});
