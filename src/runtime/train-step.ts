/**
 * Runs train_step.onnx step after step. Parameters and optimizer state live in two sets of ONNX
 * Runtime tensors used in turn: step k reads set A and writes set B in place (pre-allocated
 * outputs), step k+1 reads B and writes A. Nothing is copied through JavaScript arrays between
 * steps; parameters are read back only for checkpoints.
 */
import * as ort from 'onnxruntime-node';
import type { Checkpoint, OptimizerState } from '../artifacts/checkpoint';
import { IO, buildTrainStepGraph, next, stateName, trainableParams } from '../artifacts/graphs';
import { encodeModel } from '../onnx/serialize';
import { stateSuffixes, type OptimizerConfig } from '../model/optimizers';
import { layout } from '../model/params';
import type { ModelSpec } from '../model/spec';
import { createSession, type Device } from './session';

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
  taskWeights: [number, number, number];
}

export interface StepResult {
  loss: number;
  taskLosses: [number, number, number];
  gradNorm: number;
}

export interface TrainStepOptions {
  optimizer: OptimizerConfig;
  frozen?: ('trunk' | 'head')[];
  device?: Device;
  threads?: number;
  log?: (line: string) => void;
}

type TensorSet = Map<string, ort.Tensor>;

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

export class TrainStepRunner {
  private buffers: [TensorSet, TensorSet] = [new Map(), new Map()];
  private current = 0;
  private step: number;
  private readonly fixed = new Map<string, ort.Tensor>();
  private readonly updated: string[] = [];

  private constructor(
    readonly spec: ModelSpec,
    private readonly session: ort.InferenceSession,
    readonly provider: 'cpu' | 'cuda',
    private readonly opts: TrainStepOptions,
    start: Checkpoint,
  ) {
    const shapes = new Map(layout(spec).params.map((p) => [p.name, p.shape]));
    const trainable = new Set(trainableParams(spec, opts.frozen).map((p) => p.name));
    const optimizer = start.optimizer;
    for (const [name, shape] of shapes) {
      const value = start.params.get(name)!;
      if (!trainable.has(name)) {
        this.fixed.set(name, new ort.Tensor('float32', Float32Array.from(value), shape));
        continue;
      }
      this.updated.push(name);
      for (const suffix of stateSuffixes(opts.optimizer.name)) this.updated.push(stateName(name, suffix));
    }
    for (const key of this.updated) {
      const param = shapes.has(key) ? key : key.slice(0, key.lastIndexOf('.'));
      const shape = shapes.get(param)!;
      const initial = shapes.has(key) ? start.params.get(key)! : optimizer?.state.get(key);
      const size = shape.reduce((a, b) => a * b, 1);
      this.buffers[0].set(key, new ort.Tensor('float32', initial ? Float32Array.from(initial) : new Float32Array(size), shape));
      this.buffers[1].set(key, new ort.Tensor('float32', new Float32Array(size), shape));
    }
    this.step = optimizer?.step ?? 0;
  }

  static async create(start: Checkpoint, opts: TrainStepOptions): Promise<TrainStepRunner> {
    if (start.optimizer && start.optimizer.config.name !== opts.optimizer.name) {
      // A different optimizer starts from fresh state; the weights carry over.
      start = { ...start, optimizer: undefined };
    }
    const graph = buildTrainStepGraph(start.spec, { optimizer: opts.optimizer, frozen: opts.frozen });
    const { session, provider } = await createSession(encodeModel(graph.model), {
      device: opts.device,
      threads: opts.threads,
      log: opts.log,
    });
    return new TrainStepRunner(start.spec, session, provider, opts, start);
  }

  get stepsTaken(): number {
    return this.step;
  }

  async run(batch: TrainBatch, hyper: StepHyper): Promise<StepResult> {
    const scalar = (v: number) => new ort.Tensor('float32', Float32Array.of(v), []);
    const feeds: Record<string, ort.Tensor> = {
      ...batchFeeds(this.spec, batch),
      [IO.step]: scalar(this.step),
      [IO.lr]: scalar(hyper.lr),
      [IO.weightDecay]: scalar(hyper.weightDecay),
      [IO.clipNorm]: scalar(hyper.clipNorm),
      [IO.taskWeights]: new ort.Tensor('float32', Float32Array.from(hyper.taskWeights), [3]),
    };
    for (const [k, v] of this.fixed) feeds[k] = v;
    const source = this.buffers[this.current];
    const target = this.buffers[1 - this.current];
    const fetches: Record<string, ort.Tensor | null> = { [IO.loss]: null, [IO.taskLosses]: null, [IO.gradNorm]: null, [next(IO.step)]: null };
    for (const key of this.updated) {
      feeds[key] = source.get(key)!;
      fetches[next(key)] = target.get(key)!;
    }
    const out = await this.session.run(feeds, fetches as ort.InferenceSession.FetchesType);
    this.current = 1 - this.current;
    this.step += 1;
    const losses = out[IO.taskLosses].data as Float32Array;
    return {
      loss: (out[IO.loss].data as Float32Array)[0],
      taskLosses: [losses[0], losses[1], losses[2]],
      gradNorm: (out[IO.gradNorm].data as Float32Array)[0],
    };
  }

  /** Current parameter tensors by name, for feeding another session without copies. */
  paramTensors(): Record<string, ort.Tensor> {
    const out: Record<string, ort.Tensor> = {};
    for (const p of layout(this.spec).params) out[p.name] = this.fixed.get(p.name) ?? this.buffers[this.current].get(p.name)!;
    return out;
  }

  /** Current parameters (copies), all of them including frozen ones. */
  params(): Map<string, Float32Array> {
    const params = new Map<string, Float32Array>();
    for (const [k, v] of this.fixed) params.set(k, Float32Array.from(v.data as Float32Array));
    for (const p of layout(this.spec).params) {
      const t = this.buffers[this.current].get(p.name);
      if (t) params.set(p.name, Float32Array.from(t.data as Float32Array));
    }
    return params;
  }

  optimizerState(): OptimizerState {
    const state = new Map<string, Float32Array>();
    for (const key of this.updated) {
      if (!this.fixed.has(key) && !layout(this.spec).params.some((p) => p.name === key)) {
        state.set(key, Float32Array.from(this.buffers[this.current].get(key)!.data as Float32Array));
      }
    }
    return { config: this.opts.optimizer, state, step: this.step };
  }

  checkpoint(progress?: Record<string, unknown>): Checkpoint {
    return { spec: this.spec, params: this.params(), optimizer: this.optimizerState(), progress };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
