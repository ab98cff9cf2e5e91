import * as grpc from '@grpc/grpc-js';
import { grpcClients, patternImage, rawUnaryCall, solidImage, startTestServer, TINY_METADATA, tinyTensor, unaryCall, type TestServer } from '../testing/harness';

let s: TestServer;
let clients: ReturnType<typeof grpcClients>;

beforeAll(async () => {
  s = await startTestServer({ maxGrpcMessageBytes: 8 * 1024 * 1024, maxPixels: 100_000 });
  clients = grpcClients(s.grpcAddress);
});
afterAll(async () => {
  clients.close();
  await s.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Message = any;

const infer = (request: Message, options = {}) => unaryCall<Message>(clients.inference, 'ModelInfer', request, options);

function rawRequest(n: number, seed: number, extra: Message = {}): Message {
  return {
    model_name: 'tiny',
    inputs: [{ name: 'image', datatype: 'FP32', shape: [n, 3, 16, 16] }],
    raw_input_contents: [Buffer.from(tinyTensor(n, seed).buffer)],
    ...extra,
  };
}

function floats(bytes: Buffer): number[] {
  const copy = Buffer.from(bytes);
  return Array.from(new Float32Array(copy.buffer, copy.byteOffset, copy.length / 4));
}

async function expectStatus(promise: Promise<unknown>, code: grpc.status, details: RegExp): Promise<void> {
  await expect(promise).rejects.toMatchObject({ code, details: expect.stringMatching(details) });
}

describe('gRPC: inference.GRPCInferenceService', () => {
  it('answers health and metadata', async () => {
    expect(await unaryCall(clients.inference, 'ServerLive', {})).toEqual({ live: true });
    expect(await unaryCall(clients.inference, 'ServerReady', {})).toEqual({ ready: true });
    expect(await unaryCall(clients.inference, 'ModelReady', { name: 'tiny', version: '1' })).toEqual({ ready: true });
    expect(await unaryCall(clients.inference, 'ServerMetadata', {})).toMatchObject({ name: 'trident', extensions: expect.arrayContaining(['binary_tensor_data']) });
    const meta = await unaryCall<Message>(clients.inference, 'ModelMetadata', { name: 'tiny' });
    expect(meta).toEqual(TINY_METADATA);
  });

  it('infers raw_input_contents and answers raw_output_contents, equal to typed contents and to REST', async () => {
    const raw = await infer(rawRequest(2, 4, { id: 'a' }));
    expect(raw).toMatchObject({ model_name: 'tiny', model_version: '2', id: 'a' });
    expect(raw.outputs.map((o: Message) => [o.name, o.datatype, o.shape])).toEqual([
      ['class_probs', 'FP32', [2, 3]],
      ['objectness', 'FP32', [2, 1]],
      ['box', 'FP32', [2, 4]],
    ]);
    const typed = await infer({
      model_name: 'tiny',
      inputs: [{ name: 'image', datatype: 'FP32', shape: [2, 3, 16, 16], contents: { fp32_contents: Array.from(tinyTensor(2, 4)) } }],
    });
    expect(typed.raw_output_contents.map(floats)).toEqual(raw.raw_output_contents.map(floats));
    const rest = await (
      await fetch(`${s.url}/v2/models/tiny/infer`, {
        method: 'POST',
        body: JSON.stringify({ inputs: [{ name: 'image', datatype: 'FP32', shape: [2, 3, 16, 16], data: Array.from(tinyTensor(2, 4)) }] }),
      })
    ).json();
    expect((rest as Message).outputs.map((o: Message) => o.data)).toEqual(raw.raw_output_contents.map(floats));
  });

  it('serves a named version and only the outputs asked for', async () => {
    const response = await infer(rawRequest(1, 0, { model_version: '1', outputs: [{ name: 'box' }] }));
    expect(response.model_version).toBe('1');
    expect(response.outputs.map((o: Message) => o.name)).toEqual(['box']);
    expect(response.raw_output_contents).toHaveLength(1);
  });

  it('accepts messages above grpc-js\'s 4 MiB default, and refuses those above the configured limit', async () => {
    await expectStatus(infer(rawRequest(2048, 0)), grpc.status.INVALID_ARGUMENT, /batch of 2048 exceeds the model's max batch size 8/);
    await expectStatus(infer(rawRequest(3072, 0)), grpc.status.RESOURCE_EXHAUSTED, /max|length|size/i);
  });

  it.each([
    ['unknown model', { model_name: 'nope' }, grpc.status.NOT_FOUND, /unknown model "nope"/],
    ['unknown version', { model_version: '5' }, grpc.status.NOT_FOUND, /no version 5/],
    ['bad version', { model_version: 'v1' }, grpc.status.INVALID_ARGUMENT, /invalid model version/],
    ['missing model name', { model_name: '' }, grpc.status.INVALID_ARGUMENT, /model_name is required/],
    ['missing input', { inputs: [{ name: 'other', datatype: 'FP32', shape: [1, 3, 16, 16] }] }, grpc.status.INVALID_ARGUMENT, /unexpected input "other"/],
    ['extra input', { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 16, 16] }, { name: 'x', datatype: 'FP32', shape: [1] }], raw_input_contents: [Buffer.from(tinyTensor(1, 0).buffer), Buffer.alloc(4)] }, grpc.status.INVALID_ARGUMENT, /unexpected input "x"/],
    ['wrong shape', { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 8, 32] }] }, grpc.status.INVALID_ARGUMENT, /does not match the model's/],
    ['wrong datatype', { inputs: [{ name: 'image', datatype: 'FP64', shape: [1, 3, 8, 16] }] }, grpc.status.INVALID_ARGUMENT, /datatype FP64 does not match the model's FP32/],
    ['wrong data length', { raw_input_contents: [Buffer.alloc(100)] }, grpc.status.INVALID_ARGUMENT, /got 100 bytes of data but shape \[1,3,16,16\] of FP32 needs 3072/],
    ['raw contents count', { raw_input_contents: [Buffer.alloc(3072), Buffer.alloc(4)] }, grpc.status.INVALID_ARGUMENT, /raw_input_contents has 2 entries but the request has 1 inputs/],
    ['raw and typed contents', { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 16, 16], contents: { fp32_contents: [1] } }] }, grpc.status.INVALID_ARGUMENT, /sets contents although raw_input_contents/],
    ['typed contents length', { inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 16, 16], contents: { fp32_contents: [1, 2] } }], raw_input_contents: [] }, grpc.status.INVALID_ARGUMENT, /data has 2 elements but shape \[1,3,16,16\] needs 768/],
    ['unknown datatype', { inputs: [{ name: 'image', datatype: 'FLOAT', shape: [1, 3, 16, 16] }] }, grpc.status.INVALID_ARGUMENT, /unknown datatype "FLOAT"/],
    ['unknown output', { outputs: [{ name: 'logits' }] }, grpc.status.INVALID_ARGUMENT, /unknown output "logits"/],
  ])('refuses %s', async (_name, change, code, details) => {
    await expectStatus(infer({ ...rawRequest(1, 0), ...(change as Message) }), code as grpc.status, details as RegExp);
  });

  it('refuses a malformed protobuf with INVALID_ARGUMENT', async () => {
    await expectStatus(
      rawUnaryCall(clients.inference, '/inference.GRPCInferenceService/ModelInfer', Buffer.from([0x3a, 0x40, 0x00])),
      grpc.status.INVALID_ARGUMENT,
      /malformed protobuf/,
    );
  });

  it('streams inference with per-message errors, in order, without ending the stream', async () => {
    const call = (clients.inference.ModelStreamInfer as () => grpc.ClientDuplexStream<Message, Message>).call(clients.inference);
    const received: Message[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (m: Message) => received.push(m));
      call.on('end', () => resolve());
      call.on('error', reject);
    });
    call.write(rawRequest(1, 1, { id: 'first' }));
    call.write({ ...rawRequest(1, 2), model_name: 'nope', id: 'bad' });
    call.write(rawRequest(2, 3, { id: 'third' }));
    call.end();
    await done;
    expect(received.map((m) => [m.error_message, m.infer_response?.id])).toEqual([
      ['', 'first'],
      [expect.stringMatching(/unknown model "nope"/), 'bad'],
      ['', 'third'],
    ]);
    expect(received[2].infer_response.outputs[0].shape).toEqual([2, 3]);
  });

  it('lists, loads and unloads through the repository RPCs with an API key', async () => {
    const index = await unaryCall<Message>(clients.inference, 'RepositoryIndex', { ready: true });
    expect(index.models.map((m: Message) => [m.name, m.version, m.state])).toEqual([
      ['tiny', '1', 'READY'],
      ['tiny', '2', 'READY'],
    ]);
    await expectStatus(unaryCall(clients.inference, 'RepositoryModelUnload', { model_name: 'tiny' }), grpc.status.UNAUTHENTICATED, /needs an API key/);
    const wrong = new grpc.Metadata();
    wrong.set('authorization', 'Bearer nope');
    await expectStatus(unaryCall(clients.inference, 'RepositoryModelUnload', { model_name: 'tiny' }, { metadata: wrong }), grpc.status.PERMISSION_DENIED, /not valid/);
    const key = new grpc.Metadata();
    key.set('x-api-key', 'test-key');
    await unaryCall(clients.inference, 'RepositoryModelUnload', { model_name: 'tiny' }, { metadata: key });
    await expectStatus(infer(rawRequest(1, 0)), grpc.status.NOT_FOUND, /unknown model "tiny"/);
    await unaryCall(clients.inference, 'RepositoryModelLoad', { model_name: 'tiny' }, { metadata: key });
    expect((await infer(rawRequest(1, 0))).model_version).toBe('2');
  });
});

describe('gRPC: trident.v1.Predict and health', () => {
  it('gives the same answer as REST for the same image', async () => {
    const image = await patternImage(48, 36, 9);
    const rest = (await (await fetch(`${s.url}/v2/models/tiny/predict?top_k=3`, { method: 'POST', body: image, headers: { 'content-type': 'image/png' } })).json()) as Message;
    const viaGrpc = await unaryCall<Message>(clients.predict, 'Predict', { model_name: 'tiny', images: [image], top_k: 3, id: 'p1' });
    expect(viaGrpc).toMatchObject({ model_name: 'tiny', model_version: '2', id: 'p1' });
    const p = viaGrpc.predictions[0];
    expect({
      class: { ...p.class, top_k: p.top_k },
      object: { present: p.object_present, score: p.object_score, threshold: p.object_threshold },
      box: { ...p.box, normalised: p.box_normalised },
      image: { width: p.image_width, height: p.image_height },
    }).toEqual({
      class: rest.class,
      object: rest.object,
      box: rest.box,
      image: rest.image,
    });
  });

  it('predicts several images, with the default model when none is named', async () => {
    const images = [await solidImage(10, 10), await patternImage(20, 10, 3)];
    const response = await unaryCall<Message>(clients.predict, 'Predict', { images, object_threshold: 0 });
    expect(response.predictions.map((p: Message) => [p.image_width, p.object_present, p.top_k.length])).toEqual([
      [10, true, 3],
      [20, true, 3],
    ]);
  });

  it.each([
    ['no image', { images: [] }, grpc.status.INVALID_ARGUMENT, /no image/],
    ['non-image bytes', { images: [Buffer.from('hello')] }, grpc.status.INVALID_ARGUMENT, /not an image/],
    ['enormous image', { images: ['huge'] }, grpc.status.RESOURCE_EXHAUSTED, /over the limit/],
    ['unknown model', { model_name: 'nope', images: ['ok'] }, grpc.status.NOT_FOUND, /unknown model/],
    ['bad threshold', { object_threshold: 2, images: ['ok'] }, grpc.status.INVALID_ARGUMENT, /object_threshold must be between 0 and 1/],
  ])('refuses %s', async (_name, request, code, details) => {
    const fixtures: Record<string, Buffer> = { huge: await solidImage(400, 400), ok: await solidImage(8, 8) };
    const images = (request as Message).images.map((b: Buffer | string) => (typeof b === 'string' ? fixtures[b] : b));
    await expectStatus(unaryCall(clients.predict, 'Predict', { ...(request as Message), images }), code as grpc.status, details as RegExp);
  });

  it('refuses a malformed Predict message with INVALID_ARGUMENT', async () => {
    await expectStatus(rawUnaryCall(clients.predict, '/trident.v1.Predict/Predict', Buffer.from([0x1a, 0x40, 0x00])), grpc.status.INVALID_ARGUMENT, /malformed protobuf/);
  });

  it('streams predictions with errors inside the stream', async () => {
    const call = (clients.predict.PredictStream as () => grpc.ClientDuplexStream<Message, Message>).call(clients.predict);
    const received: Message[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (m: Message) => received.push(m));
      call.on('end', () => resolve());
      call.on('error', reject);
    });
    call.write({ images: [await solidImage(12, 12)], id: '1' });
    call.write({ images: [Buffer.from('junk')], id: '2' });
    call.write({ images: [await solidImage(14, 14)], id: '3' });
    call.end();
    await done;
    expect(received.map((m) => [m.error_message === '' ? 'ok' : 'error', m.response.id])).toEqual([
      ['ok', '1'],
      ['error', '2'],
      ['ok', '3'],
    ]);
    expect(received[2].response.predictions[0].image_width).toBe(14);
  });

  it('answers grpc.health.v1 Check for the server and its services', async () => {
    expect(await unaryCall(clients.health, 'Check', { service: '' })).toEqual({ status: 'SERVING' });
    expect(await unaryCall(clients.health, 'Check', { service: 'inference.GRPCInferenceService' })).toEqual({ status: 'SERVING' });
    await expectStatus(unaryCall(clients.health, 'Check', { service: 'nope' }), grpc.status.NOT_FOUND, /unknown service/);
  });
});
