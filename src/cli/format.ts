/** Plain-text tables and number formatting for the CLI. */

export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n');
}

export function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(1);
  return v.toFixed(4);
}

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
