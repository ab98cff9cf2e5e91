import { GRADIENTS_OPTION, gramNeeds } from './gradient-source';
import { sum, type Scalars } from './scalars';
import { defineWeighting } from './types';

/**
 * g_i projected in turn onto the normal plane of each g_j (j in `order`) it conflicts with
 * (g_i·g_j < 0), as coefficients c over the original gradients: g_i^PC = Σ_k c_k·g_k.
 */
function project<S, B>(s: Scalars<S, B>, gram: readonly (readonly S[])[], i: number, order: readonly number[]): S[] {
  const zero = s.const(0);
  const c = gram.map((_, k) => s.const(k === i ? 1 : 0));
  for (const j of order) {
    const along = sum(s, c.map((ck, k) => s.mul(ck, gram[k][j])));
    // A zero g_j gives 0/0 here, in the branch that `where` does not take.
    c[j] = s.where(s.less(along, zero), s.sub(c[j], s.div(along, gram[j][j])), c[j]);
  }
  return c;
}

/** Bit `i` of the step count, as a condition. */
function stepBit<S, B>(s: Scalars<S, B>, step: S, i: number): B {
  const q = s.floor(s.div(step, s.const(2 ** i)));
  const bit = s.sub(q, s.mul(s.const(2), s.floor(s.div(q, s.const(2)))));
  return s.less(s.const(0.5), bit);
}

/**
 * PCGrad as weights on the task gradients: Σ_i g_i^PC = Σ_k w_k·g_k. Each g_i meets the other
 * tasks' gradients in an order that bit i of the step count picks (for three tasks; the paper
 * shuffles at random), so a run is reproducible and needs no random input.
 */
export function pcgradWeights<S, B>(s: Scalars<S, B>, gram: readonly (readonly S[])[], step: S): S[] {
  const T = gram.length;
  const rows = gram.map((_, i) => {
    const others = gram.map((__, j) => j).filter((j) => j !== i);
    if (others.length < 2) return project(s, gram, i, others);
    const forward = project(s, gram, i, others);
    const backward = project(s, gram, i, [...others].reverse());
    const flip = stepBit(s, step, i);
    return forward.map((c, k) => s.where(flip, backward[k], c));
  });
  return Array.from({ length: T }, (_, k) => sum(s, rows.map((r) => r[k])));
}

export const pcgrad = defineWeighting({
  name: 'pcgrad',
  doc: 'PCGrad: each task gradient projected onto the normal plane of the others it conflicts with, then summed; computed in the graph from the Gram matrix; exact',
  paper: {
    title: 'Gradient Surgery for Multi-Task Learning',
    authors: 'Tianhe Yu, Saurabh Kumar, Abhishek Gupta, Sergey Levine, Karol Hausman, Chelsea Finn',
    year: 2020,
    url: 'https://arxiv.org/abs/2001.06782',
  },
  kind: 'gradient',
  variant: 'exact',
  options: { gradients: GRADIENTS_OPTION },
  needs: gramNeeds,
  graph: ({ s, gram, step }) => ({ weights: pcgradWeights(s, gram!, step) }),
});
