/**
 * onnxruntime-web, loaded when first needed from the server's /ort/ (its files come from
 * node_modules; nothing from elsewhere). Threads need a cross-origin-isolated page, which the
 * server's headers give; `?threads=N` in the page's address overrides the count.
 */
import type * as Ort from 'onnxruntime-web';

export type OrtWeb = typeof Ort;
export type Backend = 'wasm' | 'webgpu';

let wasm: Promise<OrtWeb> | undefined;
let webgpu: Promise<OrtWeb> | undefined;

export function threadCount(): number {
  const asked = Number(new URLSearchParams(location.search).get('threads'));
  if (Number.isInteger(asked) && asked > 0) return crossOriginIsolated ? asked : 1;
  return crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
}

function configure(ort: OrtWeb): OrtWeb {
  ort.env.wasm.wasmPaths = '/ort/';
  ort.env.wasm.numThreads = threadCount();
  ort.env.logLevel = 'error';
  return ort;
}

export function loadOrt(backend: Backend = 'wasm'): Promise<OrtWeb> {
  if (backend === 'webgpu') return (webgpu ??= import('/ort/ort.webgpu.min.mjs' as string).then((m: OrtWeb) => configure(m)));
  return (wasm ??= import('/ort/ort.wasm.min.mjs' as string).then((m: OrtWeb) => configure(m)));
}

/** WebGPU where the browser offers an adapter, else wasm. */
export async function bestInferenceBackend(): Promise<Backend> {
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  if (!gpu) return 'wasm';
  try {
    return (await gpu.requestAdapter()) ? 'webgpu' : 'wasm';
  } catch {
    return 'wasm';
  }
}

export function sessionOptions(backend: Backend): Ort.InferenceSession.SessionOptions {
  return { executionProviders: [backend], graphOptimizationLevel: 'all' };
}
