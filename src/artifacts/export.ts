/**
 * Writes a model folder: checkpoint.safetensors, infer.onnx (its weights are the checkpoint's bytes,
 * referred to as ONNX external data: one copy on disk), train_step.onnx, eval.onnx, manifest.json.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { encodeModel, type EncodeOptions, type ExternalLocation } from '../onnx/serialize';
import { DEFAULT_OPSET } from '../onnx/ir';
import { DEFAULT_OPTIMIZER, type OptimizerName } from '../model/optimizers';
import { builtinSpec, type ModelSpec } from '../model/spec';
import type { Task } from '../model/tasks';
import type { WeightingChoice } from '../model/weighting/index';
import { emptyOptimizerState, encodeCheckpoint, freshCheckpoint, type Checkpoint } from './checkpoint';
import { tensorLocations } from './safetensors';
import { writeFileAtomic } from './files';
import { buildEvalGraph, buildInferGraph, buildTrainStepGraph, type BuiltGraph } from './graphs';
import { BOX_ENCODING, inputInfo, recordBytes, writeManifest, MANIFEST_FORMAT, type Manifest } from './manifest';
import { ORT_VERSION, TRIDENT_VERSION } from './version';

export const FILES = {
  infer: 'infer.onnx',
  trainStep: 'train_step.onnx',
  eval: 'eval.onnx',
  checkpoint: 'checkpoint.safetensors',
  manifest: 'manifest.json',
} as const;

/** A model folder or a checkpoint file → the checkpoint file (`--from` accepts either). */
export function checkpointFileOf(modelOrCheckpoint: string): string {
  return existsSync(modelOrCheckpoint) && statSync(modelOrCheckpoint).isDirectory() ? path.join(modelOrCheckpoint, FILES.checkpoint) : modelOrCheckpoint;
}

export interface ExportOptions {
  spec: ModelSpec | string;
  outDir: string;
  seed?: number;
  optimizer?: OptimizerName;
  /** Also write train_step.onnx and eval.onnx (default true). */
  training?: boolean;
  /** Start from these weights instead of a fresh initialisation. */
  checkpoint?: Checkpoint;
  metrics?: Record<string, unknown>;
  lineage?: Record<string, unknown>;
  name?: string;
  /** The weighting strategy and tasks train_step.onnx is built for (default: static λ, all tasks). */
  weighting?: WeightingChoice;
  tasks?: readonly Task[];
}

function graphInfo(file: string, g: BuiltGraph) {
  return { file, inputs: g.inputs, outputs: g.outputs };
}

/**
 * The initializers of `graph` whose bytes the checkpoint holds under the same name: infer.onnx
 * refers to them there (ONNX external data) instead of carrying a second copy of the weights.
 */
function sharedWeights(graph: BuiltGraph, checkpointBytes: Uint8Array): Map<string, ExternalLocation> {
  const locations = tensorLocations(checkpointBytes);
  const shared = new Map<string, ExternalLocation>();
  for (const t of graph.model.graph.initializers) {
    const at = locations.get(t.name);
    if (!at || t.dtype !== 'float32' || at.length !== t.data.byteLength) continue;
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const stored = checkpointBytes.subarray(at.offset, at.offset + at.length);
    if (!bytes.every((b, i) => b === stored[i])) continue;
    shared.set(t.name, { location: FILES.checkpoint, ...at });
  }
  return shared;
}

export async function exportModel(opts: ExportOptions): Promise<Manifest> {
  const spec = typeof opts.spec === 'string' ? builtinSpec(opts.spec) : opts.spec;
  const optimizerName = opts.checkpoint?.optimizer?.config.name ?? opts.optimizer ?? 'adam';
  const optimizer = opts.checkpoint?.optimizer?.config ?? DEFAULT_OPTIMIZER[optimizerName];
  const checkpoint: Checkpoint = opts.checkpoint ?? { ...freshCheckpoint(spec, opts.seed ?? 0), optimizer: emptyOptimizerState(spec, optimizer) };
  const training = opts.training ?? true;
  const dir = opts.outDir;

  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    name: opts.name ?? spec.name,
    spec,
    labels: spec.heads.classification.labels,
    input: inputInfo(spec),
    boxEncoding: BOX_ENCODING,
    opset: DEFAULT_OPSET,
    optimizer: optimizer.name,
    graphs: {},
    files: {},
    metrics: opts.metrics ?? {},
    lineage: opts.lineage ?? {},
    versions: { trident: TRIDENT_VERSION, onnxruntime: ORT_VERSION },
    createdAt: new Date().toISOString(),
  };

  const checkpointBytes = encodeCheckpoint(checkpoint);
  await writeFileAtomic(path.join(dir, FILES.checkpoint), checkpointBytes);
  recordBytes(manifest, FILES.checkpoint, checkpointBytes);
  const writeGraph = async (key: string, file: string, g: BuiltGraph, encodeOpts: EncodeOptions = {}) => {
    const bytes = encodeModel(g.model, encodeOpts);
    await writeFileAtomic(path.join(dir, file), bytes);
    manifest.graphs[key] = encodeOpts.external?.size ? { ...graphInfo(file, g), weights: FILES.checkpoint } : graphInfo(file, g);
    recordBytes(manifest, file, bytes);
  };
  const infer = buildInferGraph(spec, checkpoint.params, checkpoint.buffers);
  await writeGraph('infer', FILES.infer, infer, { external: sharedWeights(infer, checkpointBytes) });
  if (training) {
    await writeGraph('train_step', FILES.trainStep, buildTrainStepGraph(spec, { optimizer, weighting: opts.weighting, tasks: opts.tasks }));
    await writeGraph('eval', FILES.eval, buildEvalGraph(spec));
  }
  // The manifest goes last: a folder whose manifest exists is complete.
  await writeManifest(dir, manifest);
  return manifest;
}
