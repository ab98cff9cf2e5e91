import { sum } from './scalars';
import { defineWeighting } from './types';

/**
 * Uncertainty weighting: learnable log-variances s_t = log σ_t², trained in the graph with the
 * model's optimizer; loss Σ_t [½·e^(−s_t)·ℓ_t + ½·s_t] with ℓ_t = λ_t·L_t. This is the paper's
 * regression form, used for every task as LibMTL does; at its optimum σ_t² = ℓ_t.
 */
export const uw = defineWeighting({
  name: 'uw',
  doc: 'uncertainty weighting: Σ ½e^(−s_t)·ℓ_t + ½s_t with log-variances s_t trained in the graph (their own Adam/SGD state); exact',
  paper: {
    title: 'Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics',
    authors: 'Alex Kendall, Yarin Gal, Roberto Cipolla',
    year: 2018,
    url: 'https://arxiv.org/abs/1705.07115',
  },
  kind: 'loss',
  variant: 'exact',
  options: {},
  needs: () => ({ gradients: 'losses' }),
  graph({ s, losses, lambda, parameter }) {
    const logVar = parameter('log_var');
    const half = s.const(0.5);
    const weights = logVar.map((v) => s.mul(half, s.exp(s.neg(v))));
    const terms = losses.map((l, t) => s.add(s.mul(weights[t], s.mul(lambda[t], l)), s.mul(half, logVar[t])));
    return { objective: sum(s, terms), reported: weights };
  },
});
