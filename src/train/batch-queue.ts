/**
 * The trainer's side of the data: batches are asked of the main thread ahead of need (so that data
 * preparation overlaps the steps) and arrive as messages; a step takes them in order.
 */
import type { Batch } from '../data/dataset';

export type BatchKind = 'train' | 'val';

const key = (kind: BatchKind, epoch: number, index: number) => `${kind}:${epoch}:${index}`;

export class BatchQueue {
  private readonly requested = new Set<string>();
  private readonly arrived = new Map<string, Batch>();
  private readonly waiters = new Map<string, (b: Batch) => void>();
  private readonly validation: Batch[] = [];

  /** `ask` sends one request to the main thread. */
  constructor(private readonly ask: (kind: BatchKind, epoch: number, index: number) => void) {}

  /** Asks for a batch now, unless it was asked for already or is here. */
  request(kind: BatchKind, epoch: number, index: number): void {
    const k = key(kind, epoch, index);
    if (this.requested.has(k) || this.arrived.has(k)) return;
    this.requested.add(k);
    this.ask(kind, epoch, index);
  }

  /** The batch, once it is here. */
  take(kind: BatchKind, epoch: number, index: number): Promise<Batch> {
    const k = key(kind, epoch, index);
    const ready = this.arrived.get(k);
    if (ready) {
      this.arrived.delete(k);
      return Promise.resolve(ready);
    }
    this.request(kind, epoch, index);
    return new Promise((resolve) => this.waiters.set(k, resolve));
  }

  /** Puts a taken batch back, for the next take. */
  putBack(kind: BatchKind, epoch: number, index: number, batch: Batch): void {
    this.arrived.set(key(kind, epoch, index), batch);
  }

  /** A batch from the main thread. */
  deliver(kind: BatchKind, epoch: number, index: number, batch: Batch): void {
    const k = key(kind, epoch, index);
    this.requested.delete(k);
    const resolve = this.waiters.get(k);
    if (resolve) {
      this.waiters.delete(k);
      resolve(batch);
    } else this.arrived.set(k, batch);
  }

  /** Validation batch `index` of `count`: they never change, so they are asked for once (all at once) and kept. */
  async validationBatch(index: number, count: number): Promise<Batch> {
    if (this.validation.length === 0) for (let i = 0; i < count; i++) this.request('val', 0, i);
    this.validation[index] ??= await this.take('val', 0, index);
    return this.validation[index];
  }
}
