/** Messages between the main thread and an inference worker. Tensor buffers travel as transferables. */
import type { Device, ProviderName } from './execution-providers';
import type { HostTensor } from './tensor';

export type HostFeeds = Record<string, HostTensor>;

export interface WorkerInit {
  model: string;
  device: Device;
  threads: number;
}

export type ToInferWorker = { type: 'run'; id: number; feeds: HostFeeds } | { type: 'close' };

export type FromInferWorker =
  | { type: 'loaded'; provider: ProviderName }
  | { type: 'load_failed'; message: string }
  | { type: 'log'; message: string }
  /** `inputs`: the run's input buffers, handed back for reuse. */
  | { type: 'result'; id: number; outputs: HostFeeds; inputs: ArrayBuffer[] }
  | { type: 'run_failed'; id: number; message: string };

/** The buffers to transfer with `feeds`; each must be owned exclusively by its tensor. */
export function transferList(feeds: HostFeeds): ArrayBuffer[] {
  const buffers: ArrayBuffer[] = [];
  for (const t of Object.values(feeds)) {
    if (t.data.buffer instanceof ArrayBuffer && !buffers.includes(t.data.buffer)) buffers.push(t.data.buffer);
  }
  return buffers;
}
