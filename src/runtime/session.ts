/** ONNX Runtime session creation on the execution provider a --device choice names. */
import * as ort from 'onnxruntime-node';
import { AUTO_ORDER, EXECUTION_PROVIDERS, ProviderUnavailableError, type Device, type ProviderName } from './execution-providers';
import { PROVIDER_CHECKS } from './provider-checks';

export { parseDevice, type Device, type ProviderName } from './execution-providers';

export interface SessionOptions {
  device?: Device;
  /** Intra-op threads; 0 lets ONNX Runtime decide. */
  threads?: number;
  /** Called with a human-readable line when `auto` passes over a provider. */
  log?: (message: string) => void;
  /** More ONNX Runtime session options (the GPU benchmark probes output placement with them). */
  ortOptions?: Partial<ort.InferenceSession.SessionOptions>;
}

export interface CreatedSession {
  session: ort.InferenceSession;
  /** The execution provider actually in use. */
  provider: ProviderName;
}

function baseOptions(threads: number): ort.InferenceSession.SessionOptions {
  return {
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // Idle sessions otherwise spin their threads, which starves other sessions on the same cores.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

async function open(model: string | Uint8Array, provider: ProviderName, opts: SessionOptions): Promise<ort.InferenceSession> {
  const options = { ...baseOptions(opts.threads ?? 0), ...opts.ortOptions, executionProviders: [EXECUTION_PROVIDERS[provider].ort] };
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}

/**
 * Opens `model` on the device asked for. A provider that cannot work here (its files or libraries
 * missing, no GPU) fails with what is missing and the command that fixes it; under `auto` the next
 * provider is tried instead, with a log line.
 */
export async function createSession(model: string | Uint8Array, opts: SessionOptions = {}): Promise<CreatedSession> {
  const device = opts.device ?? 'cpu';
  const candidates = device === 'auto' ? AUTO_ORDER : [device];
  for (const [i, provider] of candidates.entries()) {
    const checks = PROVIDER_CHECKS[provider];
    const isLast = i === candidates.length - 1;
    let unavailable: ProviderUnavailableError;
    const missing = checks.preflight();
    if (missing.length === 0) {
      try {
        return { session: await open(model, provider, opts), provider };
      } catch (e) {
        const problems = checks.diagnose();
        // No missing piece found: the model itself, or something only the provider can tell.
        if (problems.length === 0 && (device !== 'auto' || isLast)) {
          if (provider === 'cpu') throw e;
          throw new Error(`${(e as Error).message} (creating the session on ${provider}; \`trident doctor\` checks the ${provider} setup)`);
        }
        unavailable = new ProviderUnavailableError(provider, problems, (e as Error).message.split('\n')[0]);
      }
    } else {
      unavailable = new ProviderUnavailableError(provider, missing);
    }
    if (device !== 'auto' || isLast) throw unavailable;
    opts.log?.(`${unavailable.message.replace(/\. Or use --device .*$/, '')}; trying ${candidates[i + 1]}`);
  }
  throw new Error('no execution provider to try'); // unreachable: the CPU entry has no preflight
}
