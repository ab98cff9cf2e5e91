import { adamMoments, adamStep, saveAdamMoments } from './adam';
import { GRADIENTS_OPTION, gramNeeds } from './gradient-source';
import { sum, type Scalars } from './scalars';
import { defineWeighting } from './types';

/** Weights are kept at least this large before renormalising, so that a task is never switched off. */
export const GRADNORM_FLOOR = 1e-3;

export interface GradNormStep<S> {
  /** ∂L_grad/∂w_t = sign(w_t·n_t − target_t)·n_t, with the target held constant as in the paper. */
  gradient: S[];
  /** The losses L_t(0) to keep (the first step's). */
  initial: S[];
}

/**
 * GradNorm's gradient for the weights. n_t = ‖∇ℓ_t‖ = √G_tt; the target of w_t·n_t is
 * mean_j(w_j·n_j)·r_t^α with r_t = L̃_t / mean_j L̃_j and L̃_t = ℓ_t / ℓ_t(0).
 * `initial` holds 0 until the first step records its losses.
 */
export function gradNormGradient<S, B>(s: Scalars<S, B>, weights: readonly S[], gram: readonly (readonly S[])[], losses: readonly S[], initial: readonly S[], alpha: number): GradNormStep<S> {
  const T = weights.length;
  const tiny = s.const(1e-12);
  const first = initial.map((l0, t) => s.where(s.less(s.const(0), l0), l0, losses[t]));
  const norms = weights.map((_, t) => s.sqrt(s.max(gram[t][t], s.const(0))));
  const scaled = weights.map((w, t) => s.mul(w, norms[t]));
  const meanNorm = s.div(sum(s, scaled), s.const(T));
  const ratios = losses.map((l, t) => s.div(l, s.max(first[t], tiny)));
  const meanRatio = s.div(sum(s, ratios), s.const(T));
  const gradient = scaled.map((gw, t) => {
    const relative = s.div(ratios[t], s.max(meanRatio, tiny));
    const target = s.mul(meanNorm, s.exp(s.mul(s.const(alpha), s.log(s.max(relative, tiny)))));
    return s.where(s.less(gw, target), s.neg(norms[t]), norms[t]);
  });
  return { gradient, initial: first };
}

/** Floors the weights at GRADNORM_FLOOR, then scales them to sum to T. */
export function renormalise<S, B>(s: Scalars<S, B>, weights: readonly S[]): S[] {
  const floored = weights.map((w) => s.max(w, s.const(GRADNORM_FLOOR)));
  const total = sum(s, floored);
  return floored.map((w) => s.div(s.mul(w, s.const(weights.length)), total));
}

/**
 * GradNorm. The step uses the current weights w; then w takes an Adam step on L_grad =
 * Σ_t |w_t·n_t − target_t| and is renormalised to Σ w_t = T, as in the paper's algorithm, so the
 * variant is exact. The weights are stored as offsets w − 1, so the zero state is the paper's w = 1.
 */
export const gradnorm = defineWeighting({
  name: 'gradnorm',
  doc: 'GradNorm: loss weights w_t trained in the graph so that the gradient norms ‖∇w_tℓ_t‖ follow the tasks’ relative training rates; exact',
  paper: {
    title: 'GradNorm: Gradient Normalization for Adaptive Loss Balancing in Deep Multitask Networks',
    authors: 'Zhao Chen, Vijay Badrinarayanan, Chen-Yu Lee, Andrew Rabinovich',
    year: 2018,
    url: 'https://arxiv.org/abs/1711.02257',
  },
  kind: 'loss',
  variant: 'exact',
  options: {
    alpha: { kind: 'number', doc: 'asymmetry α: how strongly slower tasks are pushed', default: 1.5, min: 0 },
    lr: { kind: 'number', doc: 'learning rate of the weights’ Adam', default: 0.025, min: 0 },
    gradients: GRADIENTS_OPTION,
  },
  needs: gramNeeds,
  graph(ctx, o) {
    const { s, losses, lambda, gram, step } = ctx;
    const one = s.const(1);
    const weights = ctx.state('weight_offsets').map((offset) => s.add(offset, one));
    const scaled = losses.map((l, t) => s.mul(lambda[t], l));
    const { gradient, initial } = gradNormGradient(s, weights, gram!, scaled, ctx.state('initial_losses'), Number(o.alpha));
    const at = { value: weights, ...adamMoments(ctx, 'weights') };
    const stepped = adamStep(s, at, gradient, s.add(step, one), Number(o.lr));
    ctx.next('weight_offsets', renormalise(s, stepped.value).map((w) => s.sub(w, one)));
    ctx.next('initial_losses', initial);
    saveAdamMoments(ctx, 'weights', stepped);
    return { weights };
  },
});
