import { mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { decodeCheckpoint, encodeCheckpoint } from '../../artifacts/checkpoint';
import { exportModel } from '../../artifacts/export';
import { sha256 } from '../../artifacts/files';
import type { ServedManifest } from '../../artifacts/manifest-schema';
import { testConfig } from '../../finetune/testing/fixtures';
import { initParams } from '../../model/params';
import { builtinSpec } from '../../model/spec';
import { serveConfig } from '../config';
import { startServer, type RunningServer } from '../server';

const metrics = { samples: 4, objects: 3, classAccuracy: 1, perClassAccuracy: [1, 1, 1], objectnessPrecision: 1, objectnessRecall: 1, objectnessF1: 1, objectnessAP: 1, boxMeanIoU: 0.8, boxIoUAbove50: 1, detectionCorrect: 1 };

describe('web routes on the REST server', () => {
  let server: RunningServer;
  let url: string;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'trident-web-routes-'));
    await exportModel({ spec: 'tiny', outDir: path.join(root, 'tiny', '1'), training: false, seed: 1, name: 'tiny' });
    server = await startServer(serveConfig({ models: root, host: '127.0.0.1', httpPort: 0, grpcPort: undefined, threads: 1, finetune: testConfig() }), pino({ level: 'silent' }));
    url = `http://127.0.0.1:${server.httpPort}`;
  });

  afterAll(async () => {
    await server.drain(1000);
    rmSync(root, { recursive: true, force: true });
  });

  it('serves the page and onnxruntime-web cross-origin isolated, and nothing outside its folders', async () => {
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    const wasm = await fetch(`${url}/ort/ort-wasm-simd-threaded.wasm`);
    expect(wasm.status).toBe(200);
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    expect((await fetch(`${url}/app/app.js`)).status).toBe(200);
    for (const bad of ['/ort/package.json', '/ort/..%2Fpackage.json', '/app/..%2F..%2Fpackage.json', '/app/nothing.js']) expect((await fetch(`${url}${bad}`)).status).toBe(404);
  });

  it('serves a version\'s files, with training graphs built for a version exported without them', async () => {
    const manifest = (await (await fetch(`${url}/v2/models/tiny/versions/latest/files/manifest.json`)).json()) as ServedManifest;
    expect(manifest).toMatchObject({ model: 'tiny', version: 1 });
    expect(manifest.graphs.train_step.inputs.some((i) => i.role === 'optimizer_state')).toBe(true);
    const step = new Uint8Array(await (await fetch(`${url}/v2/models/tiny/versions/1/files/train_step.onnx`)).arrayBuffer());
    expect(sha256(step)).toBe(manifest.files['train_step.onnx'].sha256);
    const infer = new Uint8Array(await (await fetch(`${url}/v2/models/tiny/versions/1/files/infer.onnx`)).arrayBuffer());
    expect(sha256(infer)).toBe(manifest.files['infer.onnx'].sha256);
    expect((await fetch(`${url}/v2/models/tiny/versions/1/files/serving.json`)).status).toBe(404);
    expect((await fetch(`${url}/v2/models/tiny/versions/9/files/manifest.json`)).status).toBe(404);
    expect((await fetch(`${url}/v2/models/tiny/versions/-1/files/manifest.json`)).status).toBe(400);
    expect((await fetch(`${url}/v2/models/..%2Ftiny/versions/1/files/manifest.json`)).status).toBe(400);
    expect((await fetch(`${url}/v2/models/nothing/versions/latest/files/manifest.json`)).status).toBe(404);
  });

  describe('POST /v2/models/:name/weights', () => {
    const spec = builtinSpec('tiny');
    const upload = (bytes: Uint8Array, fields: Record<string, string> = {}, key: string | undefined = 'ft-key', model = 'tiny') => {
      const form = new FormData();
      for (const [k, v] of Object.entries({ sha256: sha256(bytes), ...fields })) form.append(k, v);
      form.append('checkpoint', new Blob([Buffer.from(bytes)]), 'checkpoint.safetensors');
      return fetch(`${url}/v2/models/${model}/weights`, { method: 'POST', body: form, headers: key ? { 'x-api-key': key } : {} });
    };
    const errorOf = async (response: Response) => ({ status: response.status, error: ((await response.json()) as { error: string }).error });
    const good = encodeCheckpoint({ spec, params: initParams(spec, 7), buffers: new Map() });

    it('refuses without a key, a wrong checksum, other shapes, a damaged file, bad evaluations and unknown models, and writes nothing', async () => {
      expect(await errorOf(await upload(good, {}, ''))).toMatchObject({ status: 401 });
      expect(await errorOf(await upload(good, {}, 'wrong'))).toMatchObject({ status: 403 });
      expect(await errorOf(await upload(good, { sha256: '0'.repeat(64) }))).toMatchObject({ status: 400, error: expect.stringContaining('checksum mismatch') });
      const other = builtinSpec('seed');
      const wrongShapes = encodeCheckpoint({ spec: { ...spec, shared: other.shared }, params: initParams({ ...spec, shared: other.shared }, 1), buffers: new Map() });
      expect(await errorOf(await upload(wrongShapes))).toMatchObject({ status: 400, error: expect.stringContaining('do not fit') });
      const damaged = Uint8Array.from(good);
      damaged[damaged.length - 3] ^= 0xff;
      expect(await errorOf(await upload(damaged))).toMatchObject({ status: 400, error: expect.stringContaining('checksum mismatch, the checkpoint is corrupt') });
      expect(await errorOf(await upload(new TextEncoder().encode('not a checkpoint')))).toMatchObject({ status: 400 });
      expect(await errorOf(await upload(good, { held_out: '{"samples": 4}' }))).toMatchObject({ status: 400, error: expect.stringContaining('held-out') });
      expect(await errorOf(await upload(good, { held_out: 'nope' }))).toMatchObject({ status: 400 });
      // No held-out evaluation and no reference set for this model: nothing to judge on.
      expect(await errorOf(await upload(good))).toMatchObject({ status: 400, error: expect.stringContaining('nothing to judge') });
      expect(await errorOf(await upload(good, {}, 'ft-key', 'nothing'))).toMatchObject({ status: 404 });
      expect(await errorOf(await upload(new Uint8Array(4 * 1024 * 1024)))).toMatchObject({ status: 413 });
      const versions = (await (await fetch(`${url}/v2/models/tiny/versions`)).json()) as { versions: unknown[] };
      expect(versions.versions).toHaveLength(1);
      expect((await fs.readdir(path.join(root, 'tiny'))).filter((f) => f.startsWith('.staging'))).toEqual([]);
    });

    it('turns good weights into a version, promoted when the gate finds them no worse, and served', async () => {
      const response = await upload(good, { held_out: JSON.stringify({ samples: 4, candidate: metrics, serving: { ...metrics, detectionCorrect: 0.5 } }) });
      expect(response.status).toBe(201);
      const result = (await response.json()) as { version: number; latest: number; decision: { promoted: boolean; reason: string } };
      expect(result).toMatchObject({ version: 2, latest: 2, decision: { promoted: true } });
      const saved = decodeCheckpoint(await fs.readFile(path.join(root, 'tiny', '2', 'checkpoint.safetensors')));
      expect(saved.params.get('heads.cls.weight')).toEqual(initParams(spec, 7).get('heads.cls.weight'));
      const worse = await upload(good, { held_out: JSON.stringify({ samples: 4, candidate: { ...metrics, detectionCorrect: 0.2 }, serving: metrics }) });
      expect(((await worse.json()) as { decision: { promoted: boolean }; latest: number })).toMatchObject({ decision: { promoted: false }, latest: 2 });
      const metadata = (await (await fetch(`${url}/v2/models/tiny`)).json()) as { versions: string[] };
      expect(metadata.versions).toContain('2');
    });
  });
});
