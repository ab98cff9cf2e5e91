import { GRADIENTS_OPTION, gramNeeds } from './gradient-source';
import { sum, type Scalars } from './scalars';
import { defineWeighting } from './types';

/**
 * IMTL-G's closed form: g = Σ_t α_t·g_t with equal projections g·u_t on every unit gradient
 * u_t = g_t/‖g_t‖. With d_k = g_1 − g_k and e_k = u_1 − u_k (k ≥ 2): α_{2:T} = g_1·Eᵀ·(D·Eᵀ)⁻¹ and
 * α_1 = 1 − Σ α_{2:T}; every product is read from the Gram matrix (g_a·u_b = G_ab/‖g_b‖).
 * Solved for up to three tasks; a singular system (parallel gradients) gives equal weights.
 */
export function imtlgWeights<S, B>(s: Scalars<S, B>, gram: readonly (readonly S[])[]): S[] {
  const T = gram.length;
  if (T === 1) return [s.const(1)];
  if (T > 3) throw new RangeError(`IMTL-G is solved in closed form for up to 3 tasks, not ${T}`);
  const norm = gram.map((row, t) => s.sqrt(s.max(row[t], s.const(1e-30))));
  const gu = (a: number, b: number) => s.div(gram[a][b], norm[b]);
  // v_k = g_1·e_k; M_jk = d_j·e_k, for j, k in 2..T.
  const e1 = (a: number, k: number) => s.sub(gu(a, 0), gu(a, k));
  const v = Array.from({ length: T - 1 }, (_, k) => e1(0, k + 1));
  const m = Array.from({ length: T - 1 }, (_, j) => Array.from({ length: T - 1 }, (__, k) => s.sub(e1(0, k + 1), e1(j + 1, k + 1))));
  const uniform = s.const(1 / T);
  let rest: S[];
  let det: S;
  if (T === 2) {
    det = m[0][0];
    rest = [s.div(v[0], det)];
  } else {
    // Row vector x solving x·M = v, i.e. Mᵀ·xᵀ = vᵀ, by Cramer's rule.
    det = s.sub(s.mul(m[0][0], m[1][1]), s.mul(m[0][1], m[1][0]));
    rest = [
      s.div(s.sub(s.mul(v[0], m[1][1]), s.mul(m[1][0], v[1])), det),
      s.div(s.sub(s.mul(m[0][0], v[1]), s.mul(m[0][1], v[0])), det),
    ];
  }
  // det has the units of ‖g‖^(T−1); compared with the trace's.
  const trace = sum(s, gram.map((row, t) => row[t]));
  const scale = T === 2 ? s.sqrt(trace) : trace;
  const solvable = s.less(s.mul(s.const(1e-9), scale), s.abs(det));
  const alpha = [s.sub(s.const(1), sum(s, rest)), ...rest];
  return alpha.map((a) => s.where(solvable, a, uniform));
}

export const imtlG = defineWeighting({
  name: 'imtl-g',
  doc: 'IMTL-G: the combination Σ α_t·g_t (Σ α_t = 1) whose projections on every unit task gradient are equal; closed form in the graph; exact',
  paper: {
    title: 'Towards Impartial Multi-task Learning',
    authors: 'Liyang Liu, Yi Li, Zhanghui Kuang, Jing-Hao Xue, Yimin Chen, Wenming Yang, Qingmin Liao, Wayne Zhang',
    year: 2021,
    url: 'https://openreview.net/forum?id=IMPnRXEWpvr',
  },
  kind: 'gradient',
  variant: 'exact',
  options: { gradients: GRADIENTS_OPTION },
  needs: gramNeeds,
  graph: ({ s, gram }) => ({ weights: imtlgWeights(s, gram!) }),
});
