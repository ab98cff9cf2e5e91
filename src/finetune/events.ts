/** Per-job event fan-out to any number of watchers, each an async iterator with a bounded buffer. */
import type { JobEvent } from './record';

/** Per watcher; past it, the oldest buffered step events are dropped (a slow client misses progress ticks, never a state change). */
const BUFFER_LIMIT = 1000;

class Channel implements AsyncIterableIterator<JobEvent> {
  private readonly buffer: JobEvent[] = [];
  private waiting?: (result: IteratorResult<JobEvent>) => void;
  private closed = false;

  constructor(private readonly onReturn: () => void) {}

  push(event: JobEvent): void {
    if (this.closed) return;
    if (this.waiting) {
      const wake = this.waiting;
      this.waiting = undefined;
      wake({ value: event, done: false });
      return;
    }
    this.buffer.push(event);
    if (this.buffer.length > BUFFER_LIMIT) {
      const oldestStep = this.buffer.findIndex((e) => e.type === 'step');
      if (oldestStep >= 0) this.buffer.splice(oldestStep, 1);
    }
  }

  close(): void {
    this.closed = true;
    if (this.waiting && this.buffer.length === 0) {
      const wake = this.waiting;
      this.waiting = undefined;
      wake({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<JobEvent>> {
    const event = this.buffer.shift();
    if (event) return Promise.resolve({ value: event, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<JobEvent>> {
    this.close();
    this.buffer.length = 0;
    this.onReturn();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<JobEvent> {
    return this;
  }
}

export class JobEventHub {
  private readonly watchers = new Map<string, Set<Channel>>();

  /** Starts buffering the job's events for a new watcher; call `return()` on it to stop. */
  subscribe(jobId: string): AsyncIterableIterator<JobEvent> {
    const set = this.watchers.get(jobId) ?? new Set<Channel>();
    this.watchers.set(jobId, set);
    const channel: Channel = new Channel(() => {
      set.delete(channel);
      if (set.size === 0 && this.watchers.get(jobId) === set) this.watchers.delete(jobId);
    });
    set.add(channel);
    return channel;
  }

  publish(jobId: string, event: JobEvent): void {
    for (const channel of this.watchers.get(jobId) ?? []) channel.push(event);
  }

  /** Ends every watcher of the job after the events already buffered. */
  close(jobId: string): void {
    const set = this.watchers.get(jobId);
    if (!set) return;
    this.watchers.delete(jobId);
    for (const channel of set) channel.close();
  }

  watcherCount(jobId: string): number {
    return this.watchers.get(jobId)?.size ?? 0;
  }
}
