/**
 * Finite-difference gradient checks through the real ONNX Runtime.
 *
 * A case builds a graph from graph inputs; the check forms loss = Σ output·cotangent (a fixed random
 * cotangent), takes analytic gradients with `gradients()`, and compares them with central differences
 * of the same loss, evaluated by running the forward graph on perturbed inputs and summing in float64.
 */
import { gradients } from '../autodiff/grad';
import { mulberry32 } from '../base/random';
import { GraphBuilder } from '../onnx/builder';
import type { DType, Model, Shape, TensorValue } from '../onnx/ir';
import { numel, tensor } from '../onnx/ir';
import { type OrtFeeds, openSession } from './ort';

export interface GradCheckInput {
  /** Runtime shape of the value fed. */
  shape: number[];
  /** Shape declared in the graph when it should differ (e.g. a symbolic batch ['N', 3]). */
  declared?: Shape;
  /** Defaults to the case dtype. */
  dtype?: DType;
  /** Defaults to uniform random values in [-1, 1]. */
  values?: ArrayLike<number>;
  /** Whether this input's gradient is checked; defaults to true for float inputs. */
  check?: boolean;
}

export interface GradCheckCase {
  inputs: Record<string, GradCheckInput>;
  /** Emits the op(s) under test and returns the value whose gradient is checked. */
  build(b: GraphBuilder, inputs: Record<string, string>): string;
  dtype?: 'float32' | 'float64';
  /** Fixed cotangent values; random in [-1, 1] by default. */
  cotangent?: ArrayLike<number>;
  seed?: number;
  eps?: number;
  tolerance?: number;
  /** Largest number of elements per input checked by finite differences (spread evenly). */
  maxChecks?: number;
}

export interface AnalyticGradients {
  feeds: OrtFeeds;
  output: TensorValue;
  cotangent: TensorValue;
  grads: Record<string, TensorValue>;
  forward: Model;
  backward: Model;
}

export interface GradCheckReport extends AnalyticGradients {
  /** Per checked input: max |analytic − numeric| / max(max |numeric|, 1e-3). */
  errors: Record<string, number>;
  numeric: Record<string, Float64Array>;
  /** Human-readable descriptions of every mismatch; empty when the check passes. */
  failures: string[];
}

const DEFAULTS = {
  float64: { eps: 1e-6, tolerance: 1e-6 },
  float32: { eps: 1e-3, tolerance: 2e-3 },
};
const OUTPUT = 'gradcheck_output';
const COTANGENT = 'gradcheck_cotangent';
const gradName = (input: string) => `gradcheck_grad_${input}`;


export function randomValues(count: number, seed: number, lo = -1, hi = 1): number[] {
  const next = mulberry32(seed);
  return Array.from({ length: count }, () => lo + (hi - lo) * next());
}

function isFloat(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64';
}

function checkedInputs(c: GradCheckCase, dtype: DType): string[] {
  return Object.entries(c.inputs)
    .filter(([, spec]) => spec.check ?? isFloat(spec.dtype ?? dtype))
    .map(([name]) => name);
}

function makeFeeds(c: GradCheckCase, dtype: DType, seed: number): OrtFeeds {
  const feeds: OrtFeeds = {};
  Object.entries(c.inputs).forEach(([name, spec], k) => {
    const count = numel(spec.shape);
    const values = spec.values ?? randomValues(count, seed + 7919 * (k + 1));
    feeds[name] = tensor(spec.dtype ?? dtype, spec.shape, values);
  });
  return feeds;
}

/** Builds forward and backward models for a case and runs the backward one. */
export async function analyticGradients(c: GradCheckCase): Promise<AnalyticGradients> {
  const dtype = c.dtype ?? 'float64';
  const seed = c.seed ?? 1;
  const b = new GraphBuilder('gradcheck');
  const names: Record<string, string> = {};
  for (const [name, spec] of Object.entries(c.inputs)) names[name] = b.input(name, spec.dtype ?? dtype, spec.declared ?? spec.shape);
  const y = c.build(b, names);
  b.output(y, OUTPUT);
  const forward = b.model();

  const feeds = makeFeeds(c, dtype, seed);
  const fwd = await openSession(forward);
  const output = (await fwd.run(feeds))[OUTPUT];
  await fwd.release();
  const cotangent = tensor(output.dtype, output.dims, c.cotangent ?? randomValues(numel(output.dims), seed + 1));

  const cot = b.input(COTANGENT, b.dtype(y), b.shape(y));
  const loss = b.op('ReduceSum', [b.op('Mul', [y, cot])], { keepdims: 0 });
  const wrt = checkedInputs(c, dtype);
  const grads = gradients(b, loss, wrt);
  for (const name of wrt) b.output(grads.get(name)!, gradName(name));
  const backward = b.model();

  const bwd = await openSession(backward);
  const out = await bwd.run({ ...feeds, [COTANGENT]: cotangent });
  await bwd.release();
  const result: Record<string, TensorValue> = {};
  for (const name of wrt) result[name] = out[gradName(name)];
  return { feeds, output, cotangent, grads: result, forward, backward };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

function checkedIndices(count: number, maxChecks: number): number[] {
  if (count <= maxChecks) return Array.from({ length: count }, (_, i) => i);
  return Array.from({ length: maxChecks }, (_, k) => Math.floor((k * count) / maxChecks));
}

/** Runs the check; the report's `failures` is empty when every gradient matches. */
export async function gradCheck(c: GradCheckCase): Promise<GradCheckReport> {
  const dtype = c.dtype ?? 'float64';
  const { eps, tolerance } = { ...DEFAULTS[dtype], ...(c.eps ? { eps: c.eps } : {}), ...(c.tolerance ? { tolerance: c.tolerance } : {}) };
  const analytic = await analyticGradients(c);
  const session = await openSession(analytic.forward);
  const cot = analytic.cotangent.data as ArrayLike<number>;
  const loss = async (feeds: OrtFeeds) => dot((await session.run(feeds, [OUTPUT]))[OUTPUT].data as ArrayLike<number>, cot);

  const errors: Record<string, number> = {};
  const numeric: Record<string, Float64Array> = {};
  const failures: string[] = [];
  try {
    for (const name of Object.keys(analytic.grads)) {
      const fed = analytic.feeds[name];
      const grad = analytic.grads[name];
      if (grad.dims.join() !== fed.dims.join()) {
        failures.push(`${name}: gradient has shape [${grad.dims}], input has [${fed.dims}]`);
        continue;
      }
      const values = fed.data as Float32Array | Float64Array;
      const approx = new Float64Array(values.length).fill(Number.NaN);
      for (const i of checkedIndices(values.length, c.maxChecks ?? 512)) {
        const original = values[i];
        values[i] = original + eps;
        const up = values[i];
        const lossUp = await loss(analytic.feeds);
        values[i] = original - eps;
        const down = values[i];
        const lossDown = await loss(analytic.feeds);
        values[i] = original;
        approx[i] = (lossUp - lossDown) / (up - down);
      }
      numeric[name] = approx;
      const report = compare(Array.from(grad.data as ArrayLike<number>), approx);
      errors[name] = report.error;
      if (!(report.error <= tolerance)) {
        failures.push(
          `${name}: relative error ${report.error.toExponential(2)} > ${tolerance} ` +
            `(worst at index ${report.worst}: analytic ${report.analytic}, numeric ${report.numeric})`,
        );
      }
    }
  } finally {
    await session.release();
  }
  for (const node of analytic.backward.graph.nodes) {
    if (node.domain) failures.push(`node ${node.name} (${node.opType}) is in domain ${node.domain}, not ai.onnx`);
  }
  return { ...analytic, errors, numeric, failures };
}

function compare(analytic: number[], numeric: Float64Array): { error: number; worst: number; analytic: number; numeric: number } {
  let scale = 1e-3;
  numeric.forEach((v) => {
    if (!Number.isNaN(v)) scale = Math.max(scale, Math.abs(v));
  });
  let worst = -1;
  let worstDiff = 0;
  numeric.forEach((v, i) => {
    if (Number.isNaN(v)) return;
    const diff = Math.abs(analytic[i] - v);
    const distance = Number.isNaN(diff) ? Infinity : diff;
    if (worst < 0 || distance > worstDiff) {
      worst = i;
      worstDiff = distance;
    }
  });
  return { error: worstDiff / scale, worst, analytic: analytic[worst], numeric: numeric[worst] };
}
