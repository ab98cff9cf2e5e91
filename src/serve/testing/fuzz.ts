/**
 * Hostile requests against a running server, by class (headers, bodies, encodings, escapes, binary
 * lengths, gRPC contents, names, images, fine-tune uploads). Each case is sent for real, over a raw
 * socket or a gRPC client; a case fails when the answer is a 5xx / INTERNAL / UNKNOWN, or when no
 * answer comes (the connection dropped: the server may have died).
 */
import net from 'node:net';
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import sharp from 'sharp';
import { mulberry32, type Random } from '../../base/random';
import { grpcClients, rawUnaryCall, type Client } from './harness';

export interface Target {
  httpPort: number;
  grpcAddress: string;
  /** A model the server serves, its input shape and a key for keyed endpoints. */
  model: string;
  inputShape: number[];
  apiKey: string;
  finetuneKey: string;
}

export interface RestCase {
  kind: 'rest';
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface GrpcCase {
  kind: 'grpc';
  service: 'inference' | 'predict' | 'finetune';
  method: string;
  request: unknown;
  metadata?: Record<string, string>;
}

export interface RawGrpcCase {
  kind: 'grpc-raw';
  path: string;
  bytes: Buffer;
}

export type FuzzCase = RestCase | GrpcCase | RawGrpcCase;

export interface Outcome {
  fuzzCase: FuzzCase;
  /** HTTP status, or the gRPC status code. */
  status: number | undefined;
  detail: string;
  failed: boolean;
}

const HUGE = 'x'.repeat(100_000);
const NAMES = ['%ff%fe', '%', '%zz', '%00', '%2F', '%2e%2e', '..', 'a%20b', '%E2%82%AC', encodeURIComponent(HUGE), 'tiny%ff', '-', '_x', 'a.b'];
const NUMBERS = ['1.5', '-1', '1e3', 'NaN', 'Infinity', '-0', '', ' 5', '0x10', '9007199254740993', '99999999999999999999', '007', '+4', '4 4'];

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

function floats(n: number, random: Random): number[] {
  return Array.from({ length: n }, () => random() * 2 - 1);
}

/** A valid OIP JSON infer body for the target, to mutate. */
function validInfer(t: Target, random: Random): Record<string, unknown> {
  const shape = [1, ...t.inputShape.slice(1)];
  return { id: 'f', inputs: [{ name: 'image', shape, datatype: 'FP32', data: floats(shape.reduce((a, b) => a * b, 1), random) }] };
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const rest = (method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): RestCase => ({ kind: 'rest', method, path, body, headers });

/** Replaces one random leaf or member of a JSON value with a hostile one. */
function mutate(value: unknown, random: Random, depth = 0): unknown {
  const hostile = [null, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, '', HUGE.slice(0, 5000), [], {}, [[[]]], true, 'FP32', [-1], [1e9, 1e9], { length: 5 }];
  if (depth > 4 || typeof value !== 'object' || value === null || random() < 0.2) return pick(random, hostile);
  if (Array.isArray(value)) {
    if (value.length === 0) return [pick(random, hostile)];
    const copy = value.slice();
    const i = Math.floor(random() * copy.length);
    copy[i] = mutate(copy[i], random, depth + 1);
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const key = random() < 0.15 ? pick(random, ['parameters', 'outputs', 'binary_data_size', 'timeout', '__proto__', 'constructor']) : pick(random, keys);
  if (random() < 0.15) delete copy[key];
  else copy[key] = mutate(copy[key], random, depth + 1);
  return copy;
}

function deepArray(depth: number): string {
  return '['.repeat(depth) + '1' + ']'.repeat(depth);
}

function restHeaderCases(t: Target, random: Random): FuzzCase[] {
  const path = `/v2/models/${t.model}/infer`;
  const body = json(validInfer(t, random));
  const cases: FuzzCase[] = NUMBERS.map((n) => rest('POST', path, body, { 'inference-header-content-length': n }));
  cases.push(rest('POST', path, body, { 'inference-header-content-length': String(body.length + 10) }));
  cases.push(rest('POST', path, Buffer.from('{"inputs":[]}'), { 'inference-header-content-length': '1.5' }));
  for (const type of ['', 'text/plain', 'application/json; charset=utf-16', 'application/json; charset=bogus', 'multipart/form-data', 'multipart/form-data; boundary=', 'image/png', '*/*', 'a'.repeat(4000)]) {
    cases.push(rest('POST', path, body, { 'content-type': type }));
    cases.push(rest('POST', `/v2/models/${t.model}/predict`, body, { 'content-type': type }));
  }
  for (const auth of ['', 'Bearer', 'Bearer ', 'Basic abc', `Bearer ${HUGE.slice(0, 6000)}`, 'Bearer \u00ff']) {
    cases.push(rest('POST', `/v2/repository/models/${t.model}/load`, undefined, { authorization: auth }));
    cases.push(rest('POST', `/v2/models/${t.model}/rollback`, json({ version: 1 }), { authorization: auth, 'content-type': 'application/json' }));
  }
  for (const n of ['-5', '1.5', 'abc', '99999999999999999999']) cases.push(rest('POST', path, body, { 'content-length': n }));
  cases.push(rest('POST', path, body, { 'transfer-encoding': 'chunked', 'content-length': String(body.length) }));
  cases.push(rest('GET', `/v2/models/${t.model}?top_k=5&top_k=6`));
  cases.push(rest('POST', `/v2/models/${t.model}/predict?top_k=${encodeURIComponent('[1]')}`, Buffer.from('x'), { 'content-type': 'image/png' }));
  for (const q of ['top_k=0', 'top_k=-1', 'top_k=1.5', 'top_k=1e9', 'top_k=NaN', 'object_threshold=2', 'object_threshold=NaN', 'top_k=', 'top_k=%ff']) {
    cases.push(rest('POST', `/v2/models/${t.model}/predict?${q}`, Buffer.from('not an image'), { 'content-type': 'image/png' }));
  }
  return cases;
}

function restBodyCases(t: Target, random: Random, count: number): FuzzCase[] {
  const path = `/v2/models/${t.model}/infer`;
  const type = { 'content-type': 'application/json' };
  const cases: FuzzCase[] = [];
  for (let i = 0; i < count; i++) cases.push(rest('POST', path, json(mutate(validInfer(t, random), random)), type));
  for (const raw of ['', '{', 'null', '[]', '"x"', '{"inputs":null}', '{"inputs":[{}]}', `{"inputs":[{"name":"image","shape":[1,3,16,16],"datatype":"FP32","data":${deepArray(5000)}}]}`, deepArray(100_000)]) {
    cases.push(rest('POST', path, Buffer.from(raw), type));
  }
  const shapes = [[1e9, 1e9, 1e9, 1e9], [2 ** 31, 3, 16, 16], [0, 3, 16, 16], [1, 3, 16], [-1, 3, 16, 16], [1.5, 3, 16, 16], [2 ** 53, 1], []];
  for (const shape of shapes) cases.push(rest('POST', path, json({ inputs: [{ name: 'image', shape, datatype: 'FP32', data: [1] }] }), type));
  for (const datatype of ['FP16', 'BYTES', 'fp32', '', 'INT8', 'BOOL', 'UINT64']) {
    cases.push(rest('POST', path, json({ inputs: [{ name: 'image', shape: [1, 2], datatype, data: [1, 300] }] }), type));
  }
  for (let i = 0; i < Math.max(4, count / 4); i++) cases.push(rest('POST', path, Buffer.from(Array.from({ length: 1 + Math.floor(random() * 300) }, () => Math.floor(random() * 256)))));
  const predictBodies: unknown[] = [
    { image: '' },
    { image: '!!!' },
    { images: [] },
    { images: ['AAAA', 5] },
    { image: 'iVBORw0KGgo=', top_k: 1e9 },
    { image: 'iVBORw0KGgo=', top_k: 0 },
    { image: 'iVBORw0KGgo=', top_k: 2.5 },
    { image: 'iVBORw0KGgo=', object_threshold: -1 },
    { image: 'data:image/png;base64', images: ['x'] },
    { image: 'data:,' },
  ];
  for (const b of predictBodies) cases.push(rest('POST', `/v2/models/${t.model}/predict`, json(b), type));
  for (const b of ['{"ready": "yes"}', '[1]', 'nope', '{"ready": true}']) cases.push(rest('POST', '/v2/repository/index', Buffer.from(b)));
  return cases;
}

function encodingCases(t: Target, random: Random): FuzzCase[] {
  const body = json(validInfer(t, random));
  const bodies: Record<string, Buffer> = {
    plain: body,
    gzip: zlib.gzipSync(body),
    deflate: zlib.deflateSync(body),
    br: zlib.brotliCompressSync(body),
    truncated: zlib.gzipSync(body).subarray(0, 20),
  };
  const bomb = zlib.gzipSync(Buffer.alloc(80 * 1024 * 1024, 0x20));
  const cases: FuzzCase[] = [];
  const paths = [`/v2/models/${t.model}/infer`, `/v2/models/${t.model}/predict`, '/v2/predict', '/v2/repository/index', `/v2/models/${t.model}/rollback`, `/v2/models/${t.model}/finetune`];
  for (const encoding of ['gzip', 'deflate', 'br', 'zstd', 'compress', 'identity', 'GZIP', 'gzip, gzip', 'x-gzip', '', 'gzip;q=1']) {
    for (const [, b] of Object.entries(bodies)) {
      const p = pick(random, paths);
      cases.push(rest('POST', p, b, { 'content-encoding': encoding, 'content-type': 'application/json', authorization: `Bearer ${t.finetuneKey}` }));
    }
  }
  cases.push(rest('POST', `/v2/models/${t.model}/infer`, bomb, { 'content-encoding': 'gzip', 'content-type': 'application/json' }));
  return cases;
}

function escapeCases(t: Target): FuzzCase[] {
  const templates: [string, string][] = [
    ['GET', '/v2/models/{n}'],
    ['GET', '/v2/models/{n}/ready'],
    ['GET', `/v2/models/${t.model}/versions/{n}`],
    ['GET', `/v2/models/${t.model}/versions/{n}/ready`],
    ['GET', '/v2/models/{n}/versions/{n}'],
    ['POST', '/v2/models/{n}/infer'],
    ['POST', `/v2/models/${t.model}/versions/{n}/infer`],
    ['POST', '/v2/models/{n}/predict'],
    ['POST', `/v2/models/${t.model}/versions/{n}/predict`],
    ['POST', '/v2/repository/models/{n}/load'],
    ['POST', '/v2/repository/models/{n}/unload'],
    ['GET', '/v2/models/{n}/versions'],
    ['POST', '/v2/models/{n}/rollback'],
    ['POST', '/v2/models/{n}/finetune'],
    ['GET', '/v2/finetune/jobs/{n}'],
    ['GET', '/v2/finetune/jobs/{n}/events'],
    ['POST', '/v2/finetune/jobs/{n}/cancel'],
    ['GET', '/v2/finetune/jobs?model={n}&state={n}'],
    ['GET', '/{n}'],
    ['GET', '/app/{n}'],
    ['GET', '/ort/{n}'],
    ['GET', '/v2/models/{n}/versions/{n}/files/{n}'],
    ['GET', `/v2/models/${t.model}/versions/latest/files/{n}`],
    ['POST', '/v2/models/{n}/weights'],
  ];
  const cases: FuzzCase[] = [];
  for (const [method, template] of templates) {
    for (const name of NAMES) {
      cases.push(rest(method, template.replaceAll('{n}', name), method === 'POST' ? Buffer.from('{}') : undefined, { 'content-type': 'application/json', authorization: `Bearer ${t.finetuneKey}` }));
    }
  }
  return cases;
}

function binaryLengthCases(t: Target, random: Random): FuzzCase[] {
  const path = `/v2/models/${t.model}/infer`;
  const elements = t.inputShape.slice(1).reduce((a, b) => a * b, 1);
  const tensor = Buffer.from(new Float32Array(floats(elements, random)).buffer);
  const cases: FuzzCase[] = [];
  for (const size of [tensor.length, tensor.length - 1, tensor.length + 4, 0, -4, 1.5, 2 ** 53, 1e308, '16', null, true, Number.MAX_SAFE_INTEGER]) {
    const header = json({ inputs: [{ name: 'image', shape: [1, ...t.inputShape.slice(1)], datatype: 'FP32', parameters: { binary_data_size: size } }] });
    for (const headerLength of [String(header.length), String(header.length - 1), String(header.length + 3), '0']) {
      cases.push(rest('POST', path, Buffer.concat([header, tensor]), { 'inference-header-content-length': headerLength, 'content-type': 'application/octet-stream' }));
    }
  }
  cases.push(rest('POST', path, tensor.subarray(0, tensor.length - 2), { 'inference-header-content-length': '0' }));
  cases.push(rest('POST', path, Buffer.alloc(0), { 'inference-header-content-length': '0' }));
  return cases;
}

function inferMessage(t: Target, overrides: Record<string, unknown>): unknown {
  return { model_name: t.model, inputs: [{ name: 'image', datatype: 'FP32', shape: [1, ...t.inputShape.slice(1)] }], ...overrides };
}

function grpcContentCases(t: Target, random: Random): FuzzCase[] {
  const elements = t.inputShape.slice(1).reduce((a, b) => a * b, 1);
  const shape = [1, ...t.inputShape.slice(1)];
  const good = Buffer.from(new Float32Array(floats(elements, random)).buffer);
  const g = (request: unknown): GrpcCase => ({ kind: 'grpc', service: 'inference', method: 'ModelInfer', request });
  const cases: FuzzCase[] = [
    g(inferMessage(t, { raw_input_contents: [good.subarray(1)] })),
    g(inferMessage(t, { raw_input_contents: [good, good] })),
    g(inferMessage(t, { raw_input_contents: [Buffer.alloc(0)] })),
    g(inferMessage(t, { inputs: [{ name: 'image', datatype: 'FP32', shape, contents: { fp32_contents: [NaN, ...floats(elements - 1, random)] } }] })),
    g(inferMessage(t, { inputs: [{ name: 'image', datatype: 'FP32', shape, contents: { fp32_contents: floats(elements, random), fp64_contents: [1] } }] })),
    g(inferMessage(t, { inputs: [{ name: 'image', datatype: 'FP32', shape, contents: { int_contents: [1, 2] } }] })),
    g(inferMessage(t, { inputs: [{ name: 'image', datatype: 'INT8', shape: [1, 2], contents: { int_contents: [1000, -1000] } }] })),
    g(inferMessage(t, { inputs: [{ name: 'image', datatype: 'UINT8', shape: [1, 2], contents: { uint_contents: [300, 1] } }] })),
    g(inferMessage(t, { inputs: [{ name: 'image', datatype: 'FP32', shape: [2 ** 40, 2 ** 20], contents: {} }] })),
    g(inferMessage(t, { inputs: [{ name: 'image', datatype: 'FP32', shape: [1e15, 1e15], contents: {} }] })),
    g(inferMessage(t, { inputs: [] })),
    g(inferMessage(t, { inputs: [{ name: '', datatype: '', shape: [] }] })),
    g(inferMessage(t, { outputs: [{ name: HUGE }] })),
    g(inferMessage(t, { parameters: { timeout: { int64_param: -5 } }, raw_input_contents: [good] })),
    g(inferMessage(t, { parameters: { timeout: { int64_param: 2 ** 60 } }, raw_input_contents: [good] })),
    g(inferMessage(t, { model_version: '1.5', raw_input_contents: [good] })),
    g(inferMessage(t, { model_version: HUGE, raw_input_contents: [good] })),
  ];
  for (let i = 0; i < 12; i++) {
    const bytes = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256)));
    cases.push({ kind: 'grpc-raw', path: pick(random, ['/inference.GRPCInferenceService/ModelInfer', '/inference.GRPCInferenceService/ModelMetadata', '/trident.v1.Predict/Predict', '/trident.finetune.v1.FineTune/CreateJob']), bytes });
  }
  return cases;
}

function grpcNameCases(t: Target): FuzzCase[] {
  const names = [HUGE, '', '..', '../etc', '\u0000', 'a'.repeat(129), `${t.model}\n`, '%ff'];
  const keyed = { authorization: `Bearer ${t.apiKey}` };
  const ft = { authorization: `Bearer ${t.finetuneKey}` };
  const cases: FuzzCase[] = [];
  for (const name of names) {
    cases.push({ kind: 'grpc', service: 'inference', method: 'ModelMetadata', request: { name } });
    cases.push({ kind: 'grpc', service: 'inference', method: 'ModelReady', request: { name, version: name } });
    cases.push({ kind: 'grpc', service: 'inference', method: 'ModelInfer', request: inferMessage(t, { model_name: name }) });
    cases.push({ kind: 'grpc', service: 'inference', method: 'RepositoryModelLoad', request: { model_name: name }, metadata: keyed });
    cases.push({ kind: 'grpc', service: 'inference', method: 'RepositoryModelUnload', request: { model_name: name }, metadata: keyed });
    cases.push({ kind: 'grpc', service: 'predict', method: 'Predict', request: { model_name: name, images: [Buffer.from('x')] } });
    cases.push({ kind: 'grpc', service: 'finetune', method: 'GetJob', request: { id: name } });
    cases.push({ kind: 'grpc', service: 'finetune', method: 'CancelJob', request: { id: name }, metadata: ft });
    cases.push({ kind: 'grpc', service: 'finetune', method: 'ListVersions', request: { model: name } });
    cases.push({ kind: 'grpc', service: 'finetune', method: 'Rollback', request: { model: name, version: 1 }, metadata: ft });
    cases.push({ kind: 'grpc', service: 'finetune', method: 'CreateJob', request: { model: name, dataFolder: name }, metadata: ft });
  }
  cases.push({ kind: 'grpc', service: 'finetune', method: 'CreateJob', request: { model: t.model, files: [{ name: '../../escape.png', content: Buffer.from('x') }, { name: 'annotations.jsonl', content: Buffer.from('{') }] }, metadata: ft });
  cases.push({ kind: 'grpc', service: 'finetune', method: 'CreateJob', request: { model: t.model, files: [{ name: '/abs/a.png', content: Buffer.alloc(0) }] }, metadata: ft });
  return cases;
}

async function imageBodies(random: Random): Promise<Buffer[]> {
  const png = await sharp({ create: { width: 20, height: 12, channels: 3, background: '#336699' } }).png().toBuffer();
  const jpeg = await sharp({ create: { width: 20, height: 12, channels: 3, background: '#336699' } }).jpeg().toBuffer();
  const hugePng = Buffer.from(png);
  hugePng.writeUInt32BE(100_000, 16);
  hugePng.writeUInt32BE(100_000, 20);
  const grey16 = await sharp(Buffer.alloc(8 * 8 * 2, 0x7f), { raw: { width: 8, height: 8, channels: 1 } }).png({ compressionLevel: 0 }).toBuffer();
  const cmyk = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#ff0000' } }).toColourspace('cmyk').jpeg().toBuffer();
  const gif = await sharp({ create: { width: 9, height: 9, channels: 4, background: '#00ff0080' } }).gif().toBuffer();
  const tall = await sharp({ create: { width: 1, height: 4000, channels: 3, background: '#000' } }).png().toBuffer();
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  const noise = Buffer.from(Array.from({ length: 200 }, () => Math.floor(random() * 256)));
  return [png, jpeg, png.subarray(0, 30), jpeg.subarray(0, jpeg.length / 2), hugePng, grey16, cmyk, gif, tall, svg, noise, Buffer.alloc(1), Buffer.from('GIF89a'), Buffer.from('\x89PNG\r\n\x1a\n')];
}

async function imageCases(t: Target, random: Random): Promise<FuzzCase[]> {
  const cases: FuzzCase[] = [];
  for (const image of await imageBodies(random)) {
    cases.push(rest('POST', `/v2/models/${t.model}/predict`, image, { 'content-type': 'image/png' }));
    cases.push(rest('POST', '/v2/predict', json({ images: [image.toString('base64'), image.toString('base64')] }), { 'content-type': 'application/json' }));
    const boundary = 'fuzzboundary';
    const multipart = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
      image,
      Buffer.from(`\r\n--${boundary}\r\nContent-Disposition: form-data; name="top_k"\r\n\r\n${pick(random, ['2', 'x', '-1', '1e9', ''])}\r\n--${boundary}--\r\n`),
    ]);
    cases.push(rest('POST', `/v2/models/${t.model}/predict`, multipart, { 'content-type': `multipart/form-data; boundary=${boundary}` }));
    cases.push(rest('POST', `/v2/models/${t.model}/predict`, multipart.subarray(0, multipart.length - 9), { 'content-type': `multipart/form-data; boundary=${boundary}` }));
    cases.push({ kind: 'grpc', service: 'predict', method: 'Predict', request: { model_name: t.model, images: [image], top_k: pick(random, [0, 1, 3, 1e9, 2 ** 32 - 1]) } });
  }
  return cases;
}

function uploadCases(t: Target, random: Random): FuzzCase[] {
  const path = `/v2/models/${t.model}/finetune`;
  const auth = { authorization: `Bearer ${t.finetuneKey}` };
  const boundary = 'up';
  const part = (name: string, filename: string | undefined, content: string) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename === undefined ? '' : `; filename="${filename}"`}\r\n\r\n${content}\r\n`;
  const forms = [
    part('annotations', 'annotations.jsonl', '{"file":"../x.png","label":"a","box":null}') + `--${boundary}--\r\n`,
    part('f', '../../../etc/passwd', 'x') + `--${boundary}--\r\n`,
    part('f', '/abs/path.png', 'x') + `--${boundary}--\r\n`,
    part('f', 'a\u0000b.png', 'x') + `--${boundary}--\r\n`,
    part('f', '', 'x') + `--${boundary}--\r\n`,
    part('params', undefined, '{"lr": "fast", "epochs": -1}') + part('annotations', 'annotations.jsonl', '') + `--${boundary}--\r\n`,
    part('params', undefined, '[1,2]') + `--${boundary}--\r\n`,
    part('force', undefined, 'maybe') + `--${boundary}--\r\n`,
    `--${boundary}\r\nContent-Disposition: form-data; name="x"; filename="a.png"\r\n\r\nunterminated`,
    'garbage',
  ];
  const cases: FuzzCase[] = forms.map((f) => rest('POST', path, Buffer.from(f), { 'content-type': `multipart/form-data; boundary=${boundary}`, ...auth }));
  for (const body of ['{"data": 5}', '{"data": "/etc"}', '{"data": "../.."}', '{"data": "x", "params": {"optimizer": "nope"}}', '{"data": "x", "force": "perhaps"}', '[]', '{']) {
    cases.push(rest('POST', path, Buffer.from(body), { 'content-type': 'application/json', ...auth }));
  }
  for (const body of ['{"version": "1.5"}', '{"version": -1}', '{"version": 1e300}', '{"version": "99999999999"}', '{}', 'x']) {
    cases.push(rest('POST', `/v2/models/${t.model}/rollback`, Buffer.from(body), { 'content-type': 'application/json', ...auth }));
  }
  for (const body of ['', 'garbage', '{"checkpoint": 5}', JSON.stringify({ checkpoint: 'AAAA', sha256: 'x'.repeat(64) })]) {
    for (const type of ['application/octet-stream', 'application/json', 'multipart/form-data; boundary=up']) {
      cases.push(rest('POST', `/v2/models/${t.model}/weights`, Buffer.from(body), { 'content-type': type, ...auth }));
    }
  }
  cases.push(rest('GET', '/v2/finetune/jobs?state=bogus'));
  cases.push(rest('GET', '/v2/finetune/jobs?model=a&model=b'));
  cases.push(rest('GET', `/v2/finetune/jobs/${Math.floor(random() * 1e9)}/events`));
  return cases;
}

export const FUZZ_CLASSES = ['rest headers', 'rest bodies', 'encodings', 'escapes', 'binary lengths', 'grpc contents', 'grpc names', 'images', 'uploads'] as const;
export type FuzzClass = (typeof FUZZ_CLASSES)[number];

/** Every class's cases for `target`, drawn from `seed`; `scale` multiplies the randomised ones. */
export async function fuzzCases(target: Target, seed: number, scale = 1): Promise<Record<FuzzClass, FuzzCase[]>> {
  const random = mulberry32(seed);
  return {
    'rest headers': restHeaderCases(target, random),
    'rest bodies': restBodyCases(target, random, 40 * scale),
    encodings: encodingCases(target, random),
    escapes: escapeCases(target),
    'binary lengths': binaryLengthCases(target, random),
    'grpc contents': grpcContentCases(target, random),
    'grpc names': grpcNameCases(target),
    images: await imageCases(target, random),
    uploads: uploadCases(target, random),
  };
}

/** Sends one HTTP/1.1 request over a raw socket and reads the status line of the answer. */
export function sendRaw(port: number, c: RestCase, timeoutMs = 10_000): Promise<{ status: number | undefined; head: string }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const body = c.body ?? Buffer.alloc(0);
    const headers: Record<string, string> = { host: '127.0.0.1', connection: 'close', ...c.headers };
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-length' || h.toLowerCase() === 'transfer-encoding')) headers['content-length'] = String(body.length);
    const head = `${c.method} ${c.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: match ? Number(match[1]) : undefined, head: text.slice(0, 400) });
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (d) => chunks.push(d));
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', () => {});
    // No half-close: the server answers and closes (connection: close); a FIN from us could end the socket first.
    socket.write(head, 'latin1');
    socket.write(body);
  });
}

function grpcCall(client: Client, method: string, request: unknown, metadata: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const meta = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) meta.set(k, v);
    try {
      (client[method] as (...a: unknown[]) => void).call(client, request, meta, { deadline: Date.now() + 5_000 }, (error: grpc.ServiceError | null) =>
        resolve(error ? error.code : grpc.status.OK),
      );
    } catch {
      // The client could not even encode the request (a value out of the field's range): nothing was sent.
      resolve(-1);
    }
  });
}

/** Server faults, and no answer in time (an answer the client could not read, such as an oversized status, ends so). */
const GRPC_FAULTS = new Set([grpc.status.INTERNAL, grpc.status.UNKNOWN, grpc.status.UNAVAILABLE, grpc.status.DATA_LOSS, grpc.status.DEADLINE_EXCEEDED]);

/** Sends every case, one at a time, and reports each answer. */
export async function runCases(target: Target, cases: FuzzCase[]): Promise<Outcome[]> {
  const clients = grpcClients(target.grpcAddress);
  const finetune = clients.finetune;
  const outcomes: Outcome[] = [];
  try {
    for (const c of cases) {
      if (c.kind === 'rest') {
        const { status, head } = await sendRaw(target.httpPort, c);
        outcomes.push({ fuzzCase: c, status, detail: head, failed: status === undefined || status >= 500 });
      } else if (c.kind === 'grpc') {
        const client = c.service === 'inference' ? clients.inference : c.service === 'predict' ? clients.predict : finetune;
        const code = await grpcCall(client, c.method, c.request, c.metadata);
        outcomes.push({ fuzzCase: c, status: code, detail: grpc.status[code] ?? String(code), failed: GRPC_FAULTS.has(code) });
      } else {
        const code = await rawUnaryCall(clients.inference, c.path, c.bytes).then(
          () => grpc.status.OK,
          (e: grpc.ServiceError) => e.code,
        );
        outcomes.push({ fuzzCase: c, status: code, detail: grpc.status[code] ?? String(code), failed: GRPC_FAULTS.has(code) });
      }
    }
  } finally {
    clients.close();
  }
  return outcomes;
}

/** A case in one line, its body cut short, for failure reports. */
export function describeCase(c: FuzzCase): string {
  if (c.kind === 'rest') return `${c.method} ${c.path.slice(0, 120)} ${JSON.stringify(c.headers).slice(0, 200)} body=${(c.body ?? Buffer.alloc(0)).subarray(0, 120).toString('latin1')}`;
  if (c.kind === 'grpc') return `gRPC ${c.service}.${c.method} ${JSON.stringify(c.request, (_k, v) => (typeof v === 'string' && v.length > 100 ? `${v.slice(0, 20)}…(${v.length})` : v)).slice(0, 300)}`;
  return `gRPC raw ${c.path} ${c.bytes.toString('hex').slice(0, 80)}`;
}
