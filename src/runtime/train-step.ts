/**
 * Runs train steps, several per ONNX Runtime run when the caller has several batches at hand (see
 * artifacts/multi-step.ts for why). Parameters and optimizer state stay in the ONNX Runtime tensors
 * one run returns and the next one reads; they are copied into plain arrays only for checkpoints.
 * The same Scan graph runs every chunk size, so results do not depend on how steps are grouped.
 */
import { TASK_COUNT, type Task, type TaskVector } from '../model/tasks';
import * as ort from 'onnxruntime-node';
import type { Checkpoint, OptimizerState } from '../artifacts/checkpoint';
import { IO, batchNormMode, buildTrainStepGraph, next, stateName, statisticsBuffers, trainableParams, trainStepBuffers, type BuiltGraph } from '../artifacts/graphs';
import { buildMultiStepGraph } from '../artifacts/multi-step';
import { encodeModel } from '../onnx/serialize';
import { stateSuffixes, type OptimizerConfig } from '../model/optimizers';
import { layout, type BufferValue } from '../model/params';
import { WEIGHTING_ROLES } from '../model/weighting/graph';
import type { WeightingChoice } from '../model/weighting/index';
import type { ModelSpec } from '../model/spec';
import { EXECUTION_PROVIDERS } from './execution-providers';
import { createSession, type Device, type ProviderName } from './session';

/** One batch of training data, in the layouts train_step.onnx takes. */
export interface TrainBatch {
  size: number;
  images: Float32Array; // N·C·H·W
  labels: BigInt64Array; // N
  objectness: Float32Array; // N
  boxes: Float32Array; // N·4
  mask: Float32Array; // N
}

export interface StepHyper {
  lr: number;
  weightDecay: number;
  clipNorm: number;
  taskWeights: TaskVector;
  /** Values of the weighting strategy's host inputs (role weighting_input), [3] each, by input name. */
  weightingInputs?: Record<string, number[]>;
}

export interface StepResult {
  loss: number;
  taskLosses: TaskVector;
  gradNorm: number;
  /** The weights the strategy applied (graph strategies only). */
  appliedWeights?: number[];
  /** The Gram matrix of the λ-scaled task gradients, row-major 3×3 (strategies that need it). */
  gram?: number[];
  /** The task losses on the same batch after the update (strategies that need them). */
  lossesAfter?: number[];
}

export interface TrainStepGraphOptions {
  optimizer: OptimizerConfig;
  frozen?: ('trunk' | 'head')[];
  /** Label smoothing ε of the class loss (a constant of the step graph). */
  labelSmoothing?: number;
  weighting?: WeightingChoice;
  tasks?: readonly Task[];
  device?: Device;
  threads?: number;
  /** Steps the trainer groups into one run; default: the provider's (execution-providers.ts). */
  stepsPerRun?: number;
  log?: (line: string) => void;
}

/** The batch inputs shared by train_step.onnx and eval.onnx. */
export function batchFeeds(spec: ModelSpec, batch: TrainBatch): Record<string, ort.Tensor> {
  const { channels, height, width } = spec.input;
  const n = batch.size;
  return {
    [IO.image]: new ort.Tensor('float32', batch.images, [n, channels, height, width]),
    [IO.label]: new ort.Tensor('int64', batch.labels, [n]),
    [IO.objectness]: new ort.Tensor('float32', batch.objectness, [n]),
    [IO.box]: new ort.Tensor('float32', batch.boxes, [n, 4]),
    [IO.mask]: new ort.Tensor('float32', batch.mask, [n]),
  };
}


function stack<T extends Float32Array | BigInt64Array>(parts: T[], make: (n: number) => T): T {
  if (parts.length === 1) return parts[0];
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p as never, offset);
    offset += p.length;
  }
  return out;
}

function sameHyper(a: StepHyper, b: StepHyper): boolean {
  const inputs = (h: StepHyper) => JSON.stringify(h.weightingInputs ?? {});
  return a.weightDecay === b.weightDecay && a.clipNorm === b.clipNorm && a.taskWeights.every((w, t) => w === b.taskWeights[t]) && inputs(a) === inputs(b);
}

export class TrainStepRunner {
  /** Trainable parameters, their optimizer state and the buffers a step updates, as the last run returned them. */
  private readonly state = new Map<string, ort.Tensor>();
  private step: number;
  /** Inputs a step reads but does not update: frozen parameters, and a frozen trunk's running statistics. */
  private readonly fixed = new Map<string, ort.Tensor>();
  /** Buffers the step graph does not read (a frozen trunk's batch counts), kept for checkpoints. */
  private readonly idle = new Map<string, BufferValue>();
  /** Inputs the weighting strategy's host hooks feed before each run. */
  readonly hostInputs: string[];

  private constructor(
    readonly spec: ModelSpec,
    private readonly session: ort.InferenceSession,
    readonly provider: ProviderName,
    private readonly opts: TrainStepGraphOptions,
    start: Checkpoint,
    graph: BuiltGraph,
  ) {
    const trainable = new Set(trainableParams(spec, opts.frozen, opts.tasks).map((p) => p.name));
    const optimizer = start.optimizer;
    const tensor = (values: Float32Array | undefined, shape: number[]) =>
      new ort.Tensor('float32', values ? Float32Array.from(values) : new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
    for (const { name, shape } of layout(spec).params) {
      const value = start.params.get(name)!;
      if (!trainable.has(name)) {
        this.fixed.set(name, tensor(value, shape));
        continue;
      }
      this.state.set(name, tensor(value, shape));
      for (const suffix of stateSuffixes(opts.optimizer.name)) {
        const key = stateName(name, suffix);
        this.state.set(key, tensor(optimizer?.state.get(key), shape));
      }
    }
    const read = new Set(trainStepBuffers(spec, opts.frozen).map((d) => d.name));
    const updated = batchNormMode(opts.frozen) === 'train';
    for (const d of layout(spec).buffers) {
      const value = start.buffers.get(d.name);
      if (!value) throw new Error(`the starting checkpoint has no buffer ${d.name}`);
      if (!read.has(d.name)) this.idle.set(d.name, value.slice());
      else {
        const t = value instanceof BigInt64Array ? new ort.Tensor('int64', value.slice(), d.shape) : new ort.Tensor('float32', value.slice(), d.shape);
        (updated ? this.state : this.fixed).set(d.name, t);
      }
    }
    // The weighting strategy's state and parameters (and their optimizer state): from the checkpoint, else zero.
    const nexts = new Set(graph.outputs.map((o) => o.name));
    for (const input of graph.inputs) {
      if (input.name === IO.step || this.state.has(input.name) || this.fixed.has(input.name) || !nexts.has(next(input.name))) continue;
      this.state.set(input.name, tensor(optimizer?.state.get(input.name), input.shape as number[]));
    }
    this.hostInputs = graph.inputs.filter((i) => i.role === WEIGHTING_ROLES.input).map((i) => i.name);
    this.step = optimizer?.step ?? 0;
  }

  static async create(start: Checkpoint, opts: TrainStepGraphOptions): Promise<TrainStepRunner> {
    if (start.optimizer && start.optimizer.config.name !== opts.optimizer.name) {
      // A different optimizer starts from fresh state; the weights carry over.
      start = { ...start, optimizer: undefined };
    }
    const graph = buildMultiStepGraph(buildTrainStepGraph(start.spec, { optimizer: opts.optimizer, frozen: opts.frozen, labelSmoothing: opts.labelSmoothing, weighting: opts.weighting, tasks: opts.tasks }));
    const { session, provider } = await createSession(encodeModel(graph.model), {
      device: opts.device,
      threads: opts.threads,
      log: opts.log,
    });
    return new TrainStepRunner(start.spec, session, provider, opts, start, graph);
  }

  /** How many steps a trainer should hand to one runSteps call on this runner's provider. */
  get stepsPerRun(): number {
    return this.opts.stepsPerRun ?? EXECUTION_PROVIDERS[this.provider].stepsPerRun;
  }

  get stepsTaken(): number {
    return this.step;
  }

  run(batch: TrainBatch, hyper: StepHyper): Promise<StepResult> {
    return this.runSteps([batch], [hyper]).then((results) => results[0]);
  }

  /**
   * One step per batch, in order, in a single run. The batches must have one size, and the
   * hyperparameters may differ only in the learning rate.
   */
  async runSteps(batches: TrainBatch[], hypers: StepHyper[]): Promise<StepResult[]> {
    const k = batches.length;
    const out = await this.session.run(this.feedsFor(batches, hypers));
    for (const key of this.state.keys()) this.state.set(key, out[next(key)]);
    this.step += k;
    const loss = out[IO.loss].data as Float32Array;
    const taskLosses = out[IO.taskLosses].data as Float32Array;
    const gradNorm = out[IO.gradNorm].data as Float32Array;
    const rows = (name: string, width: number) => {
      const data = out[name]?.data as Float32Array | undefined;
      return data ? (i: number) => Array.from(data.subarray(width * i, width * (i + 1))) : undefined;
    };
    const applied = rows(IO.appliedWeights, TASK_COUNT);
    const gram = rows(IO.taskGramian, TASK_COUNT * TASK_COUNT);
    const after = rows(IO.taskLossesAfter, TASK_COUNT);
    return Array.from({ length: k }, (_, i): StepResult => {
      const result: StepResult = {
        loss: loss[i],
        taskLosses: [taskLosses[3 * i], taskLosses[3 * i + 1], taskLosses[3 * i + 2]],
        gradNorm: gradNorm[i],
      };
      if (applied) result.appliedWeights = applied(i);
      if (gram) result.gram = gram(i);
      if (after) result.lossesAfter = after(i);
      return result;
    });
  }

  /** The feeds of the run that would take these steps next (the GPU benchmark runs them in other sessions). */
  feedsFor(batches: TrainBatch[], hypers: StepHyper[]): Record<string, ort.Tensor> {
    const k = batches.length;
    if (k === 0 || hypers.length !== k) throw new Error(`runSteps: ${k} batches and ${hypers.length} hyperparameter sets; give one of each per step`);
    const n = batches[0].size;
    if (batches.some((b) => b.size !== n)) throw new Error(`runSteps: batches of sizes ${batches.map((b) => b.size).join(', ')}; one run takes batches of one size`);
    if (hypers.some((h) => !sameHyper(h, hypers[0]))) throw new Error('runSteps: weight decay, clip norm, task weights and weighting inputs must be the same for every step of a run');
    const { channels, height, width } = this.spec.input;
    const floats = (pick: (b: TrainBatch) => Float32Array) => stack(batches.map(pick), (size) => new Float32Array(size));
    const scalar = (v: number) => new ort.Tensor('float32', Float32Array.of(v), []);
    const feeds: Record<string, ort.Tensor> = {
      [IO.image]: new ort.Tensor('float32', floats((b) => b.images), [k, n, channels, height, width]),
      [IO.label]: new ort.Tensor('int64', stack(batches.map((b) => b.labels), (size) => new BigInt64Array(size)), [k, n]),
      [IO.objectness]: new ort.Tensor('float32', floats((b) => b.objectness), [k, n]),
      [IO.box]: new ort.Tensor('float32', floats((b) => b.boxes), [k, n, 4]),
      [IO.mask]: new ort.Tensor('float32', floats((b) => b.mask), [k, n]),
      [IO.lr]: new ort.Tensor('float32', Float32Array.from(hypers, (h) => h.lr), [k]),
      [IO.step]: scalar(this.step),
      [IO.weightDecay]: scalar(hypers[0].weightDecay),
      [IO.clipNorm]: scalar(hypers[0].clipNorm),
      [IO.taskWeights]: new ort.Tensor('float32', Float32Array.from(hypers[0].taskWeights), [TASK_COUNT]),
    };
    for (const name of this.hostInputs) {
      const value = hypers[0].weightingInputs?.[name];
      if (!value || value.length !== TASK_COUNT) throw new Error(`runSteps: no value for the weighting input ${name}`);
      feeds[name] = new ort.Tensor('float32', Float32Array.from(value), [TASK_COUNT]);
    }
    for (const [name, t] of this.fixed) feeds[name] = t;
    for (const [name, t] of this.state) feeds[name] = t;
    return feeds;
  }

  private current(name: string): ort.Tensor {
    return this.fixed.get(name) ?? this.state.get(name)!;
  }

  /** Current parameters and running statistics by name, as eval.onnx reads them, without copies. */
  evalTensors(): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    for (const p of layout(this.spec).params) out[p.name] = this.current(p.name);
    for (const d of statisticsBuffers(this.spec)) out[d.name] = this.current(d.name);
    return out;
  }

  /** Current parameters (copies), all of them including frozen ones. */
  params(): Map<string, Float32Array> {
    return new Map(layout(this.spec).params.map((p) => [p.name, Float32Array.from(this.current(p.name).data as Float32Array)]));
  }

  /** Current buffers (copies): BatchNorm running statistics and batch counts. */
  buffers(): Map<string, BufferValue> {
    return new Map(layout(this.spec).buffers.map((d) => [d.name, this.idle.get(d.name)?.slice() ?? (this.current(d.name).data as BufferValue).slice()]));
  }

  optimizerState(): OptimizerState {
    const { params, buffers } = layout(this.spec);
    const model = new Set([...params, ...buffers].map((p) => p.name));
    const state = new Map<string, Float32Array>();
    for (const [key, t] of this.state) if (!model.has(key)) state.set(key, Float32Array.from(t.data as Float32Array));
    return { config: this.opts.optimizer, state, step: this.step };
  }

  checkpoint(progress?: Record<string, unknown>): Checkpoint {
    return { spec: this.spec, params: this.params(), buffers: this.buffers(), optimizer: this.optimizerState(), progress };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
