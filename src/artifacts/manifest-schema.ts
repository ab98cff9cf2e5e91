/** What manifest.json holds, as a zod schema and types; pure (no Node API), so the web app shares it. */
import { z } from 'zod';
import { ModelSpecSchema, type ModelSpec } from '../model/spec';

export const MANIFEST_FORMAT = 'trident-model/1';

const TensorInfoSchema = z.object({
  name: z.string(),
  dtype: z.string(),
  shape: z.array(z.union([z.number(), z.string()])),
  /** What the tensor is for: image, class_probs, parameter, optimizer_state, loss, … */
  role: z.string(),
});

const GraphInfoSchema = z.object({
  file: z.string(),
  inputs: z.array(TensorInfoSchema),
  outputs: z.array(TensorInfoSchema),
  /** The folder's file that holds this graph's weights (ONNX external data), when they are not inside it. */
  weights: z.string().optional(),
});

export const ManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  name: z.string(),
  spec: ModelSpecSchema,
  labels: z.array(z.string()),
  input: z.object({
    name: z.string(),
    channels: z.number(),
    height: z.number(),
    width: z.number(),
    mean: z.array(z.number()),
    std: z.array(z.number()),
    layout: z.literal('NCHW'),
    resize: z.literal('stretch'),
  }),
  boxEncoding: z.string(),
  opset: z.number(),
  optimizer: z.string().optional(),
  graphs: z.record(z.string(), GraphInfoSchema),
  files: z.record(z.string(), z.object({ sha256: z.string(), bytes: z.number() })),
  metrics: z.record(z.string(), z.unknown()).default({}),
  lineage: z.record(z.string(), z.unknown()).default({}),
  versions: z.record(z.string(), z.string()),
  createdAt: z.string(),
});

export type TensorInfo = z.infer<typeof TensorInfoSchema>;
export type GraphInfo = z.infer<typeof GraphInfoSchema>;
export type Manifest = z.infer<typeof ManifestSchema>;

/** A manifest as the server hands it to clients (serve/model-files.ts): with the repository's model name and the version number. */
export interface ServedManifest extends Manifest {
  model: string;
  version: number;
}

export const BOX_ENCODING =
  'sigmoid(head) = [cx, cy, w, h] in 0..1; box = [cx - w/2, cy - h/2, cx + w/2, cy + h/2] normalised to the model input';

export function inputInfo(spec: ModelSpec): Manifest['input'] {
  const { channels, height, width, mean, std } = spec.input;
  return { name: 'image', channels, height, width, mean, std, layout: 'NCHW', resize: 'stretch' };
}
