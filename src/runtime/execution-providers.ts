/**
 * The execution providers a session can run on: one frozen table. The --device choices, their
 * validation and their help text all come from its keys; adding a provider is one entry here (plus
 * its own module, as cuda.ts is for CUDA).
 */
import { SETUP_COMMAND, cudaPreflight, cudaProblems, type Problem } from './cuda';

export interface ExecutionProvider {
  /** Its name in ONNX Runtime's `executionProviders` list. */
  readonly ort: string;
  /** One line for --help and `trident doctor`. */
  readonly doc: string;
  /** Order in which `--device auto` tries providers: highest first. */
  readonly autoPriority: number;
  /**
   * Train steps the trainer puts into one ONNX Runtime run (a Scan, artifacts/multi-step.ts):
   * each run copies all parameters and optimizer state out, so more steps per run pay that once.
   */
  readonly stepsPerRun: number;
  /** What is missing, found without asking ONNX Runtime (cheap; run before every session). */
  preflight(): Problem[];
  /** Everything missing, each with its fix; run when ONNX Runtime could not create a session. */
  diagnose(): Problem[];
  /** The command that installs it, for messages. */
  readonly install?: string;
}

export const EXECUTION_PROVIDERS = Object.freeze({
  cpu: Object.freeze({
    ort: 'cpu',
    doc: "ONNX Runtime's CPU kernels, always installed",
    autoPriority: 0,
    // Measured on `seed` (2 cores): 2 steps per run save 11 %, 4 save 20 %, 8 no more.
    stepsPerRun: 4,
    preflight: () => [],
    diagnose: () => [],
  }),
  cuda: Object.freeze({
    ort: 'cuda',
    doc: 'an NVIDIA GPU through ONNX Runtime’s CUDA provider (CUDA 13, cuDNN 9; Linux x64)',
    autoPriority: 10,
    // Not yet measured on a GPU; bench/gpu/run.sh times 1 to 64 steps per run (docs/CUDA.md).
    stepsPerRun: 4,
    preflight: () => cudaPreflight(),
    diagnose: () => cudaProblems(),
    install: SETUP_COMMAND,
  }),
} satisfies Record<string, ExecutionProvider>);

export type ProviderName = keyof typeof EXECUTION_PROVIDERS;
/** A provider, or `auto`: the first provider, by priority, that can create the session. */
export type Device = ProviderName | 'auto';

export const PROVIDER_NAMES = Object.freeze(Object.keys(EXECUTION_PROVIDERS) as ProviderName[]);
export const DEVICE_NAMES = Object.freeze([...PROVIDER_NAMES, 'auto'] as Device[]);
export const AUTO_ORDER = Object.freeze([...PROVIDER_NAMES].sort((a, b) => EXECUTION_PROVIDERS[b].autoPriority - EXECUTION_PROVIDERS[a].autoPriority));

export function parseDevice(value: string): Device {
  if ((DEVICE_NAMES as readonly string[]).includes(value)) return value as Device;
  throw new Error(`unknown device "${value}"; valid: ${DEVICE_NAMES.join(', ')}`);
}

/** A provider by name, `auto` excluded (for benchmarks that compare providers). */
export function parseProvider(value: string): ProviderName {
  if ((PROVIDER_NAMES as readonly string[]).includes(value)) return value as ProviderName;
  throw new Error(`unknown execution provider "${value}"; valid: ${PROVIDER_NAMES.join(', ')}`);
}

/** The --device help text: every choice and what it means. */
export function deviceHelp(): string {
  const choices = PROVIDER_NAMES.map((n) => `${n} (${EXECUTION_PROVIDERS[n].doc})`);
  return `execution provider: ${choices.join(', ')} or auto (the first that works of ${AUTO_ORDER.join(', ')})`;
}

/** A provider that cannot create sessions here, with what is missing and how to fix it. */
export class ProviderUnavailableError extends Error {
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
    super(`the ${provider.toUpperCase()} execution provider is not available: ${parts.filter(Boolean).join('. ')}`);
    this.name = 'ProviderUnavailableError';
  }
}
