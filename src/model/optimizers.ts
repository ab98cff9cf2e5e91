/**
 * Optimizer updates emitted into the training graph, with PyTorch's semantics:
 * SGD with momentum (dampening 0, L2 weight decay added to the gradient), Adam (L2 weight decay)
 * and AdamW (decoupled weight decay). Optional clipping by global gradient norm.
 */
import type { GraphBuilder } from '../onnx/builder';
import { chooseName, type Documented } from '../base/choices';

export interface OptimizerConfig {
  name: OptimizerName;
  momentum: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/** Scalars every update shares: the clipping factor and the step number t (1-based). */
interface SharedScalars {
  factor: string;
  t: string;
}

interface Optimizer extends Documented {
  defaults: Omit<OptimizerConfig, 'name'>;
  /** Names of the state tensors kept per parameter, as suffixes of the parameter name. */
  state: readonly string[];
  /** Emits each parameter's update into `out.params` and its new state into `out.state`. */
  emit(b: GraphBuilder, cfg: OptimizerConfig, updates: ParamUpdate[], h: HyperInputs, shared: SharedScalars, out: UpdateOutputs): void;
}

const ADAM_DEFAULTS = { momentum: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

export const OPTIMIZERS = Object.freeze({
  sgd: {
    doc: 'SGD with momentum 0.9; weight decay added to the gradient',
    defaults: { momentum: 0.9, beta1: 0, beta2: 0, eps: 0 },
    state: ['momentum_buffer'],
    emit: emitSgd,
  },
  adam: { doc: 'Adam (β 0.9, 0.999); weight decay added to the gradient', defaults: ADAM_DEFAULTS, state: ['exp_avg', 'exp_avg_sq'], emit: emitAdam(false) },
  adamw: { doc: 'AdamW: Adam with decoupled weight decay', defaults: ADAM_DEFAULTS, state: ['exp_avg', 'exp_avg_sq'], emit: emitAdam(true) },
} satisfies Record<string, Optimizer>);

export type OptimizerName = keyof typeof OPTIMIZERS;

export const DEFAULT_OPTIMIZER = Object.freeze(
  Object.fromEntries(Object.entries(OPTIMIZERS).map(([name, o]) => [name, { name, ...o.defaults }])) as Record<OptimizerName, OptimizerConfig>,
);

export function parseOptimizer(name: string | undefined): OptimizerName {
  return chooseName(OPTIMIZERS, String(name), 'optimizer');
}

/** The optimizer a model folder was exported with: its manifest's `optimizer`, Adam where the field predates it. */
export function manifestOptimizer(manifest: { optimizer?: string }): OptimizerName {
  return parseOptimizer(manifest.optimizer ?? 'adam');
}

/** Names of the state tensors kept per parameter, as suffixes of the parameter name. */
export function stateSuffixes(name: OptimizerName): string[] {
  return [...OPTIMIZERS[name].state];
}

export interface HyperInputs {
  lr: string; // float scalar
  step: string; // float scalar: steps already taken (t − 1)
  weightDecay: string; // float scalar
  clipNorm: string; // float scalar, ≤ 0 disables clipping
}

export interface ParamUpdate {
  param: string;
  grad: string;
  /** State values in stateSuffixes order. */
  state: string[];
}

export interface UpdateOutputs {
  params: string[];
  state: string[][];
  step: string;
  gradNorm: string;
}

/** Gradients with fewer values than this are summed in one pass. */
const TWO_STAGE_MIN = 4096;

/** The divisor of n closest to √n from below, so that both stages of a sum are about √n long. */
export function twoStageRows(n: number): number {
  for (let k = Math.floor(Math.sqrt(n)); k > 1; k--) if (n % k === 0) return k;
  return 1;
}

/**
 * Σ g² in two stages: reshaped to [k, n/k], each row summed, then the k partial sums. One pass
 * over millions of float32 values drifts low by a backend-dependent amount (0.5 % on wasm against
 * 0.02 % on onnxruntime-node for `seed`), and clipping would inherit the gap; two short sums agree.
 */
function sumOfSquares(b: GraphBuilder, g: string): string {
  const n = b.staticShape(g).reduce((x, y) => x * y, 1);
  const rows = n >= TWO_STAGE_MIN ? twoStageRows(n) : 1;
  if (rows === 1) return b.op('ReduceSumSquare', [g], { keepdims: 0 });
  const matrix = b.op('Reshape', [g, b.ints([rows, n / rows])]);
  return b.op('ReduceSum', [b.op('ReduceSumSquare', [matrix], { axes: [1], keepdims: 0 })], { keepdims: 0 });
}

/** Global L2 norm of all gradients, and the factor min(1, clip / (norm + 1e-6)) (1 when clip ≤ 0). */
function clipFactor(b: GraphBuilder, grads: string[], clipNorm: string): { norm: string; factor: string } {
  const squares = grads.map((g) => sumOfSquares(b, g));
  const sum = squares.length === 1 ? squares[0] : b.op('Sum', squares);
  const norm = b.op('Sqrt', [sum]);
  const ratio = b.op('Div', [clipNorm, b.op('Add', [norm, b.scalar(1e-6)])]);
  const limited = b.op('Min', [ratio, b.scalar(1)]);
  const enabled = b.op('Greater', [clipNorm, b.scalar(0)]);
  return { norm, factor: b.op('Where', [enabled, limited, b.scalar(1)]) };
}

export function buildOptimizer(b: GraphBuilder, cfg: OptimizerConfig, updates: ParamUpdate[], h: HyperInputs): UpdateOutputs {
  const { norm, factor } = clipFactor(b, updates.map((u) => u.grad), h.clipNorm);
  const t = b.op('Add', [h.step, b.scalar(1)]);
  const out: UpdateOutputs = { params: [], state: [], step: t, gradNorm: norm };
  OPTIMIZERS[cfg.name].emit(b, cfg, updates, h, { factor, t }, out);
  return out;
}

// Scalar products are formed once; each parameter then takes as few full-size passes as possible.
const mul = (b: GraphBuilder, x: string, y: string) => b.op('Mul', [x, y]);

function emitSgd(b: GraphBuilder, cfg: OptimizerConfig, updates: ParamUpdate[], h: HyperInputs, { factor }: SharedScalars, out: UpdateOutputs): void {
  for (const u of updates) {
    const buf = b.op('Sum', [mul(b, u.grad, factor), mul(b, u.param, h.weightDecay), mul(b, u.state[0], b.scalar(cfg.momentum))]);
    out.params.push(b.op('Sub', [u.param, mul(b, buf, h.lr)]));
    out.state.push([buf]);
  }
}

/**
 * PyTorch: p −= (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε), with the clipped gradient
 * factor·g (+ wd·p for Adam). Here: p −= (lr·√(1 − β2^t) / (1 − β1^t)) · m / (√v + ε·√(1 − β2^t)),
 * and factor joins the scalars (1 − β1)·factor and (1 − β2)·factor² multiplying g and g².
 */
function emitAdam(decoupled: boolean): Optimizer['emit'] {
  return (b, cfg, updates, h, { factor, t }, out) => {
    const bias1 = b.op('Sub', [b.scalar(1), b.op('Pow', [b.scalar(cfg.beta1), t])]);
    const bias2Sqrt = b.op('Sqrt', [b.op('Sub', [b.scalar(1), b.op('Pow', [b.scalar(cfg.beta2), t])])]);
    const stepSize = b.op('Div', [mul(b, h.lr, bias2Sqrt), bias1]);
    const eps = mul(b, b.scalar(cfg.eps), bias2Sqrt);
    const gScale = mul(b, b.scalar(1 - cfg.beta1), factor);
    const gSquareScale = mul(b, b.scalar(1 - cfg.beta2), mul(b, factor, factor));
    // Adam's L2 term wd·p, divided by factor so that it can join g before the scaling.
    const decayOverFactor = b.op('Div', [h.weightDecay, factor]);
    const decay = b.op('Sub', [b.scalar(1), mul(b, h.lr, h.weightDecay)]);
    for (const u of updates) {
      let g = u.grad;
      let p = u.param;
      if (decoupled) p = mul(b, p, decay);
      else g = b.op('Add', [g, mul(b, p, decayOverFactor)]);
      const m = b.op('Add', [mul(b, u.state[0], b.scalar(cfg.beta1)), mul(b, g, gScale)]);
      const v = b.op('Add', [mul(b, u.state[1], b.scalar(cfg.beta2)), mul(b, mul(b, g, g), gSquareScale)]);
      const denom = b.op('Add', [b.op('Sqrt', [v]), eps]);
      out.params.push(b.op('Sub', [p, mul(b, b.op('Div', [m, denom]), stepSize)]));
      out.state.push([m, v]);
    }
  };
}
