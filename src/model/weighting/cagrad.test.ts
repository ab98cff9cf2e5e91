import { cagrad, cagradWeights, projectOntoSimplex } from './cagrad';
import { chooseWeighting } from './index';
import { combine, gramOf } from '../../testing/weighting';
import { mulberry32 } from '../../base/random';

const dot = (a: number[], b: number[]) => a.reduce((s, v, k) => s + v * b[k], 0);
const norm = (v: number[]) => Math.sqrt(dot(v, v));

describe('CAGrad (Liu et al. 2021)', () => {
  it('c = 0 is the mean gradient', () => {
    const w = cagradWeights(gramOf([[1, 0], [-0.5, 2], [0.3, 0.3]]), 0, 1);
    w.forEach((v) => expect(v).toBeCloseTo(1 / 3, 9));
  });

  it('two orthogonal unit gradients: d = (1 + c)·g₀, divided by 1 + c² (rescale=1)', () => {
    const c = 0.4;
    const w = cagradWeights([[1, 0], [0, 1]], c, 1);
    w.forEach((v) => expect(v).toBeCloseTo((1 + c) / 2 / (1 + c * c), 6));
    expect(cagradWeights([[1, 0], [0, 1]], c, 0)[0]).toBeCloseTo((1 + c) / 2, 6);
  });

  it('random conflicting gradients: d lies on the ball ‖d − g₀‖ = c‖g₀‖ and no point of the ball does better for the worst task', () => {
    const random = mulberry32(21);
    const c = 0.5;
    for (let trial = 0; trial < 20; trial++) {
      const grads = Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => random() * 2 - 1));
      const g0 = combine([1 / 3, 1 / 3, 1 / 3], grads);
      const d = combine(cagradWeights(gramOf(grads), c, 0), grads);
      expect(norm(d.map((v, k) => v - g0[k]))).toBeCloseTo(c * norm(g0), 6);
      const worst = (x: number[]) => Math.min(...grads.map((g) => dot(g, x)));
      const achieved = worst(d);
      // The maximiser of the worst improvement lies in the span of the gradients.
      for (let k = 0; k < 2000; k++) {
        const direction = combine(Array.from({ length: 3 }, () => random() * 2 - 1), grads);
        const point = g0.map((v, i) => v + (c * norm(g0) * direction[i]) / norm(direction));
        expect(worst(point)).toBeLessThanOrEqual(achieved + 1e-6);
      }
    }
  });

  it('projects onto the simplex', () => {
    expect(projectOntoSimplex([0.2, 0.2, 0.2])).toEqual([1 / 3, 1 / 3, 1 / 3].map((v) => v));
    expect(projectOntoSimplex([2, 0, -1])).toEqual([1, 0, 0]);
    const p = projectOntoSimplex([0.9, 0.6, -0.2]);
    expect(p[0]).toBeCloseTo(0.65, 12);
    expect(p[1]).toBeCloseTo(0.35, 12);
    expect(p[2]).toBe(0);
  });

  it('host hooks: the mean gradient first, then weights solved on the last step’s Gram matrix, one step per run', () => {
    const { options } = chooseWeighting('cagrad');
    const host = cagrad.host!;
    let state = host.init(2, options);
    expect(host.feeds(state, options).inputs!.weights).toEqual([0.5, 0.5]);
    state = host.afterStep!(state, { losses: [1, 1], gram: [[1, 0], [0, 1]] }, options);
    expect(host.feeds(state, options).inputs!.weights[0]).toBeCloseTo(1.4 / 2 / 1.16, 6);
    expect(host.stepsPerRun).toBe(1);
  });
});
