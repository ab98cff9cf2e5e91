import { chooseWeighting } from './index';
import { famoLogitGradient, famoWeights } from './famo';
import { numbers } from './scalars';
import { runInGraph, runOnNumbers } from '../../testing/weighting';

describe('FAMO (Liu et al. 2023)', () => {
  it('the update direction Σ z_t·∇log ℓ_t / c: with z = (½, ½) and ℓ = (1, 4), weights 0.8 and 0.2 on ∇ℓ', () => {
    // c = ½/1 + ½/4 = 0.625; w_t = z_t / (c·ℓ_t).
    const w = famoWeights(numbers, [0, 0], [1, 4]);
    expect(w[0]).toBeCloseTo(0.8, 7);
    expect(w[1]).toBeCloseTo(0.2, 7);
  });

  it('the logits’ gradient: the task whose log loss fell more is pushed down', () => {
    // δ = log(before) − log(after) = (log 2, 0); d = z ⊙ (δ − z·δ) = (¼·log 2, −¼·log 2).
    const d = famoLogitGradient(numbers, [0, 0], [1, 4], [0.5, 4]);
    expect(d[0]).toBeCloseTo(Math.log(2) / 4, 7);
    expect(d[1]).toBeCloseTo(-Math.log(2) / 4, 7);
    // Adam's first step moves each logit by lr against the sign of its gradient.
    const run = runOnNumbers(chooseWeighting('famo'), { losses: [1, 4], lossesAfter: [0.5, 4] });
    expect(run.nexts.logits[0]).toBeCloseTo(-0.025, 6);
    expect(run.nexts.logits[1]).toBeCloseTo(0.025, 6);
    expect(run.weights![0]).toBeCloseTo(0.8, 7);
  });

  it('λ scales the losses it sees; weight decay γ pulls the logits toward 0', () => {
    const scaled = runOnNumbers(chooseWeighting('famo'), { losses: [1, 2], lambda: [1, 2], lossesAfter: [0.5, 4] });
    expect(scaled.weights![0]).toBeCloseTo(0.8, 7); // ℓ = (1, 4) as above
    const decayed = runOnNumbers(chooseWeighting('famo', { gamma: 1 }), { losses: [1, 1], lossesAfter: [1, 1], step: 0, tensors: { logits: [1, -1] } });
    // δ = 0, so the gradient is γ·ξ alone: the logits move toward 0.
    expect(decayed.nexts.logits[0]).toBeCloseTo(1 - 0.025, 6);
    expect(decayed.nexts.logits[1]).toBeCloseTo(-1 + 0.025, 6);
  });

  it('next_batch: the first step only records its losses; the next one closes the update with its own', () => {
    const famo = chooseWeighting('famo', { update: 'next_batch' });
    const first = runOnNumbers(famo, { losses: [1, 4], step: 0 });
    expect(first.nexts.logits).toEqual([0, 0]);
    expect(first.nexts.previous_losses).toEqual([1, 4]);
    const second = runOnNumbers(famo, { losses: [0.5, 4], step: 1, tensors: first.nexts });
    expect(second.nexts.logits[0]).toBeCloseTo(-0.025, 6);
    expect(second.nexts.logits[1]).toBeCloseTo(0.025, 6);
    // The weights of the second step already use the updated logits.
    expect(second.weights).toEqual(famoWeights(numbers, second.nexts.logits, [0.5, 4]));
  });

  it('the graph computes the same weights and state as the host (float32), in both variants', async () => {
    for (const update of ['same_batch', 'next_batch']) {
      const famo = chooseWeighting('famo', { update });
      const c = { losses: [0.4, 1.2, 0.9], lambda: [1, 2, 1], step: 4, lossesAfter: [0.35, 1.3, 0.8], tensors: { logits: [0.2, -0.1, 0.05], 'logits.exp_avg': [0.01, -0.02, 0.03], 'logits.exp_avg_sq': [0.001, 0.002, 0.003], previous_losses: [0.5, 2.2, 1] } };
      const host = runOnNumbers(famo, c);
      const graph = await runInGraph(famo, c);
      graph.weights!.forEach((w, t) => expect(w).toBeCloseTo(host.weights![t], 5));
      for (const [name, values] of Object.entries(host.nexts)) graph.nexts[name].forEach((v, t) => expect(v).toBeCloseTo(values[t], 5));
    }
  });
});
