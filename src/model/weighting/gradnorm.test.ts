import { chooseWeighting } from './index';
import { gradNormGradient, renormalise } from './gradnorm';
import { numbers } from './scalars';
import { runInGraph, runOnNumbers } from '../../testing/weighting';

const gradnorm = chooseWeighting('gradnorm', { alpha: 1.5, lr: 0.025 });

describe('GradNorm (Chen et al. 2018)', () => {
  it('first step: w = 1, L(0) recorded; the task with the larger gradient norm loses weight', () => {
    // n = (1, 2), equal training rates: target = mean(w·n) = 1.5 for both; w·n = (1, 2), so
    // ∂L_grad/∂w = (−1, +2): Adam's first step moves each weight by lr against its sign.
    const run = runOnNumbers(gradnorm, { losses: [0.7, 1.3], gram: [[1, 0], [0, 4]] });
    expect(run.weights).toEqual([1, 1]);
    expect(run.nexts.initial_losses).toEqual([0.7, 1.3]);
    expect(run.nexts.weight_offsets[0]).toBeCloseTo(0.025, 9);
    expect(run.nexts.weight_offsets[1]).toBeCloseTo(-0.025, 9);
  });

  it('a task that trains more slowly gets more weight (r_t^α raises its target)', () => {
    // L̃ = ℓ/ℓ(0) = (0.5, 1): r = (2/3, 4/3), targets 1·r^1.5 = (0.544, 1.540) against w·n = (1, 1).
    const step = gradNormGradient(numbers, [1, 1], [[1, 0], [0, 1]], [1, 1], [2, 1], 1.5);
    expect(step.gradient).toEqual([1, -1]);
    const run = runOnNumbers(gradnorm, { losses: [1, 1], gram: [[1, 0], [0, 1]], tensors: { initial_losses: [2, 1] } });
    expect(run.nexts.weight_offsets[0]).toBeCloseTo(-0.025, 9);
    expect(run.nexts.weight_offsets[1]).toBeCloseTo(0.025, 9);
  });

  it('the weights used are the carried ones, and renormalisation keeps Σ w = T with a floor', () => {
    const run = runOnNumbers(gradnorm, { losses: [1, 1, 1], gram: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], tensors: { weight_offsets: [0.5, -0.25, -0.25] } });
    expect(run.weights).toEqual([1.5, 0.75, 0.75]);
    const next = run.nexts.weight_offsets.map((o) => o + 1);
    expect(next.reduce((a, b) => a + b, 0)).toBeCloseTo(3, 12);
    const floored = renormalise(numbers, [-1, 1, 1]);
    expect(floored[0]).toBeCloseTo((3 * 1e-3) / 2.001, 12);
    expect(floored.reduce((a, b) => a + b, 0)).toBeCloseTo(3, 12);
  });

  it('the graph computes the same weights and state as the host (float32)', async () => {
    const c = { losses: [0.4, 1.2, 0.9], lambda: [1, 2, 1], step: 3, gram: [[2, 0.5, -0.3], [0.5, 1, 0.2], [-0.3, 0.2, 0.5]], tensors: { weight_offsets: [0.2, -0.1, -0.1], initial_losses: [1, 2, 1], 'weights.exp_avg': [0.1, -0.2, 0.3], 'weights.exp_avg_sq': [0.01, 0.04, 0.09] } };
    const host = runOnNumbers(gradnorm, c);
    const graph = await runInGraph(gradnorm, c);
    graph.weights!.forEach((w, t) => expect(w).toBeCloseTo(host.weights![t], 5));
    for (const [name, values] of Object.entries(host.nexts)) graph.nexts[name].forEach((v, t) => expect(v).toBeCloseTo(values[t], 5));
  });
});
