/** Adam (PyTorch semantics, L2 weight decay added to the gradient) on a few scalars, for strategies that train their own weights. */
import type { Scalars } from './scalars';
import type { WeightingContext } from './types';

export interface AdamScalars<S> {
  value: S[];
  expAvg: S[];
  expAvgSq: S[];
}

export const ADAM_BETAS = [0.9, 0.999] as const;
export const ADAM_EPS = 1e-8;

/** One step; `t` is the step number, counting from 1. */
export function adamStep<S, B>(s: Scalars<S, B>, at: AdamScalars<S>, grad: readonly S[], t: S, lr: number, weightDecay = 0): AdamScalars<S> {
  const [beta1, beta2] = ADAM_BETAS;
  const power = (base: number) => s.exp(s.mul(t, s.const(Math.log(base))));
  const bias1 = s.sub(s.const(1), power(beta1));
  const bias2 = s.sub(s.const(1), power(beta2));
  const out: AdamScalars<S> = { value: [], expAvg: [], expAvgSq: [] };
  grad.forEach((g0, i) => {
    const g = weightDecay ? s.add(g0, s.mul(s.const(weightDecay), at.value[i])) : g0;
    const m = s.add(s.mul(s.const(beta1), at.expAvg[i]), s.mul(s.const(1 - beta1), g));
    const v = s.add(s.mul(s.const(beta2), at.expAvgSq[i]), s.mul(s.const(1 - beta2), s.mul(g, g)));
    const denom = s.add(s.sqrt(s.div(v, bias2)), s.const(ADAM_EPS));
    out.value.push(s.sub(at.value[i], s.mul(s.const(lr), s.div(s.div(m, bias1), denom))));
    out.expAvg.push(m);
    out.expAvgSq.push(v);
  });
  return out;
}

/** The moments of state `name`, the states `name.exp_avg` and `name.exp_avg_sq`, declared in that order. */
export function adamMoments<S, B>(ctx: WeightingContext<S, B>, name: string): Omit<AdamScalars<S>, 'value'> {
  return {
    expAvg: ctx.state(`${name}.exp_avg`),
    expAvgSq: ctx.state(`${name}.exp_avg_sq`),
  };
}

/** Sets the next values of the moments `name.exp_avg` and `name.exp_avg_sq` (in that order) from `stepped`. */
export function saveAdamMoments<S, B>(ctx: WeightingContext<S, B>, name: string, stepped: Omit<AdamScalars<S>, 'value'>): void {
  ctx.next(`${name}.exp_avg`, stepped.expAvg);
  ctx.next(`${name}.exp_avg_sq`, stepped.expAvgSq);
}
