/**
 * What hostile input gets back, message by message, and what a handler that throws at each stage of
 * a request does: a clean error to that client, and a server that goes on answering.
 */
import zlib from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import type { JobManager } from '../finetune/manager';
import { finetuneConfig } from '../finetune/config';
import { grpcClients, patternImage, startTestServer, tinyTensor, unaryCall, type TestServer } from './testing/harness';
import { sendRaw } from './testing/fuzz';

let s: TestServer;
let clients: ReturnType<typeof grpcClients>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Message = Record<string, any>;

beforeAll(async () => {
  s = await startTestServer({ finetune: finetuneConfig({ apiKeys: ['ft'], reference: false, nice: 0 }) });
  clients = grpcClients(s.grpcAddress);
});
afterAll(async () => {
  clients.close();
  await s.close();
});

const port = () => Number(new URL(s.url).port);
const inferBody = (n = 1) => Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [n, 3, 16, 16], datatype: 'FP32', data: Array.from(tinyTensor(n, 0)) }] }));
const post = (path: string, body: Buffer, headers: Record<string, string> = {}) => fetch(`${s.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

async function expectRefusal(response: Response, status: number, message: RegExp): Promise<void> {
  const body = (await response.json()) as { error: string };
  expect({ status: response.status, error: body.error }).toEqual({ status, error: expect.stringMatching(message) });
}

async function live(): Promise<void> {
  expect((await fetch(`${s.url}/v2/health/live`)).status).toBe(200);
  await expect(unaryCall(clients.inference, 'ServerLive', {})).resolves.toEqual({ live: true });
}

function grpcStatusOf(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  return promise.then(
    () => ({ code: grpc.status.OK, details: '' }),
    (e: grpc.ServiceError) => ({ code: e.code, details: e.details }),
  );
}

describe('REST: headers, encodings and escapes', () => {
  it.each(['1.5', '-1', 'NaN', 'Infinity', '1e3', '0x10', '+4', '9007199254740993'])('refuses Inference-Header-Content-Length %p with 400 on the fast path', async (value) => {
    const r = await sendRaw(port(), { kind: 'rest', method: 'POST', path: '/v2/models/tiny/infer', headers: { 'inference-header-content-length': value }, body: Buffer.from('{"inputs":[]}') });
    expect(r.status).toBe(400);
    expect(r.head).toMatch(/Inference-Header-Content-Length .* must be a non-negative integer/);
    await live();
  });

  it('refuses a header length past the end of the body', async () => {
    await expectRefusal(await post('/v2/models/tiny/infer', inferBody(), { 'inference-header-content-length': '999999' }), 400, /longer than the body/);
  });

  it.each(['gzip', 'deflate', 'br'])('answers %s on a body that is not compressed with 400, on infer and predict', async (encoding) => {
    for (const path of ['/v2/models/tiny/infer', '/v2/models/tiny/predict']) {
      await expectRefusal(await post(path, inferBody(), { 'content-encoding': encoding }), 400, /could not read the request body/);
    }
  });

  it('reads compressed bodies and refuses an unsupported encoding with 415', async () => {
    const ok = await post('/v2/models/tiny/infer', zlib.gzipSync(inferBody()), { 'content-encoding': 'gzip' });
    expect(ok.status).toBe(200);
    await expectRefusal(await post('/v2/models/tiny/infer', inferBody(), { 'content-encoding': 'compress' }), 415, /unsupported content encoding "compress"/);
  });

  it.each([
    ['GET', '/v2/models/%ff%fe'],
    ['GET', '/v2/models/tiny/versions/%ff'],
    ['GET', '/v2/models/%/ready'],
    ['POST', '/v2/models/%zz/infer'],
    ['POST', '/v2/repository/models/%ff/load'],
    ['GET', '/v2/models/%ff/versions'],
    ['GET', '/v2/finetune/jobs/%ff'],
  ])('answers malformed percent-escapes in %s %s with 400', async (method, path) => {
    await expectRefusal(await fetch(`${s.url}${path}`, { method, body: method === 'POST' ? '{}' : undefined }), 400, /malformed percent-encoding/);
  });

  it('answers a request line past the header limit with 431, and stays up', async () => {
    const r = await sendRaw(port(), { kind: 'rest', method: 'GET', path: `/v2/models/${'x'.repeat(100_000)}` });
    expect(r.status).toBe(431);
    await live();
  });

  it('cuts echoed input short', async () => {
    const response = await fetch(`${s.url}/v2/models/${'m'.repeat(5000)}`);
    const body = (await response.json()) as { error: string };
    expect(response.status).toBe(404);
    expect(body.error).toMatch(/^unknown model "m{80}"… \(5000 characters\)/);
  });
});

describe('tensor contents', () => {
  const typed = (contents: Message, datatype = 'FP32', shape = [1, 3, 16, 16]) => ({ model_name: 'tiny', inputs: [{ name: 'image', datatype, shape, contents }] });

  it('accepts NaN and infinities in fp32_contents, as raw bytes could carry them', async () => {
    const values = Array.from(tinyTensor(1, 0));
    values[0] = NaN;
    values[1] = Infinity;
    const response = await unaryCall<Message>(clients.inference, 'ModelInfer', typed({ fp32_contents: values }));
    expect(response.outputs).toHaveLength(3);
  });

  it('refuses a second contents field next to the one the datatype reads', async () => {
    const { code, details } = await grpcStatusOf(unaryCall(clients.inference, 'ModelInfer', typed({ fp32_contents: Array.from(tinyTensor(1, 0)), fp64_contents: [1] })));
    expect([code, details]).toEqual([grpc.status.INVALID_ARGUMENT, 'input "image": datatype FP32 reads fp32_contents, but fp64_contents is set too']);
  });

  it('refuses integers outside their datatype, naming the range', async () => {
    const { code, details } = await grpcStatusOf(unaryCall(clients.inference, 'ModelInfer', typed({ int_contents: [1000] }, 'INT8', [1])));
    expect([code, details]).toEqual([grpc.status.INVALID_ARGUMENT, 'input "image": element 0 is 1000, expected an integer in -128..127 for INT8']);
  });

  it('refuses JSON data nested deeper than any tensor', async () => {
    const nested = '['.repeat(10_000) + '1' + ']'.repeat(10_000);
    const body = Buffer.from(`{"inputs":[{"name":"image","shape":[1],"datatype":"FP32","data":${nested}}]}`);
    await expectRefusal(await post('/v2/models/tiny/infer', body), 400, /nested more than 64 levels/);
  });

  it('answers a 100,000-character model name over gRPC with NOT_FOUND or INVALID_ARGUMENT and short details', async () => {
    const { code, details } = await grpcStatusOf(unaryCall(clients.inference, 'ModelMetadata', { name: 'n'.repeat(100_000) }));
    expect([grpc.status.NOT_FOUND, grpc.status.INVALID_ARGUMENT]).toContain(code);
    expect(details.length).toBeLessThanOrEqual(1000);
    const finetune = await grpcStatusOf(unaryCall(clients.finetune, 'GetJob', { id: 'j'.repeat(100_000) }));
    expect(finetune.code).toBe(grpc.status.NOT_FOUND);
    expect(finetune.details.length).toBeLessThanOrEqual(1000);
  });

  it('bounds top_k by the model\'s classes on REST and gRPC', async () => {
    const image = await patternImage(20, 20, 1);
    await expectRefusal(await post('/v2/models/tiny/predict?top_k=4', image, { 'content-type': 'image/png' }), 400, /top_k must be at most the model's number of classes \(3\), got 4/);
    const { code } = await grpcStatusOf(unaryCall(clients.predict, 'Predict', { model_name: 'tiny', images: [image], top_k: 1_000_000_000 }));
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
    const ok = await post('/v2/models/tiny/predict?top_k=3', image, { 'content-type': 'image/png' });
    expect(((await ok.json()) as Message).class.top_k).toHaveLength(3);
  });
});

/** Replaces `target[name]` for one test, restoring it afterwards. */
async function withPatched<T extends object, K extends keyof T>(target: T, name: K, replacement: T[K], body: () => Promise<void>): Promise<void> {
  const original = target[name];
  target[name] = replacement;
  try {
    await body();
  } finally {
    target[name] = original;
  }
}

describe('a handler that throws at each stage', () => {
  const service = () => s.server.service;
  const manager = (): JobManager => s.server.finetune!;

  it('REST route (express): a synchronous TypeError becomes a 500 with its message', async () => {
    await withPatched(service(), 'modelMetadata', () => {
      throw new TypeError('boom in metadata');
    }, async () => {
      await expectRefusal(await fetch(`${s.url}/v2/models/tiny`), 500, /boom in metadata/);
    });
    await live();
  });

  it('REST infer fast path: a synchronous throw and a thrown non-Error both become 500s', async () => {
    await withPatched(service(), 'infer', () => {
      throw 'a string';
    }, async () => {
      await expectRefusal(await post('/v2/models/tiny/infer', inferBody()), 500, /a string/);
    });
    await live();
  });

  it('gRPC unary and streaming: INTERNAL for the failed call, the stream goes on', async () => {
    await withPatched(service(), 'modelMetadata', () => {
      throw new Error('boom over gRPC');
    }, async () => {
      const { code, details } = await grpcStatusOf(unaryCall(clients.inference, 'ModelMetadata', { name: 'tiny' }));
      expect([code, details]).toEqual([grpc.status.INTERNAL, 'boom over gRPC']);
    });
    let calls = 0;
    const infer = service().infer.bind(service());
    await withPatched(service(), 'infer', (request, ctx) => {
      if (++calls === 1) throw new Error('first fails');
      return infer(request, ctx);
    }, async () => {
      const stream = (clients.inference.ModelStreamInfer as () => grpc.ClientDuplexStream<Message, Message>).call(clients.inference);
      const received: Message[] = [];
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('data', (m: Message) => received.push(m));
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      const request = { model_name: 'tiny', inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 16, 16] }], raw_input_contents: [Buffer.from(tinyTensor(1, 0).buffer)] };
      stream.write(request);
      stream.write(request);
      stream.end();
      await ended;
      expect(received.map((m) => m.error_message)).toEqual(['first fails', '']);
    });
    await live();
  });

  it('SSE: an event source that fails mid-stream ends the stream, nothing else', async () => {
    await withPatched(manager(), 'watch', async () =>
      (async function* () {
        yield { type: 'state', state: 'running' } as never;
        throw new Error('event source broke');
      })(),
    async () => {
      const response = await fetch(`${s.url}/v2/finetune/jobs/any/events`);
      expect(response.status).toBe(200);
      const text = await response.text();
      expect(text).toContain('event: state');
    });
    await live();
  });

  it('gRPC WatchJob: an event source that fails mid-stream ends the call with its status', async () => {
    await withPatched(manager(), 'watch', async () =>
      (async function* () {
        yield { type: 'state', state: 'running' } as never;
        throw new Error('event source broke');
      })(),
    async () => {
      const call = (clients.finetune.WatchJob as (r: unknown) => grpc.ClientReadableStream<Message>).call(clients.finetune, { id: 'any' });
      const outcome = await new Promise<{ messages: number; code: number }>((resolve) => {
        let messages = 0;
        call.on('data', () => messages++);
        call.on('error', (e: grpc.ServiceError) => resolve({ messages, code: e.code }));
        call.on('end', () => resolve({ messages, code: grpc.status.OK }));
      });
      expect(outcome).toEqual({ messages: 1, code: grpc.status.INTERNAL });
    });
    await live();
  });

  it('upload stream: a writer that throws ends the upload with an error and leaves the server up', async () => {
    await withPatched(manager(), 'reserve', async () => {
      throw new Error('disk on fire');
    }, async () => {
      const form = new FormData();
      form.append('annotations', new Blob(['{"file":"a.png","label":"a","box":null}\n']), 'annotations.jsonl');
      const response = await fetch(`${s.url}/v2/models/tiny/finetune`, { method: 'POST', body: form, headers: { authorization: 'Bearer ft' } });
      expect(response.status).toBe(500);
      expect(((await response.json()) as Message).error).toBe('disk on fire');
    });
    await live();
  });
});
