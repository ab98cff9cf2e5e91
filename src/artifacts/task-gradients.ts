/**
 * Per-task gradients inside the train step, for the weighting strategies that need them:
 * - of the shared representation Z (the features every head reads): one backward pass per task
 *   through its head only, then one trunk backward with the combined cotangent Σ_t c_t·∂L_t/∂Z
 *   (LibMTL's `rep_grad`, Sener & Koltun's MGDA-UB);
 * - of the shared parameters: one full backward pass per task, combined parameter by parameter.
 * Either way the Gram matrix of the task gradients comes out for the strategy.
 */
import { gradients } from '../autodiff/grad';
import { gramian } from '../autodiff/gramian';
import type { GraphBuilder } from '../onnx/builder';
import { tensor } from '../onnx/ir';
import type { HeadOutputs } from '../model/forward';
import type { LossOutputs } from '../model/losses';
import type { ParamDef } from '../model/params';
import { TASKS } from '../model/tasks';
import { emitWeighting, type EmittedWeighting } from '../model/weighting/graph';
import { weightingStrategy, type WeightingChoice } from '../model/weighting/index';
import { unstack } from '../model/weighting/scalars';

export interface StrategyGradientsInput {
  weighting: WeightingChoice;
  /** Indices of the trained tasks. */
  active: readonly number[];
  heads: HeadOutputs;
  losses: LossOutputs;
  /** The `task_weights` input λ, [3]. */
  taskWeights: string;
  /** Steps taken before this one. */
  step: string;
  trainable: readonly ParamDef[];
  /** Σ λ_t·L_t over the trained tasks (what a strategy without a graph part differentiates). */
  total: string;
}

export interface StrategyGradients {
  /** The update's gradient for every trainable parameter, and for the strategy's own parameters. */
  grads: Map<string, string>;
  emitted?: EmittedWeighting;
  /** [3, 3] Gram matrix of the λ-scaled task gradients, when the strategy needs it. */
  gram?: string;
  /** The strategy's parameters (trained by the model's optimizer). */
  weightingParams: string[];
}

/**
 * The gradients a train step applies under a weighting strategy: of Σ λ_t·L_t for a strategy
 * without a graph part (static λ, DWA); of the strategy's objective (UW) or of Σ w_t·λ_t·L_t with
 * its weights (FAMO) when it needs the losses only; else combined from per-task gradients.
 */
export function strategyGradients(b: GraphBuilder, input: StrategyGradientsInput): StrategyGradients {
  const { weighting, active, heads, taskWeights, step } = input;
  const strategy = weightingStrategy(weighting.name);
  const needs = strategy.needs(weighting.options);
  const trainable = input.trainable.map((p) => p.name);
  const losses = [input.losses.cls, input.losses.det, input.losses.box];
  if (!strategy.graph) return { grads: gradients(b, input.total, trainable), weightingParams: [] };

  if (needs.gradients === 'losses') {
    const emitted = emitWeighting(b, weighting, { active, losses, lambda: taskWeights, step });
    const weightingParams = emitted.tensors.filter((t) => t.kind === 'parameter').map((t) => t.name);
    if (emitted.objective) return { grads: gradients(b, emitted.objective, [...trainable, ...weightingParams]), emitted, weightingParams };
    const c = unstack(b, b.op('Mul', [emitted.weights!, taskWeights]), active);
    return { grads: gradients(b, active.map((t, k) => ({ value: losses[t], grad: c[k] })), trainable), emitted, weightingParams };
  }

  const tgInput: TaskGradientsInput = {
    heads,
    losses,
    active,
    source: needs.gradients,
    shared: input.trainable.filter((p) => p.group === 'trunk').map((p) => p.name),
    headParams: (t) => trainable.filter((n) => n.startsWith(`heads.${TASKS[t]}.`)),
  };
  const tg = taskGradients(b, tgInput);
  const gram = scaledGram(b, tg.gram, active, taskWeights, TASKS.length);
  const emitted = emitWeighting(b, weighting, { active, losses, lambda: taskWeights, step, gram });
  if (emitted.tensors.some((t) => t.kind === 'parameter')) throw new Error(`weighting ${weighting.name}: parameters with per-task gradients are not supported`);
  const lambda = unstack(b, taskWeights, active);
  const shared = unstack(b, b.op('Mul', [emitted.weights!, taskWeights]), active);
  const grads = combineTaskGradients(b, tgInput, tg, { shared, head: strategy.kind === 'loss' ? shared : lambda });
  return { grads, emitted, gram, weightingParams: [] };
}

export interface TaskGradientsInput {
  heads: HeadOutputs;
  /** The task losses as scalars, in TASKS order. */
  losses: readonly string[];
  /** Indices of the trained tasks. */
  active: readonly number[];
  source: 'representation' | 'parameters';
  /** Trainable shared parameters (trunk and shared layers). */
  shared: readonly string[];
  /** Trainable parameters of task t's head. */
  headParams(t: number): readonly string[];
}

export interface TaskGradients {
  /** Per trained task, ∂L_t/∂Z (one tensor) or ∂L_t/∂θ for every shared parameter. */
  shared: string[][];
  /** Per trained task, the gradients of its head's parameters by name. */
  heads: Map<string, string>[];
  /** Gram matrix [T, T] of the raw (unweighted) task gradients. */
  gram: string;
}

export function taskGradients(b: GraphBuilder, input: TaskGradientsInput): TaskGradients {
  const z = input.heads.features;
  const wrtShared = input.source === 'representation' ? [z] : [...input.shared];
  if (wrtShared.length === 0) throw new Error('per-task gradients of the shared parameters: none is trained (the trunk is frozen); use gradients=representation');
  const shared: string[][] = [];
  const heads: Map<string, string>[] = [];
  for (const t of input.active) {
    const own = input.headParams(t);
    const grads = gradients(b, input.losses[t], [...wrtShared, ...own]);
    shared.push(wrtShared.map((w) => grads.get(w)!));
    heads.push(new Map(own.map((p) => [p, grads.get(p)!])));
  }
  return { shared, heads, gram: gramian(b, shared) };
}

/**
 * The update's gradients: shared parameters get Σ_t shared_t·(task t's gradient), and task t's
 * head gets head_t·(its gradient); both coefficient lists are scalars, one per trained task.
 */
export function combineTaskGradients(
  b: GraphBuilder,
  input: TaskGradientsInput,
  tg: TaskGradients,
  coefficients: { shared: readonly string[]; head: readonly string[] },
): Map<string, string> {
  const weightedSum = (terms: string[]) => (terms.length === 1 ? terms[0] : b.op('Sum', terms));
  const grads = new Map<string, string>();
  if (input.source === 'representation') {
    if (input.shared.length > 0) {
      const cotangent = weightedSum(tg.shared.map((g, k) => b.op('Mul', [g[0], coefficients.shared[k]])));
      const trunk = gradients(b, [{ value: input.heads.features, grad: cotangent }], [...input.shared]);
      for (const p of input.shared) grads.set(p, trunk.get(p)!);
    }
  } else {
    input.shared.forEach((p, i) => grads.set(p, weightedSum(tg.shared.map((g, k) => b.op('Mul', [g[i], coefficients.shared[k]])))));
  }
  tg.heads.forEach((own, k) => {
    for (const [p, g] of own) grads.set(p, b.op('Mul', [g, coefficients.head[k]]));
  });
  return grads;
}

/** A [T, T] Gram of raw gradients as the [3, 3] Gram of the λ-scaled ones (zero rows for tasks not trained). */
export function scaledGram(b: GraphBuilder, gram: string, active: readonly number[], lambda: string, taskCount: number): string {
  let full = gram;
  if (active.length !== taskCount) {
    const select = new Array<number>(taskCount * active.length).fill(0);
    active.forEach((t, k) => (select[t * active.length + k] = 1));
    const p = b.const(tensor('float32', [taskCount, active.length], select), 'task_select');
    full = b.op('MatMul', [b.op('MatMul', [p, gram]), b.op('Transpose', [p], { perm: [1, 0] })]);
  }
  const outer = b.op('Mul', [b.op('Unsqueeze', [lambda, b.ints([1])]), b.op('Unsqueeze', [lambda, b.ints([0])])]);
  return b.op('Mul', [full, outer]);
}
