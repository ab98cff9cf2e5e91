/**
 * Several train steps in one ONNX Runtime run: the train-step graph becomes the body of a Scan
 * whose carried state is the parameters, the optimizer state and the step counter, and whose
 * scanned inputs are one batch and one learning rate per step.
 *
 * Why: onnxruntime-node copies every output of a run into a fresh JavaScript buffer (even into
 * pre-allocated fetches it writes and then copies again), so a run that returns all parameters
 * and Adam state pays that copy once per run; K steps per run pay it once per K steps. Inside the
 * Scan the state passes from step to step without copies.
 */
import { GraphBuilder } from '../onnx/builder';
import { attr, type Graph, type Shape } from '../onnx/ir';
import { IO, next, type BuiltGraph } from './graphs';

/** Inputs that change every step and are scanned along a leading step axis. */
const PER_STEP: readonly string[] = [IO.image, IO.label, IO.objectness, IO.box, IO.mask, IO.lr];
const STEPS_DIM = 'steps';
const BODY_PREFIX = 'step/';

/** The single-step graph with its own names prefixed, except those it reads from the outer graph. */
function asBody(g: Graph, outer: Set<string>, inputs: string[], outputs: string[]): Graph {
  const own = (n: string) => (n === '' || outer.has(n) ? n : BODY_PREFIX + n);
  const byName = <T extends { name: string }>(list: T[], names: string[]) => names.map((n) => list.find((v) => v.name === n)!);
  return {
    name: `${g.name}_body`,
    inputs: byName(g.inputs, inputs).map((v) => ({ ...v, name: own(v.name) })),
    outputs: byName(g.outputs, outputs).map((v) => ({ ...v, name: own(v.name) })),
    nodes: g.nodes.map((n) => ({ ...n, name: own(n.name), inputs: n.inputs.map(own), outputs: n.outputs.map(own) })),
    initializers: g.initializers.map((t) => ({ ...t, name: own(t.name) })),
  };
}

/**
 * Same inputs and outputs as `step` (a train-step graph), except that the per-step inputs (batch and
 * learning rate) and outputs (every output that is not the next value of an input: losses,
 * gradient norm, …) gain a leading `steps` axis; the carried state comes out after the last step.
 */
export function buildMultiStepGraph(step: BuiltGraph): BuiltGraph {
  const g = step.model.graph;
  const inputNames = new Set(g.inputs.map((v) => v.name));
  // Outputs `X.next` of an input X carry state; the others (losses, gradient norm, Gram matrix, …) are reported per step.
  const isCarried = (name: string) => name.endsWith(next('')) && inputNames.has(name.slice(0, -next('').length));
  const carried = step.outputs.filter((o) => isCarried(o.name)).map((o) => o.name.slice(0, -next('').length));
  const PER_STEP_OUT = step.outputs.filter((o) => !isCarried(o.name)).map((o) => o.name);
  const fromOuter = g.inputs.map((v) => v.name).filter((n) => !carried.includes(n) && !PER_STEP.includes(n));
  const body = asBody(
    g,
    new Set(fromOuter),
    [...carried, ...PER_STEP],
    [...carried.map(next), ...PER_STEP_OUT],
  );

  const b = new GraphBuilder(`${g.name}_multi`);
  const stepped = (shape: Shape): Shape => [STEPS_DIM, ...shape];
  const declared = new Map(g.inputs.map((v) => [v.name, v]));
  for (const v of g.inputs) b.input(v.name, v.dtype, PER_STEP.includes(v.name) ? stepped(v.shape) : v.shape);
  const outInfo = new Map(g.outputs.map((v) => [v.name, v]));
  const results = b.opN('Scan', [...carried, ...PER_STEP], { body: attr.graph(body), num_scan_inputs: PER_STEP.length }, {
    outputs: carried.length + PER_STEP_OUT.length,
    types: [
      ...carried.map((n) => ({ dtype: declared.get(n)!.dtype, shape: declared.get(n)!.shape })),
      ...PER_STEP_OUT.map((n) => ({ dtype: outInfo.get(n)!.dtype, shape: stepped(outInfo.get(n)!.shape) })),
    ],
  });
  const names = [...carried.map(next), ...PER_STEP_OUT];
  names.forEach((name, i) => b.output(results[i], name));
  const role = (n: string, list: BuiltGraph['inputs']) => list.find((v) => v.name === n)!.role;
  return {
    model: b.model({ ...step.model.metadata, 'trident.graph': 'train_steps' }),
    inputs: b.inputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape, role: role(v.name, step.inputs) })),
    outputs: names.map((n) => ({ name: n, dtype: b.dtype(n), shape: b.shape(n), role: role(n, step.outputs) })),
  };
}
