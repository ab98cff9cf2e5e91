/**
 * Extension points are frozen tables: name → entry with a one-line `doc`. These helpers look a
 * name up (an unknown one is an error listing the valid ones) and write help text from the table.
 */

export interface Documented {
  readonly doc: string;
}

/** The entry for `name`, or an error naming what was asked for and every valid name. */
export function choose<T extends Documented>(table: Readonly<Record<string, T>>, name: string, what: string): T {
  if (Object.prototype.hasOwnProperty.call(table, name)) return table[name];
  throw new RangeError(`unknown ${what} ${JSON.stringify(name)}; valid: ${Object.keys(table).join(', ')}`);
}

/** `name` itself, once checked against the table (for configs that store names). */
export function chooseName<K extends string>(table: Readonly<Record<K, Documented>>, name: string, what: string): K {
  choose(table as Readonly<Record<string, Documented>>, name, what);
  return name as K;
}

/** "a (what a does); b (what b does)" for --help. */
export function describeChoices(table: Readonly<Record<string, Documented>>): string {
  return Object.entries(table)
    .map(([name, entry]) => `${name} (${entry.doc})`)
    .join('; ');
}

/** The table's names as a non-empty tuple, for zod's enum. */
export function choiceNames<K extends string>(table: Readonly<Record<K, Documented>>): [K, ...K[]] {
  return Object.keys(table) as [K, ...K[]];
}
