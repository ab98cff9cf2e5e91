/** Lowering a worker thread's CPU priority, so that serving wins the cores when both want them. */
import { readlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Raises this thread's nice value (Linux: a thread id is a task id), so serving wins the cores. */
export function lowerPriority(nice: number): string | undefined {
  if (nice <= 0) return undefined;
  try {
    const tid = Number(path.basename(readlinkSync('/proc/thread-self')));
    os.setPriority(tid, nice);
    return undefined;
  } catch (e) {
    return `could not lower the job's CPU priority: ${(e as Error).message}`;
  }
}
