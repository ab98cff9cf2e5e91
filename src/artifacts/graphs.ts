/** Builds the three graphs of a model: infer, train_step and eval. */
import { GraphBuilder } from '../onnx/builder';
import type { Model, Shape } from '../onnx/ir';
import { tensor } from '../onnx/ir';
import { buildForward, buildHeadsPostprocess, type BatchNormMode } from '../model/forward';
import { buildLosses, buildTotalLoss, type BatchInputs } from '../model/losses';
import { buildOptimizer, stateSuffixes, type OptimizerConfig } from '../model/optimizers';
import { layout, type BufferDef, type BufferValue, type ParamDef } from '../model/params';
import type { ModelSpec } from '../model/spec';
import { TASK_COUNT, TASKS, type Task } from '../model/tasks';
import { WEIGHTING_ROLES } from '../model/weighting/graph';
import { STATIC_WEIGHTING, weightingStrategy, type WeightingChoice } from '../model/weighting/index';
import { stack } from '../model/weighting/scalars';
import type { TensorInfo } from './manifest';
import { strategyGradients } from './task-gradients';

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
  appliedWeights: 'applied_weights',
  taskGramian: 'task_gramian',
  taskLossesAfter: 'task_losses_after',
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

/** The buffers evaluation-mode batch norm reads: running mean and variance (not the batch count). */
export function statisticsBuffers(spec: ModelSpec): BufferDef[] {
  return layout(spec).buffers.filter((d) => d.role !== 'num_batches_tracked');
}

/**
 * image → class_probs, objectness, box, with the weights and running statistics stored as
 * initializers (ONNX Runtime folds each BatchNormalization into the Conv before it when the session
 * is created).
 */
export function buildInferGraph(spec: ModelSpec, params: Map<string, Float32Array>, buffers: Map<string, BufferValue>): BuiltGraph {
  const b = new GraphBuilder(`${spec.name}_infer`);
  const image = b.input(IO.image, 'float32', imageShape(spec));
  for (const p of layout(spec).params) {
    const data = params.get(p.name);
    if (!data) throw new Error(`missing parameter ${p.name}`);
    b.initializer(p.name, tensor('float32', p.shape, data));
  }
  for (const d of statisticsBuffers(spec)) {
    const data = buffers.get(d.name);
    if (!(data instanceof Float32Array)) throw new Error(`missing buffer ${d.name}`);
    b.initializer(d.name, tensor('float32', d.shape, data));
  }
  const heads = buildForward(b, spec, image, (n) => n, 'eval');
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

function addBufferInputs(b: GraphBuilder, buffers: BufferDef[]): void {
  for (const d of buffers) b.input(d.name, d.dtype, d.shape);
}

export interface TrainStepGraphOptions {
  optimizer: OptimizerConfig;
  /** Parameter groups to keep fixed (fed as inputs, not updated). */
  frozen?: ('trunk' | 'head')[];
  /**
   * Label smoothing ε of the class loss (default 0). A constant of the graph rather than an input,
   * so that train_step.onnx keeps the inputs its callers feed.
   */
  labelSmoothing?: number;
  /** How the task losses are combined (default: static λ). */
  weighting?: WeightingChoice;
  /** The tasks trained (default: all): the others' losses are left out and their heads fed, not updated. */
  tasks?: readonly Task[];
}

/**
 * Batch norm (always in the trunk) runs in training mode unless the trunk is frozen: a frozen trunk
 * is a fixed feature extractor, so it normalises with its running statistics and leaves them alone.
 */
export function batchNormMode(frozen: ('trunk' | 'head')[] = []): BatchNormMode {
  return frozen.includes('trunk') ? 'eval' : 'train';
}

/** Buffers a train step reads: all of them in training mode (and returns each as `.next`), the running statistics otherwise. */
export function trainStepBuffers(spec: ModelSpec, frozen: ('trunk' | 'head')[] = []): BufferDef[] {
  return batchNormMode(frozen) === 'train' ? layout(spec).buffers : statisticsBuffers(spec);
}

/** Parameters that a train step with these options updates. */
export function trainableParams(spec: ModelSpec, frozen: ('trunk' | 'head')[] = [], tasks: readonly Task[] = TASKS): ParamDef[] {
  const idle = TASKS.filter((t) => !tasks.includes(t));
  return layout(spec).params.filter((p) => !frozen.includes(p.group) && !idle.some((t) => p.name.startsWith(`heads.${t}.`)));
}

/** Indices (in TASKS order) of the tasks a train step trains; refuses an empty or unknown list. */
export function activeTasks(tasks: readonly Task[] = TASKS): number[] {
  const active = TASKS.map((t, i) => (tasks.includes(t) ? i : -1)).filter((i) => i >= 0);
  const unknown = tasks.filter((t) => !TASKS.includes(t));
  if (unknown.length > 0 || active.length === 0) throw new RangeError(`tasks must be a non-empty list of ${TASKS.join(', ')}; got ${tasks.join(', ') || 'none'}`);
  return active;
}

/**
 * params + buffers + optimizer state + step + lr + weight decay + clip norm + task weights + batch
 * → loss, task_losses, grad_norm, <param>.next, <state>.next, <buffer>.next, step.next.
 * Every input whose role is parameter, buffer, optimizer_state or step and that the step updates
 * has an output `<name>.next` of the same role: the state a caller carries from step to step.
 * A weighting strategy with a graph part adds its own state, parameters and inputs
 * (`weighting.<name>.*`, carried as `X` → `X.next` where they are state) and the outputs
 * applied_weights, task_gramian (when it needs per-task gradients) and task_losses_after (when it
 * needs the losses after the update); see docs/MTL.md.
 */
export function buildTrainStepGraph(spec: ModelSpec, opts: TrainStepGraphOptions): BuiltGraph {
  const b = new GraphBuilder(`${spec.name}_train_step`);
  const weighting = opts.weighting ?? STATIC_WEIGHTING;
  const needs = weightingStrategy(weighting.name).needs(weighting.options);
  const active = activeTasks(opts.tasks);
  const all = layout(spec).params;
  const trainable = trainableParams(spec, opts.frozen, opts.tasks);
  const buffers = trainStepBuffers(spec, opts.frozen);
  const suffixes = stateSuffixes(opts.optimizer.name);
  const inputs: TensorInfo[] = [];
  const image = b.input(IO.image, 'float32', imageShape(spec));
  const batch = addBatchInputs(b);
  addParamInputs(b, all);
  addBufferInputs(b, buffers);
  for (const p of trainable) for (const s of suffixes) b.input(stateName(p.name, s), 'float32', p.shape);
  const hyper = {
    step: b.input(IO.step, 'float32', []),
    lr: b.input(IO.lr, 'float32', []),
    weightDecay: b.input(IO.weightDecay, 'float32', []),
    clipNorm: b.input(IO.clipNorm, 'float32', []),
  };
  const taskWeights = b.input(IO.taskWeights, 'float32', [TASKS.length]);

  const heads = buildForward(b, spec, image, (n) => n, batchNormMode(opts.frozen));
  const smoothing = opts.labelSmoothing ? b.scalar(opts.labelSmoothing) : undefined;
  const numClasses = spec.heads.classification.labels.length;
  const losses = buildLosses(b, heads, batch, numClasses, smoothing);
  const total = active.length === TASKS.length
    ? buildTotalLoss(b, losses.taskLosses, taskWeights)
    : buildTotalLoss(b, stack(b, active.map((t) => [losses.cls, losses.det, losses.box][t])), b.op('Gather', [taskWeights, b.ints(active, 'trained_tasks')], { axis: 0 }));
  const { grads, emitted, gram, weightingParams } = strategyGradients(b, {
    weighting,
    active,
    heads,
    losses,
    taskWeights,
    step: hyper.step,
    trainable,
    total,
  });
  const update = buildOptimizer(b, opts.optimizer, trainable.map((p) => ({
    param: p.name,
    grad: grads.get(p.name)!,
    state: suffixes.map((s) => stateName(p.name, s)),
  })), hyper);

  // The strategy's own parameters: the same optimizer, never clipped or decayed with the model's.
  const weightingUpdate = weightingParams.length === 0 ? undefined : (() => {
    for (const p of weightingParams) for (const s of suffixes) b.input(stateName(p, s), 'float32', [TASKS.length]);
    const noClip = b.scalar(0);
    return buildOptimizer(b, opts.optimizer, weightingParams.map((p) => ({ param: p, grad: grads.get(p)!, state: suffixes.map((s) => stateName(p, s)) })), { ...hyper, weightDecay: noClip, clipNorm: noClip });
  })();

  // The losses of the updated weights on the same batch (its batch statistics; its running statistics are not kept).
  let lossesAfter: string | undefined;
  if (needs.lossesAfterStep) {
    const updated = new Map(trainable.map((p, i) => [p.name, update.params[i]]));
    const forward = buildForward(b, spec, image, (n) => updated.get(n) ?? n, batchNormMode(opts.frozen));
    const after = buildLosses(b, forward, batch, numClasses, smoothing);
    lossesAfter = after.taskLosses;
    emitted!.after!([after.cls, after.det, after.box]);
  }

  const outputs: TensorInfo[] = [];
  const out = (value: string, name: string, role: string) => outputs.push(info(b, b.output(value, name), role));
  out(total, IO.loss, 'loss');
  out(losses.taskLosses, IO.taskLosses, 'task_losses');
  out(update.gradNorm, IO.gradNorm, 'grad_norm');
  trainable.forEach((p, i) => {
    out(update.params[i], next(p.name), 'parameter');
    suffixes.forEach((s, k) => out(update.state[i][k], next(stateName(p.name, s)), 'optimizer_state'));
  });
  for (const [name, value] of heads.bufferUpdates) out(value, next(name), 'buffer');
  out(update.step, next(IO.step), 'step');
  weightingParams.forEach((p, i) => {
    out(weightingUpdate!.params[i], next(p), WEIGHTING_ROLES.parameter);
    suffixes.forEach((s, k) => out(weightingUpdate!.state[i][k], next(stateName(p, s)), 'optimizer_state'));
  });
  if (emitted) {
    for (const [name, value] of emitted.nexts) out(value, next(name), WEIGHTING_ROLES.state);
    out(emitted.applied, IO.appliedWeights, 'applied_weights');
  }
  if (gram) out(gram, IO.taskGramian, 'task_gramian');
  if (lossesAfter) out(lossesAfter, IO.taskLossesAfter, 'task_losses_after');

  const weightingRole = new Map<string, string>(emitted?.tensors.map((t) => [t.name, WEIGHTING_ROLES[t.kind]]) ?? []);
  for (const v of b.inputs) {
    const role = v.name === IO.image ? 'image'
      : Object.values(batch).includes(v.name) ? 'target'
        : all.some((p) => p.name === v.name) ? 'parameter'
          : buffers.some((d) => d.name === v.name) ? 'buffer'
            : v.name === IO.taskWeights ? 'task_weights'
              : Object.values(hyper).includes(v.name) ? 'hyperparameter'
                : weightingRole.get(v.name) ?? 'optimizer_state';
    inputs.push({ name: v.name, dtype: v.dtype, shape: v.shape, role });
  }
  const metadata: Record<string, string> = { 'trident.graph': 'train_step', 'trident.optimizer': JSON.stringify(opts.optimizer) };
  if (opts.labelSmoothing) metadata['trident.label_smoothing'] = String(opts.labelSmoothing);
  if (weighting.name !== STATIC_WEIGHTING.name) metadata['trident.weighting'] = JSON.stringify(weighting);
  if (active.length !== TASKS.length) metadata['trident.tasks'] = JSON.stringify(active.map((t) => TASKS[t]));
  return {
    model: b.model(metadata),
    inputs,
    outputs,
  };
}

/** params + running statistics + batch + task weights → loss, task_losses and the post-processed heads; no update. */
export function buildEvalGraph(spec: ModelSpec): BuiltGraph {
  const b = new GraphBuilder(`${spec.name}_eval`);
  const all = layout(spec).params;
  const buffers = statisticsBuffers(spec);
  const image = b.input(IO.image, 'float32', imageShape(spec));
  const batch = addBatchInputs(b);
  addParamInputs(b, all);
  addBufferInputs(b, buffers);
  const taskWeights = b.input(IO.taskWeights, 'float32', [TASK_COUNT]);
  const heads = buildForward(b, spec, image, (n) => n, 'eval');
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
    role: v.name === IO.image ? 'image'
      : Object.values(batch).includes(v.name) ? 'target'
        : v.name === IO.taskWeights ? 'task_weights'
          : buffers.some((d) => d.name === v.name) ? 'buffer' : 'parameter',
  }));
  return { model: b.model({ 'trident.graph': 'eval' }), inputs, outputs };
}
