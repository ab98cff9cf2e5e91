/**
 * Test helpers for weighting strategies: run a strategy's graph part on plain numbers, and the
 * same part emitted into an ONNX graph through the real ONNX Runtime (float64 inputs are not
 * needed: the graph is float32, as in the train step).
 */
import { gradients } from '../autodiff/grad';
import { GraphBuilder } from '../onnx/builder';
import { tensor } from '../onnx/ir';
import { emitWeighting, TASK_COUNT, weightingTensorName } from '../model/weighting/graph';
import { weightingStrategy, type WeightingChoice } from '../model/weighting/index';
import { numbers, unstack } from '../model/weighting/scalars';
import type { WeightingContext } from '../model/weighting/types';
import { runModel, type OrtFeeds } from './ort';

export interface WeightingCase {
  losses: number[];
  lambda?: number[];
  step?: number;
  gram?: number[][];
  /** State, parameters and host inputs by short name (e.g. `logits`), one value per trained task. */
  tensors?: Record<string, number[]>;
  lossesAfter?: number[];
}

export interface WeightingRun {
  weights?: number[];
  objective?: number;
  applied: number[];
  /** Next values of the state, by short name. */
  nexts: Record<string, number[]>;
}

/** The strategy's graph part on numbers (float64), for the trained tasks only. */
export function runOnNumbers(choice: WeightingChoice, c: WeightingCase): WeightingRun {
  const strategy = weightingStrategy(choice.name);
  const T = c.losses.length;
  const nexts: Record<string, number[]> = {};
  const tensor = (name: string) => [...(c.tensors?.[name] ?? new Array<number>(T).fill(0))];
  const ctx: WeightingContext<number, boolean> = {
    s: numbers,
    T,
    losses: c.losses,
    lambda: c.lambda ?? new Array<number>(T).fill(1),
    step: c.step ?? 0,
    gram: c.gram,
    state: tensor,
    parameter: tensor,
    hostInput: tensor,
    next: (name, values) => (nexts[name] = [...values]),
  };
  const out = strategy.graph!(ctx, choice.options);
  if (out.after) out.after(c.lossesAfter ?? c.losses);
  return { weights: out.weights, objective: out.objective, applied: (out.weights ?? out.reported)!, nexts };
}

const pad = (values: number[] | undefined, active: readonly number[], fill = 0) => {
  const full = new Array<number>(TASK_COUNT).fill(fill);
  active.forEach((t, k) => (full[t] = values?.[k] ?? fill));
  return full;
};

/**
 * The strategy's graph part in ONNX Runtime; vectors in and out hold the trained tasks only.
 * `objectiveGradients` holds ∂objective/∂parameter for each parameter (UW), by short name.
 */
export async function runInGraph(
  choice: WeightingChoice,
  c: WeightingCase,
  active: readonly number[] = [0, 1, 2].slice(0, c.losses.length),
): Promise<WeightingRun & { objectiveGradients: Record<string, number[]> }> {
  const b = new GraphBuilder('weighting');
  const losses = unstack(b, b.input('losses', 'float32', [TASK_COUNT]), [0, 1, 2]);
  const lambda = b.input('lambda', 'float32', [TASK_COUNT]);
  const step = b.input('step', 'float32', []);
  const gram = c.gram ? b.input('gram', 'float32', [TASK_COUNT, TASK_COUNT]) : undefined;
  const emitted = emitWeighting(b, choice, { active, losses, lambda, step, gram });
  if (emitted.after) emitted.after(unstack(b, b.input('losses_after', 'float32', [TASK_COUNT]), [0, 1, 2]));
  const outputs: string[] = [];
  const out = (value: string, name: string) => outputs.push(b.output(value, name));
  if (emitted.weights) out(emitted.weights, 'weights');
  out(emitted.applied, 'applied');
  if (emitted.objective) {
    out(emitted.objective, 'objective');
    const params = emitted.tensors.filter((t) => t.kind === 'parameter').map((t) => t.name);
    const grads = gradients(b, emitted.objective, params);
    for (const p of params) out(grads.get(p)!, `grad:${p}`);
  }
  for (const [name, value] of emitted.nexts) out(value, `next:${name}`);

  const vector = (values: number[] | undefined, fill = 0) => tensor('float32', [TASK_COUNT], pad(values, active, fill));
  const feeds: OrtFeeds = {
    losses: vector(c.losses),
    lambda: vector(c.lambda, 1),
    step: tensor('float32', [], [c.step ?? 0]),
  };
  if (c.gram) {
    const full = new Array<number>(TASK_COUNT * TASK_COUNT).fill(0);
    active.forEach((i, a) => active.forEach((j, k) => (full[i * TASK_COUNT + j] = c.gram![a][k])));
    feeds.gram = tensor('float32', [TASK_COUNT, TASK_COUNT], full);
  }
  if (emitted.after) feeds.losses_after = vector(c.lossesAfter ?? c.losses);
  const short = (name: string) => name.slice(weightingTensorName(choice.name, '').length);
  for (const t of emitted.tensors) feeds[t.name] = vector(c.tensors?.[short(t.name)]);

  const result = await runModel(b.model(), feeds);
  const pick = (name: string) => active.map((t) => Number((result[name].data as Float32Array)[t]));
  const nexts: Record<string, number[]> = {};
  const objectiveGradients: Record<string, number[]> = {};
  for (const name of emitted.nexts.keys()) nexts[short(name)] = pick(`next:${name}`);
  for (const t of emitted.tensors) if (result[`grad:${t.name}`]) objectiveGradients[short(t.name)] = pick(`grad:${t.name}`);
  return {
    weights: emitted.weights ? pick('weights') : undefined,
    objective: emitted.objective ? Number((result.objective.data as Float32Array)[0]) : undefined,
    applied: pick('applied'),
    nexts,
    objectiveGradients,
  };
}

/** Gram matrix of row vectors. */
export function gramOf(vectors: readonly (readonly number[])[]): number[][] {
  return vectors.map((a) => vectors.map((b) => a.reduce((sum, v, k) => sum + v * b[k], 0)));
}

/** Σ_t w_t·v_t. */
export function combine(weights: readonly number[], vectors: readonly (readonly number[])[]): number[] {
  return vectors[0].map((_, k) => vectors.reduce((sum, v, t) => sum + weights[t] * v[k], 0));
}
