/**
 * Layout of the model repository: `ROOT/NAME/VERSION/` folders (positive integers), hidden
 * staging folders `ROOT/NAME/.staging-ID/` that become versions by one atomic rename, and the
 * serving pointer `ROOT/NAME/serving.json` saying which version is "latest".
 *
 * Without a pointer the highest version is latest. A pointer naming a version that is not on
 * disk falls back to the newest history entry that is, then to the highest version.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from './files';

export const SERVING_FILE = 'serving.json';
export const STAGING_PREFIX = '.staging-';
const VERSION_PATTERN = /^[1-9][0-9]{0,9}$/;
const HISTORY_LIMIT = 100;

const PointerEntrySchema = z.object({
  version: z.number().int().positive(),
  at: z.string(),
  /** pinned: recorded before a new version appeared; repaired: set by recovery. */
  reason: z.enum(['pinned', 'promoted', 'rollback', 'repaired']),
  jobId: z.string().optional(),
});

const ServingPointerSchema = z.object({
  latest: z.number().int().positive(),
  history: z.array(PointerEntrySchema).default([]),
});

export type PointerEntry = z.infer<typeof PointerEntrySchema>;
export type ServingPointer = z.infer<typeof ServingPointerSchema>;

export function isVersionName(name: string): boolean {
  return VERSION_PATTERN.test(name);
}

/** Numeric version folders of a model folder, ascending; dot-prefixed and non-numeric entries are ignored. */
export async function listVersions(modelDir: string): Promise<number[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fs.readdir(modelDir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries
    .filter((e) => e.isDirectory() && isVersionName(e.name))
    .map((e) => Number(e.name))
    .sort((a, b) => a - b);
}

/** One more than the highest version on disk or ever named by the pointer, so numbers are never reused. */
export async function nextVersion(modelDir: string): Promise<number> {
  const onDisk = await listVersions(modelDir);
  const pointer = await readServingPointer(modelDir);
  const named = pointer ? [pointer.latest, ...pointer.history.map((h) => h.version)] : [];
  return Math.max(0, ...onDisk, ...named) + 1;
}

/** The pointer, or undefined when there is none; a pointer that does not parse is an error, never a silent fallback. */
export async function readServingPointer(modelDir: string): Promise<ServingPointer | undefined> {
  const file = path.join(modelDir, SERVING_FILE);
  let raw: string;
  try {
    raw = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const parsed = ServingPointerSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${file}: invalid serving pointer: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export async function writeServingPointer(modelDir: string, pointer: ServingPointer): Promise<void> {
  const trimmed: ServingPointer = { latest: pointer.latest, history: pointer.history.slice(-HISTORY_LIMIT) };
  await writeFileAtomic(path.join(modelDir, SERVING_FILE), JSON.stringify(trimmed, null, 2) + '\n');
  await fsyncDir(modelDir);
}

/** Points "latest" at `version` and appends the move to the history. */
export async function moveServingPointer(modelDir: string, version: number, entry: Omit<PointerEntry, 'version' | 'at'>): Promise<ServingPointer> {
  const previous = await readServingPointer(modelDir);
  const pointer: ServingPointer = {
    latest: version,
    history: [...(previous?.history ?? []), { version, at: new Date().toISOString(), ...entry }],
  };
  await writeServingPointer(modelDir, pointer);
  return pointer;
}

/** The version the pointer names if it is among `available`, else the newest history entry that is, else the highest. */
export function resolveLatest(pointer: ServingPointer | undefined, available: readonly number[]): number | undefined {
  if (available.length === 0) return undefined;
  if (!pointer) return Math.max(...available);
  if (available.includes(pointer.latest)) return pointer.latest;
  for (let i = pointer.history.length - 1; i >= 0; i--) {
    if (available.includes(pointer.history[i].version)) return pointer.history[i].version;
  }
  return Math.max(...available);
}

/** The version served as "latest" (undefined when the model has no versions). */
export async function servingVersion(modelDir: string, available?: readonly number[]): Promise<number | undefined> {
  return resolveLatest(await readServingPointer(modelDir), available ?? (await listVersions(modelDir)));
}

/**
 * `versions` (ascending) with the serving version moved to the end. For code that treats the last
 * version as latest (the registry), wrapping its version list in this makes it follow the pointer.
 */
export async function servingOrder(modelDir: string, versions: readonly number[]): Promise<number[]> {
  const latest = await servingVersion(modelDir, versions);
  if (latest === undefined) return [...versions];
  return [...versions.filter((v) => v !== latest), latest];
}

export function stagingDir(modelDir: string, id: string): string {
  return path.join(modelDir, `${STAGING_PREFIX}${id}`);
}

/** Removes `.staging-*` folders except those of `keep` (ids of jobs still running); returns the names removed. */
export async function removeStaleStaging(modelDir: string, keep: ReadonlySet<string> = new Set()): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fs.readdir(modelDir);
  } catch {
    return [];
  }
  const stale = entries.filter((e) => e.startsWith(STAGING_PREFIX) && !keep.has(e.slice(STAGING_PREFIX.length)));
  for (const name of stale) await fs.rm(path.join(modelDir, name), { recursive: true, force: true });
  return stale;
}

/** Leftovers of interrupted atomic writes (`*.tmp-PID-RANDOM`) in a folder. */
export async function removeTemporaryFiles(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await fs.readdir(dir);
  } catch {
    return [];
  }
  const stale = entries.filter((e) => /\.tmp-\d+-[0-9a-f]+$/.test(e));
  for (const name of stale) await fs.rm(path.join(dir, name), { force: true });
  return stale;
}

/** Makes renames and creations inside `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Renames a complete staging folder to `modelDir/VERSION`; the rename is the commit point of the
 * version. Fails with code EEXIST when that version already exists (rename would replace an empty folder).
 */
export async function commitStaging(staging: string, modelDir: string, version: number): Promise<string> {
  const target = path.join(modelDir, String(version));
  const taken = await fs.lstat(target).then(
    () => true,
    () => false,
  );
  if (taken) throw Object.assign(new Error(`${target} already exists`), { code: 'EEXIST' });
  await fs.rename(staging, target);
  await fsyncDir(modelDir);
  return target;
}
