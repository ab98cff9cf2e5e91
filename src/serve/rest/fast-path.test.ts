import http from 'node:http';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import { serveConfig } from '../config';
import { fastInferPath } from './fast-path';
import type { InferenceService } from '../core/service';
import { startTestServer, tinyTensor, type TestServer } from '../testing/harness';

let s: TestServer;

beforeAll(async () => {
  s = await startTestServer({ maxBodyBytes: 64 * 1024, corsOrigins: ['https://app.example'] });
});
afterAll(() => s.close());

const tensor = Buffer.from(tinyTensor(1, 4).buffer);
const jsonBody = JSON.stringify({ inputs: [{ name: 'image', shape: [1, 3, 16, 16], datatype: 'FP32', data: Array.from(tinyTensor(1, 4)) }] });

/** A binary request whose JSON header is `idLength` characters of id longer, so that the tensor starts at any alignment. */
function binaryRequest(idLength: number): { body: Buffer; headerLength: number } {
  const header = Buffer.from(JSON.stringify({ id: 'x'.repeat(idLength), inputs: [{ name: 'image', shape: [1, 3, 16, 16], datatype: 'FP32', parameters: { binary_data_size: tensor.length } }] }));
  return { body: Buffer.concat([header, tensor]), headerLength: header.length };
}

async function outputs(response: Response): Promise<unknown> {
  expect(response.status).toBe(200);
  return ((await response.json()) as { outputs: unknown }).outputs;
}

/** Posts `chunks` with chunked transfer encoding (no Content-Length). */
function postChunked(path: string, chunks: Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${s.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    for (const c of chunks) req.write(c);
    req.end();
  });
}

describe('REST: the infer fast path and express give the same answers', () => {
  it('reads binary tensors at every alignment of the JSON header', async () => {
    const expected = await outputs(await fetch(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body: jsonBody }));
    for (const idLength of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const { body, headerLength } = binaryRequest(idLength);
      const response = await fetch(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body, headers: { 'inference-header-content-length': String(headerLength) } });
      expect(await outputs(response)).toEqual(expected);
    }
  });

  it('answers compressed bodies, CORS requests and other spellings of the path through express alike', async () => {
    const expected = await outputs(await fetch(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body: jsonBody }));
    const gzipped = await fetch(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body: gzipSync(jsonBody), headers: { 'content-encoding': 'gzip' } });
    expect(await outputs(gzipped)).toEqual(expected);
    const cors = await fetch(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body: jsonBody, headers: { origin: 'https://app.example' } });
    expect(cors.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(await outputs(cors)).toEqual(expected);
    expect(await outputs(await fetch(`${s.url}/v2/models/tiny/infer/`, { method: 'POST', body: jsonBody }))).toEqual(expected);
    expect(await outputs(await fetch(`${s.url}/v2/models/tiny/versions/2/infer`, { method: 'POST', body: jsonBody }))).toEqual(expected);
  });

  it('reads chunked bodies and refuses them with 413 beyond the limit', async () => {
    const bytes = Buffer.from(jsonBody);
    const ok = await postChunked('/v2/models/tiny/infer', [bytes.subarray(0, 100), bytes.subarray(100, 5000), bytes.subarray(5000)]);
    expect(ok.status).toBe(200);
    const big = await postChunked('/v2/models/tiny/infer', [Buffer.alloc(40 * 1024, 32), Buffer.alloc(40 * 1024, 32)]);
    expect(big.status).toBe(413);
    expect(JSON.parse(big.body).error).toMatch(/too large/);
  });

  it('answers errors as JSON with the same content type as express', async () => {
    const response = await fetch(`${s.url}/v2/models/nope/infer`, { method: 'POST', body: jsonBody });
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(((await response.json()) as { error: string }).error).toMatch(/unknown model "nope"/);
  });
});

describe('REST: which requests the infer fast path takes', () => {
  const taken: string[] = [];
  const service = { isDraining: false, call: (labels: { model?: string }) => (taken.push(labels.model!), new Promise(() => {})) } as unknown as InferenceService;
  const request = (method: string, url: string, headers: http.IncomingHttpHeaders = {}) => ({ method, url, headers }) as http.IncomingMessage;
  const response = {} as http.ServerResponse;

  it('takes canonical infer POSTs and leaves the rest to express', () => {
    const plain = fastInferPath(service, serveConfig(), pino({ level: 'silent' }));
    const withCors = fastInferPath(service, serveConfig({ corsOrigins: ['*'] }), pino({ level: 'silent' }));
    expect(plain(request('POST', '/v2/models/tiny/infer'), response)).toBe(true);
    expect(plain(request('POST', '/v2/models/tiny/versions/3/infer?x=1'), response)).toBe(true);
    expect(plain(request('POST', '/v2/models/tiny/infer', { 'content-encoding': 'identity' }), response)).toBe(true);
    expect(withCors(request('POST', '/v2/models/tiny/infer'), response)).toBe(true);
    expect(taken).toEqual(['tiny', 'tiny', 'tiny', 'tiny']);
    expect(plain(request('GET', '/v2/models/tiny/infer'), response)).toBe(false);
    expect(plain(request('POST', '/v2/models/tiny/infer/'), response)).toBe(false);
    expect(plain(request('POST', '/v2/models/tiny/predict'), response)).toBe(false);
    expect(plain(request('POST', '/v2/models/t%69ny/infer'), response)).toBe(false);
    expect(plain(request('POST', '/v2/models/tiny/infer', { 'content-encoding': 'gzip' }), response)).toBe(false);
    expect(withCors(request('POST', '/v2/models/tiny/infer', { origin: 'https://app.example' }), response)).toBe(false);
    expect(taken).toHaveLength(4);
  });
});
