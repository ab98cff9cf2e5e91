import { spawnSync } from 'node:child_process';
import { mkdtempSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCK_FILE, lockRepository, RepositoryLockedError } from './repository-lock';

const root = () => mkdtempSync(path.join(os.tmpdir(), 'trident-lock-'));

/** A pid that no process has: one that just exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString());
}

async function writeLock(dir: string, owner: Record<string, unknown>): Promise<void> {
  await fs.writeFile(path.join(dir, LOCK_FILE), JSON.stringify({ since: '2026-01-01T00:00:00Z', token: 'other', ...owner }));
}

describe('repository lock', () => {
  it('refuses a second holder, naming the first and the way out', async () => {
    const dir = root();
    const lock = await lockRepository(dir);
    const second = lockRepository(dir);
    await expect(second).rejects.toBeInstanceOf(RepositoryLockedError);
    await expect(second).rejects.toThrow(new RegExp(`in use by process ${process.pid} on host ${os.hostname()}.*--read-only.*delete ${path.join(dir, LOCK_FILE)}`));
    await lock.release();
    const again = await lockRepository(dir);
    await again.release();
    await expect(fs.access(path.join(dir, LOCK_FILE))).rejects.toThrow();
  });

  it('takes over a lock whose process is gone on this host', async () => {
    const dir = root();
    await writeLock(dir, { pid: deadPid(), host: os.hostname() });
    const lock = await lockRepository(dir);
    expect(JSON.parse(await fs.readFile(path.join(dir, LOCK_FILE), 'utf8')).pid).toBe(process.pid);
    await lock.release();
  });

  it('never takes over a lock held from another host, nor one that does not parse', async () => {
    const dir = root();
    await writeLock(dir, { pid: 1, host: 'elsewhere.example' });
    await expect(lockRepository(dir)).rejects.toThrow(/process 1 on host elsewhere.example/);
    await fs.writeFile(path.join(dir, LOCK_FILE), '{"pid":');
    await expect(lockRepository(dir)).rejects.toThrow(/could not be read/);
  });

  it('releases only its own lock', async () => {
    const dir = root();
    const lock = await lockRepository(dir);
    await writeLock(dir, { pid: process.pid, host: os.hostname(), token: 'someone-else' });
    await lock.release();
    expect(JSON.parse(await fs.readFile(path.join(dir, LOCK_FILE), 'utf8')).token).toBe('someone-else');
  });
});
