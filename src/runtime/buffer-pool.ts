/**
 * ArrayBuffers kept for reuse, by byte length. A batch's input buffer goes to a worker and comes
 * back with the result; reusing it spares allocating (and the kernel zero-filling) a fresh buffer
 * for every batch, and the garbage collections that external memory churn sets off.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();

  constructor(private readonly keepPerSize = 4) {}

  take(byteLength: number): ArrayBuffer {
    return this.free.get(byteLength)?.pop() ?? new ArrayBuffer(byteLength);
  }

  give(buffer: ArrayBuffer): void {
    if (buffer.byteLength === 0) return; // detached, or nothing worth keeping
    let list = this.free.get(buffer.byteLength);
    if (!list) this.free.set(buffer.byteLength, (list = []));
    if (list.length < this.keepPerSize) list.push(buffer);
  }
}
