/** A numeric command-line flag, refused with a message that names the flag when it is not one. */
export function parseNumber(value: string, flag: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`${flag} must be a number, got "${value}"`);
  if (opts.integer && !Number.isInteger(n)) throw new Error(`${flag} must be an integer, got ${value}`);
  if (opts.min !== undefined && n < opts.min) throw new Error(`${flag} must be ≥ ${opts.min}, got ${value}`);
  if (opts.max !== undefined && n > opts.max) throw new Error(`${flag} must be ≤ ${opts.max}, got ${value}`);
  return n;
}
