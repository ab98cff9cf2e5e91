import path from 'node:path';
import { rmSync } from 'node:fs';
import { BufferPool } from './buffer-pool';
import { concatBatch, zeros } from './tensor';
import { makeRepository } from './testing/repository';
import { WorkerPool } from './worker-pool';

describe('BufferPool', () => {
  it('hands back a kept buffer of the asked length, keeps a bounded number per length, and skips detached ones', () => {
    const pool = new BufferPool(2);
    const a = new ArrayBuffer(16);
    pool.give(a);
    expect(pool.take(32)).not.toBe(a);
    expect(pool.take(16)).toBe(a);
    expect(pool.take(16)).not.toBe(a);

    const kept = [new ArrayBuffer(8), new ArrayBuffer(8), new ArrayBuffer(8)];
    kept.forEach((b) => pool.give(b));
    expect([pool.take(8), pool.take(8), pool.take(8)]).toEqual([kept[1], kept[0], expect.any(ArrayBuffer)]);
    expect(pool.take(8)).not.toBe(kept[2]);

    const detached = new ArrayBuffer(8);
    structuredClone(detached, { transfer: [detached] });
    pool.give(detached);
    expect(pool.take(0)).not.toBe(detached);
  });

  it('a batch buffer goes to the worker and comes back after the run, ready for the next batch', async () => {
    const root = await makeRepository([{ name: 'tiny', versions: [1] }]);
    const workers = await WorkerPool.create({ model: path.join(root, 'tiny', '1', 'infer.onnx'), size: 1, device: 'cpu', threads: 1 });
    try {
      const buffers = new BufferPool();
      const batch = concatBatch([zeros('float32', [1, 3, 16, 16]), zeros('float32', [2, 3, 16, 16])], (bytes) => buffers.take(bytes));
      const sent = batch.data.buffer as ArrayBuffer;
      const returned = new Promise<ArrayBuffer[]>((resolve) => void workers.run({ image: batch }, resolve));
      expect(sent.byteLength).toBe(0); // transferred
      const [back] = await returned;
      expect(back.byteLength).toBe(3 * 3 * 16 * 16 * 4);
      buffers.give(back);
      expect(concatBatch([zeros('float32', [3, 3, 16, 16])], (bytes) => buffers.take(bytes)).data.buffer).toBe(back);
    } finally {
      await workers.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});
