/** ONNX Runtime session creation with an explicit execution-provider choice. */
import * as ort from 'onnxruntime-node';

export type Device = 'cpu' | 'cuda' | 'auto';

export interface SessionOptions {
  device?: Device;
  /** Intra-op threads; 0 lets ONNX Runtime decide. */
  threads?: number;
  /** Called with a human-readable line when `auto` falls back to CPU. */
  log?: (message: string) => void;
}

export interface CreatedSession {
  session: ort.InferenceSession;
  /** The execution provider actually in use. */
  provider: 'cpu' | 'cuda';
}

export function parseDevice(value: string): Device {
  if (value === 'cpu' || value === 'cuda' || value === 'auto') return value;
  throw new Error(`unknown device "${value}"; use cpu, cuda or auto`);
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

export async function createSession(model: string | Uint8Array, opts: SessionOptions = {}): Promise<CreatedSession> {
  const device = opts.device ?? 'cpu';
  const threads = opts.threads ?? 0;
  const load = (providers: string[]) =>
    typeof model === 'string'
      ? ort.InferenceSession.create(model, { ...baseOptions(threads), executionProviders: providers })
      : ort.InferenceSession.create(model, { ...baseOptions(threads), executionProviders: providers });
  if (device === 'cpu') return { session: await load(['cpu']), provider: 'cpu' };
  try {
    return { session: await load(['cuda']), provider: 'cuda' };
  } catch (e) {
    const reason = (e as Error).message.split('\n')[0];
    if (device === 'cuda') {
      throw new Error(
        `the CUDA execution provider is not available (${reason}). Install onnxruntime-node with ` +
          `ONNXRUNTIME_NODE_INSTALL=cuda12 on a machine with CUDA 12, or use --device cpu|auto`,
      );
    }
    opts.log?.(`CUDA execution provider unavailable (${reason}); falling back to CPU`);
    return { session: await load(['cpu']), provider: 'cpu' };
  }
}
