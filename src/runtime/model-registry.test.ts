import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ModelRegistry, type RegistryOptions } from './model-registry';
import { Predictor } from './predictor';
import { makeRepository, writeVersion } from './testing/repository';

const execution: Omit<RegistryOptions, 'root'> = {
  device: 'cpu',
  instances: 1,
  threads: 1,
  maxBatch: 8,
  maxQueueDelayMs: 0,
  maxQueueSize: 64,
  versionPolicy: 'all',
};

function image(fill: number): Float32Array {
  return new Float32Array(3 * 16 * 16).fill(fill);
}

describe('ModelRegistry', () => {
  let root: string;
  let registry: ModelRegistry;
  const batches: number[] = [];

  beforeAll(async () => {
    root = await makeRepository([
      { name: 'tiny', versions: [1, 2] },
      { name: 'other', versions: [3] },
    ]);
    registry = new ModelRegistry({ ...execution, root, observe: () => ({ batch: (n) => batches.push(n) }) });
    await registry.loadAll();
  });

  afterAll(() => registry.close());

  it('serves every model and version, the latest by default', async () => {
    expect(registry.names).toEqual(['other', 'tiny']);
    expect(registry.resolve('tiny').version).toBe(2);
    expect(registry.resolve('tiny', 1).version).toBe(1);
    expect(() => registry.resolve('tiny', 7)).toThrow(/no version 7 loaded; loaded versions: 1, 2/);
    expect(() => registry.resolve('nope')).toThrow(expect.objectContaining({ code: 'not_found' }));
    expect(await registry.index()).toEqual([
      { name: 'other', version: '3', state: 'READY', reason: '' },
      { name: 'tiny', version: '1', state: 'READY', reason: '' },
      { name: 'tiny', version: '2', state: 'READY', reason: '' },
    ]);
  });

  it('batches concurrent requests in a worker and gives each caller its own rows', async () => {
    const lease = registry.acquire('tiny');
    try {
      const predictor = new Predictor(lease.model);
      const fills = [0, 0.5, -0.5, 1, -1, 0.25, 2, -2];
      batches.length = 0;
      const together = await predictor.predict(fills.map(image), { topK: 3, objectThreshold: 0.5 });
      const alone = await Promise.all(fills.map(async (f) => (await predictor.predict([image(f)], { topK: 3, objectThreshold: 0.5 }))[0]));
      expect(Math.max(...batches)).toBeGreaterThan(1);
      together.forEach((p, i) => {
        expect(p.class.label).toBe(alone[i].class.label);
        expect(p.class.score).toBeCloseTo(alone[i].class.score, 5);
        expect(p.box.x1).toBeCloseTo(alone[i].box.x1, 5);
        expect(p.class.topK.map((t) => t.label).sort()).toEqual(['a', 'b', 'c']);
      });
      expect(new Set(together.map((p) => p.object.score.toFixed(6))).size).toBeGreaterThan(1);
    } finally {
      lease.release();
    }
  });

  it('swaps in a new version atomically and releases the old one after its in-flight work', async () => {
    await writeVersion(root, 'other', 3, 'tiny', 99);
    await writeVersion(root, 'other', 4);
    const old = registry.acquire('other');
    await registry.load('other');
    expect(registry.resolve('other').version).toBe(4);
    expect(registry.resolve('other', 3)).not.toBe(old.model);
    expect(old.model.version).toBe(3);
    const stillWorks = await new Predictor(old.model).predict([image(0)], { topK: 1, objectThreshold: 0.5 });
    expect(stillWorks).toHaveLength(1);
    old.release();
    expect(() => old.model.acquire()).toThrow(/being unloaded/);
  });

  it('keeps serving the previous version when a reload fails verification', async () => {
    const dir = await writeVersion(root, 'other', 5);
    await fs.appendFile(path.join(dir, 'infer.onnx'), 'tampered');
    await expect(registry.load('other')).rejects.toThrow(/checksum mismatch/);
    expect(registry.resolve('other').version).toBe(4);
    const index = await registry.index();
    expect(index.find((e) => e.name === 'other' && e.version === '5')).toMatchObject({ state: 'UNAVAILABLE', reason: expect.stringMatching(/checksum/) });
  });

  it('unloads and reloads at run time, and refuses unsafe names', async () => {
    await registry.unload('tiny');
    expect(registry.isReady('tiny')).toBe(false);
    await expect(registry.unload('tiny')).rejects.toThrow(/not loaded/);
    await registry.load('tiny');
    expect(registry.isReady('tiny', 2)).toBe(true);
    await expect(registry.load('../etc')).rejects.toMatchObject({ code: 'invalid_argument' });
    await expect(registry.load('missing')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('fails clearly when CUDA is demanded where its execution provider is missing', async () => {
    const cuda = new ModelRegistry({ ...execution, root, device: 'cuda' });
    const available = await cuda.load('tiny').then(
      () => true,
      (e: Error) => {
        expect(e.message).toMatch(/CUDA execution provider is not available/);
        return false;
      },
    );
    if (available) expect(cuda.resolve('tiny').provider).toBe('cuda');
    await cuda.close();
  });
});
