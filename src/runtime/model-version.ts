/** One loaded version of a model: its manifest, its worker sessions, its batcher, and its in-flight count. */
import { TridentError } from '../base/errors';
import path from 'node:path';
import { readManifest, type Manifest } from '../artifacts/manifest';
import { DynamicBatcher, type BatchObserver, type SubmitOptions } from './batcher';
import { BufferPool } from './buffer-pool';
import type { Device, ProviderName } from './execution-providers';
import { concatBatch, isNumericDType, sliceBatch, zeros, type HostTensor, type NumericDType } from './tensor';
import { WorkerPool } from './worker-pool';
import type { HostFeeds } from './worker-protocol';

export interface ExecutionOptions {
  device: Device;
  /** Worker threads (sessions) per model version. */
  instances: number;
  /** Intra-op threads per session. */
  threads: number;
  /** Batches handed to one worker at a time: 2 lets it start the next without waiting for the main thread. */
  workerDepth?: number;
  maxBatch: number;
  maxQueueDelayMs: number;
  maxQueueSize: number;
  log?: (message: string) => void;
  observe?: (model: string, version: number) => BatchObserver;
}

/** A graph input or output; `-1` marks the variable batch dimension. */
export interface TensorSpec {
  name: string;
  dtype: NumericDType;
  shape: number[];
}

function tensorSpecs(manifest: Manifest, key: 'inputs' | 'outputs'): TensorSpec[] {
  const graph = manifest.graphs.infer;
  if (!graph) throw new Error(`manifest of ${manifest.name} has no "infer" graph`);
  return graph[key].map((t) => {
    if (!isNumericDType(t.dtype)) throw new Error(`${manifest.name}: tensor ${t.name} has unsupported dtype ${t.dtype}`);
    return { name: t.name, dtype: t.dtype, shape: t.shape.map((d) => (typeof d === 'number' ? d : -1)) };
  });
}

export class ModelVersion {
  private inflight = 0;
  private retiring: Promise<void> | undefined;
  private drained: (() => void) | undefined;

  private constructor(
    readonly name: string,
    readonly version: number,
    readonly dir: string,
    readonly manifest: Manifest,
    readonly inputs: TensorSpec[],
    readonly outputs: TensorSpec[],
    readonly maxBatch: number,
    private readonly pool: WorkerPool,
    private readonly batcher: DynamicBatcher<HostFeeds, HostFeeds>,
  ) {}

  /** Verifies the folder against its manifest, starts the sessions and warms each one up. */
  static async load(name: string, version: number, dir: string, opts: ExecutionOptions): Promise<ModelVersion> {
    const manifest = await readManifest(dir, { verify: true });
    const inputs = tensorSpecs(manifest, 'inputs');
    const outputs = tensorSpecs(manifest, 'outputs');
    const graphFile = path.join(dir, manifest.graphs.infer.file);
    const dynamicBatch = inputs.every((t) => t.shape[0] === -1);
    const maxBatch = dynamicBatch ? opts.maxBatch : 1;
    const pool = await WorkerPool.create({ model: graphFile, size: opts.instances, device: opts.device, threads: opts.threads, depth: opts.workerDepth, log: opts.log });
    try {
      const warmUp = (rows: number) => () => Object.fromEntries(inputs.map((t) => [t.name, zeros(t.dtype, t.shape.map((d) => (d === -1 ? rows : d)))]));
      await pool.runOnEach(warmUp(1));
      if (maxBatch > 1) await pool.runOnEach(warmUp(maxBatch));
    } catch (e) {
      await pool.close();
      throw new Error(`${name} version ${version}: warm-up failed: ${(e as Error).message}`);
    }
    const observer = opts.observe?.(name, version) ?? {};
    const buffers = new BufferPool();
    const batcher = new DynamicBatcher<HostFeeds, HostFeeds>(
      { maxBatch, maxQueueDelayMs: opts.maxQueueDelayMs, maxQueueSize: opts.maxQueueSize, concurrency: pool.capacity, eagerRuns: pool.size },
      (items) => runBatch(pool, buffers, items),
      (feeds) => batchSize(feeds),
      observer,
    );
    return new ModelVersion(name, version, dir, manifest, inputs, outputs, maxBatch, pool, batcher);
  }

  get provider(): ProviderName {
    return this.pool.provider;
  }

  get labels(): string[] {
    return this.manifest.labels;
  }

  get retired(): boolean {
    return this.retiring !== undefined;
  }

  /** Holds the version in place until the returned release is called (see `retire`). */
  acquire(): () => void {
    if (this.retiring) throw new TridentError('unavailable', `${this.name} version ${this.version} is being unloaded`);
    this.inflight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.inflight === 0) this.drained?.();
    };
  }

  /** Runs one request (whose tensors share a leading batch dimension) through the batcher. */
  infer(feeds: HostFeeds, opts: SubmitOptions = {}): Promise<HostFeeds> {
    return this.batcher.submit(feeds, opts);
  }

  /** Stops new work, waits for every acquired lease to be released, then ends the sessions. */
  retire(): Promise<void> {
    this.retiring ??= (async () => {
      if (this.inflight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.batcher.close();
      await this.pool.close();
    })();
    return this.retiring;
  }
}

function batchSize(feeds: HostFeeds): number {
  const first = Object.values(feeds)[0];
  return first ? first.dims[0] : 1;
}

async function runBatch(pool: WorkerPool, buffers: BufferPool, items: HostFeeds[]): Promise<HostFeeds[]> {
  const names = Object.keys(items[0]);
  const joined: HostFeeds = {};
  for (const name of names) joined[name] = concatBatch(items.map((feeds) => feeds[name]), (bytes) => buffers.take(bytes));
  const outputs = await pool.run(joined, (returned) => returned.forEach((b) => buffers.give(b)));
  const results: HostFeeds[] = [];
  let row = 0;
  for (const feeds of items) {
    const rows = batchSize(feeds);
    const own: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(outputs)) own[name] = sliceBatch(t, row, rows);
    results.push(own);
    row += rows;
  }
  return results;
}
