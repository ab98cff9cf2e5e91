/**
 * The execution providers a session can run on: one frozen table. The --device choices, their
 * validation and their help text all come from its keys. This module is plain data (the web app
 * type-checks against it); what each provider needs on the machine is checked in
 * provider-checks.ts, whose table TypeScript holds to the same keys. Adding a provider is an entry
 * here, one there, and, where it needs more than ONNX Runtime's CPU build, a module like cuda.ts.
 */
import { TridentError } from '../base/errors';
import { choiceNames, chooseName, describeChoices, type Documented } from '../base/choices';

export interface ExecutionProvider extends Documented {
  /** Its name in ONNX Runtime's `executionProviders` list. */
  readonly ort: string;
  /** Order in which `--device auto` tries providers: highest first. */
  readonly autoPriority: number;
  /**
   * Train steps the trainer puts into one ONNX Runtime run (a Scan, artifacts/multi-step.ts):
   * each run copies all parameters and optimizer state out, so more steps per run pay that once.
   */
  readonly stepsPerRun: number;
  /** The command that installs it, where a default install lacks it. */
  readonly install?: string;
}

/** Something a provider needs that this machine lacks, and the command or step that supplies it. */
export interface Problem {
  missing: string;
  fix: string;
}

export const SETUP_CUDA_COMMAND = 'trident setup cuda (in a checkout: npm run setup:cuda)';

export const EXECUTION_PROVIDERS = Object.freeze({
  cpu: Object.freeze({
    ort: 'cpu',
    doc: "ONNX Runtime's CPU kernels, always installed",
    autoPriority: 0,
    // Measured on `seed` (2 cores): 2 steps per run save 11 %, 4 save 20 %, 8 no more.
    stepsPerRun: 4,
  }),
  cuda: Object.freeze({
    ort: 'cuda',
    doc: 'an NVIDIA GPU through ONNX Runtime’s CUDA provider (CUDA 13, cuDNN 9; Linux x64)',
    autoPriority: 10,
    // Not yet measured on a GPU; bench/gpu/run.sh times 1 to 64 steps per run (docs/CUDA.md).
    stepsPerRun: 4,
    install: SETUP_CUDA_COMMAND,
  }),
} satisfies Record<string, ExecutionProvider>);

export type ProviderName = keyof typeof EXECUTION_PROVIDERS;
/** A provider, or `auto`: the first provider, by priority, that can create the session. */
export type Device = ProviderName | 'auto';

export const PROVIDER_NAMES = Object.freeze(choiceNames(EXECUTION_PROVIDERS));
export const AUTO_ORDER = Object.freeze([...PROVIDER_NAMES].sort((a, b) => EXECUTION_PROVIDERS[b].autoPriority - EXECUTION_PROVIDERS[a].autoPriority));
/** What --device accepts: every provider, and `auto`. */
export const DEVICES: Readonly<Record<Device, Documented>> = Object.freeze({
  ...EXECUTION_PROVIDERS,
  auto: Object.freeze({ doc: `the first that works of ${AUTO_ORDER.join(', ')}` }),
});
export const DEVICE_NAMES = Object.freeze(choiceNames(DEVICES));

export function parseDevice(value: string): Device {
  return chooseName(DEVICES, value, 'device');
}

/** A provider by name, `auto` excluded (for benchmarks that compare providers). */
export function parseProvider(value: string): ProviderName {
  return chooseName(EXECUTION_PROVIDERS, value, 'execution provider');
}

/** The --device help text: every choice and what it means. */
export function deviceHelp(): string {
  return `execution provider: ${describeChoices(DEVICES)}`;
}

/** A provider that cannot create sessions here, with what is missing and how to fix it. */
export class ProviderUnavailableError extends TridentError {
  constructor(
    readonly provider: ProviderName,
    readonly problems: Problem[],
    readonly ortMessage?: string,
  ) {
    const first = problems[0];
    const parts = [
      first ? `missing ${first.missing}. Fix: ${first.fix}` : undefined,
      problems.length > 1 ? `${problems.length - 1} more missing; \`trident doctor\` lists everything` : undefined,
      ortMessage ? `ONNX Runtime said: ${ortMessage}` : undefined,
      `Or use --device ${[...AUTO_ORDER.filter((p) => p !== provider), 'auto'].join('|')}`,
    ];
    super('unavailable', `the ${provider.toUpperCase()} execution provider is not available: ${parts.filter(Boolean).join('. ')}`);
  }
}
