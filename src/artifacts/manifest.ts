/** manifest.json: what a model folder holds and how to call its graphs, with checksums verified on load. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ModelSpecSchema, type ModelSpec } from '../model/spec';
import { sha256, writeFileAtomic } from './files';

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

export const BOX_ENCODING =
  'sigmoid(head) = [cx, cy, w, h] in 0..1; box = [cx - w/2, cy - h/2, cx + w/2, cy + h/2] normalised to the model input';

export function inputInfo(spec: ModelSpec): Manifest['input'] {
  const { channels, height, width, mean, std } = spec.input;
  return { name: 'image', channels, height, width, mean, std, layout: 'NCHW', resize: 'stretch' };
}

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  await writeFileAtomic(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}

/** Records size and checksum of `file` (relative to `dir`) in the manifest. */
export async function recordFile(dir: string, manifest: Pick<Manifest, 'files'>, file: string): Promise<void> {
  const bytes = await fs.readFile(path.join(dir, file));
  manifest.files[file] = { sha256: sha256(bytes), bytes: bytes.length };
}

/** Reads and validates manifest.json; with `verify`, checks every listed file's size and checksum. */
export async function readManifest(dir: string, opts: { verify?: boolean } = {}): Promise<Manifest> {
  const file = path.join(dir, 'manifest.json');
  let raw: string;
  try {
    raw = await fs.readFile(file, 'utf8');
  } catch {
    throw new Error(`${file}: missing; not a Trident model folder`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`${file}: invalid manifest: ${details}`);
  }
  if (opts.verify) {
    for (const [name, expected] of Object.entries(parsed.data.files)) {
      const target = path.join(dir, name);
      let bytes: Buffer;
      try {
        bytes = await fs.readFile(target);
      } catch {
        throw new Error(`${target}: listed in the manifest but missing`);
      }
      if (bytes.length !== expected.bytes || sha256(bytes) !== expected.sha256) {
        throw new Error(`${target}: checksum mismatch with manifest.json (file corrupt or replaced)`);
      }
    }
  }
  return parsed.data;
}
