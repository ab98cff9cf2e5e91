import sharp from 'sharp';
import { patternImage, solidImage, startTestServer, TINY_METADATA, tinyTensor, type TestServer } from '../testing/harness';

let s: TestServer;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const readJson = async (response: Response): Promise<any> => response.json();

beforeAll(async () => {
  s = await startTestServer({ maxBodyBytes: 4 * 1024 * 1024, maxPixels: 100_000, maxImages: 4, corsOrigins: ['https://app.example'] });
});
afterAll(() => s.close());

const get = (path: string) => fetch(`${s.url}${path}`);
const post = (path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
  fetch(`${s.url}${path}`, { method: 'POST', body, headers });
const infer = (body: unknown, path = '/v2/models/tiny/infer') => post(path, JSON.stringify(body));
const imageInput = (n = 1, seed = 0) => ({ name: 'image', shape: [n, 3, 16, 16], datatype: 'FP32', data: Array.from(tinyTensor(n, seed)) });

async function expectError(response: Response, status: number, message: RegExp): Promise<void> {
  const body = await readJson(response);
  expect({ status: response.status, error: body.error }).toEqual({ status, error: expect.stringMatching(message) });
}

/** JSON header + binary tail, as Triton's binary tensor extension sends them. */
function binaryBody(header: unknown, ...tensors: Buffer[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return { body: Buffer.concat([json, ...tensors]), headerLength: json.length };
}

function splitBinaryResponse(bytes: Buffer, headerLength: number) {
  const header = JSON.parse(bytes.subarray(0, headerLength).toString());
  let offset = headerLength;
  const tensors: Record<string, Float32Array> = {};
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    const copy = Buffer.from(bytes.subarray(offset, offset + size));
    tensors[o.name] = new Float32Array(copy.buffer, copy.byteOffset, size / 4);
    offset += size;
  }
  return { header, tensors };
}

describe('REST: health and metadata', () => {
  it('answers live and ready with a status and a small JSON body', async () => {
    const live = await get('/v2/health/live');
    expect([live.status, await readJson(live)]).toEqual([200, { live: true }]);
    const ready = await get('/v2/health/ready');
    expect([ready.status, await readJson(ready)]).toEqual([200, { ready: true }]);
  });

  it('describes the server and each model version', async () => {
    expect(await readJson(await get('/v2'))).toMatchObject({ name: 'trident', extensions: expect.arrayContaining(['binary_tensor_data', 'model_repository']) });
    const meta = await readJson(await get('/v2/models/tiny'));
    expect(meta).toEqual(TINY_METADATA);
    expect((await get('/v2/models/tiny/versions/1')).status).toBe(200);
    const ready = await get('/v2/models/tiny/versions/1/ready');
    expect([ready.status, await readJson(ready)]).toEqual([200, { name: 'tiny', ready: true }]);
  });

  it('reports unknown models and versions as 404 and bad versions as 400', async () => {
    await expectError(await get('/v2/models/nope'), 404, /unknown model "nope"; served models: tiny/);
    await expectError(await get('/v2/models/tiny/versions/9'), 404, /no version 9 loaded/);
    await expectError(await get('/v2/models/tiny/versions/x1/ready'), 400, /invalid model version "x1"/);
    await expectError(await get('/v2/models/nope/ready'), 404, /unknown model/);
    await expectError(await get('/v2/nothing/here'), 404, /no endpoint GET \/v2\/nothing\/here/);
  });

  it('exposes Prometheus metrics', async () => {
    const text = await (await get('/metrics')).text();
    expect(text).toMatch(/trident_requests_total\{model="tiny",protocol="rest",endpoint="model_metadata",status="ok"\} \d+/);
    expect(text).toMatch(/# TYPE trident_batch_size histogram/);
    expect(text).toMatch(/# TYPE trident_queue_duration_seconds histogram/);
  });

  it('answers CORS preflights for allowed origins only', async () => {
    const allowed = await fetch(`${s.url}/v2/models/tiny/infer`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const other = await fetch(`${s.url}/v2/health/live`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('REST: tensor inference', () => {
  it('infers JSON tensors, latest version by default, a named version on request', async () => {
    const response = await infer({ id: 'req-1', inputs: [imageInput(2)] });
    expect(response.status).toBe(200);
    const body = await readJson(response);
    expect(body).toMatchObject({ model_name: 'tiny', model_version: '2', id: 'req-1' });
    expect(body.outputs.map((o: { name: string; shape: number[] }) => [o.name, o.shape])).toEqual([
      ['class_probs', [2, 3]],
      ['objectness', [2, 1]],
      ['box', [2, 4]],
    ]);
    const probs = body.outputs[0].data as number[];
    expect(probs[0] + probs[1] + probs[2]).toBeCloseTo(1, 5);
    const v1 = await readJson(await infer({ inputs: [imageInput(2)], outputs: [{ name: 'objectness' }] }, '/v2/models/tiny/versions/1/infer'));
    expect(v1.model_version).toBe('1');
    expect(v1.outputs.map((o: { name: string }) => o.name)).toEqual(['objectness']);
    expect(v1.outputs[0].data).not.toEqual(body.outputs[1].data);
  });

  it('accepts nested JSON data and gives the same answer as flat data', async () => {
    const flat = await readJson(await infer({ inputs: [imageInput(1, 3)] }));
    const data = Array.from(tinyTensor(1, 3));
    const nested = [[0, 1, 2].map((c) => Array.from({ length: 16 }, (_, y) => data.slice(c * 256 + y * 16, c * 256 + y * 16 + 16)))];
    const again = await readJson(await infer({ inputs: [{ ...imageInput(1, 3), data: nested }] }));
    expect(again.outputs).toEqual(flat.outputs);
  });

  it('takes and returns binary tensors (Inference-Header-Content-Length)', async () => {
    const tensor = Buffer.from(tinyTensor(2, 5).buffer);
    const { body, headerLength } = binaryBody(
      { inputs: [{ name: 'image', shape: [2, 3, 16, 16], datatype: 'FP32', parameters: { binary_data_size: tensor.length } }], outputs: [{ name: 'class_probs', parameters: { binary_data: true } }, { name: 'box' }] },
      tensor,
    );
    const response = await post('/v2/models/tiny/infer', body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) });
    expect(response.status).toBe(200);
    const length = Number(response.headers.get('inference-header-content-length'));
    const { header, tensors } = splitBinaryResponse(Buffer.from(await response.arrayBuffer()), length);
    expect(header.outputs[0]).toEqual({ name: 'class_probs', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } });
    expect(header.outputs[1].data).toHaveLength(8);
    const json = await readJson(await infer({ inputs: [{ ...imageInput(2, 5) }] }));
    expect(Array.from(tensors.class_probs)).toEqual(json.outputs[0].data);
  });

  it('takes a raw binary request (header length 0) and answers in binary', async () => {
    const tensor = Buffer.from(tinyTensor(1, 7).buffer);
    const response = await post('/v2/models/tiny/infer', tensor, { 'content-type': 'application/octet-stream', 'inference-header-content-length': '0' });
    expect(response.status).toBe(200);
    const { header, tensors } = splitBinaryResponse(Buffer.from(await response.arrayBuffer()), Number(response.headers.get('inference-header-content-length')));
    expect(header.outputs.map((o: { shape: number[] }) => o.shape)).toEqual([[1, 3], [1, 1], [1, 4]]);
    expect(tensors.box).toHaveLength(4);
  });

  it('asks for all outputs in binary with binary_data_output', async () => {
    const response = await infer({ parameters: { binary_data_output: true }, inputs: [imageInput(1)] });
    expect(response.headers.get('content-type')).toMatch(/octet-stream/);
    expect(Number(response.headers.get('inference-header-content-length'))).toBeGreaterThan(0);
  });

  it.each([
    ['unknown model', '/v2/models/nope/infer', { inputs: [imageInput()] }, 404, /unknown model "nope"/],
    ['unknown version', '/v2/models/tiny/versions/7/infer', { inputs: [imageInput()] }, 404, /no version 7/],
    ['missing input', undefined, { inputs: [{ ...imageInput(), name: 'other' }] }, 400, /unexpected input "other"/],
    ['no inputs', undefined, { inputs: [] }, 400, /at least one input/],
    ['extra input', undefined, { inputs: [imageInput(), { name: 'extra', shape: [1], datatype: 'FP32', data: [1] }] }, 400, /unexpected input "extra"/],
    ['duplicate input', undefined, { inputs: [imageInput(), imageInput()] }, 400, /given twice/],
    ['wrong shape', undefined, { inputs: [{ ...imageInput(), shape: [1, 3, 16, 15], data: new Array(720).fill(0) }] }, 400, /shape \[1,3,16,15\] does not match the model's \[-1,3,16,16\]/],
    ['wrong rank', undefined, { inputs: [{ ...imageInput(), shape: [768] }] }, 400, /does not match/],
    ['negative dim', undefined, { inputs: [{ ...imageInput(), shape: [-1, 3, 16, 16] }] }, 400, /non-negative integers/],
    ['zero batch', undefined, { inputs: [{ ...imageInput(), shape: [0, 3, 16, 16], data: [] }] }, 400, /batch dimension must be at least 1/],
    ['batch too large', undefined, { inputs: [imageInput(9)] }, 400, /batch of 9 exceeds the model's max batch size 8/],
    ['wrong datatype', undefined, { inputs: [{ ...imageInput(), datatype: 'INT32', data: new Array(768).fill(1) }] }, 400, /datatype INT32 does not match the model's FP32/],
    ['unknown datatype', undefined, { inputs: [{ ...imageInput(), datatype: 'FLOAT' }] }, 400, /unknown datatype "FLOAT"/],
    ['FP16 as JSON', undefined, { inputs: [{ ...imageInput(), datatype: 'FP16' }] }, 400, /FP16 is not supported/],
    ['wrong data length', undefined, { inputs: [{ ...imageInput(), data: [1, 2, 3] }] }, 400, /data has 3 elements but shape \[1,3,16,16\] needs 768/],
    ['wrong element type', undefined, { inputs: [{ ...imageInput(), data: ['a', ...new Array(767).fill(0)] }] }, 400, /element 0 is "a", expected a number/],
    ['no data', undefined, { inputs: [{ name: 'image', shape: [1, 3, 16, 16], datatype: 'FP32' }] }, 400, /has no data/],
    ['unknown output', undefined, { inputs: [imageInput()], outputs: [{ name: 'logits' }] }, 400, /unknown output "logits"/],
    ['bad timeout', undefined, { parameters: { timeout: -5 }, inputs: [imageInput()] }, 400, /timeout/],
    ['not an object', undefined, [1, 2], 400, /invalid inference request/],
  ])('refuses %s', async (_name, path, body, status, message) => {
    await expectError(await infer(body, path ?? '/v2/models/tiny/infer'), status as number, message as RegExp);
  });

  it('refuses malformed JSON, empty bodies and broken binary framing', async () => {
    await expectError(await post('/v2/models/tiny/infer', '{"inputs": [}'), 400, /malformed JSON/);
    await expectError(await post('/v2/models/tiny/infer', ''), 400, /empty request body/);
    const tensor = Buffer.from(tinyTensor(1, 0).buffer);
    const header = { inputs: [{ name: 'image', shape: [1, 3, 16, 16], datatype: 'FP32', parameters: { binary_data_size: tensor.length } }] };
    const short = binaryBody(header, tensor.subarray(0, 100));
    await expectError(
      await post('/v2/models/tiny/infer', short.body, { 'inference-header-content-length': String(short.headerLength) }),
      400,
      /runs past the end of the body/,
    );
    const extra = binaryBody(header, tensor, Buffer.alloc(8));
    await expectError(await post('/v2/models/tiny/infer', extra.body, { 'inference-header-content-length': String(extra.headerLength) }), 400, /8 bytes of binary data follow/);
    await expectError(await post('/v2/models/tiny/infer', tensor, { 'inference-header-content-length': 'abc' }), 400, /Inference-Header-Content-Length "abc"/);
    await expectError(await post('/v2/models/tiny/infer', tensor.subarray(4), { 'inference-header-content-length': '0' }), 400, /got 3068 bytes of data but shape \[1,3,16,16\] of FP32 needs 3072/);
  });

  it('refuses oversized bodies with 413 and unknown encodings with 415', async () => {
    await expectError(await post('/v2/models/tiny/infer', Buffer.alloc(5 * 1024 * 1024)), 413, /too large/);
    await expectError(await post('/v2/models/tiny/infer', '{}', { 'content-type': 'application/json', 'content-encoding': 'br2' }), 415, /unsupported content encoding/);
  });
});

describe('REST: image prediction', () => {
  const expectPrediction = (p: Record<string, unknown>, width: number, height: number) => {
    expect(p).toEqual({
      class: { label: expect.any(String), index: expect.any(Number), score: expect.any(Number), top_k: expect.any(Array) },
      object: { present: expect.any(Boolean), score: expect.any(Number), threshold: 0.5 },
      box: { x1: expect.any(Number), y1: expect.any(Number), x2: expect.any(Number), y2: expect.any(Number), normalised: expect.any(Object) },
      image: { width, height },
    });
    const box = p.box as { x1: number; x2: number; y2: number; normalised: { x1: number; x2: number; y2: number } };
    expect(box.x1).toBeCloseTo(box.normalised.x1 * width, 6);
    expect(box.y2).toBeCloseTo(box.normalised.y2 * height, 6);
    expect(box.x2).toBeLessThanOrEqual(width);
  };

  it('predicts a raw image body: class, objectness and box in original pixels', async () => {
    const response = await post('/v2/models/tiny/predict?top_k=2', await patternImage(40, 30, 1), { 'content-type': 'image/png' });
    expect(response.status).toBe(200);
    const body = await readJson(response);
    expect(body).toMatchObject({ model_name: 'tiny', model_version: '2' });
    const { model_name: _n, model_version: _v, ...prediction } = body;
    expectPrediction(prediction, 40, 30);
    expect(body.class.top_k).toHaveLength(2);
    expect(body.class.top_k[0]).toEqual({ label: body.class.label, index: body.class.index, score: body.class.score });
  });

  it('accepts JPEG and WebP, applies EXIF orientation, and handles grey, alpha and CMYK', async () => {
    const jpeg = await solidImage(40, 30, '#3080c0', 'jpeg');
    const rotated = await sharp(jpeg).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const oriented = await readJson(await post('/v2/models/tiny/predict', rotated, { 'content-type': 'image/jpeg' }));
    expect(oriented.image).toEqual({ width: 30, height: 40 });
    const webp = await readJson(await post('/v2/models/tiny/predict', await solidImage(20, 20, '#ffffff', 'webp'), { 'content-type': 'image/webp' }));
    expect(webp.image).toEqual({ width: 20, height: 20 });
    const grey = await sharp({ create: { width: 10, height: 12, channels: 3, background: '#777' } }).greyscale().png().toBuffer();
    const alpha = await sharp({ create: { width: 10, height: 12, channels: 4, background: { r: 10, g: 200, b: 30, alpha: 0.5 } } }).png().toBuffer();
    const cmyk = await sharp(jpeg).toColourspace('cmyk').jpeg().toBuffer();
    for (const image of [grey, alpha, cmyk]) {
      const response = await post('/v2/models/tiny/predict', image, { 'content-type': 'image/png' });
      expect(response.status).toBe(200);
    }
  });

  it('predicts several images from multipart and base64 JSON, in order', async () => {
    const images = [await patternImage(24, 24, 1), await patternImage(32, 16, 2)];
    const form = new FormData();
    images.forEach((b, i) => form.append(`file${i}`, new Blob([new Uint8Array(b)], { type: 'image/png' }), `${i}.png`));
    form.append('top_k', '1');
    const multipart = await readJson(await fetch(`${s.url}/v2/models/tiny/predict`, { method: 'POST', body: form }));
    expect(multipart.predictions).toHaveLength(2);
    expect(multipart.predictions.map((p: { image: unknown }) => p.image)).toEqual([{ width: 24, height: 24 }, { width: 32, height: 16 }]);
    expect(multipart.predictions[0].class.top_k).toHaveLength(1);
    const json = await readJson(await post('/v2/models/tiny/predict', JSON.stringify({ images: images.map((b) => b.toString('base64')), top_k: 1 })));
    expect(json.predictions).toEqual(multipart.predictions);
    const single = await readJson(await post('/v2/predict', JSON.stringify({ image: `data:image/png;base64,${images[1].toString('base64')}` })));
    expect(single.box).toEqual(json.predictions[1].box);
  });

  it.each([
    ['non-image bytes', Buffer.from('this is not an image'), 'image/png', 400, /not an image/],
    ['truncated image', 'truncated', 'image/png', 400, /cannot decode image|truncated|corrupt/],
    ['zero-sized image', 'zero', 'image/png', 400, /zero size|cannot decode|corrupt|not an image/],
    ['empty body', Buffer.alloc(0), 'image/png', 400, /empty request body/],
    ['enormous image', 'huge', 'image/png', 413, /pixels, over the limit of 100000/],
    ['unsupported content type', Buffer.from('x'), 'text/plain', 415, /unsupported Content-Type "text\/plain"/],
    ['malformed JSON', Buffer.from('{"image":'), 'application/json', 400, /malformed JSON/],
    ['JSON without image', Buffer.from('{"picture":"abc"}'), 'application/json', 400, /give either "image" or "images"/],
    ['bad base64', Buffer.from('{"image":"***"}'), 'application/json', 400, /"image" is not base64/],
    ['bad top_k', Buffer.from('{"image":"iVBORw0KGgo=","top_k":0}'), 'application/json', 400, /top_k/],
    ['too many images', 'many', 'application/json', 413, /5 images in one request; the limit is 4/],
    ['broken multipart', Buffer.from('--x\r\nContent-Disposition: form-data; name="a"; filename="a.png"\r\n\r\nabc'), 'multipart/form-data; boundary=x', 400, /malformed multipart/],
    ['multipart without boundary', Buffer.from('abc'), 'multipart/form-data', 400, /malformed multipart/],
  ])('refuses %s', async (_name, body, type, status, message) => {
    const png = await solidImage(20, 20);
    const payloads: Record<string, Buffer> = {
      truncated: png.subarray(0, png.length - 30),
      zero: Buffer.concat([png.subarray(0, 16), Buffer.alloc(4), png.subarray(20)]),
      huge: await solidImage(400, 400),
      many: Buffer.from(JSON.stringify({ images: new Array(5).fill(png.toString('base64')) })),
    };
    const bytes = typeof body === 'string' ? payloads[body] : body;
    await expectError(await post('/v2/models/tiny/predict', bytes, { 'content-type': type as string }), status as number, message as RegExp);
  });

  it('refuses a predict for an unknown model with 404', async () => {
    await expectError(await post('/v2/models/nope/predict', await solidImage(8, 8), { 'content-type': 'image/png' }), 404, /unknown model/);
  });
});

describe('REST: repository', () => {
  it('lists every model version with its state', async () => {
    const index = await readJson(await post('/v2/repository/index', ''));
    expect(index).toEqual([
      { name: 'tiny', version: '1', state: 'READY', reason: '' },
      { name: 'tiny', version: '2', state: 'READY', reason: '' },
    ]);
    const ready = await readJson(await post('/v2/repository/index', JSON.stringify({ ready: true })));
    expect(ready).toHaveLength(2);
  });

  it('needs a valid API key to load or unload', async () => {
    await expectError(await post('/v2/repository/models/tiny/unload', ''), 401, /needs an API key/);
    await expectError(await post('/v2/repository/models/tiny/unload', '', { authorization: 'Bearer wrong' }), 403, /not valid/);
    await expectError(await post('/v2/repository/models/..%2Fetc/load', '', { 'x-api-key': 'test-key' }), 400, /invalid model name/);
    await expectError(await post('/v2/repository/models/absent/load', '', { 'x-api-key': 'test-key' }), 404, /no model "absent"/);
  });

  it('unloads and reloads a model at run time', async () => {
    const unload = await post('/v2/repository/models/tiny/unload', '', { authorization: 'Bearer test-key' });
    expect(unload.status).toBe(200);
    await expectError(await infer({ inputs: [imageInput()] }), 404, /unknown model "tiny"/);
    const index = await readJson(await post('/v2/repository/index', ''));
    expect(index[0]).toMatchObject({ state: 'UNAVAILABLE', reason: 'unloaded' });
    const load = await post('/v2/repository/models/tiny/load', '', { 'x-api-key': 'test-key' });
    expect(load.status).toBe(200);
    expect((await infer({ inputs: [imageInput()] })).status).toBe(200);
  });
});
