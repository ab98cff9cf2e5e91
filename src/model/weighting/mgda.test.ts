import { chooseWeighting } from './index';
import { minNormWeights } from './mgda';
import { numbers, quadratic } from './scalars';
import { combine, gramOf, runInGraph, runOnNumbers } from '../../testing/weighting';
import { mulberry32 } from '../../base/random';

const norm = (v: number[]) => Math.hypot(...v);

/** Karush–Kuhn–Tucker conditions of min αᵀGα on the simplex: (Gα)_t ≥ αᵀGα, with equality where α_t > 0. */
function expectOptimal(gram: number[][], alpha: number[]): void {
  const value = quadratic(numbers, gram, alpha);
  const scale = Math.max(...gram.map((r, t) => r[t]));
  expect(alpha.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
  gram.forEach((row, t) => {
    const slope = row.reduce((s, g, k) => s + g * alpha[k], 0);
    expect(alpha[t]).toBeGreaterThanOrEqual(-1e-9);
    expect(slope).toBeGreaterThanOrEqual(value - 1e-9 * scale);
    if (alpha[t] > 1e-6) expect(slope).toBeCloseTo(value, 6);
  });
}

describe('MGDA min-norm point (Sener & Koltun 2018)', () => {
  it('two orthogonal unit gradients: the midpoint', () => {
    expect(minNormWeights(numbers, gramOf([[1, 0], [0, 1]]))).toEqual([0.5, 0.5]);
  });

  it('two gradients in one direction: all weight on the shorter one', () => {
    expect(minNormWeights(numbers, gramOf([[1, 0], [2, 0]]))).toEqual([1, 0]);
  });

  it('three gradients around the origin: equal weights and a zero update (Pareto-stationary)', () => {
    const grads = [[1, 0], [0, 1], [-1, -1]];
    const alpha = minNormWeights(numbers, gramOf(grads));
    alpha.forEach((a) => expect(a).toBeCloseTo(1 / 3, 12));
    expect(norm(combine(alpha, grads))).toBeLessThan(1e-12);
  });

  it('three gradients whose closest point lies inside their triangle, in 3-D', () => {
    const grads = [[1, 0, 1], [0, 1, 1], [-1, -1, 1]];
    const alpha = minNormWeights(numbers, gramOf(grads));
    alpha.forEach((a) => expect(a).toBeCloseTo(1 / 3, 12));
    combine(alpha, grads).forEach((v, k) => expect(v).toBeCloseTo([0, 0, 1][k], 12));
  });

  it('three gradients whose closest point lies on an edge: the third gets no weight', () => {
    const alpha = minNormWeights(numbers, gramOf([[1, 0], [0, 1], [2, 2]]));
    expect(alpha[0]).toBeCloseTo(0.5, 12);
    expect(alpha[1]).toBeCloseTo(0.5, 12);
    expect(alpha[2]).toBe(0);
  });

  it('random gradients: the weights satisfy the optimality conditions and beat a fine grid', () => {
    const random = mulberry32(11);
    for (let trial = 0; trial < 200; trial++) {
      const dim = 2 + (trial % 4);
      const grads = Array.from({ length: 3 }, () => Array.from({ length: dim }, () => random() * 2 - 1));
      const gram = gramOf(grads);
      const alpha = minNormWeights(numbers, gram);
      expectOptimal(gram, alpha);
      let best = Infinity;
      for (let i = 0; i <= 60; i++) for (let j = 0; i + j <= 60; j++) best = Math.min(best, quadratic(numbers, gram, [i / 60, j / 60, (60 - i - j) / 60]));
      expect(quadratic(numbers, gram, alpha)).toBeLessThanOrEqual(best + 1e-12);
    }
  });

  it('normalisation: the solve sees normalised gradients; its weights then scale the raw ones (Sener & Koltun’s code)', () => {
    const gram = gramOf([[1, 0], [0, 10]]);
    const none = runOnNumbers(chooseWeighting('mgda'), { losses: [1, 1], gram }).weights!;
    expect(none[0]).toBeCloseTo(100 / 101, 12);
    const l2 = runOnNumbers(chooseWeighting('mgda', { normalization: 'l2' }), { losses: [1, 1], gram }).weights!;
    expect(l2[0]).toBeCloseTo(0.5, 12);
    expect(l2[1]).toBeCloseTo(0.5, 12);
    const loss = runOnNumbers(chooseWeighting('mgda', { normalization: 'loss' }), { losses: [2, 1], lambda: [1, 10], gram: gramOf([[1, 0], [0, 1]]) }).weights!;
    // ℓ = (2, 10): normalised gradients (½, 0) and (0, 1/10); their min-norm point weighs them 1/26 and 25/26.
    expect(loss[0]).toBeCloseTo(1 / 26, 12);
    expect(loss[1]).toBeCloseTo(25 / 26, 12);
  });

  it('the graph computes the same weights as the host (float32)', async () => {
    const random = mulberry32(5);
    for (const normalization of ['none', 'loss+']) {
      const choice = chooseWeighting('mgda', { normalization });
      for (let trial = 0; trial < 6; trial++) {
        const grads = Array.from({ length: 3 }, () => Array.from({ length: 3 }, () => random() * 2 - 1));
        if (trial === 0) grads[2] = [-grads[0][0] - grads[1][0], -grads[0][1] - grads[1][1], -grads[0][2] - grads[1][2]];
        const c = { losses: [0.5, 1, 2], gram: gramOf(grads) };
        const host = runOnNumbers(choice, c).weights!;
        const graph = (await runInGraph(choice, c)).weights!;
        graph.forEach((w, t) => expect(w).toBeCloseTo(host[t], 4));
      }
    }
  });
});
