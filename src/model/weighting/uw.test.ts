import { chooseWeighting } from './index';
import { runInGraph, runOnNumbers } from '../../testing/weighting';

describe('uncertainty weighting (Kendall et al. 2018)', () => {
  const uw = chooseWeighting('uw');
  // L = (2, 0.5, 1), s = log σ² = (0, ln 2, −1).
  const c = { losses: [2, 0.5, 1], tensors: { log_var: [0, Math.log(2), -1] } };
  const objective = 0.5 * 2 + (0.5 * 0.5) / 2 + 0.5 * Math.log(2) + 0.5 * Math.E * 1 - 0.5;
  const gradient = [-0.5 * 2 + 0.5, -0.125 + 0.5, -0.5 * Math.E + 0.5];

  it('the loss Σ ½e^(−s_t)·L_t + ½s_t, by hand', () => {
    const run = runOnNumbers(uw, c);
    expect(run.objective).toBeCloseTo(objective, 12);
    expect(run.applied).toEqual([0.5, 0.25, 0.5 * Math.E]);
  });

  it('in the graph: the same loss, and the autodiff gradient −½e^(−s_t)·L_t + ½, zero where σ_t² = L_t', async () => {
    const run = await runInGraph(uw, c);
    expect(run.objective).toBeCloseTo(objective, 5);
    run.objectiveGradients.log_var.forEach((g, t) => expect(g).toBeCloseTo(gradient[t], 5));
    const optimum = await runInGraph(uw, { losses: [2, 0.5, 1], tensors: { log_var: [Math.log(2), Math.log(0.5), 0] } });
    optimum.objectiveGradients.log_var.forEach((g) => expect(Math.abs(g)).toBeLessThan(1e-6));
  });

  it('λ scales the losses it sees', () => {
    expect(runOnNumbers(uw, { ...c, lambda: [2, 1, 1] }).objective).toBeCloseTo(objective + 1, 12);
  });
});
