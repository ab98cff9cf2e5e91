/** manifest.json: what a model folder holds and how to call its graphs, with checksums verified on load. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { sha256, writeFileAtomic } from './files';
import { ManifestSchema, type Manifest } from './manifest-schema';

export { BOX_ENCODING, inputInfo, MANIFEST_FORMAT, ManifestSchema, type GraphInfo, type Manifest, type TensorInfo } from './manifest-schema';

export async function writeManifest(dir: string, manifest: Manifest): Promise<void> {
  await writeFileAtomic(path.join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
}

/** Records size and checksum of `file` in the manifest, from `bytes`, the contents it was written with. */
export function recordBytes(manifest: Pick<Manifest, 'files'>, file: string, bytes: Uint8Array): void {
  manifest.files[file] = { sha256: sha256(bytes), bytes: bytes.length };
}

/** Records size and checksum of `file` (relative to `dir`) in the manifest, reading it back. */
export async function recordFile(dir: string, manifest: Pick<Manifest, 'files'>, file: string): Promise<void> {
  recordBytes(manifest, file, await fs.readFile(path.join(dir, file)));
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
