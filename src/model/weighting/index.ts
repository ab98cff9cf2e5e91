/**
 * The weighting strategies, one frozen table: the CLI (`--weighting`, `--weighting-option`), the
 * fine-tune parameters (REST, gRPC) and the help texts are all generated from its keys. Adding a
 * strategy: one file here (its math written against `Scalars`, its entry) plus its test, and one
 * line in this table.
 */
import { choose } from '../../base/choices';
import { TASKS, type Task } from '../tasks';
import { cagrad } from './cagrad';
import { dwa } from './dwa';
import { famo } from './famo';
import { gradnorm } from './gradnorm';
import { imtlG } from './imtl-g';
import { mgda } from './mgda';
import { describeOptions, resolveOptions, type GivenOptions } from './options';
import { pcgrad } from './pcgrad';
import { staticWeighting } from './static';
import type { OptionValues, WeightingStrategy } from './types';
import { uw } from './uw';

export const WEIGHTINGS: Readonly<Record<string, WeightingStrategy>> = Object.freeze({
  static: staticWeighting,
  uw,
  dwa,
  gradnorm,
  famo,
  mgda,
  'imtl-g': imtlG,
  pcgrad,
  cagrad,
});

export const WEIGHTING_NAMES = Object.freeze(Object.keys(WEIGHTINGS)) as readonly string[];

/** A strategy chosen with its options, all of them resolved: plain data for configs, checkpoints and lineage. */
export interface WeightingChoice {
  name: string;
  options: OptionValues;
}

export const STATIC_WEIGHTING: WeightingChoice = Object.freeze({ name: 'static', options: Object.freeze({}) });

export function weightingStrategy(name: string): WeightingStrategy {
  return choose(WEIGHTINGS, name, 'weighting');
}

/** Validates a name and its options (strings or numbers); unknown ones are errors that list the valid ones. */
export function chooseWeighting(name: string, options: GivenOptions = {}): WeightingChoice {
  const strategy = weightingStrategy(name);
  return Object.freeze({ name: strategy.name, options: resolveOptions(strategy, options) });
}

/** `name` or `name:k=v:k=v` (the form `trident bench mtl --strategies` takes, comma-separated). */
export function parseWeightingSpec(text: string): WeightingChoice {
  const [head, ...pairs] = text.split(':');
  const name = head.trim();
  const options: Record<string, string> = {};
  for (const pair of pairs.filter((p) => p.trim() !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new RangeError(`weighting "${text}": "${pair}" is not of the form key=value`);
    options[pair.slice(0, eq).trim()] = pair.slice(eq + 1).trim();
  }
  return chooseWeighting(name, options);
}

/** `name` or `name:k=v:…` listing only the options that differ from the defaults (parseWeightingSpec reads it back). */
export function weightingLabel(choice: WeightingChoice): string {
  const strategy = weightingStrategy(choice.name);
  const changed = Object.entries(choice.options).filter(([k, v]) => strategy.options[k]?.default !== v);
  return [choice.name, ...changed.map(([k, v]) => `${k}=${v}`)].join(':');
}

/** The help text: one line per strategy, its options indented below. */
export function weightingHelp(): string {
  return Object.values(WEIGHTINGS)
    .map((w) => [`  ${w.name}: ${w.doc}`, ...describeOptions(w).map((line) => `      ${line}`)].join('\n'))
    .join('\n');
}

/** Checks a run's weighting before it starts: every trained task needs λ_t > 0 when a strategy adapts the weights. */
export function checkWeighting(choice: WeightingChoice, taskWeights: readonly number[], tasks: readonly Task[]): void {
  chooseWeighting(choice.name, choice.options);
  if (choice.name === 'static') return;
  const idle = tasks.filter((t) => !(taskWeights[TASKS.indexOf(t)] > 0));
  if (idle.length > 0) throw new RangeError(`weighting ${choice.name} needs λ > 0 for every trained task (${idle.join(', ')} has λ = 0); leave a task out with --tasks instead`);
}

export { parseOptionPairs } from './options';
export type { WeightingStrategy } from './types';
