import type { ChoiceOption, Needs, OptionValues } from './types';

/** The option every Gram-matrix strategy takes: per-task gradients of the representation (cheap) or of the shared parameters. */
export const GRADIENTS_OPTION: ChoiceOption = Object.freeze({
  kind: 'choice',
  doc: 'per-task gradients of the shared representation (a backward pass through the heads only) or of every shared parameter (one trunk backward per task)',
  default: 'representation',
  values: ['representation', 'parameters'],
});

export const gramNeeds = (o: OptionValues): Needs => ({ gradients: o.gradients === 'parameters' ? 'parameters' : 'representation' });
