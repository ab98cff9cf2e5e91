/** Parameter names, shapes and PyTorch-default initialisation for a model spec. */
import { mulberry32 } from '../base/random';
import type { ModelSpec } from './spec';
import { trunkOutput } from './spec';

export interface ParamDef {
  /** PyTorch state_dict name of the equivalent module, e.g. `trunk.0.weight`. */
  name: string;
  /** PyTorch layout: conv [O, C, kh, kw], linear [out, in], bias [out]. */
  shape: number[];
  /** Fan-in used by PyTorch's default initialisation. */
  fanIn: number;
  /** Part of the shared trunk (frozen by --freeze-trunk) or of a head. */
  group: 'trunk' | 'head';
}

export interface Layout {
  params: ParamDef[];
  /** Module indices of the conv layers inside `trunk` and linear layers inside `shared`. */
  convIndex: number[];
  sharedIndex: number[];
}

/**
 * Mirrors this PyTorch module: `trunk = Sequential(Conv2d, ReLU?, MaxPool2d?, …)`,
 * `shared = Sequential(Flatten, Linear, ReLU, …)`, `heads = ModuleDict(cls, det, box)`.
 */
export function layout(spec: ModelSpec): Layout {
  const params: ParamDef[] = [];
  const convIndex: number[] = [];
  let index = 0;
  let channels: number = spec.input.channels;
  for (const block of spec.trunk) {
    const fanIn = channels * block.kernel * block.kernel;
    convIndex.push(index);
    params.push({ name: `trunk.${index}.weight`, shape: [block.outChannels, channels, block.kernel, block.kernel], fanIn, group: 'trunk' });
    params.push({ name: `trunk.${index}.bias`, shape: [block.outChannels], fanIn, group: 'trunk' });
    index += 1 + (block.relu ? 1 : 0) + (block.pool ? 1 : 0);
    channels = block.outChannels;
  }
  const out = trunkOutput(spec);
  let width = out.channels * out.height * out.width;
  const sharedIndex: number[] = [];
  index = 1; // shared.0 is Flatten
  for (const units of spec.shared) {
    sharedIndex.push(index);
    params.push({ name: `shared.${index}.weight`, shape: [units, width], fanIn: width, group: 'trunk' });
    params.push({ name: `shared.${index}.bias`, shape: [units], fanIn: width, group: 'trunk' });
    index += 2;
    width = units;
  }
  const heads: [string, number][] = [['cls', spec.heads.classification.labels.length], ['det', 1], ['box', 4]];
  for (const [head, units] of heads) {
    params.push({ name: `heads.${head}.weight`, shape: [units, width], fanIn: width, group: 'head' });
    params.push({ name: `heads.${head}.bias`, shape: [units], fanIn: width, group: 'head' });
  }
  return { params, convIndex, sharedIndex };
}

/**
 * PyTorch's defaults for Conv2d and Linear: weight ~ kaiming_uniform(a=√5), i.e. U(±1/√fan_in),
 * and bias ~ U(±1/√fan_in). Same distribution as PyTorch, drawn from our own seeded generator.
 */
export function initParams(spec: ModelSpec, seed: number): Map<string, Float32Array> {
  const random = mulberry32(seed);
  const values = new Map<string, Float32Array>();
  for (const p of layout(spec).params) {
    const bound = 1 / Math.sqrt(p.fanIn);
    const data = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = (random() * 2 - 1) * bound;
    values.set(p.name, data);
  }
  return values;
}
