/** Argument parsing for the CLI; tables come from base/table, numeric flags from base/flags. */
import { parseNumber } from '../base/flags';
import { TASKS, toTaskVector, type TaskVector } from '../model/tasks';
export { parseNumber } from '../base/flags';
export { formatNumber, table } from '../base/table';

export function parseTaskWeights(value: string): TaskVector {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length !== TASKS.length) throw new Error(`--task-weights needs ${TASKS.length} comma-separated numbers (${TASKS.join(',')}), got "${value}"`);
  return toTaskVector(parts.map((p) => parseNumber(p, '--task-weights', { min: 0 })), '--task-weights');
}

/** Commander's collector for a repeatable option. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
