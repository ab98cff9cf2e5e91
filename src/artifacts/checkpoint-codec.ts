/**
 * The checkpoint format, pure (no Node API) so that the web app reads and writes the same files:
 * parameters and buffers (BatchNorm's running_mean, running_var and num_batches_tracked, the last
 * int64) under their PyTorch state_dict names, optimizer state under `optim.<param>.<state>`,
 * the step under `optim.step`; metadata holds the spec, the optimizer, the training progress and
 * a SHA-256 of the tensors and the rest of the metadata, checked on decode. The SHA-256 itself
 * comes from the caller (node:crypto on the server, a JavaScript one in the browser).
 */
import { parseOptimizer, stateSuffixes, type OptimizerConfig } from '../model/optimizers';
import { initBuffers, initParams, layout, type BufferDef, type BufferValue } from '../model/params';
import { parseSpec, type ModelSpec } from '../model/spec';
import { decodeSafetensors, encodeSafetensors, type SafeDType, type SafeTensor } from './safetensors';

export const CHECKPOINT_FORMAT = 'trident-checkpoint/1';
const OPTIM_PREFIX = 'optim.';

export interface OptimizerState {
  config: OptimizerConfig;
  /** Keyed `<param>.<suffix>`, e.g. `trunk.0.weight.exp_avg`. */
  state: Map<string, Float32Array>;
  step: number;
}

export interface Checkpoint {
  spec: ModelSpec;
  params: Map<string, Float32Array>;
  /** PyTorch buffers (BatchNorm running statistics and batch count); empty for specs without BatchNorm. */
  buffers: Map<string, BufferValue>;
  optimizer?: OptimizerState;
  /** Trainer bookkeeping needed to resume exactly (epoch, batches done, seed, …). */
  progress?: Record<string, unknown>;
}

/** An incremental SHA-256. */
export interface Sha256 {
  update(data: Uint8Array): void;
  hex(): string;
}

export interface CheckpointCodec {
  sha256: () => Sha256;
  /** Written as the `trident` metadata entry: which program and version wrote the file. */
  producer: string;
}

/** The safetensors dtype a buffer is stored as. */
const bufferDType = (d: BufferDef): SafeDType => (d.dtype === 'int64' ? 'I64' : 'F32');

/** SHA-256 over every tensor (name, dtype, shape, bytes) and every other metadata entry, so any flipped byte shows. */
function dataChecksum(codec: CheckpointCodec, tensors: Map<string, SafeTensor>, metadata: Record<string, string>): string {
  const hash = codec.sha256();
  const text = new TextEncoder();
  for (const name of [...tensors.keys()].sort()) {
    const t = tensors.get(name)!;
    hash.update(text.encode(JSON.stringify([name, t.dtype, t.shape])));
    hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  const entries = Object.keys(metadata).filter((k) => k !== 'sha256').sort().map((k) => [k, metadata[k]]);
  hash.update(text.encode(JSON.stringify(entries)));
  return hash.hex();
}

export function encodeCheckpointWith(codec: CheckpointCodec, ckpt: Checkpoint): Uint8Array {
  const tensors = new Map<string, SafeTensor>();
  const { params, buffers } = layout(ckpt.spec);
  for (const p of params) {
    const data = ckpt.params.get(p.name);
    if (!data) throw new Error(`checkpoint: missing parameter ${p.name}`);
    tensors.set(p.name, { dtype: 'F32', shape: p.shape, data });
  }
  for (const d of buffers) {
    const data = ckpt.buffers.get(d.name);
    if (!data) throw new Error(`checkpoint: missing buffer ${d.name}`);
    tensors.set(d.name, { dtype: bufferDType(d), shape: d.shape, data });
  }
  if (ckpt.optimizer) {
    const shapes = new Map(params.map((p) => [p.name, p.shape]));
    for (const [key, data] of ckpt.optimizer.state) {
      const param = key.slice(0, key.lastIndexOf('.'));
      tensors.set(OPTIM_PREFIX + key, { dtype: 'F32', shape: shapes.get(param) ?? [data.length], data });
    }
    tensors.set(`${OPTIM_PREFIX}step`, { dtype: 'I64', shape: [], data: BigInt64Array.of(BigInt(ckpt.optimizer.step)) });
  }
  const metadata: Record<string, string> = {
    format: CHECKPOINT_FORMAT,
    trident: codec.producer,
    spec: JSON.stringify(ckpt.spec),
  };
  if (ckpt.optimizer) metadata.optimizer = JSON.stringify(ckpt.optimizer.config);
  if (ckpt.progress) metadata.progress = JSON.stringify(ckpt.progress);
  metadata.sha256 = dataChecksum(codec, tensors, metadata);
  return encodeSafetensors(tensors, metadata);
}

export function decodeCheckpointWith(codec: CheckpointCodec, bytes: Uint8Array, source = 'checkpoint'): Checkpoint {
  const file = decodeSafetensors(bytes, source);
  const meta = file.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) throw new Error(`${source}: not a Trident checkpoint (format ${meta.format ?? 'missing'})`);
  if (meta.sha256 !== dataChecksum(codec, file.tensors, meta)) throw new Error(`${source}: checksum mismatch, the checkpoint is corrupt`);
  const spec = parseSpec(parseJson(meta.spec, 'spec', source), source);
  const defs = layout(spec);
  const params = new Map<string, Float32Array>();
  for (const p of defs.params) {
    const t = file.tensors.get(p.name);
    if (!t || t.dtype !== 'F32' || t.shape.join() !== p.shape.join()) {
      throw new Error(`${source}: parameter ${p.name} missing or not of shape [${p.shape}]`);
    }
    params.set(p.name, t.data as Float32Array);
  }
  const buffers = new Map<string, BufferValue>();
  for (const d of defs.buffers) {
    const t = file.tensors.get(d.name);
    if (!t || t.dtype !== bufferDType(d) || t.shape.join() !== d.shape.join()) {
      throw new Error(`${source}: buffer ${d.name} missing or not ${d.dtype} of shape [${d.shape}]`);
    }
    buffers.set(d.name, t.data as BufferValue);
  }
  const ckpt: Checkpoint = { spec, params, buffers };
  if (meta.optimizer) {
    const config = parseJson(meta.optimizer, 'optimizer', source) as OptimizerConfig;
    parseOptimizer(config?.name);
    const state = new Map<string, Float32Array>();
    for (const [name, t] of file.tensors) {
      if (!name.startsWith(OPTIM_PREFIX) || name === `${OPTIM_PREFIX}step`) continue;
      if (t.dtype !== 'F32') throw new Error(`${source}: optimizer state ${name} is not float32`);
      state.set(name.slice(OPTIM_PREFIX.length), t.data as Float32Array);
    }
    const stepTensor = file.tensors.get(`${OPTIM_PREFIX}step`);
    if (stepTensor && (stepTensor.dtype !== 'I64' || stepTensor.data.length !== 1)) throw new Error(`${source}: optim.step is not one int64`);
    const step = stepTensor ? Number((stepTensor.data as BigInt64Array)[0]) : 0;
    ckpt.optimizer = { config, state, step };
  }
  if (meta.progress) ckpt.progress = parseJson(meta.progress, 'progress', source) as Record<string, unknown>;
  return ckpt;
}

function parseJson(text: string | undefined, entry: string, source: string): unknown {
  try {
    return JSON.parse(text ?? '');
  } catch {
    throw new Error(`${source}: metadata entry "${entry}" is missing or not JSON`);
  }
}

/** Describes how two specs differ, or returns undefined when they are the same architecture. */
export function specDifference(a: ModelSpec, b: ModelSpec): string | undefined {
  const la = layout(a);
  const lb = layout(b);
  const pa = la.params;
  const pb = lb.params;
  const diffs: string[] = [];
  if (a.input.channels !== b.input.channels || a.input.height !== b.input.height || a.input.width !== b.input.width) {
    diffs.push(`input ${a.input.channels}×${a.input.height}×${a.input.width} vs ${b.input.channels}×${b.input.height}×${b.input.width}`);
  }
  const shapes = new Map(pb.map((p) => [p.name, p.shape.join('×')]));
  for (const p of pa) {
    const other = shapes.get(p.name);
    if (other === undefined) diffs.push(`${p.name} only in one`);
    else if (other !== p.shape.join('×')) diffs.push(`${p.name} is ${p.shape.join('×')} vs ${other}`);
  }
  if (pa.length !== pb.length) diffs.push(`${pa.length} vs ${pb.length} parameter tensors`);
  const ba = la.buffers.map((d) => d.name).join();
  const bb = lb.buffers.map((d) => d.name).join();
  if (ba !== bb) diffs.push(`buffers ${ba || 'none'} vs ${bb || 'none'}`);
  return diffs.length ? diffs.slice(0, 5).join('; ') : undefined;
}

/** A checkpoint of freshly initialised weights (PyTorch's default initialisation, drawn from `seed`). */
export function freshCheckpoint(spec: ModelSpec, seed: number): Checkpoint {
  return { spec, params: initParams(spec, seed), buffers: initBuffers(spec) };
}

/** Fresh optimizer state (zeros) for the given parameters. */
export function emptyOptimizerState(spec: ModelSpec, config: OptimizerConfig): OptimizerState {
  const state = new Map<string, Float32Array>();
  for (const p of layout(spec).params) {
    for (const s of stateSuffixes(config.name)) state.set(`${p.name}.${s}`, new Float32Array(p.shape.reduce((x, y) => x * y, 1)));
  }
  return { config, state, step: 0 };
}
