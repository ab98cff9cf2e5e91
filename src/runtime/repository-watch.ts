/**
 * For read-only replicas on a shared model repository: polls each model's version folders and
 * serving pointer, and reloads a model when either changes (another process promoted, rolled back
 * or added a version). Unchanged versions are kept by the registry's reload.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { SERVING_FILE } from '../artifacts/repository';
import type { ModelRegistry } from './model-registry';

export class RepositoryWatcher {
  private readonly seen = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;

  constructor(
    private readonly registry: ModelRegistry,
    private readonly intervalMs: number,
    private readonly log: (message: string) => void,
  ) {}

  /** Records what is on disk now (the registry has just loaded it), then polls. */
  async start(): Promise<void> {
    for (const [name, versions] of await this.registry.scan()) this.seen.set(name, await this.fingerprint(name, versions));
    this.timer = setInterval(() => void (this.polling ??= this.poll().finally(() => (this.polling = undefined))), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
  }

  private async poll(): Promise<void> {
    for (const [name, versions] of await this.registry.scan()) {
      const fingerprint = await this.fingerprint(name, versions);
      if (this.seen.get(name) === fingerprint) continue;
      this.seen.set(name, fingerprint);
      try {
        await this.registry.load(name);
        this.log(`model ${name} changed on disk; reloaded`);
      } catch (e) {
        this.log(`model ${name} changed on disk, and reloading it failed: ${(e as Error).message}`);
      }
    }
  }

  private async fingerprint(name: string, versions: number[]): Promise<string> {
    const pointer = await fs.readFile(path.join(this.registry.root, name, SERVING_FILE), 'utf8').catch(() => '');
    return `${versions.join(',')}|${pointer}`;
  }
}
