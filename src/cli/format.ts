/** Argument parsing for the CLI; tables come from text/table. */
import { TASKS, toTaskVector, type TaskVector } from '../model/tasks';
export { formatNumber, table } from '../base/table';

export function parseNumber(value: string, flag: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag} must be a number, got "${value}"`);
  if (opts.integer && !Number.isInteger(n)) throw new Error(`${flag} must be an integer, got ${value}`);
  if (opts.min !== undefined && n < opts.min) throw new Error(`${flag} must be ≥ ${opts.min}, got ${value}`);
  if (opts.max !== undefined && n > opts.max) throw new Error(`${flag} must be ≤ ${opts.max}, got ${value}`);
  return n;
}

export function parseTaskWeights(value: string): TaskVector {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length !== TASKS.length) throw new Error(`--task-weights needs ${TASKS.length} comma-separated numbers (${TASKS.join(',')}), got "${value}"`);
  return toTaskVector(parts.map((p) => parseNumber(p, '--task-weights', { min: 0 })), '--task-weights');
}
