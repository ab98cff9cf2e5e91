/** The server's REST API, as the web app calls it (same origin only). */
import type { ServedManifest } from '../../src/artifacts/manifest-schema';
import type { ModelVersions, VersionInfo } from '../../src/finetune/record';

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function check(response: Response): Promise<Response> {
  if (response.ok) return response;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { error?: string };
    if (body.error) message = `${message}: ${body.error}`;
  } catch {
    /* not JSON */
  }
  throw new ApiError(response.status, message);
}

export async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  return (await (await check(await fetch(url, init))).json()) as T;
}

export async function getBytes(url: string): Promise<Uint8Array> {
  return new Uint8Array(await (await check(await fetch(url))).arrayBuffer());
}

export function postJson<T>(url: string, body: unknown, key?: string): Promise<T> {
  return getJson<T>(url, { method: 'POST', headers: { 'content-type': 'application/json', ...keyHeader(key) }, body: JSON.stringify(body) });
}

export function keyHeader(key?: string): Record<string, string> {
  return key ? { authorization: `Bearer ${key}` } : {};
}

export interface RepositoryEntry {
  name: string;
  version?: string;
  state?: string;
  reason?: string;
}

export async function modelNames(): Promise<string[]> {
  const index = await postJson<RepositoryEntry[]>('/v2/repository/index', {});
  return [...new Set(index.map((m) => m.name))].sort();
}

export type { ModelVersions, VersionInfo };

export const versionsOf = (model: string) => getJson<ModelVersions>(`/v2/models/${encodeURIComponent(model)}/versions`);

export const manifestOf = (model: string, version: number | 'latest') =>
  getJson<ServedManifest>(`/v2/models/${encodeURIComponent(model)}/versions/${version}/files/manifest.json`);

export const fileUrl = (model: string, version: number, file: string) => `/v2/models/${encodeURIComponent(model)}/versions/${version}/files/${file}`;

export interface ServerPrediction {
  model_name: string;
  model_version: string;
  class: { label: string; index: number; score: number; top_k: { label: string; index: number; score: number }[] };
  object: { present: boolean; score: number; threshold: number };
  box: { x1: number; y1: number; x2: number; y2: number; normalised: { x1: number; y1: number; x2: number; y2: number } };
  image: { width: number; height: number };
}

export async function predictOnServer(model: string, version: string | undefined, image: Blob, topK: number): Promise<ServerPrediction> {
  const path = `/v2/models/${encodeURIComponent(model)}${version ? `/versions/${version}` : ''}/predict?top_k=${topK}`;
  return getJson<ServerPrediction>(path, { method: 'POST', headers: { 'content-type': image.type || 'application/octet-stream' }, body: image });
}

/** The fine-tune key, kept for this tab only. */
export const savedKey = {
  get: () => sessionStorage.getItem('trident.key') ?? '',
  set: (key: string) => sessionStorage.setItem('trident.key', key),
};
