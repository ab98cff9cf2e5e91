/**
 * The model repository: `ROOT/NAME/VERSION/` folders, loaded and unloaded at run time.
 * A (re)load prepares every version fully before swapping the whole set in at once; versions it
 * replaces are released only after their in-flight requests finish.
 */
import { TridentError } from '../base/errors';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { KeyedLock } from './keyed-lock';
import { ModelVersion, type ExecutionOptions } from './model-version';
import { servingOrder } from '../artifacts/repository';
import { quote } from '../base/quote';

export type VersionPolicy = 'all' | 'latest';

export interface RegistryOptions extends ExecutionOptions {
  root: string;
  /** Which versions on disk a load serves: all of them, or only the highest. */
  versionPolicy: VersionPolicy;
}

export type ModelState = 'READY' | 'LOADING' | 'UNAVAILABLE';

export interface IndexEntry {
  name: string;
  version: string;
  state: ModelState;
  reason: string;
}

/** A version held for the duration of one request. */
export interface Lease {
  model: ModelVersion;
  release: () => void;
}

interface Loaded {
  versions: Map<number, ModelVersion>;
  /** Hash of each version's manifest.json, to keep unchanged versions across reloads. */
  manifestHashes: Map<number, string>;
  latest: ModelVersion;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const VERSION_PATTERN = /^[1-9][0-9]{0,9}$/;

export function checkModelName(name: string): string {
  if (!NAME_PATTERN.test(name) || name.includes('..')) {
    throw new TridentError('invalid_argument', `invalid model name ${quote(name)}: use letters, digits, "_", "-" and "."`);
  }
  return name;
}

export function parseVersion(version: string): number {
  if (!VERSION_PATTERN.test(version)) {
    throw new TridentError('invalid_argument', `invalid model version ${quote(version)}: versions are positive integers`);
  }
  return Number(version);
}

export class ModelRegistry {
  private readonly loaded = new Map<string, Loaded>();
  private readonly loading = new Set<string>();
  private readonly failures = new Map<string, string>();
  private readonly locks = new KeyedLock();
  private readonly retiring = new Set<Promise<void>>();

  constructor(private readonly opts: RegistryOptions) {}

  get root(): string {
    return this.opts.root;
  }

  /** Names of the models currently served. */
  get names(): string[] {
    return [...this.loaded.keys()].sort();
  }

  has(name: string): boolean {
    return this.loaded.has(name);
  }

  /** True while no load is in progress. */
  get settled(): boolean {
    return this.loading.size === 0;
  }

  /** Model folders on disk with their numeric version folders, ascending. */
  async scan(): Promise<Map<string, number[]>> {
    const found = new Map<string, number[]>();
    let entries: string[];
    try {
      entries = await fs.readdir(this.opts.root);
    } catch {
      return found;
    }
    for (const name of entries.sort()) {
      if (!NAME_PATTERN.test(name)) continue;
      const versions = await this.versionsOnDisk(name);
      if (versions.length > 0) found.set(name, versions);
    }
    return found;
  }

  async loadAll(): Promise<void> {
    const onDisk = await this.scan();
    for (const name of onDisk.keys()) await this.load(name);
  }

  /** Loads or reloads a model: every version the policy selects is loaded and warmed, then swapped in together. */
  async load(name: string): Promise<void> {
    checkModelName(name);
    return this.locks.run(name, async () => {
      this.loading.add(name);
      try {
        await this.replace(name);
        this.failures.delete(name);
      } catch (e) {
        const reason = (e as Error).message;
        this.failures.set(name, reason);
        throw e instanceof TridentError ? e : new TridentError('invalid_argument', `failed to load model "${name}": ${reason}`);
      } finally {
        this.loading.delete(name);
      }
    });
  }

  /** Stops serving a model; its versions are released once their in-flight requests finish. */
  async unload(name: string): Promise<void> {
    checkModelName(name);
    return this.locks.run(name, async () => {
      const current = this.loaded.get(name);
      if (!current) throw new TridentError('not_found', `model "${name}" is not loaded`);
      this.loaded.delete(name);
      this.failures.delete(name);
      for (const v of current.versions.values()) this.retireInBackground(v);
    });
  }

  /** Takes a lease on a version (the latest when `version` is omitted). */
  acquire(name: string, version?: number): Lease {
    const model = this.resolve(name, version);
    return { model, release: model.acquire() };
  }

  /** The served version without taking a lease (for metadata). */
  resolve(name: string, version?: number): ModelVersion {
    const current = this.loaded.get(name);
    if (!current) {
      const served = this.names;
      const hint = served.length > 0 ? `; served models: ${served.join(', ')}` : '; no models are loaded';
      const state = this.loading.has(name) ? ' (it is still loading)' : '';
      throw new TridentError(this.loading.has(name) ? 'unavailable' : 'not_found', `unknown model ${quote(name)}${state}${hint}`);
    }
    if (version === undefined) return current.latest;
    const found = current.versions.get(version);
    if (!found) {
      throw new TridentError('not_found', `model "${name}" has no version ${version} loaded; loaded versions: ${[...current.versions.keys()].join(', ')}`);
    }
    return found;
  }

  versions(name: string): ModelVersion[] {
    const current = this.loaded.get(name);
    return current ? [...current.versions.values()] : [];
  }

  isReady(name: string, version?: number): boolean {
    try {
      return !this.resolve(name, version).retired;
    } catch {
      return false;
    }
  }

  /** Every model on disk or loaded, one entry per version (Triton's repository index). */
  async index(): Promise<IndexEntry[]> {
    const onDisk = await this.scan();
    const names = new Set([...onDisk.keys(), ...this.loaded.keys()]);
    const entries: IndexEntry[] = [];
    for (const name of [...names].sort()) {
      const served = this.loaded.get(name)?.versions;
      const versions = new Set([...(onDisk.get(name) ?? []), ...(served?.keys() ?? [])]);
      for (const v of [...versions].sort((a, b) => a - b)) {
        let state: ModelState = 'UNAVAILABLE';
        let reason = '';
        if (served?.has(v)) state = 'READY';
        else if (this.loading.has(name)) state = 'LOADING';
        else reason = this.failures.get(name) ?? (served ? 'not selected by the version policy' : 'unloaded');
        entries.push({ name, version: String(v), state, reason });
      }
    }
    return entries;
  }

  /** Unloads everything and waits until every version is released. */
  async close(): Promise<void> {
    for (const name of [...this.loaded.keys()]) await this.unload(name).catch(() => {});
    await Promise.all([...this.retiring]);
  }

  private async versionsOnDisk(name: string): Promise<number[]> {
    let entries: string[];
    try {
      entries = await fs.readdir(path.join(this.opts.root, name));
    } catch {
      return [];
    }
    return entries.filter((v) => VERSION_PATTERN.test(v)).map(Number).sort((a, b) => a - b);
  }

  private async replace(name: string): Promise<void> {
    // Ordered so that the version the serving pointer names as latest comes last.
    const onDisk = await servingOrder(path.join(this.opts.root, name), await this.versionsOnDisk(name));
    if (onDisk.length === 0) {
      throw new TridentError('not_found', `no model "${name}" in the repository ${this.opts.root} (expected ${name}/<version>/manifest.json)`);
    }
    const wanted = this.opts.versionPolicy === 'latest' ? onDisk.slice(-1) : onDisk;
    const current = this.loaded.get(name);
    const versions = new Map<number, ModelVersion>();
    const hashes = new Map<number, string>();
    const fresh: ModelVersion[] = [];
    try {
      for (const v of wanted) {
        const dir = path.join(this.opts.root, name, String(v));
        const hash = await manifestHash(dir);
        const kept = current?.versions.get(v);
        if (kept && current?.manifestHashes.get(v) === hash) {
          versions.set(v, kept);
        } else {
          const loaded = await ModelVersion.load(name, v, dir, this.opts);
          fresh.push(loaded);
          versions.set(v, loaded);
        }
        hashes.set(v, hash);
      }
    } catch (e) {
      for (const v of fresh) this.retireInBackground(v);
      throw e;
    }
    this.loaded.set(name, { versions, manifestHashes: hashes, latest: versions.get(wanted[wanted.length - 1])! });
    for (const [v, old] of current?.versions ?? []) {
      if (versions.get(v) !== old) this.retireInBackground(old);
    }
    this.opts.log?.(`model ${name}: serving version(s) ${wanted.join(', ')}${fresh.length ? ` (loaded ${fresh.map((m) => m.version).join(', ')})` : ''}`);
  }

  private retireInBackground(version: ModelVersion): void {
    const done = version
      .retire()
      .then(() => this.opts.log?.(`model ${version.name} version ${version.version} released`))
      .catch((e) => this.opts.log?.(`releasing ${version.name} version ${version.version} failed: ${(e as Error).message}`))
      .finally(() => this.retiring.delete(done));
    this.retiring.add(done);
  }
}

async function manifestHash(dir: string): Promise<string> {
  try {
    return createHash('sha256').update(await fs.readFile(path.join(dir, 'manifest.json'))).digest('hex');
  } catch {
    throw new TridentError('invalid_argument', `${dir}: manifest.json is missing; not a Trident model folder`);
  }
}
