import { chooseWeighting } from './index';
import { imtlgWeights } from './imtl-g';
import { numbers } from './scalars';
import { combine, gramOf, runInGraph, runOnNumbers } from '../../testing/weighting';
import { mulberry32 } from '../../base/random';

const dot = (a: number[], b: number[]) => a.reduce((s, v, k) => s + v * b[k], 0);
const unit = (v: number[]) => v.map((x) => x / Math.hypot(...v));

describe('IMTL-G (Liu et al. 2021)', () => {
  it('two orthogonal gradients of norms 1 and 2: α = (2/3, 1/3), equal projections of 2/3', () => {
    const grads = [[1, 0], [0, 2]];
    const alpha = imtlgWeights(numbers, gramOf(grads));
    expect(alpha[0]).toBeCloseTo(2 / 3, 12);
    expect(alpha[1]).toBeCloseTo(1 / 3, 12);
    const g = combine(alpha, grads);
    expect(dot(g, unit(grads[0]))).toBeCloseTo(2 / 3, 12);
    expect(dot(g, unit(grads[1]))).toBeCloseTo(2 / 3, 12);
  });

  it('three random gradients: the combination projects equally on every unit gradient and the weights sum to 1', () => {
    const random = mulberry32(3);
    for (let trial = 0; trial < 50; trial++) {
      const grads = Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => random() * 2 - 1));
      const alpha = imtlgWeights(numbers, gramOf(grads));
      expect(alpha.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
      const g = combine(alpha, grads);
      const projections = grads.map((gt) => dot(g, unit(gt)));
      projections.forEach((p) => expect(p).toBeCloseTo(projections[0], 8));
    }
  });

  it('parallel gradients leave the system singular: equal weights', () => {
    expect(imtlgWeights(numbers, gramOf([[1, 1], [2, 2], [3, 3]]))).toEqual([1 / 3, 1 / 3, 1 / 3]);
  });

  it('the graph computes the same weights as the host (float32)', async () => {
    const random = mulberry32(9);
    const choice = chooseWeighting('imtl-g');
    for (let trial = 0; trial < 5; trial++) {
      const gram = gramOf(Array.from({ length: 3 }, () => Array.from({ length: 3 }, () => random() * 2 - 1)));
      const host = runOnNumbers(choice, { losses: [1, 1, 1], gram }).weights!;
      const graph = (await runInGraph(choice, { losses: [1, 1, 1], gram })).weights!;
      graph.forEach((w, t) => expect(w).toBeCloseTo(host[t], 3));
    }
    const pair = gramOf([[1, 0], [0, 2]]);
    const graph = (await runInGraph(choice, { losses: [1, 1], gram: pair }, [0, 2])).weights!;
    expect(graph[0]).toBeCloseTo(2 / 3, 6);
    expect(graph[1]).toBeCloseTo(1 / 3, 6);
  });
});
