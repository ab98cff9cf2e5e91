import { TridentError } from '../base/errors';
import { DynamicBatcher, type BatcherOptions } from './batcher';

const options: BatcherOptions = { maxBatch: 4, maxQueueDelayMs: 0, maxQueueSize: 8, concurrency: 1 };

/** A batcher over numbers whose runs wait for the test to release them. */
function harness(opts: Partial<BatcherOptions> = {}) {
  const batches: number[][] = [];
  const gates: (() => void)[] = [];
  const batcher = new DynamicBatcher<number, number>(
    { ...options, ...opts },
    async (items) => {
      batches.push(items);
      await new Promise<void>((resolve) => gates.push(resolve));
      return items.map((x) => x * 10);
    },
    () => 1,
  );
  const releaseAll = async () => {
    while (gates.length > 0 || batcher.queuedCount > 0) {
      gates.splice(0).forEach((g) => g());
      await new Promise((r) => setImmediate(r));
    }
  };
  return { batcher, batches, releaseAll };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('DynamicBatcher', () => {
  it('runs a lone request at once and merges requests that arrive while busy', async () => {
    const { batcher, batches, releaseAll } = harness();
    const first = batcher.submit(1);
    await tick();
    const rest = [2, 3, 4, 5, 6].map((x) => batcher.submit(x));
    await tick();
    expect(batches).toEqual([[1]]);
    await releaseAll();
    expect(await first).toBe(10);
    expect(await Promise.all(rest)).toEqual([20, 30, 40, 50, 60]);
    expect(batches).toEqual([[1], [2, 3, 4, 5], [6]]);
  });

  it('merges requests submitted in the same turn of the event loop', async () => {
    const { batcher, batches, releaseAll } = harness();
    const all = Promise.all([1, 2, 3].map((x) => batcher.submit(x)));
    await tick();
    await releaseAll();
    expect(await all).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it('hands a run beyond the eager ones over only once it is as full as the run ahead of it', async () => {
    const { batcher, batches, releaseAll } = harness({ concurrency: 2, eagerRuns: 1 });
    const first = [1, 2, 3, 4].map((x) => batcher.submit(x));
    await tick();
    const second = [5, 6].map((x) => batcher.submit(x));
    await tick();
    expect(batches).toEqual([[1, 2, 3, 4]]);
    second.push(...[7, 8].map((x) => batcher.submit(x)));
    await tick();
    const last = batcher.submit(9);
    await tick();
    expect(batches).toEqual([[1, 2, 3, 4], [5, 6, 7, 8]]);
    await releaseAll();
    expect(await Promise.all([...first, ...second, last])).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(batches).toEqual([[1, 2, 3, 4], [5, 6, 7, 8], [9]]);
  });

  it('starts a pipelined run with a partial batch when the run ahead is as small', async () => {
    const { batcher, batches, releaseAll } = harness({ concurrency: 2, eagerRuns: 1 });
    const first = batcher.submit(1);
    await tick();
    const next = batcher.submit(2);
    await tick();
    expect(batches).toEqual([[1], [2]]);
    await releaseAll();
    expect(await Promise.all([first, next])).toEqual([10, 20]);
  });

  it('waits up to the queue delay for a fuller batch', async () => {
    const { batcher, batches, releaseAll } = harness({ maxQueueDelayMs: 30 });
    const a = batcher.submit(1);
    await new Promise((r) => setTimeout(r, 5));
    const b = batcher.submit(2);
    expect(batches).toEqual([]);
    await new Promise((r) => setTimeout(r, 40));
    expect(batches).toEqual([[1, 2]]);
    await releaseAll();
    expect(await Promise.all([a, b])).toEqual([10, 20]);
  });

  it('refuses work beyond the queue bound', async () => {
    const { batcher, releaseAll } = harness({ maxQueueSize: 2 });
    const running = batcher.submit(1);
    await tick();
    const queued = [batcher.submit(2), batcher.submit(3)];
    await expect(batcher.submit(4)).rejects.toMatchObject({ code: 'resource_exhausted', message: /overloaded/ });
    await releaseAll();
    await Promise.all([running, ...queued]);
  });

  it('drops a queued request when its signal aborts or its deadline passes', async () => {
    const { batcher, batches, releaseAll } = harness();
    const running = batcher.submit(1);
    await tick();
    const controller = new AbortController();
    const cancelled = batcher.submit(2, { signal: controller.signal });
    const late = batcher.submit(3, { deadline: Date.now() + 10 });
    const kept = batcher.submit(4);
    controller.abort();
    await expect(cancelled).rejects.toMatchObject({ code: 'cancelled' });
    await expect(late).rejects.toMatchObject({ code: 'deadline_exceeded' });
    await releaseAll();
    await Promise.all([running, kept]);
    expect(batches).toEqual([[1], [4]]);
  });

  it('fails every request of a batch whose run throws, and keeps serving', async () => {
    let fail = true;
    const batcher = new DynamicBatcher<number, number>(options, async (items) => {
      if (fail) throw new TridentError('internal', 'boom');
      return items;
    }, () => 1);
    await expect(Promise.all([batcher.submit(1), batcher.submit(2)])).rejects.toThrow('boom');
    fail = false;
    await expect(batcher.submit(3)).resolves.toBe(3);
  });

  it('rejects queued work on close', async () => {
    const { batcher, releaseAll } = harness();
    const running = batcher.submit(1);
    await tick();
    const queued = batcher.submit(2);
    batcher.close();
    await expect(queued).rejects.toMatchObject({ code: 'unavailable' });
    await expect(batcher.submit(3)).rejects.toMatchObject({ code: 'unavailable' });
    await releaseAll();
    await running;
  });
});
