import { adamMoments, adamStep, saveAdamMoments } from './adam';
import { dot, softmax, type Scalars } from './scalars';
import { defineWeighting, type WeightingContext } from './types';

/** Added to the losses before their logarithm, as in the reference code. */
export const FAMO_EPS = 1e-8;

/**
 * The weights FAMO puts on ∇ℓ_t: the update is Σ_t z_t·∇log ℓ_t / c = Σ_t (z_t / (c·ℓ_t))·∇ℓ_t
 * with z = softmax(ξ) and c = Σ_t z_t / ℓ_t (the reference code's `get_weighted_loss`).
 */
export function famoWeights<S, B>(s: Scalars<S, B>, logits: readonly S[], losses: readonly S[]): S[] {
  const z = softmax(s, logits);
  const shifted = losses.map((l) => s.add(l, s.const(FAMO_EPS)));
  const c = dot(s, z, shifted.map((l) => s.div(s.const(1), l)));
  return z.map((zt, t) => s.div(zt, s.mul(c, shifted[t])));
}

/**
 * The gradient FAMO feeds its logits' optimizer: (∂z/∂ξ)ᵀ·δ with δ_t = log ℓ_t(before) − log ℓ_t(after),
 * i.e. z_t·(δ_t − Σ_j z_j·δ_j).
 */
export function famoLogitGradient<S, B>(s: Scalars<S, B>, logits: readonly S[], before: readonly S[], after: readonly S[]): S[] {
  const z = softmax(s, logits);
  const log = (l: S) => s.log(s.add(l, s.const(FAMO_EPS)));
  const delta = before.map((l, t) => s.sub(log(l), log(after[t])));
  const mean = dot(s, z, delta);
  return z.map((zt, t) => s.mul(zt, s.sub(delta[t], mean)));
}

const LOGITS = 'logits';
const state = <S, B>(ctx: WeightingContext<S, B>) => ({ value: ctx.state(LOGITS), ...adamMoments(ctx, LOGITS) });

/**
 * Fast Adaptive Multitask Optimization. The logits ξ take an Adam step (weight decay γ) on the
 * change of the log losses over each update: with `update=same_batch` (the paper's algorithm) the
 * graph runs a second forward pass on the same batch after the update; with `update=next_batch`
 * the change is measured against the next step's batch, with no extra pass.
 */
export const famo = defineWeighting({
  name: 'famo',
  doc: 'FAMO: Σ z_t·∇log ℓ_t / c with z = softmax(ξ), ξ trained in the graph on the change of the log losses; exact (update=same_batch, one extra forward pass) or next-batch approximation',
  paper: {
    title: 'FAMO: Fast Adaptive Multitask Optimization',
    authors: 'Bo Liu, Yihao Feng, Peter Stone, Qiang Liu',
    year: 2023,
    url: 'https://arxiv.org/abs/2306.03792',
  },
  kind: 'loss',
  variant: 'exact',
  options: {
    lr: { kind: 'number', doc: 'learning rate of the logits’ Adam', default: 0.025, min: 0 },
    gamma: { kind: 'number', doc: 'weight decay γ of the logits', default: 0.01, min: 0 },
    update: { kind: 'choice', doc: 'losses after the update: same_batch (a second forward pass) or next_batch (free, approximate)', default: 'same_batch', values: ['same_batch', 'next_batch'] },
  },
  needs: (o) => ({ gradients: 'losses', lossesAfterStep: o.update === 'same_batch' }),
  graph(ctx, o) {
    const { s, losses, lambda, step } = ctx;
    const lr = Number(o.lr);
    const gamma = Number(o.gamma);
    const scaled = losses.map((l, t) => s.mul(lambda[t], l));
    const at = state(ctx);
    const save = (next: typeof at) => {
      ctx.next(LOGITS, next.value);
      saveAdamMoments(ctx, LOGITS, next);
    };
    if (o.update === 'same_batch') {
      return {
        weights: famoWeights(s, at.value, scaled),
        after(lossesAfter) {
          const after = lossesAfter.map((l, t) => s.mul(lambda[t], l));
          save(adamStep(s, at, famoLogitGradient(s, at.value, scaled, after), s.add(step, s.const(1)), lr, gamma));
        },
      };
    }
    // next_batch: this step's losses close the previous update (none before the first step).
    const previous = ctx.state('previous_losses');
    const stepped = adamStep(s, at, famoLogitGradient(s, at.value, previous, scaled), s.max(step, s.const(1)), lr, gamma);
    const first = s.less(step, s.const(0.5));
    const pick = (a: typeof at, b: typeof at) => ({
      value: a.value.map((v, i) => s.where(first, v, b.value[i])),
      expAvg: a.expAvg.map((v, i) => s.where(first, v, b.expAvg[i])),
      expAvgSq: a.expAvgSq.map((v, i) => s.where(first, v, b.expAvgSq[i])),
    });
    const now = pick(at, stepped);
    save(now);
    ctx.next('previous_losses', scaled);
    return { weights: famoWeights(s, now.value, scaled) };
  },
});
