/**
 * Host-side task weighting. `static` keeps λ; `dwa` (Dynamic Weight Average, Liu et al. 2019)
 * rescales λ each epoch by T·softmax(r / temperature) with r_t = L_t(e−1) / L_t(e−2).
 */
import type { Weighting } from './config';

const DWA_TEMPERATURE = 2;

export interface WeightingState {
  /** Mean task losses of past epochs, newest last (at most two kept). */
  history: [number, number, number][];
}

export function taskWeightsFor(kind: Weighting, base: [number, number, number], state: WeightingState): [number, number, number] {
  if (kind === 'static' || state.history.length < 2) return [...base];
  const [older, newer] = state.history.slice(-2);
  const ratios = newer.map((l, t) => l / Math.max(older[t], 1e-12));
  const exps = ratios.map((r) => Math.exp(r / DWA_TEMPERATURE));
  const sum = exps.reduce((a, b) => a + b, 0);
  return base.map((b, t) => (b * 3 * exps[t]) / sum) as [number, number, number];
}

export function recordEpoch(state: WeightingState, meanLosses: [number, number, number]): WeightingState {
  return { history: [...state.history, meanLosses].slice(-2) };
}
