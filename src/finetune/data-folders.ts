/** Data a job names instead of uploading: only inside the folders the server's configuration allows. */
import { TridentError } from '../base/errors';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ANNOTATIONS_FILE } from '../data/annotations';

function within(root: string, target: string): boolean {
  const relative = path.relative(root, target);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * The annotation file a reference names: a folder (holding annotations.jsonl) or a .jsonl file,
 * absolute or relative to an allowed folder. Links are resolved before the containment check.
 */
export async function resolveDataReference(reference: string, allowed: readonly string[]): Promise<string> {
  if (allowed.length === 0) throw new TridentError('permission_denied', 'this server allows no data folders; upload the data instead');
  if (reference.trim() === '' || reference.includes('\0')) throw new TridentError('invalid_argument', 'the data reference is empty');
  const roots = await Promise.all(allowed.map((root) => fs.realpath(root).catch(() => path.resolve(root))));
  const forbidden = () => new TridentError('permission_denied', `data reference "${reference}" is not inside a data folder this server allows`);
  // Refused before touching the disk, so that the answer says nothing about paths outside.
  const named = [...roots, ...allowed.map((root) => path.resolve(root))];
  const candidates = path.isAbsolute(reference) ? [path.resolve(reference)] : roots.map((root) => path.join(root, reference));
  if (!candidates.some((candidate) => named.some((root) => within(root, candidate)))) throw forbidden();
  let outside = false;
  for (const candidate of candidates) {
    let real: string;
    try {
      real = await fs.realpath(candidate);
    } catch {
      continue;
    }
    if (!roots.some((root) => within(root, real))) {
      outside = true;
      continue;
    }
    const stat = await fs.stat(real);
    if (stat.isDirectory()) return path.join(real, ANNOTATIONS_FILE);
    if (stat.isFile() && real.endsWith('.jsonl')) return real;
    throw new TridentError('invalid_argument', `data reference "${reference}" is neither a folder nor a .jsonl file`);
  }
  if (outside) throw forbidden();
  throw new TridentError('not_found', `data reference "${reference}" does not exist in the allowed data folders`);
}
