/** Argument parsing for the CLI; tables come from text/table. */
export { formatNumber, table } from '../text/table';

export function parseNumber(value: string, flag: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag} must be a number, got "${value}"`);
  if (opts.integer && !Number.isInteger(n)) throw new Error(`${flag} must be an integer, got ${value}`);
  if (opts.min !== undefined && n < opts.min) throw new Error(`${flag} must be ≥ ${opts.min}, got ${value}`);
  if (opts.max !== undefined && n > opts.max) throw new Error(`${flag} must be ≤ ${opts.max}, got ${value}`);
  return n;
}

export function parseTaskWeights(value: string): [number, number, number] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length !== 3) throw new Error(`--task-weights needs three comma-separated numbers (cls,det,box), got "${value}"`);
  return parts.map((p) => parseNumber(p, '--task-weights', { min: 0 })) as [number, number, number];
}
