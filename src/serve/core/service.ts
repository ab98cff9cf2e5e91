/**
 * The transport-agnostic service: REST and gRPC decode their wire formats into these calls and
 * encode what comes back. Validation, the batcher and the model registry are only reached from here.
 */
import { TRIDENT_VERSION } from '../../artifacts/version';
import { boxToPixels, prepareImage } from '../../data/image';
import type { InputSpec } from '../../model/spec';
import type { ModelRegistry, IndexEntry, Lease } from '../../runtime/model-registry';
import { parseVersion } from '../../runtime/model-registry';
import type { ModelVersion, TensorSpec } from '../../runtime/model-version';
import { Predictor, type Corners, type Prediction, type ScoredLabel } from '../../runtime/predictor';
import { elementCount, type HostTensor, type NumericDType, type TypedArray } from '../../runtime/tensor';
import { KeyChecker } from '../../base/keys';
import type { ServeConfig } from '../config';
import { oipDatatype } from './datatypes';
import { asTridentError, invalid, TridentError } from '../../base/errors';
import { isServerFault } from './wire-errors';
import type { Protocol, ServeMetrics } from './metrics';

export const SERVER_NAME = 'trident';
export const PLATFORM = 'onnxruntime_onnx';
export const EXTENSIONS = ['binary_tensor_data', 'model_repository', 'schedule_policy', 'parameters', 'trident_predict'];

/** How a call reached us: its deadline and the signal that fires when the client goes away. */
export interface CallContext {
  /** Absolute Date.now() milliseconds. */
  deadline?: number;
  signal?: AbortSignal;
}

export type ParameterValue = string | number | boolean;

export interface RequestTensor {
  name: string;
  dtype: NumericDType;
  shape: number[];
  data: TypedArray;
}

export interface InferRequest {
  model: string;
  version?: string;
  id?: string;
  parameters: Record<string, ParameterValue>;
  inputs: RequestTensor[];
  /** Names of the outputs wanted; all when undefined. */
  outputs?: string[];
}

export interface ResponseTensor extends HostTensor {
  name: string;
  datatype: string;
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: ResponseTensor[];
}

export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface PredictRequest {
  /** Empty or undefined: the default model. */
  model?: string;
  version?: string;
  images: Uint8Array[];
  topK?: number;
  objectThreshold?: number;
}

/** One image's answer: all three heads, the box in the original image's pixels and normalised. */
export interface ImagePrediction {
  class: { label: string; index: number; score: number; top_k: ScoredLabel[] };
  object: { present: boolean; score: number; threshold: number };
  box: Corners & { normalised: Corners };
  image: { width: number; height: number };
}

export interface PredictResponse {
  model_name: string;
  model_version: string;
  predictions: ImagePrediction[];
}

export interface CallLabels {
  protocol: Protocol;
  endpoint: string;
  model?: string;
}

export class InferenceService {
  private started = false;
  private draining = false;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly keys: KeyChecker;

  constructor(
    readonly registry: ModelRegistry,
    private readonly config: ServeConfig,
    private readonly metrics: ServeMetrics,
    /** Server faults (internal errors) of any call, with the call's labels. */
    private readonly reportFault: (labels: CallLabels, error: TridentError) => void = () => {},
  ) {
    this.keys = new KeyChecker(config.apiKeys, {
      disabled: config.authDisabled,
      name: 'an API key',
      configure: 'start the server with --api-key (or TRIDENT_API_KEYS), or --no-auth to allow it without a key',
    });
  }

  // ---- lifecycle ----

  /** Called once every model is loaded and warmed up. */
  markStarted(): void {
    this.started = true;
  }

  /** Readiness turns false and new calls are refused; calls already running continue. */
  beginDrain(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get inflightCount(): number {
    return this.inflight;
  }

  /** Resolves when no call is running. */
  idle(): Promise<void> {
    return this.inflight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * The one request path: every call of every transport (inference, prediction, repository,
   * fine-tuning, model files; not the web app's static page and bundle) runs through here. It counts the call for draining, times it, records
   * its outcome, reports server faults, and turns every failure into a TridentError.
   */
  async call<T>(labels: CallLabels, work: () => Promise<T> | T): Promise<T> {
    const start = performance.now();
    this.inflight++;
    this.metrics.inflight.inc();
    let status = 'ok';
    try {
      if (this.draining) throw new TridentError('unavailable', 'the server is shutting down');
      return await work();
    } catch (e) {
      const error = asTridentError(e);
      status = error.code;
      if (isServerFault(error)) this.reportFault(labels, error);
      throw error;
    } finally {
      const model = labels.model && this.registry.has(labels.model) ? labels.model : '';
      this.metrics.request({ model, protocol: labels.protocol, endpoint: labels.endpoint, status }, (performance.now() - start) / 1000);
      this.metrics.inflight.dec();
      if (--this.inflight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  // ---- health and metadata ----

  live(): boolean {
    return true;
  }

  ready(): boolean {
    return this.started && !this.draining && this.registry.settled;
  }

  serverMetadata(): { name: string; version: string; extensions: string[] } {
    return { name: SERVER_NAME, version: TRIDENT_VERSION, extensions: EXTENSIONS };
  }

  modelReady(name: string, version?: string): boolean {
    const v = version ? parseVersion(version) : undefined;
    if (!this.registry.has(name)) throw new TridentError('not_found', `unknown model "${name}"`);
    return this.ready() && this.registry.isReady(name, v);
  }

  modelMetadata(name: string, version?: string): ModelMetadata {
    const model = this.resolve(name, version);
    return {
      name: model.name,
      versions: this.registry.versions(name).map((m) => String(m.version)),
      platform: PLATFORM,
      inputs: model.inputs.map(tensorMetadata),
      outputs: model.outputs.map(tensorMetadata),
    };
  }

  /** The model's single input, for Triton's raw binary requests. */
  singleInput(name: string, version?: string): TensorMetadata {
    const model = this.resolve(name, version);
    if (model.inputs.length !== 1) throw invalid(`model "${name}" has ${model.inputs.length} inputs; a raw binary request needs exactly one`);
    return tensorMetadata(model.inputs[0]);
  }

  // ---- inference ----

  async infer(request: InferRequest, ctx: CallContext = {}): Promise<InferResponse> {
    const lease = this.lease(request.model, request.version);
    try {
      const model = lease.model;
      const feeds = this.validateInputs(model, request.inputs);
      const wanted = this.validateOutputs(model, request.outputs);
      const outputs = await model.infer(feeds, { ...ctx, deadline: requestDeadline(request.parameters, ctx.deadline) });
      return {
        model_name: model.name,
        model_version: String(model.version),
        ...(request.id ? { id: request.id } : {}),
        outputs: wanted.map((spec) => ({ name: spec.name, datatype: oipDatatype(spec.dtype), ...outputs[spec.name] })),
      };
    } finally {
      lease.release();
    }
  }

  async predict(request: PredictRequest, ctx: CallContext = {}): Promise<PredictResponse> {
    const topK = request.topK ?? this.config.topK;
    const threshold = request.objectThreshold ?? this.config.objectThreshold;
    if (!Number.isInteger(topK) || topK < 1) throw invalid(`top_k must be a positive integer, got ${topK}`);
    if (!(threshold >= 0 && threshold <= 1)) throw invalid(`object_threshold must be between 0 and 1, got ${threshold}`);
    if (request.images.length === 0) throw invalid('no image in the request');
    if (request.images.length > this.config.maxImages) {
      throw new TridentError('payload_too_large', `${request.images.length} images in one request; the limit is ${this.config.maxImages}`);
    }
    const lease = this.lease(request.model || this.defaultModel(), request.version);
    try {
      const model = lease.model;
      const classes = model.manifest.labels.length;
      if (request.topK !== undefined && request.topK > classes) {
        throw invalid(`top_k must be at most the model's number of classes (${classes}), got ${request.topK}`);
      }
      const input = inputSpec(model);
      const prepared = await Promise.all(
        request.images.map((bytes, i) =>
          prepareImage(bytes, input, { maxPixels: this.config.maxPixels }).catch((e: unknown) => {
            const error = asTridentError(e);
            throw new TridentError(error.code, request.images.length > 1 ? `image ${i + 1}: ${error.message}` : error.message);
          }),
        ),
      );
      const predictions = await new Predictor(model).predict(
        prepared.map((p) => p.data),
        { topK, objectThreshold: threshold, ...ctx },
      );
      return {
        model_name: model.name,
        model_version: String(model.version),
        predictions: predictions.map((p, i) => inPixels(p, prepared[i], threshold)),
      };
    } finally {
      lease.release();
    }
  }

  // ---- repository ----

  repositoryIndex(readyOnly = false): Promise<IndexEntry[]> {
    return this.registry.index().then((all) => (readyOnly ? all.filter((e) => e.state === 'READY') : all));
  }

  async loadModel(name: string, apiKey: string | undefined): Promise<void> {
    this.keys.check(apiKey, 'repository load');
    await this.registry.load(name);
  }

  async unloadModel(name: string, apiKey: string | undefined): Promise<void> {
    this.keys.check(apiKey, 'repository unload');
    await this.registry.unload(name);
  }

  // ---- helpers ----

  private defaultModel(): string {
    if (this.config.defaultModel) return this.config.defaultModel;
    const names = this.registry.names;
    if (names.length === 1) return names[0];
    throw invalid(names.length === 0 ? 'no models are loaded' : `several models are served (${names.join(', ')}); name one`);
  }

  private resolve(name: string, version?: string): ModelVersion {
    return this.registry.resolve(name, version ? parseVersion(version) : undefined);
  }

  private lease(name: string, version?: string): Lease {
    return this.registry.acquire(name, version ? parseVersion(version) : undefined);
  }

  private validateInputs(model: ModelVersion, inputs: RequestTensor[]): Record<string, HostTensor> {
    const feeds: Record<string, HostTensor> = {};
    const expected = new Map(model.inputs.map((t) => [t.name, t]));
    let batch: number | undefined;
    for (const input of inputs) {
      const spec = expected.get(input.name);
      if (!spec) throw invalid(`unexpected input "${input.name}"; model "${model.name}" takes ${[...expected.keys()].map((n) => `"${n}"`).join(', ')}`);
      if (feeds[input.name]) throw invalid(`input "${input.name}" is given twice`);
      if (input.dtype !== spec.dtype) {
        throw invalid(`input "${input.name}": datatype ${oipDatatype(input.dtype)} does not match the model's ${oipDatatype(spec.dtype)}`);
      }
      const shapeOk = input.shape.length === spec.shape.length && spec.shape.every((d, i) => d === -1 || d === input.shape[i]);
      if (!shapeOk) throw invalid(`input "${input.name}": shape [${input.shape}] does not match the model's [${spec.shape}] (-1 = any)`);
      if (input.data.length !== elementCount(input.shape)) {
        throw invalid(`input "${input.name}": ${input.data.length} elements for shape [${input.shape}]`);
      }
      const rows = input.shape[0];
      if (rows < 1) throw invalid(`input "${input.name}": the batch dimension must be at least 1`);
      if (batch !== undefined && rows !== batch) throw invalid(`inputs disagree on the batch size (${batch} and ${rows})`);
      batch = rows;
      if (rows > model.maxBatch) throw invalid(`batch of ${rows} exceeds the model's max batch size ${model.maxBatch}`);
      feeds[input.name] = { dtype: input.dtype, dims: input.shape, data: input.data };
    }
    const missing = [...expected.keys()].filter((n) => !feeds[n]);
    if (missing.length > 0) throw invalid(`missing input ${missing.map((n) => `"${n}"`).join(', ')} for model "${model.name}"`);
    return feeds;
  }

  private validateOutputs(model: ModelVersion, wanted: string[] | undefined): TensorSpec[] {
    if (!wanted || wanted.length === 0) return model.outputs;
    return wanted.map((name) => {
      const spec = model.outputs.find((o) => o.name === name);
      if (!spec) throw invalid(`unknown output "${name}"; model "${model.name}" has ${model.outputs.map((o) => `"${o.name}"`).join(', ')}`);
      return spec;
    });
  }
}

function tensorMetadata(t: TensorSpec): TensorMetadata {
  return { name: t.name, datatype: oipDatatype(t.dtype), shape: t.shape };
}

function inputSpec(model: ModelVersion): InputSpec {
  const { channels, height, width, mean, std } = model.manifest.input;
  return { channels: channels as 1 | 3, height, width, mean, std };
}

/** The OIP `timeout` parameter (microseconds) combined with the transport's own deadline. */
function requestDeadline(parameters: Record<string, ParameterValue>, transportDeadline: number | undefined): number | undefined {
  const timeout = parameters.timeout;
  if (timeout === undefined) return transportDeadline;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0) {
    throw invalid(`parameter "timeout" must be a non-negative integer number of microseconds, got ${JSON.stringify(timeout)}`);
  }
  if (timeout === 0) return transportDeadline;
  const fromTimeout = Date.now() + timeout / 1000;
  return transportDeadline === undefined ? fromTimeout : Math.min(fromTimeout, transportDeadline);
}

function inPixels(p: Prediction, size: { width: number; height: number }, threshold: number): ImagePrediction {
  const [x1, y1, x2, y2] = boxToPixels([p.box.x1, p.box.y1, p.box.x2, p.box.y2], size);
  return {
    class: { label: p.class.label, index: p.class.index, score: p.class.score, top_k: p.class.topK },
    object: { present: p.object.present, score: p.object.score, threshold },
    box: { x1, y1, x2, y2, normalised: p.box },
    image: { width: size.width, height: size.height },
  };
}
