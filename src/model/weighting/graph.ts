/**
 * A strategy's graph part, emitted into a train step: its state, parameters and host inputs
 * become graph inputs named `weighting.<strategy>.<name>` (float32 [3], one value per task in
 * TASKS order, zero for tasks not trained), and its math becomes standard ai.onnx scalar ops.
 */
import type { GraphBuilder } from '../../onnx/builder';
import { TASK_COUNT } from '../tasks';
import { graphScalars, stack, unstack } from './scalars';
import { weightingStrategy, type WeightingChoice } from './index';
import type { WeightingContext } from './types';

export { TASK_COUNT };

/** The role each kind of strategy tensor has in the manifest. */
export const WEIGHTING_ROLES = Object.freeze({
  /** Carried from step to step (`X` → `X.next`), zero at the start; kept in checkpoints with the optimizer state. */
  state: 'weighting_state',
  /** Trained by the model's optimizer (with optimizer state of its own), zero at the start. */
  parameter: 'weighting_parameter',
  /** Fed by the strategy's host hooks before each run. */
  input: 'weighting_input',
} as const);

export type WeightingTensorKind = keyof typeof WEIGHTING_ROLES;

export const weightingTensorName = (strategy: string, name: string) => `weighting.${strategy}.${name}`;

export interface WeightingTensor {
  name: string;
  kind: WeightingTensorKind;
}

export interface WeightingGraphInputs {
  /** Indices (in TASKS order) of the trained tasks. */
  active: readonly number[];
  /** The three task losses, as scalars. */
  losses: readonly string[];
  /** The `task_weights` input, [3]. */
  lambda: string;
  /** Steps taken before this one (scalar). */
  step: string;
  /** G [3, 3] of the λ-scaled task gradients, when the strategy needs it. */
  gram?: string;
}

export interface EmittedWeighting {
  /** [3] weights on the λ-scaled task gradients (0 for tasks not trained). */
  weights?: string;
  /** A scalar to differentiate instead (with respect to the model and the strategy's parameters). */
  objective?: string;
  /** [3] the weights applied, for the `applied_weights` output. */
  applied: string;
  /** The strategy's graph inputs, in the order declared. */
  tensors: WeightingTensor[];
  /** Next values of the state inputs, by input name (complete once `after` has run, where there is one). */
  nexts: Map<string, string>;
  /** To call with the three task losses after the update, when the strategy needs them. */
  after?(lossesAfter: readonly string[]): void;
}

export function emitWeighting(b: GraphBuilder, choice: WeightingChoice, io: WeightingGraphInputs): EmittedWeighting {
  const strategy = weightingStrategy(choice.name);
  if (!strategy.graph) throw new Error(`weighting ${choice.name} has no graph part`);
  const s = graphScalars(b);
  const { active } = io;
  const tensors: WeightingTensor[] = [];
  const nexts = new Map<string, string>();
  const declared = new Map<string, string[]>();
  const declare = (kind: WeightingTensorKind) => (name: string): string[] => {
    const full = weightingTensorName(strategy.name, name);
    const known = declared.get(full);
    if (known) return known;
    b.input(full, 'float32', [TASK_COUNT]);
    tensors.push({ name: full, kind });
    const values = unstack(b, full, active);
    declared.set(full, values);
    return values;
  };
  /** The active tasks' values spread over a [3] vector, zero elsewhere. */
  const spread = (values: readonly string[]) => {
    if (values.length !== active.length) throw new Error(`weighting ${strategy.name}: ${values.length} values for ${active.length} tasks`);
    const full = Array.from({ length: TASK_COUNT }, (_, t) => {
      const k = active.indexOf(t);
      return k < 0 ? s.const(0) : values[k];
    });
    return stack(b, full);
  };
  const gram = io.gram ? unstack(b, b.op('Reshape', [io.gram, b.ints([TASK_COUNT * TASK_COUNT])]), active.flatMap((i) => active.map((j) => i * TASK_COUNT + j))) : undefined;
  const ctx: WeightingContext<string, string> = {
    s,
    T: active.length,
    losses: active.map((t) => io.losses[t]),
    lambda: unstack(b, io.lambda, active),
    step: io.step,
    gram: gram ? active.map((_, i) => gram.slice(i * active.length, (i + 1) * active.length)) : undefined,
    state: declare('state'),
    parameter: declare('parameter'),
    hostInput: declare('input'),
    next: (name, values) => {
      const full = weightingTensorName(strategy.name, name);
      if (!declared.has(full) || tensors.find((t) => t.name === full)?.kind !== 'state') throw new Error(`weighting ${strategy.name}: next value for undeclared state ${name}`);
      nexts.set(full, spread(values));
    },
  };
  const out = strategy.graph(ctx, choice.options);
  const applied = out.weights ?? out.reported;
  if (!applied) throw new Error(`weighting ${strategy.name}: its graph part gives neither weights nor reported weights`);
  const emitted: EmittedWeighting = {
    weights: out.weights ? spread(out.weights) : undefined,
    objective: out.objective,
    applied: spread(applied),
    tensors,
    nexts,
  };
  if (out.after) {
    const after = out.after;
    emitted.after = (lossesAfter) => after(active.map((t) => lossesAfter[t]));
  }
  return emitted;
}
