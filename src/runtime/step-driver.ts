/**
 * Runs a model's exported train_step.onnx one step per session run, and eval.onnx on the weights it
 * carries, on any ONNX Runtime binding with the common API (onnxruntime-web in the browser,
 * onnxruntime-node beside it in tests and benchmarks). Pure: no Node API.
 *
 * Nothing here lists the graph's tensors: the manifest says each input's role, and every input X
 * that the graph returns as `X.next` is state carried from one step to the next (parameters,
 * optimizer state, the step counter, and whatever a later graph adds). Hyper-parameters, task
 * weights and the batch are fed by name; an input of any other kind is an error that names it.
 */
import { TASK_COUNT, type TaskVector } from '../model/tasks';
import type { InferenceSession, Tensor, TensorConstructor } from 'onnxruntime-common';
import type { Checkpoint, OptimizerState } from '../artifacts/checkpoint-codec';
import type { GraphInfo, TensorInfo } from '../artifacts/manifest-schema';
import { epochOrder, type Batch } from '../data/batch';
import { computeMetrics, type Metrics } from './metrics';
import type { OptimizerConfig } from '../model/optimizers';
import { layout, type BufferValue } from '../model/params';
import type { ModelSpec } from '../model/spec';

export interface OrtBinding {
  InferenceSession: { create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession> };
  Tensor: TensorConstructor;
}

/** Values of the state carried between steps, by input name. */
export type StepState = Map<string, Float32Array>;

export interface CarriedTensor {
  name: string;
  /** The output that holds its next value. */
  next: string;
  role: string;
  shape: number[];
}

export interface StepPlan {
  carried: CarriedTensor[];
  /** Batch inputs: image and targets, by name → which part of the batch feeds them. */
  batch: BatchInput[];
  /** Scalar hyper-parameters fed each step, by name. */
  hyper: string[];
  taskWeights?: string;
  loss: string;
  taskLosses?: string;
  gradNorm?: string;
}

type BatchPart = 'images' | 'labels' | 'objectness' | 'boxes' | 'mask';

interface BatchInput {
  name: string;
  part: BatchPart;
  /** The dims after the batch dim. */
  tail: number[];
}

function batchInput(input: TensorInfo): BatchInput | undefined {
  const part = input.role === 'image' ? 'images' : input.role === 'target' ? (TARGETS[input.name] ?? fail(`unknown target input "${input.name}"`)) : undefined;
  if (!part) return undefined;
  const tail = input.shape.slice(1);
  if (!tail.every((d) => typeof d === 'number')) fail(`input ${input.name} has a symbolic shape [${input.shape}] beyond the batch dim`);
  return { name: input.name, part, tail: tail as number[] };
}

/** Target inputs by name (graphs.ts IO) → the batch field that feeds them. */
const TARGETS: Readonly<Record<string, BatchPart>> = Object.freeze({ label: 'labels', objectness: 'objectness', box: 'boxes', mask: 'mask' });

const NEXT_SUFFIX = '.next';

/** Roles of carried tensors that a checkpoint keeps with the optimizer state. */
const CHECKPOINTED_STATE = new Set(['optimizer_state', 'weighting_state', 'weighting_parameter']);

const byRole = (list: readonly TensorInfo[], role: string) => list.find((t) => t.role === role)?.name;

/** Reads the train step's inputs and outputs from the manifest; throws on anything it cannot feed. */
export function planTrainStep(graph: GraphInfo): StepPlan {
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const plan: StepPlan = { carried: [], batch: [], hyper: [], loss: byRole(graph.outputs, 'loss') ?? fail('no output with role "loss"') };
  plan.taskLosses = byRole(graph.outputs, 'task_losses');
  plan.gradNorm = byRole(graph.outputs, 'grad_norm');
  for (const input of graph.inputs) {
    const next = input.name + NEXT_SUFFIX;
    if (outputs.has(next)) {
      if (input.dtype !== 'float32') fail(`carried input ${input.name} is ${input.dtype}; only float32 state is supported`);
      if (!input.shape.every((d) => typeof d === 'number')) fail(`carried input ${input.name} has a symbolic shape [${input.shape}]`);
      plan.carried.push({ name: input.name, next, role: input.role, shape: input.shape as number[] });
    } else if (input.role === 'image' || input.role === 'target') {
      plan.batch.push(batchInput(input)!);
    } else if (input.role === 'task_weights') {
      plan.taskWeights = input.name;
    } else if (input.role === 'hyperparameter') {
      plan.hyper.push(input.name);
    } else if (input.role === 'parameter') {
      // A frozen parameter: fed, never updated; it is carried state without a next value.
      plan.carried.push({ name: input.name, next: '', role: input.role, shape: input.shape as number[] });
    } else {
      fail(`train_step input "${input.name}" has role "${input.role}", which this trainer does not know how to feed`);
    }
  }
  return plan;
}

function fail(message: string): never {
  throw new Error(`train_step: ${message}`);
}

/**
 * The state a fine-tuning run starts from: carried tensors found among the checkpoint's
 * parameters take their values; everything else (optimizer state, the step) starts at zero.
 */
export function initialState(plan: StepPlan, params: ReadonlyMap<string, Float32Array>): StepState {
  const state: StepState = new Map();
  for (const t of plan.carried) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    const given = params.get(t.name);
    if (t.role === 'parameter' && !given) fail(`the checkpoint has no parameter ${t.name}`);
    if (given && given.length !== size) fail(`${t.name} has ${given.length} values in the checkpoint, ${size} in the graph`);
    state.set(t.name, given ? Float32Array.from(given) : new Float32Array(size));
  }
  return state;
}

/** Indices of the samples of global step `step`: epochs of shuffled full batches (a pure function, so a run resumes from its step count). */
export function batchIndices(samples: number, batchSize: number, seed: number, step: number): Uint32Array {
  if (samples < 1) throw new Error('no samples to train on');
  const size = Math.min(batchSize, samples);
  const perEpoch = Math.floor(samples / size);
  const epoch = Math.floor(step / perEpoch);
  const k = step % perEpoch;
  return epochOrder(samples, seed, epoch).slice(k * size, (k + 1) * size);
}

export interface StepHyper {
  /** Values of the plan's hyper-parameters by name (lr, weight_decay, clip_norm, …). */
  values: Record<string, number>;
  taskWeights: TaskVector;
}

export interface StepResult {
  loss: number;
  taskLosses: number[];
  gradNorm: number;
}

export class StepDriver {
  private constructor(
    private readonly ort: OrtBinding,
    private readonly session: InferenceSession,
    readonly plan: StepPlan,
    readonly state: StepState,
  ) {}

  static async create(ort: OrtBinding, model: Uint8Array, graph: GraphInfo, state: StepState, options: InferenceSession.SessionOptions = {}): Promise<StepDriver> {
    const plan = planTrainStep(graph);
    for (const t of plan.carried) if (!state.has(t.name)) fail(`no value for ${t.name}`);
    const session = await ort.InferenceSession.create(model, options);
    return new StepDriver(ort, session, plan, state);
  }

  /** One step: feeds the batch and the carried state, keeps the next state. */
  async run(batch: Batch, hyper: StepHyper): Promise<StepResult> {
    const { Tensor } = this.ort;
    const feeds: Record<string, Tensor> = {};
    for (const t of this.plan.carried) feeds[t.name] = new Tensor('float32', this.state.get(t.name)!, t.shape);
    Object.assign(feeds, batchFeeds(this.ort, this.plan.batch, batch));
    for (const name of this.plan.hyper) {
      const value = hyper.values[name];
      if (typeof value !== 'number' || !Number.isFinite(value)) fail(`no value for hyper-parameter "${name}"`);
      feeds[name] = new Tensor('float32', Float32Array.of(value), []);
    }
    if (this.plan.taskWeights) feeds[this.plan.taskWeights] = new Tensor('float32', Float32Array.from(hyper.taskWeights), [TASK_COUNT]);
    const out = await this.session.run(feeds);
    for (const t of this.plan.carried) if (t.next) this.state.set(t.name, out[t.next].data as Float32Array);
    const scalar = (name?: string) => (name ? Number((out[name].data as Float32Array)[0]) : NaN);
    return {
      loss: scalar(this.plan.loss),
      taskLosses: this.plan.taskLosses ? Array.from(out[this.plan.taskLosses].data as Float32Array) : [],
      gradNorm: scalar(this.plan.gradNorm),
    };
  }

  /** Steps taken so far, as the graph counts them (0 when it has no step counter). */
  get step(): number {
    return this.state.get('step')?.[0] ?? 0;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function batchFeeds(ort: OrtBinding, inputs: readonly BatchInput[], batch: Batch): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const { name, part, tail } of inputs) {
    const dims = [batch.size, ...tail];
    const data = batch[part];
    if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`batch ${part}: ${data.length} values for [${dims}]`);
    feeds[name] = part === 'labels' ? new ort.Tensor('int64', data as BigInt64Array, dims) : new ort.Tensor('float32', data as Float32Array, dims);
  }
  return feeds;
}

/** The heads of eval.onnx, run on the carried weights: predictions and metrics for new weights without re-exporting infer.onnx. */
export class WeightsEvaluator {
  private constructor(
    private readonly ort: OrtBinding,
    private readonly session: InferenceSession,
    private readonly graph: GraphInfo,
  ) {}

  static async create(ort: OrtBinding, model: Uint8Array, graph: GraphInfo, options: InferenceSession.SessionOptions = {}): Promise<WeightsEvaluator> {
    return new WeightsEvaluator(ort, await ort.InferenceSession.create(model, options), graph);
  }

  /** Class probabilities, objectness and boxes for a shaped batch, with the weights in `state`. */
  async heads(state: ReadonlyMap<string, Float32Array>, batch: Batch): Promise<{ classProbs: Float32Array; objectness: Float32Array; boxes: Float32Array }> {
    const feeds: Record<string, Tensor> = {};
    const batchInputs: BatchInput[] = [];
    for (const input of this.graph.inputs) {
      const fed = batchInput(input);
      if (fed) batchInputs.push(fed);
      else if (input.role === 'task_weights') feeds[input.name] = new this.ort.Tensor('float32', new Float32Array(TASK_COUNT).fill(1), [TASK_COUNT]);
      else {
        const value = state.get(input.name);
        if (!value) throw new Error(`eval: no value for input "${input.name}" (role ${input.role})`);
        feeds[input.name] = new this.ort.Tensor('float32', value, input.shape as number[]);
      }
    }
    Object.assign(feeds, batchFeeds(this.ort, batchInputs, batch));
    const out = await this.session.run(feeds);
    const output = (role: string) => out[byRole(this.graph.outputs, role) ?? fail(`eval has no output with role ${role}`)].data as Float32Array;
    return { classProbs: output('class_probs'), objectness: output('objectness'), boxes: output('box') };
  }

  /** The serving metrics (metrics.ts) over batches, with the weights in `state`. */
  async metrics(state: ReadonlyMap<string, Float32Array>, batches: readonly Batch[], numClasses: number): Promise<Metrics> {
    const parts = [];
    for (const batch of batches) parts.push({ batch, heads: await this.heads(state, batch) });
    const concat = (arrays: ArrayLike<number>[], Kind: Float32ArrayConstructor) => {
      const out = new Kind(arrays.reduce((a, b) => a + b.length, 0));
      let offset = 0;
      for (const a of arrays) {
        out.set(a, offset);
        offset += a.length;
      }
      return out;
    };
    const count = parts.reduce((a, p) => a + p.batch.size, 0);
    const labels = parts.flatMap((p) => Array.from(p.batch.labels, (l, i) => (p.batch.mask[i] ? Number(l) : -1)));
    return computeMetrics(
      {
        count,
        numClasses,
        classProbs: concat(parts.map((p) => p.heads.classProbs), Float32Array),
        objectness: concat(parts.map((p) => p.heads.objectness), Float32Array),
        boxes: concat(parts.map((p) => p.heads.boxes), Float32Array),
      },
      { labels, objectness: concat(parts.map((p) => p.batch.objectness), Float32Array), boxes: concat(parts.map((p) => p.batch.boxes), Float32Array) },
    );
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** The carried state as a checkpoint: parameters under their names, optimizer state and step for resuming elsewhere. */
export function checkpointOfState(spec: ModelSpec, optimizer: OptimizerConfig | undefined, plan: StepPlan, state: ReadonlyMap<string, Float32Array>, progress?: Record<string, unknown>): Checkpoint {
  const params = new Map<string, Float32Array>();
  for (const p of layout(spec).params) {
    const value = state.get(p.name);
    if (!value) throw new Error(`no value for parameter ${p.name}`);
    params.set(p.name, value);
  }
  const buffers = new Map<string, BufferValue>();
  for (const d of layout(spec).buffers) {
    const value = state.get(d.name) as BufferValue | undefined;
    if (!value) throw new Error(`no value for buffer ${d.name}`);
    buffers.set(d.name, value);
  }
  const ckpt: Checkpoint = { spec, params, buffers, ...(progress ? { progress } : {}) };
  if (optimizer) {
    const optimizerState: OptimizerState = { config: optimizer, state: new Map(), step: Math.round(state.get('step')?.[0] ?? 0) };
    // Optimizer state, and a weighting strategy's state and parameters (model/weighting/graph.ts), which checkpoints keep beside it.
    for (const t of plan.carried) if (CHECKPOINTED_STATE.has(t.role)) optimizerState.state.set(t.name, state.get(t.name)!);
    ckpt.optimizer = optimizerState;
  }
  return ckpt;
}
