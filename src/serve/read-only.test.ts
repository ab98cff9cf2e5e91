/** Two servers on one repository: one writer holds the lock; read-only replicas follow its promotions. */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { moveServingPointer } from '../artifacts/repository';
import { RepositoryLockedError } from '../artifacts/repository-lock';
import { finetuneConfig } from '../finetune/config';
import { makeRepository, writeVersion } from '../runtime/testing/repository';
import { serveConfig, type ServeConfig } from './config';
import { startServer, type RunningServer } from './server';

const silent = pino({ level: 'silent' });
const running: RunningServer[] = [];
afterAll(async () => {
  for (const server of running) await server.drain(1000);
});

function config(root: string, overrides: Partial<ServeConfig> = {}): ServeConfig {
  return serveConfig({ models: root, host: '127.0.0.1', httpPort: 0, grpcPort: undefined, threads: 1, drainTimeoutMs: 1000, ...overrides });
}

const writer = (root: string) => config(root, { finetune: finetuneConfig({ apiKeys: ['k'], reference: false, nice: 0 }) });

async function versionsServed(server: RunningServer): Promise<string[]> {
  const response = await fetch(`http://127.0.0.1:${server.httpPort}/v2/models/tiny`);
  return ((await response.json()) as { versions: string[] }).versions;
}

describe('a shared model repository', () => {
  it('refuses a second writer before its recovery touches the first one\'s jobs', async () => {
    const root = await makeRepository([{ name: 'tiny', versions: [1] }]);
    running.push(await startServer(writer(root), silent));
    // A job of the first server, mid-flight: the second server's recovery would remove its staging folder.
    const staging = path.join(root, 'tiny', '.staging-live-job');
    await fs.mkdir(staging);
    const second = startServer(writer(root), silent);
    await expect(second).rejects.toBeInstanceOf(RepositoryLockedError);
    await expect(fs.access(staging)).resolves.toBeUndefined();
  });

  it('lets read-only replicas start beside the writer and follow new versions and the serving pointer', async () => {
    const root = await makeRepository([{ name: 'tiny', versions: [1] }]);
    running.push(await startServer(writer(root), silent));
    const replica = await startServer(config(root, { readOnly: true, watchIntervalMs: 50 }), silent);
    running.push(replica);
    expect(await versionsServed(replica)).toEqual(['1']);
    const fineTune = await fetch(`http://127.0.0.1:${replica.httpPort}/v2/models/tiny/finetune`, { method: 'POST' });
    expect(fineTune.status).toBe(404);

    await writeVersion(root, 'tiny', 2);
    await moveServingPointer(path.join(root, 'tiny'), 2, { reason: 'promoted' });
    await waitFor(async () => (await versionsServed(replica)).join() === '1,2');
    const latest = await fetch(`http://127.0.0.1:${replica.httpPort}/v2/models/tiny/versions/2/ready`);
    expect(latest.status).toBe(200);

    await moveServingPointer(path.join(root, 'tiny'), 1, { reason: 'rollback' });
    await waitFor(async () => replica.service.registry.resolve('tiny').version === 1);
  });
});

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error('timed out waiting for the replica to follow the repository');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
