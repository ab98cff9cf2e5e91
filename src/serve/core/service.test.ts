/** The service core on its own: no socket, no transport; a real registry and ONNX Runtime. */
import sharp from 'sharp';
import { TridentError } from '../../base/errors';
import { ModelRegistry } from '../../runtime/model-registry';
import { makeRepository } from '../../runtime/testing/repository';
import { serveConfig } from '../config';
import { ServeMetrics } from './metrics';
import { InferenceService, type CallLabels, type RequestTensor } from './service';

let registry: ModelRegistry;
let metrics: ServeMetrics;
let service: InferenceService;
const faults: [CallLabels, TridentError][] = [];

beforeAll(async () => {
  const root = await makeRepository([{ name: 'tiny', versions: [1, 2] }]);
  const config = serveConfig({ models: root, threads: 1, maxBatch: 4, apiKeys: ['core-key'] });
  registry = new ModelRegistry({ root, versionPolicy: 'all', device: 'cpu', instances: 1, threads: 1, maxBatch: 4, maxQueueDelayMs: 0, maxQueueSize: 64 });
  await registry.loadAll();
  metrics = new ServeMetrics();
  service = new InferenceService(registry, config, metrics, (labels, error) => faults.push([labels, error]));
  service.markStarted();
});
afterAll(() => registry.close());

const image = (n: number): RequestTensor => ({ name: 'image', dtype: 'float32', shape: [n, 3, 16, 16], data: new Float32Array(n * 3 * 16 * 16).fill(0.25) });

async function refusal(promise: Promise<unknown> | (() => unknown)): Promise<TridentError> {
  const error = await (typeof promise === 'function' ? Promise.resolve().then(promise) : promise).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TridentError);
  return error as TridentError;
}

describe('InferenceService, without transports', () => {
  it('infers: every head for every sample, from the latest version unless one is named', async () => {
    const response = await service.infer({ model: 'tiny', parameters: {}, inputs: [image(3)] });
    expect(response).toMatchObject({ model_name: 'tiny', model_version: '2' });
    expect(response.outputs.map((o) => [o.name, o.datatype, o.dims])).toEqual([
      ['class_probs', 'FP32', [3, 3]],
      ['objectness', 'FP32', [3, 1]],
      ['box', 'FP32', [3, 4]],
    ]);
    const v1 = await service.infer({ model: 'tiny', version: '1', parameters: {}, inputs: [image(1)], outputs: ['box'] });
    expect([v1.model_version, v1.outputs.map((o) => o.name)]).toEqual(['1', ['box']]);
  });

  it.each([
    ['an unknown model', { model: 'nope' }, 'not_found', /unknown model "nope"/],
    ['a bad version', { version: 'v2' }, 'invalid_argument', /invalid model version "v2"/],
    ['a wrong datatype', { inputs: [{ ...image(1), dtype: 'float64', data: new Float64Array(768) }] }, 'invalid_argument', /datatype FP64 does not match the model's FP32/],
    ['a wrong shape', { inputs: [{ ...image(1), shape: [1, 3, 8, 32] }] }, 'invalid_argument', /does not match the model's/],
    ['a batch past the limit', { inputs: [image(5)] }, 'invalid_argument', /batch of 5 exceeds the model's max batch size 4/],
    ['an unknown output', { outputs: ['logits'] }, 'invalid_argument', /unknown output "logits"/],
  ])('refuses %s with a coded error', async (_what, change, code, message) => {
    const error = await refusal(service.infer({ model: 'tiny', parameters: {}, inputs: [image(1)], ...(change as object) }));
    expect([error.code, error.message]).toEqual([code, expect.stringMatching(message as RegExp)]);
  });

  it('predicts from image bytes: class, objectness and box in the original pixels', async () => {
    const png = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#2060c0' } }).png().toBuffer();
    const { predictions } = await service.predict({ model: 'tiny', images: [png], topK: 2 });
    expect(predictions[0]).toMatchObject({ image: { width: 40, height: 20 }, class: { top_k: [expect.any(Object), expect.any(Object)] } });
    expect(predictions[0].box.x2).toBeLessThanOrEqual(40);
    expect((await refusal(service.predict({ model: 'tiny', images: [png], topK: 4 }))).message).toMatch(/at most the model's number of classes \(3\)/);
    expect((await refusal(service.predict({ model: 'tiny', images: [Buffer.from('no image')] }))).code).toBe('invalid_argument');
  });

  it('checks the repository key for load and unload', async () => {
    expect((await refusal(service.loadModel('tiny', undefined))).code).toBe('unauthenticated');
    expect((await refusal(service.unloadModel('tiny', 'wrong'))).code).toBe('permission_denied');
    await service.loadModel('tiny', 'core-key');
    expect(service.modelMetadata('tiny').versions).toEqual(['1', '2']);
  });
});

describe('the one request path', () => {
  it('records each call by protocol, endpoint and outcome, and reports server faults only', async () => {
    await service.call({ protocol: 'rest', endpoint: 'model_metadata', model: 'tiny' }, () => service.modelMetadata('tiny'));
    await refusal(service.call({ protocol: 'grpc', endpoint: 'model_metadata', model: 'tiny' }, () => service.modelMetadata('nope')));
    const fault = await refusal(
      service.call({ protocol: 'rest', endpoint: 'finetune_get' }, () => {
        throw new TypeError('a bug');
      }),
    );
    expect([fault.code, fault.message]).toEqual(['internal', 'a bug']);
    expect(faults.map(([labels, e]) => [labels.endpoint, e.message])).toEqual([['finetune_get', 'a bug']]);
    const text = await metrics.text();
    expect(text).toMatch(/trident_requests_total\{model="tiny",protocol="rest",endpoint="model_metadata",status="ok"\} 1/);
    expect(text).toMatch(/trident_requests_total\{model="tiny",protocol="grpc",endpoint="model_metadata",status="not_found"\} 1/);
    expect(text).toMatch(/trident_requests_total\{model="",protocol="rest",endpoint="finetune_get",status="internal"\} 1/);
  });

  it('drains: calls in flight finish, new ones are refused as unavailable, idle() resolves once none runs', async () => {
    let release!: () => void;
    const running = service.call({ protocol: 'rest', endpoint: 'slow' }, () => new Promise<string>((resolve) => (release = () => resolve('done'))));
    expect(service.inflightCount).toBe(1);
    service.beginDrain();
    expect(service.ready()).toBe(false);
    expect((await refusal(service.call({ protocol: 'rest', endpoint: 'late' }, () => 'never'))).code).toBe('unavailable');
    let idle = false;
    const idled = service.idle().then(() => (idle = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(idle).toBe(false);
    release();
    expect(await running).toBe('done');
    await idled;
    expect(service.inflightCount).toBe(0);
  });
});
