/** Test helper: a model repository of freshly exported models in a temporary folder. */
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { exportModel } from '../../artifacts/export';

export interface RepositoryModel {
  name: string;
  spec?: string;
  versions: number[];
}

export async function writeVersion(root: string, name: string, version: number, spec = 'tiny', seed = version): Promise<string> {
  const dir = path.join(root, name, String(version));
  await fs.mkdir(dir, { recursive: true });
  await exportModel({ spec, outDir: dir, training: false, seed, name });
  return dir;
}

export async function makeRepository(models: RepositoryModel[] = [{ name: 'tiny', versions: [1] }]): Promise<string> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'trident-models-'));
  for (const m of models) for (const v of m.versions) await writeVersion(root, m.name, v, m.spec);
  return root;
}
