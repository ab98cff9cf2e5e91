/** Builds the three graphs of a model: infer, train_step and eval. */
import { gradients } from '../autodiff/grad';
import { GraphBuilder } from '../onnx/builder';
import type { Model, Shape } from '../onnx/ir';
import { tensor } from '../onnx/ir';
import { buildForward, buildHeadsPostprocess } from '../model/forward';
import { buildLosses, buildTotalLoss, type BatchInputs } from '../model/losses';
import { buildOptimizer, stateSuffixes, type OptimizerConfig } from '../model/optimizers';
import { layout, type ParamDef } from '../model/params';
import type { ModelSpec } from '../model/spec';
import type { TensorInfo } from './manifest';

export const IO = {
  image: 'image',
  label: 'label',
  objectness: 'objectness',
  box: 'box',
  mask: 'mask',
  lr: 'lr',
  step: 'step',
  weightDecay: 'weight_decay',
  clipNorm: 'clip_norm',
  taskWeights: 'task_weights',
  loss: 'loss',
  taskLosses: 'task_losses',
  gradNorm: 'grad_norm',
  classProbs: 'class_probs',
  objectnessProb: 'objectness',
  boxOut: 'box',
  /** eval.onnx's names for the objectness and box heads (its inputs already use `objectness` and `box`). */
  evalObjectness: 'objectness_prob',
  evalBox: 'box_pred',
} as const;

export const next = (name: string) => `${name}.next`;
export const stateName = (param: string, suffix: string) => `${param}.${suffix}`;

export interface BuiltGraph {
  model: Model;
  inputs: TensorInfo[];
  outputs: TensorInfo[];
}

function imageShape(spec: ModelSpec): Shape {
  return ['N', spec.input.channels, spec.input.height, spec.input.width];
}

function info(b: GraphBuilder, name: string, role: string): TensorInfo {
  return { name, dtype: b.dtype(name), shape: b.shape(name), role };
}

/** image → class_probs, objectness, box, with the weights stored as initializers. */
export function buildInferGraph(spec: ModelSpec, params: Map<string, Float32Array>): BuiltGraph {
  const b = new GraphBuilder(`${spec.name}_infer`);
  const image = b.input(IO.image, 'float32', imageShape(spec));
  for (const p of layout(spec).params) {
    const data = params.get(p.name);
    if (!data) throw new Error(`missing parameter ${p.name}`);
    b.initializer(p.name, tensor('float32', p.shape, data));
  }
  const heads = buildForward(b, spec, image, (n) => n);
  const post = buildHeadsPostprocess(b, heads);
  const outs = [
    b.output(post.classProbs, IO.classProbs),
    b.output(post.objectness, IO.objectnessProb),
    b.output(post.box, IO.boxOut),
  ];
  return {
    model: b.model({ 'trident.graph': 'infer', 'trident.spec': JSON.stringify(spec) }),
    inputs: [info(b, image, 'image')],
    outputs: outs.map((o) => info(b, o, o)),
  };
}

function addBatchInputs(b: GraphBuilder): BatchInputs {
  return {
    label: b.input(IO.label, 'int64', ['N']),
    objectness: b.input(IO.objectness, 'float32', ['N']),
    box: b.input(IO.box, 'float32', ['N', 4]),
    mask: b.input(IO.mask, 'float32', ['N']),
  };
}

function addParamInputs(b: GraphBuilder, params: ParamDef[]): void {
  for (const p of params) b.input(p.name, 'float32', p.shape);
}

export interface TrainStepGraphOptions {
  optimizer: OptimizerConfig;
  /** Parameter groups to keep fixed (fed as inputs, not updated). */
  frozen?: ('trunk' | 'head')[];
}

/** Parameters that a train step with these options updates. */
export function trainableParams(spec: ModelSpec, frozen: ('trunk' | 'head')[] = []): ParamDef[] {
  return layout(spec).params.filter((p) => !frozen.includes(p.group));
}

/**
 * params + optimizer state + step + lr + weight decay + clip norm + task weights + batch
 * → loss, task_losses, grad_norm, <param>.next, <state>.next, step.next.
 */
export function buildTrainStepGraph(spec: ModelSpec, opts: TrainStepGraphOptions): BuiltGraph {
  const b = new GraphBuilder(`${spec.name}_train_step`);
  const all = layout(spec).params;
  const trainable = trainableParams(spec, opts.frozen);
  const suffixes = stateSuffixes(opts.optimizer.name);
  const inputs: TensorInfo[] = [];
  const image = b.input(IO.image, 'float32', imageShape(spec));
  const batch = addBatchInputs(b);
  addParamInputs(b, all);
  for (const p of trainable) for (const s of suffixes) b.input(stateName(p.name, s), 'float32', p.shape);
  const hyper = {
    step: b.input(IO.step, 'float32', []),
    lr: b.input(IO.lr, 'float32', []),
    weightDecay: b.input(IO.weightDecay, 'float32', []),
    clipNorm: b.input(IO.clipNorm, 'float32', []),
  };
  const taskWeights = b.input(IO.taskWeights, 'float32', [3]);

  const heads = buildForward(b, spec, image, (n) => n);
  const losses = buildLosses(b, heads, batch, spec.heads.classification.labels.length);
  const total = buildTotalLoss(b, losses.taskLosses, taskWeights);
  const grads = gradients(b, total, trainable.map((p) => p.name));
  const update = buildOptimizer(b, opts.optimizer, trainable.map((p) => ({
    param: p.name,
    grad: grads.get(p.name)!,
    state: suffixes.map((s) => stateName(p.name, s)),
  })), hyper);

  const outputs: TensorInfo[] = [];
  const out = (value: string, name: string, role: string) => outputs.push(info(b, b.output(value, name), role));
  out(total, IO.loss, 'loss');
  out(losses.taskLosses, IO.taskLosses, 'task_losses');
  out(update.gradNorm, IO.gradNorm, 'grad_norm');
  trainable.forEach((p, i) => {
    out(update.params[i], next(p.name), 'parameter');
    suffixes.forEach((s, k) => out(update.state[i][k], next(stateName(p.name, s)), 'optimizer_state'));
  });
  out(update.step, next(IO.step), 'step');

  for (const v of b.inputs) {
    const role = v.name === IO.image ? 'image'
      : Object.values(batch).includes(v.name) ? 'target'
        : all.some((p) => p.name === v.name) ? 'parameter'
          : v.name === IO.taskWeights ? 'task_weights'
            : Object.values(hyper).includes(v.name) ? 'hyperparameter' : 'optimizer_state';
    inputs.push({ name: v.name, dtype: v.dtype, shape: v.shape, role });
  }
  return {
    model: b.model({ 'trident.graph': 'train_step', 'trident.optimizer': JSON.stringify(opts.optimizer) }),
    inputs,
    outputs,
  };
}

/** params + batch + task weights → loss, task_losses and the post-processed heads; no update. */
export function buildEvalGraph(spec: ModelSpec): BuiltGraph {
  const b = new GraphBuilder(`${spec.name}_eval`);
  const all = layout(spec).params;
  const image = b.input(IO.image, 'float32', imageShape(spec));
  const batch = addBatchInputs(b);
  addParamInputs(b, all);
  const taskWeights = b.input(IO.taskWeights, 'float32', [3]);
  const heads = buildForward(b, spec, image, (n) => n);
  const losses = buildLosses(b, heads, batch, spec.heads.classification.labels.length);
  const total = buildTotalLoss(b, losses.taskLosses, taskWeights);
  const post = buildHeadsPostprocess(b, heads);
  const outputs = [
    info(b, b.output(total, IO.loss), 'loss'),
    info(b, b.output(losses.taskLosses, IO.taskLosses), 'task_losses'),
    info(b, b.output(post.classProbs, IO.classProbs), 'class_probs'),
    info(b, b.output(post.objectness, IO.evalObjectness), 'objectness'),
    info(b, b.output(post.box, IO.evalBox), 'box'),
  ];
  const inputs = b.inputs.map((v) => ({
    name: v.name,
    dtype: v.dtype,
    shape: v.shape,
    role: v.name === IO.image ? 'image' : Object.values(batch).includes(v.name) ? 'target' : v.name === IO.taskWeights ? 'task_weights' : 'parameter',
  }));
  return { model: b.model({ 'trident.graph': 'eval' }), inputs, outputs };
}
