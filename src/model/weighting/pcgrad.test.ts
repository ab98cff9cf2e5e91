import { chooseWeighting } from './index';
import { pcgradWeights } from './pcgrad';
import { numbers } from './scalars';
import { combine, gramOf, runInGraph, runOnNumbers } from '../../testing/weighting';

/** The paper's algorithm on the vectors themselves, with the order of the others given per task. */
function pcgradDirect(grads: number[][], orders: number[][]): number[] {
  const dot = (a: number[], b: number[]) => a.reduce((s, v, k) => s + v * b[k], 0);
  const projected = grads.map((g, i) => {
    const gi = [...g];
    for (const j of orders[i]) {
      const along = dot(gi, grads[j]);
      if (along < 0) grads[j].forEach((v, k) => (gi[k] -= (along / dot(grads[j], grads[j])) * v));
    }
    return gi;
  });
  return projected[0].map((_, k) => projected.reduce((s, p) => s + p[k], 0));
}

describe('PCGrad (Yu et al. 2020)', () => {
  it('two conflicting gradients: each is projected onto the other’s normal plane, then they are summed', () => {
    // g1 = (1, 0), g2 = (−1, 1): g1·g2 = −1. g1' = g1 + ½·g2 = (½, ½); g2' = g2 + g1 = (0, 1); sum (½, 3/2).
    const grads = [[1, 0], [-1, 1]];
    const w = pcgradWeights(numbers, gramOf(grads), 0);
    expect(w[0]).toBeCloseTo(2, 12);
    expect(w[1]).toBeCloseTo(1.5, 12);
    expect(combine(w, grads)).toEqual([0.5, 1.5]);
  });

  it('leaves gradients that do not conflict alone: the plain sum', () => {
    expect(pcgradWeights(numbers, gramOf([[1, 0], [1, 1], [0, 2]]), 5)).toEqual([1, 1, 1]);
  });

  it('three tasks: the order each gradient meets the others follows bits of the step, as the direct algorithm gives', () => {
    const grads = [[1, 0.2, 0], [-0.8, 1, 0.3], [-0.5, -0.9, 0.4]];
    const others = [[1, 2], [0, 2], [0, 1]];
    for (let step = 0; step < 8; step++) {
      const orders = others.map((o, i) => ((step >> i) & 1 ? [...o].reverse() : o));
      const expected = pcgradDirect(grads, orders);
      const got = combine(pcgradWeights(numbers, gramOf(grads), step), grads);
      got.forEach((v, k) => expect(v).toBeCloseTo(expected[k], 12));
    }
    // The order matters here, so the steps really do differ.
    const first = pcgradDirect(grads, others);
    const flipped = pcgradDirect(grads, others.map((o) => [...o].reverse()));
    expect(Math.abs(first[0] - flipped[0]) + Math.abs(first[1] - flipped[1])).toBeGreaterThan(1e-3);
  });

  it('the graph computes the same weights as the host, for every order', async () => {
    const gram = gramOf([[1, 0.2, 0], [-0.8, 1, 0.3], [-0.5, -0.9, 0.4]]);
    const choice = chooseWeighting('pcgrad');
    for (const step of [0, 1, 2, 5, 7, 1024 + 6]) {
      const host = runOnNumbers(choice, { losses: [1, 1, 1], gram, step });
      const graph = await runInGraph(choice, { losses: [1, 1, 1], gram, step });
      graph.weights!.forEach((w, t) => expect(w).toBeCloseTo(host.weights![t], 5));
    }
  });
});
