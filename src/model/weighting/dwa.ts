import { defineWeighting, type HostState } from './types';

/**
 * Dynamic Weight Average: w_t = T·softmax(r / temperature) with r_t = L_t(e−1) / L_t(e−2), the
 * ratio of the last two epochs' mean training losses; w = 1 for the first two epochs.
 */
export function dwaWeights(history: readonly (readonly number[])[], temperature: number, T: number): number[] {
  if (history.length < 2) return new Array<number>(T).fill(1);
  const [older, newer] = history.slice(-2);
  const ratios = newer.map((l, t) => l / Math.max(older[t], 1e-12));
  const exps = ratios.map((r) => Math.exp(r / temperature));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => (T * e) / total);
}

interface DwaState extends HostState {
  /** Mean task losses of the last epochs, newest last (at most two kept). */
  history: number[][];
}

export const dwa = defineWeighting({
  name: 'dwa',
  doc: 'Dynamic Weight Average: λ_t scaled each epoch by T·softmax(r_t/temperature), r_t the ratio of the last two epochs’ mean losses; exact (per epoch, on the host)',
  paper: {
    title: 'End-to-End Multi-Task Learning with Attention',
    authors: 'Shikun Liu, Edward Johns, Andrew J. Davison',
    year: 2019,
    url: 'https://arxiv.org/abs/1803.10704',
  },
  kind: 'loss',
  variant: 'per epoch',
  options: {
    temperature: { kind: 'number', doc: 'softmax temperature T of the paper', default: 2, min: 1e-3 },
  },
  needs: () => ({ gradients: 'losses' }),
  host: {
    init: (): DwaState => ({ history: [] }),
    feeds: (state, options) => {
      const history = (state as DwaState).history;
      const T = history[0]?.length ?? 0;
      return T === 0 ? {} : { lossScale: dwaWeights(history, Number(options.temperature), T) };
    },
    onEpochEnd: (state, meanLosses): DwaState => ({ history: [...(state as DwaState).history, [...meanLosses]].slice(-2) }),
  },
});
