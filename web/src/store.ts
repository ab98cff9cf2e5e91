/** A browser training run kept in IndexedDB, so that it survives a reload and can resume. */
import type { Sample } from '../../src/data/batch';

export interface SavedRun {
  /** Which model the run fine-tunes: name, version, and the checkpoint's SHA-256. */
  model: { name: string; version: number; checkpointSha256: string };
  config: RunConfig;
  /** Training and held-out samples, as the model takes them. */
  train: StoredSample[];
  heldOut: StoredSample[];
  dataName: string;
  /** The carried state of the train step (weights, optimizer state, step), by input name. */
  state: [string, Float32Array][];
  steps: number;
  losses: { step: number; loss: number; tasks: number[] }[];
  savedAt: string;
}

export interface RunConfig {
  steps: number;
  batchSize: number;
  lr: number;
  heldOutShare: number;
  seed: number;
}

export type StoredSample = Sample;

const DB = 'trident';
const STORE = 'runs';
const KEY = 'current';

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new Error(`IndexedDB: ${request.error?.message ?? 'cannot open'}`));
  });
}

async function transact<T>(mode: IDBTransactionMode, work: (store: IDBObjectStore) => IDBRequest<T> | void): Promise<T | undefined> {
  const db = await open();
  try {
    return await new Promise<T | undefined>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = work(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request ? request.result : undefined);
      tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? 'transaction failed'}`));
      tx.onabort = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? 'transaction aborted (storage full?)'}`));
    });
  } finally {
    db.close();
  }
}

/** One transaction: the previous run stays whole until the new one is fully written. */
export async function saveRun(run: SavedRun): Promise<void> {
  await transact('readwrite', (store) => store.put(run, KEY));
}

export async function loadRun(): Promise<SavedRun | undefined> {
  return (await transact<SavedRun>('readonly', (store) => store.get(KEY))) ?? undefined;
}

export async function clearRun(): Promise<void> {
  await transact('readwrite', (store) => store.delete(KEY));
}
