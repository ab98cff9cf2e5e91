import { GRADIENTS_OPTION, gramNeeds } from './gradient-source';
import { quadratic, sum, type Scalars } from './scalars';
import { defineWeighting } from './types';

/** The minimiser γ ∈ [0, 1] of ‖γ·g_i + (1 − γ)·g_j‖² (Sener & Koltun, Algorithm 1); ½ when g_i = g_j. */
function pairMinimiser<S, B>(s: Scalars<S, B>, gram: readonly (readonly S[])[], i: number, j: number): S {
  const spread = s.sub(s.add(gram[i][i], gram[j][j]), s.mul(s.const(2), gram[i][j]));
  const gamma = s.div(s.sub(gram[j][j], gram[i][j]), spread);
  const clipped = s.min(s.max(gamma, s.const(0)), s.const(1));
  return s.where(s.less(s.const(0), spread), clipped, s.const(0.5));
}

/**
 * The min-norm point of the convex hull of the task gradients, as weights on the simplex:
 * argmin_α ‖Σ α_t·g_t‖², read from the Gram matrix. Exact for up to three tasks: the minimum lies
 * on an edge (closed form per pair) or inside, where α ∝ adj(G)·1 (when that is a point of the simplex).
 */
export function minNormWeights<S, B>(s: Scalars<S, B>, gram: readonly (readonly S[])[]): S[] {
  const T = gram.length;
  const zero = s.const(0);
  const one = s.const(1);
  if (T === 1) return [one];
  if (T > 3) throw new RangeError(`the min-norm point is solved exactly for up to 3 tasks, not ${T}`);
  const edge = (i: number, j: number) => {
    const gamma = pairMinimiser(s, gram, i, j);
    return gram.map((_, k) => (k === i ? gamma : k === j ? s.sub(one, gamma) : zero));
  };
  if (T === 2) return edge(0, 1);
  const g = gram;
  const cof = (r0: number, r1: number, c0: number, c1: number) => s.sub(s.mul(g[r0][c0], g[r1][c1]), s.mul(g[r0][c1], g[r1][c0]));
  // adj(G)·1, row by row (G is symmetric, so adj(G) is too).
  const adjRows = [
    [cof(1, 2, 1, 2), s.neg(cof(0, 2, 1, 2)), cof(0, 1, 1, 2)],
    [s.neg(cof(1, 2, 0, 2)), cof(0, 2, 0, 2), s.neg(cof(0, 1, 0, 2))],
    [cof(1, 2, 0, 1), s.neg(cof(0, 2, 0, 1)), cof(0, 1, 0, 1)],
  ];
  const r = adjRows.map((row) => sum(s, row));
  const total = sum(s, r);
  const inside = r.map((v) => s.div(v, total));
  const scale = sum(s, g.map((row, t) => row[t]));
  // Inside the simplex, with a total that is not round-off (its units are ‖g‖⁴).
  const insideValid = inside.reduce(
    (ok, a) => s.and(ok, s.less(s.const(-1e-7), a)),
    s.less(s.mul(s.const(1e-12), s.mul(scale, scale)), s.abs(total)),
  );
  let best = edge(0, 1);
  let bestValue = quadratic(s, g, best);
  const consider = (candidate: S[], valid?: B) => {
    const value = quadratic(s, g, candidate);
    const better = valid ? s.and(valid, s.less(value, bestValue)) : s.less(value, bestValue);
    best = best.map((b, k) => s.where(better, candidate[k], b));
    bestValue = s.where(better, value, bestValue);
  };
  consider(edge(0, 2));
  consider(edge(1, 2));
  consider(inside.map((a) => s.max(a, zero)), insideValid);
  return best;
}

/**
 * MGDA: the min-norm combination of the task gradients, computed in the graph from the Gram
 * matrix. `gradients=representation` is MGDA-UB (the upper bound through the shared
 * representation); `parameters` is MGDA over the shared parameters. Gradients are normalised
 * for the solve (Sener & Koltun's `normalization_type`); the weights found then apply to the
 * unnormalised gradients, as in their code.
 */
export const mgda = defineWeighting({
  name: 'mgda',
  doc: 'MGDA-UB / MGDA: the min-norm point of the convex hull of the task gradients (exact for 3 tasks, in the graph); exact',
  paper: {
    title: 'Multi-Task Learning as Multi-Objective Optimization',
    authors: 'Ozan Sener, Vladlen Koltun',
    year: 2018,
    url: 'https://arxiv.org/abs/1810.04650',
  },
  kind: 'gradient',
  variant: 'exact',
  options: {
    gradients: GRADIENTS_OPTION,
    normalization: { kind: 'choice', doc: 'gradient normalisation for the solve: none, l2 (‖g_t‖), loss (ℓ_t) or loss+ (ℓ_t·‖g_t‖)', default: 'none', values: ['none', 'l2', 'loss', 'loss+'] },
  },
  needs: gramNeeds,
  graph({ s, gram, losses, lambda }, o) {
    const norm = (t: number) => s.sqrt(s.max(gram![t][t], s.const(1e-30)));
    const loss = (t: number) => s.max(s.mul(lambda[t], losses[t]), s.const(1e-30));
    const n = gram!.map((_, t) =>
      o.normalization === 'l2' ? norm(t) : o.normalization === 'loss' ? loss(t) : o.normalization === 'loss+' ? s.mul(loss(t), norm(t)) : s.const(1),
    );
    const normalised = gram!.map((row, i) => row.map((v, j) => s.div(v, s.mul(n[i], n[j]))));
    return { weights: minNormWeights(s, normalised) };
  },
});
