/** Parameter and buffer names, shapes and PyTorch-default initialisation for a model spec. */
import { mulberry32 } from '../base/random';
import { numel } from '../onnx/ir';
import type { ModelSpec } from './spec';
import { trunkOutput } from './spec';

export interface ParamDef {
  /** PyTorch state_dict name of the equivalent module, e.g. `trunk.0.weight`. */
  name: string;
  /** PyTorch layout: conv [O, C, kh, kw], linear [out, in], bias and BatchNorm weight [out]. */
  shape: number[];
  /** Fan-in used by PyTorch's default initialisation (uniform ±1/√fan_in). */
  fanIn: number;
  /** PyTorch's default: uniform for conv and linear layers, ones/zeros for BatchNorm weight/bias. */
  init: 'uniform' | 'ones' | 'zeros';
  /** Part of the shared trunk (frozen by --freeze-trunk) or of a head. */
  group: 'trunk' | 'head';
}

export type BufferRole = 'running_mean' | 'running_var' | 'num_batches_tracked';
export type BufferValue = Float32Array | BigInt64Array;

/** Module state that is not trained by gradient (PyTorch buffers): BatchNorm's running statistics. */
export interface BufferDef {
  /** PyTorch state_dict name, e.g. `trunk.1.running_mean`. */
  name: string;
  shape: number[];
  dtype: 'float32' | 'int64';
  role: BufferRole;
  /** The BatchNorm module, e.g. `trunk.1`. */
  module: string;
  group: 'trunk';
}

/** A convolution as the forward pass emits it: `${conv}.weight` (and `.bias`), then BatchNorm `${bn}.*`. */
export interface ConvLayout {
  conv: string;
  inChannels: number;
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
  /** The conv has a bias unless a BatchNorm follows it (PyTorch's Conv2d(bias=False) before BatchNorm2d). */
  bias: boolean;
  bn?: string;
}

export type BlockLayout =
  | { type: 'conv'; conv: ConvLayout; relu: boolean; pool?: number }
  | { type: 'residual'; conv1: ConvLayout; conv2: ConvLayout; downsample?: ConvLayout }
  | { type: 'globalAvgPool' };

export interface Layout {
  params: ParamDef[];
  buffers: BufferDef[];
  /** The trunk's blocks with the module names their layers have. */
  blocks: BlockLayout[];
  /** Module indices of the linear layers inside `shared`. */
  sharedIndex: number[];
}

/**
 * Mirrors this PyTorch module: `trunk = Sequential(…)` of Conv2d, BatchNorm2d?, ReLU?, MaxPool2d?
 * per conv block, one BasicBlock-like module (conv1, bn1, conv2, bn2, downsample) per residual
 * block and AdaptiveAvgPool2d(1); `shared = Sequential(Flatten, Linear, ReLU, …)`,
 * `heads = ModuleDict(cls, det, box)`. bench/torch_reference.py builds that module.
 */
export function layout(spec: ModelSpec): Layout {
  const params: ParamDef[] = [];
  const buffers: BufferDef[] = [];
  const convLayer = (conv: string, bn: string | undefined, inChannels: number, outChannels: number, kernel: number, stride: number, padding: number): ConvLayout => {
    const fanIn = inChannels * kernel * kernel;
    params.push({ name: `${conv}.weight`, shape: [outChannels, inChannels, kernel, kernel], fanIn, init: 'uniform', group: 'trunk' });
    if (!bn) params.push({ name: `${conv}.bias`, shape: [outChannels], fanIn, init: 'uniform', group: 'trunk' });
    else {
      params.push({ name: `${bn}.weight`, shape: [outChannels], fanIn: outChannels, init: 'ones', group: 'trunk' });
      params.push({ name: `${bn}.bias`, shape: [outChannels], fanIn: outChannels, init: 'zeros', group: 'trunk' });
      buffers.push(
        { name: `${bn}.running_mean`, shape: [outChannels], dtype: 'float32', role: 'running_mean', module: bn, group: 'trunk' },
        { name: `${bn}.running_var`, shape: [outChannels], dtype: 'float32', role: 'running_var', module: bn, group: 'trunk' },
        { name: `${bn}.num_batches_tracked`, shape: [], dtype: 'int64', role: 'num_batches_tracked', module: bn, group: 'trunk' },
      );
    }
    return { conv, inChannels, outChannels, kernel, stride, padding, bias: !bn, bn };
  };

  const blocks: BlockLayout[] = [];
  let index = 0;
  let channels: number = spec.input.channels;
  for (const block of spec.trunk) {
    if (block.type === 'conv') {
      const bn = block.batchNorm ? `trunk.${index + 1}` : undefined;
      const conv = convLayer(`trunk.${index}`, bn, channels, block.outChannels, block.kernel, block.stride, block.padding);
      blocks.push({ type: 'conv', conv, relu: block.relu, pool: block.pool });
      index += 1 + (bn ? 1 : 0) + (block.relu ? 1 : 0) + (block.pool ? 1 : 0);
      channels = block.outChannels;
    } else if (block.type === 'residual') {
      const m = `trunk.${index}`;
      const bn = (name: string) => (block.batchNorm ? `${m}.${name}` : undefined);
      const conv1 = convLayer(`${m}.conv1`, bn('bn1'), channels, block.outChannels, 3, block.stride, 1);
      const conv2 = convLayer(`${m}.conv2`, bn('bn2'), block.outChannels, block.outChannels, 3, 1, 1);
      const projected = block.stride !== 1 || channels !== block.outChannels;
      const downsample = projected ? convLayer(`${m}.downsample.0`, bn('downsample.1'), channels, block.outChannels, 1, block.stride, 0) : undefined;
      blocks.push({ type: 'residual', conv1, conv2, downsample });
      index += 1;
      channels = block.outChannels;
    } else {
      blocks.push({ type: 'globalAvgPool' });
      index += 1;
    }
  }
  const out = trunkOutput(spec);
  let width = out.channels * out.height * out.width;
  const sharedIndex: number[] = [];
  index = 1; // shared.0 is Flatten
  for (const units of spec.shared) {
    sharedIndex.push(index);
    params.push({ name: `shared.${index}.weight`, shape: [units, width], fanIn: width, init: 'uniform', group: 'trunk' });
    params.push({ name: `shared.${index}.bias`, shape: [units], fanIn: width, init: 'uniform', group: 'trunk' });
    index += 2;
    width = units;
  }
  const heads: [string, number][] = [['cls', spec.heads.classification.labels.length], ['det', 1], ['box', 4]];
  for (const [head, units] of heads) {
    params.push({ name: `heads.${head}.weight`, shape: [units, width], fanIn: width, init: 'uniform', group: 'head' });
    params.push({ name: `heads.${head}.bias`, shape: [units], fanIn: width, init: 'uniform', group: 'head' });
  }
  return { params, buffers, blocks, sharedIndex };
}

/**
 * PyTorch's defaults for Conv2d and Linear: weight ~ kaiming_uniform(a=√5), i.e. U(±1/√fan_in),
 * and bias ~ U(±1/√fan_in); BatchNorm2d: weight 1, bias 0. Same distributions as PyTorch, drawn
 * from our own seeded generator (constant-initialised tensors draw nothing).
 */
export function initParams(spec: ModelSpec, seed: number): Map<string, Float32Array> {
  const random = mulberry32(seed);
  const values = new Map<string, Float32Array>();
  for (const p of layout(spec).params) {
    const data = new Float32Array(numel(p.shape));
    if (p.init === 'ones') data.fill(1);
    else if (p.init === 'uniform') {
      const bound = 1 / Math.sqrt(p.fanIn);
      for (let i = 0; i < data.length; i++) data[i] = (random() * 2 - 1) * bound;
    }
    values.set(p.name, data);
  }
  return values;
}

/** PyTorch's initial BatchNorm buffers: running_mean 0, running_var 1, num_batches_tracked 0. */
export function initBuffers(spec: ModelSpec): Map<string, BufferValue> {
  const values = new Map<string, BufferValue>();
  for (const d of layout(spec).buffers) {
    values.set(d.name, d.dtype === 'int64' ? new BigInt64Array(1) : new Float32Array(numel(d.shape)).fill(d.role === 'running_var' ? 1 : 0));
  }
  return values;
}
