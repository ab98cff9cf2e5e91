/** Runs work for one key at a time, in call order; work for different keys runs freely. */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    // A failure of earlier work is its caller's; it does not stop the queue.
    const next = previous.catch(() => {}).then(work);
    this.tails.set(key, next);
    void next.catch(() => {}).finally(() => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    });
    return next;
  }
}
