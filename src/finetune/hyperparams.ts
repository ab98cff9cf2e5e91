/**
 * A job's hyper-parameters as a request gives them (JSON, form fields or protobuf; snake_case or
 * camelCase keys; numbers and booleans possibly as strings), checked against the configured bounds.
 */
import { TridentError } from '../base/errors';
import type { TaskVector } from '../model/tasks';
import { z } from 'zod';
import { OPTIMIZERS, type OptimizerName } from '../model/optimizers';
import { choiceNames } from '../base/choices';
import type { FinetuneConfig } from './config';

export interface HyperParams {
  /** Passes over the training share; ignored when `steps` is given. */
  epochs: number;
  /** Total optimizer steps; 0 means "run `epochs` epochs". */
  steps: number;
  batchSize: number;
  lr: number;
  optimizer: OptimizerName;
  taskWeights: [classification: number, objectness: number, box: number];
  freezeTrunk: boolean;
  /** Share of the uploaded samples held out for validation and for the promotion gate. */
  valShare: number;
  seed: number;
  augment: boolean;
}

export const FINETUNE_DEFAULTS: Readonly<HyperParams> = Object.freeze({
  epochs: 3,
  steps: 0,
  batchSize: 32,
  lr: 1e-3,
  optimizer: 'adam',
  taskWeights: [1, 1, 1] as TaskVector,
  freezeTrunk: false,
  valShare: 0.2,
  seed: 0,
  augment: true,
});

const toNumber = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v);
const toBoolean = (v: unknown) => (v === 'true' || v === '1' || v === 'on' ? true : v === 'false' || v === '0' || v === 'off' || v === '' ? false : v);
const toList = (v: unknown) => (typeof v === 'string' ? v.split(',').map((p) => toNumber(p.trim())) : v);
const int = (max: number) => z.preprocess(toNumber, z.number().int().min(0).max(max));

function schema(config: FinetuneConfig) {
  return z
    .object({
      epochs: int(config.maxEpochs).refine((n) => n >= 1, 'must be at least 1'),
      steps: int(config.maxSteps),
      batchSize: int(config.maxBatchSize).refine((n) => n >= 1, 'must be at least 1'),
      lr: z.preprocess(toNumber, z.number().gt(0).max(10)),
      optimizer: z.enum(choiceNames(OPTIMIZERS)),
      taskWeights: z.preprocess(toList, z.array(z.number().min(0).max(1000)).length(3)),
      freezeTrunk: z.preprocess(toBoolean, z.boolean()),
      valShare: z.preprocess(toNumber, z.number().gt(0).max(0.5)),
      seed: z.preprocess(toNumber, z.number().int().min(0).max(2 ** 31 - 1)),
      augment: z.preprocess(toBoolean, z.boolean()),
    })
    .partial()
    .strict();
}

const camel = (key: string) => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Parses hyper-parameters; missing ones take the defaults. Unknown keys are refused, so a typo
 * does not silently train with a default.
 */
export function parseHyperParams(input: unknown, config: FinetuneConfig): HyperParams {
  if (input === undefined || input === null) return { ...FINETUNE_DEFAULTS, taskWeights: [...FINETUNE_DEFAULTS.taskWeights] };
  if (typeof input !== 'object' || Array.isArray(input)) throw new TridentError('invalid_argument', 'hyper-parameters must be an object');
  const normalised: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    // Protobuf leaves unset scalars at their zero value and unset lists empty: treat those as absent.
    if (value === undefined || value === null || (Array.isArray(value) && value.length === 0)) continue;
    normalised[camel(key)] = value;
  }
  const parsed = schema(config).safeParse(normalised);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.length > 0 ? `hyper-parameter "${issue.path.join('.')}"` : 'hyper-parameters';
    throw new TridentError('invalid_argument', `${where}: ${issue.code === 'unrecognized_keys' ? `unknown key(s) ${issue.keys.join(', ')}` : issue.message}`);
  }
  const given = parsed.data;
  return {
    ...FINETUNE_DEFAULTS,
    ...given,
    taskWeights: (given.taskWeights as TaskVector | undefined) ?? [...FINETUNE_DEFAULTS.taskWeights],
  };
}

/** Samples held out by the trainer's split (src/train/sources.ts splitSamples), for step-count planning. */
export function heldOutCount(samples: number, valShare: number): number {
  return samples > 1 ? Math.min(samples - 1, Math.max(valShare > 0 ? 1 : 0, Math.round(samples * valShare))) : 0;
}

/** Epochs and step cap the trainer runs for these parameters on `samples` uploaded samples. */
export function trainingLength(params: HyperParams, samples: number): { epochs: number; maxSteps: number; totalSteps: number; stepsPerEpoch: number } {
  const train = samples - heldOutCount(samples, params.valShare);
  const stepsPerEpoch = Math.max(1, Math.floor(train / params.batchSize));
  if (params.steps > 0) {
    const epochs = Math.ceil(params.steps / stepsPerEpoch);
    return { epochs, maxSteps: params.steps, totalSteps: params.steps, stepsPerEpoch };
  }
  return { epochs: params.epochs, maxSteps: 0, totalSteps: params.epochs * stepsPerEpoch, stepsPerEpoch };
}
