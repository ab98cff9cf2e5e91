/** A strategy's options: defaults, validation of given values (strings from a CLI or a form, or numbers), `k=v` pairs. */
import type { OptionSpec, OptionValues, WeightingStrategy } from './types';

export type GivenOptions = Readonly<Record<string, unknown>>;

const list = (names: readonly string[]) => names.join(', ');

function parseValue(strategy: string, key: string, spec: OptionSpec, raw: unknown): number | string {
  const where = `weighting ${strategy}: option ${key}`;
  if (spec.kind === 'choice') {
    const value = typeof raw === 'number' ? String(raw) : raw;
    if (typeof value !== 'string' || !spec.values.includes(value)) throw new RangeError(`${where} must be one of ${list(spec.values)}; got ${JSON.stringify(raw)}`);
    return value;
  }
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new RangeError(`${where} must be a number; got ${JSON.stringify(raw)}`);
  if (spec.integer && !Number.isInteger(value)) throw new RangeError(`${where} must be an integer; got ${value}`);
  if (spec.min !== undefined && value < spec.min) throw new RangeError(`${where} must be at least ${spec.min}; got ${value}`);
  if (spec.max !== undefined && value > spec.max) throw new RangeError(`${where} must be at most ${spec.max}; got ${value}`);
  return value;
}

/** The strategy's options, in its declared order, with the given ones validated and the rest at their defaults. */
export function resolveOptions(strategy: WeightingStrategy, given: GivenOptions = {}): OptionValues {
  const keys = Object.keys(strategy.options);
  const parsed: Record<string, number | string> = {};
  for (const [key, value] of Object.entries(given)) {
    const spec = strategy.options[key];
    if (!spec) {
      throw new RangeError(
        keys.length === 0
          ? `weighting ${strategy.name} takes no options; got ${key}`
          : `weighting ${strategy.name}: unknown option ${key}; its options are ${list(keys)}`,
      );
    }
    parsed[key] = parseValue(strategy.name, key, spec, value);
  }
  return Object.freeze(Object.fromEntries(keys.map((key) => [key, key in parsed ? parsed[key] : strategy.options[key].default])));
}

/** `k=v` strings (from repeated `--weighting-option k=v`, or one comma-separated string) → an object of strings. */
export function parseOptionPairs(pairs: readonly string[] | string): Record<string, string> {
  const items = typeof pairs === 'string' ? pairs.split(',') : pairs.flatMap((p) => p.split(','));
  const out: Record<string, string> = {};
  for (const item of items.map((p) => p.trim()).filter((p) => p !== '')) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new RangeError(`weighting option "${item}" is not of the form key=value`);
    const key = item.slice(0, eq).trim();
    if (key in out) throw new RangeError(`weighting option ${key} is given twice`);
    out[key] = item.slice(eq + 1).trim();
  }
  return out;
}

/** One line per option, for help texts: `key (default d; a, b or c): doc`. */
export function describeOptions(strategy: WeightingStrategy): string[] {
  return Object.entries(strategy.options).map(([key, spec]) => {
    const range = spec.kind === 'choice' ? `; ${list(spec.values)}` : '';
    return `${key} (default ${spec.default}${range}): ${spec.doc}`;
  });
}
