/**
 * One writer per model repository, across processes: a lock file `ROOT/.trident.lock` naming the
 * process that holds it. A lock whose process is gone (same host, pid no longer alive) is stale and
 * taken over; a lock held from another host cannot be checked and is never taken over.
 */
import { TridentError } from '../base/errors';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

export const LOCK_FILE = '.trident.lock';

const OwnerSchema = z.object({ pid: z.number().int(), host: z.string(), since: z.string(), token: z.string(), command: z.string().optional() });

export type LockOwner = z.infer<typeof OwnerSchema>;

export class RepositoryLockedError extends TridentError {
  constructor(
    readonly root: string,
    readonly owner: LockOwner | undefined,
  ) {
    const file = path.join(root, LOCK_FILE);
    const who = owner ? `process ${owner.pid} on host ${owner.host} (since ${owner.since})` : `another process (${file} could not be read)`;
    super(
      'conflict',
      `the model repository ${root} is in use by ${who}, which may write to it (fine-tuning, promotions, recovery). ` +
        `Run further servers on it with --read-only; if that process is gone, delete ${file}.`,
    );
  }
}

export interface RepositoryLock {
  readonly file: string;
  readonly owner: LockOwner;
  /** Removes the lock file if this process still holds it. */
  release(): Promise<void>;
}

/** Takes the repository's lock or throws RepositoryLockedError naming its holder. */
export async function lockRepository(root: string): Promise<RepositoryLock> {
  await fs.mkdir(root, { recursive: true });
  const file = path.join(root, LOCK_FILE);
  const owner: LockOwner = { pid: process.pid, host: os.hostname(), since: new Date().toISOString(), token: randomBytes(8).toString('hex'), command: process.argv.slice(1).join(' ').slice(0, 200) };
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await create(file, owner)) return { file, owner, release: () => release(file, owner) };
    const holder = await readOwner(file);
    if (holder === 'missing') continue;
    if (holder === undefined || holder.host !== owner.host || isAlive(holder.pid)) throw new RepositoryLockedError(root, holder);
    // Stale: its process is gone. Move it aside first, so that two processes taking over at once cannot both remove a fresh lock.
    const aside = `${file}.stale-${owner.token}`;
    await fs.rename(file, aside).catch(() => {});
    await fs.rm(aside, { force: true });
  }
  throw new RepositoryLockedError(root, await readOwner(file).then((h) => (h === 'missing' ? undefined : h)));
}

async function create(file: string, owner: LockOwner): Promise<boolean> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    await handle.writeFile(JSON.stringify(owner) + '\n');
    await handle.sync();
  } finally {
    await handle.close();
  }
  return true;
}

/** The lock's owner; 'missing' when there is no lock file; undefined when it does not parse (a lock being written, or damaged). */
async function readOwner(file: string): Promise<LockOwner | 'missing' | undefined> {
  let raw: string;
  try {
    raw = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw e;
  }
  try {
    const parsed = OwnerSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function release(file: string, owner: LockOwner): Promise<void> {
  const holder = await readOwner(file);
  if (holder !== 'missing' && holder?.token === owner.token) await fs.rm(file, { force: true });
}
