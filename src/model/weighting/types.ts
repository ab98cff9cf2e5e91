/**
 * What a weighting strategy is: a registry entry (name, doc line, paper, options) and up to two
 * parts, in the style of LibMTL's `AbsWeighting`: a graph part emitted into the train step, and
 * host hooks run between steps. Every strategy sees the λ-scaled task losses ℓ_t = λ_t·L_t of
 * the trained tasks (λ is the `task_weights` input; `--tasks` leaves tasks out), and the
 * gradients g_t = ∇ℓ_t.
 */
import type { Scalars } from './scalars';

export interface Paper {
  title: string;
  authors: string;
  year: number;
  url: string;
}

export interface NumberOption {
  kind: 'number';
  doc: string;
  default: number;
  min?: number;
  max?: number;
  integer?: boolean;
}

export interface ChoiceOption {
  kind: 'choice';
  doc: string;
  default: string;
  values: readonly string[];
}

export type OptionSpec = NumberOption | ChoiceOption;
export type OptionValues = Readonly<Record<string, number | string>>;

/**
 * What a strategy needs the train step to compute:
 * - `losses`: the task losses only;
 * - `representation`: the per-task gradients of the shared representation (a backward pass
 *   through the heads only) and their Gram matrix;
 * - `parameters`: the per-task gradients of every trainable shared parameter (one trunk backward
 *   per task) and their Gram matrix.
 */
export type GradientSource = 'losses' | 'representation' | 'parameters';

export interface Needs {
  gradients: GradientSource;
  /** The task losses on the same batch after the update (a second forward pass). */
  lossesAfterStep?: boolean;
}

/**
 * `loss`: the weights multiply whole losses, so the heads get w_t·g_t too (UW, DWA, GradNorm, FAMO).
 * `gradient`: the weights combine the shared gradients only; each head gets its own task's
 * gradient, as in LibMTL (MGDA, PCGrad, IMTL-G, CAGrad).
 */
export type WeightingKind = 'loss' | 'gradient';

/** Exact: the step applies what the paper prescribes for that step. Stale: weights computed from the previous step. */
export type Variant = 'exact' | 'one step stale' | 'per epoch';

/**
 * What the graph part of a strategy reads and declares. Vectors hold the trained tasks only
 * (T of them, in TASKS order). State starts at zero and is carried from step to step (in
 * checkpoints too); parameters are trained by the model's optimizer with their own state; host
 * inputs are fed before each run by the strategy's host hooks.
 */
export interface WeightingContext<S, B> {
  s: Scalars<S, B>;
  /** Number of trained tasks. */
  T: number;
  /** L_t, the raw task losses. */
  losses: readonly S[];
  /** λ_t, the static task weights fed as `task_weights`. */
  lambda: readonly S[];
  /** Steps taken before this one. */
  step: S;
  /** G_ij = g_i·g_j over the gradients the strategy needs (absent when it needs losses only). */
  gram?: readonly (readonly S[])[];
  state(name: string): S[];
  next(name: string, values: readonly S[]): void;
  parameter(name: string): S[];
  hostInput(name: string): S[];
}

export interface WeightingOutput<S> {
  /**
   * Weights on g_t = ∇(λ_t·L_t): the update follows Σ_t w_t·g_t (shared parameters and, for a
   * loss strategy, the heads). Computed in the graph and not differentiated.
   */
  weights?: S[];
  /** Or a scalar to differentiate with respect to the model and the strategy's parameters (UW). */
  objective?: S;
  /** The weights to report as `applied_weights` when `objective` is given. */
  reported?: S[];
  /** Runs after the update with the losses on the same batch (needs.lossesAfterStep). */
  after?(lossesAfter: readonly S[]): void;
}

/** Plain data kept between steps by host hooks (saved in checkpoints' progress). */
export type HostState = Record<string, unknown>;

/** What the host feeds the next run. Vectors hold the trained tasks only. */
export interface WeightingFeeds {
  /** Multiplies λ (e.g. DWA's per-epoch weights); all ones when absent. */
  lossScale?: number[];
  /** Values of the graph's host inputs, by the names given to `hostInput`. */
  inputs?: Record<string, number[]>;
}

/** LibMTL-style hooks, on the host, between runs of the train step. */
export interface HostHooks {
  init(T: number, options: OptionValues): HostState;
  feeds(state: HostState, options: OptionValues): WeightingFeeds;
  /** After each step, with its task losses and (when the graph has one) its Gram matrix. */
  afterStep?(state: HostState, step: { losses: number[]; gram?: number[][] }, options: OptionValues): HostState;
  /** After each epoch, with the epoch's mean task losses. */
  onEpochEnd?(state: HostState, meanLosses: number[], options: OptionValues): HostState;
  /** 1 when every step's feeds depend on the step before (the trainer then runs one step per run). */
  stepsPerRun?: number;
}

export interface WeightingStrategy {
  name: string;
  /** One line: what it does, and which variant is built (exact or one step stale). */
  doc: string;
  paper?: Paper;
  kind: WeightingKind;
  variant: Variant;
  options: Readonly<Record<string, OptionSpec>>;
  needs(options: OptionValues): Needs;
  graph?<S, B>(ctx: WeightingContext<S, B>, options: OptionValues): WeightingOutput<S>;
  host?: HostHooks;
}

/** A registry entry, frozen, with its object literal checked against `WeightingStrategy`. */
export function defineWeighting(strategy: WeightingStrategy): WeightingStrategy {
  return Object.freeze(strategy);
}
