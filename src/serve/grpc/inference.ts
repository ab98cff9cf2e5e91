/** The gRPC transport of the Open Inference Protocol (Triton's inference.GRPCInferenceService). */
import { TridentError, invalid } from '../../base/errors';
import type * as grpc from '@grpc/grpc-js';
import type { NumericDType } from '../../runtime/tensor';
import { checkShape, fromRawBytes, fromValues, hostDtype, toRawBytes } from '../core/datatypes';
import { metadataKey, orderedStream, unary, callContext } from './calls';
import type { InferRequest, InferResponse, InferenceService, ParameterValue, RequestTensor } from '../core/service';

type Parameter = { parameter_choice?: string } & Record<string, unknown>;

interface Contents {
  bool_contents: boolean[];
  int_contents: number[];
  int64_contents: number[];
  uint_contents: number[];
  uint64_contents: number[];
  fp32_contents: number[];
  fp64_contents: number[];
  bytes_contents: Buffer[];
}

interface InputTensor {
  name: string;
  datatype: string;
  shape: number[];
  parameters: Record<string, Parameter>;
  contents: Contents | null;
}

export interface ModelInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, Parameter>;
  inputs: InputTensor[];
  outputs: { name: string }[];
  raw_input_contents: Buffer[];
}

const CONTENTS_FIELD: Readonly<Record<NumericDType, keyof Contents>> = Object.freeze({
  bool: 'bool_contents',
  int8: 'int_contents',
  int16: 'int_contents',
  int32: 'int_contents',
  int64: 'int64_contents',
  uint8: 'uint_contents',
  uint16: 'uint_contents',
  uint32: 'uint_contents',
  uint64: 'uint64_contents',
  float32: 'fp32_contents',
  float64: 'fp64_contents',
});

/** The contents fields a tensor sets (non-empty repeated fields). */
function setFields(contents: Contents | null): (keyof Contents)[] {
  if (contents === null) return [];
  return (Object.keys(contents) as (keyof Contents)[]).filter((k) => Array.isArray(contents[k]) && contents[k].length > 0);
}

export function decodeParameters(parameters: Record<string, Parameter> | undefined): Record<string, ParameterValue> {
  const out: Record<string, ParameterValue> = {};
  for (const [key, p] of Object.entries(parameters ?? {})) {
    const value = p.parameter_choice ? p[p.parameter_choice] : undefined;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[key] = value;
  }
  return out;
}

export function decodeInferRequest(msg: ModelInferRequest): InferRequest {
  const raw = msg.raw_input_contents ?? [];
  if (!msg.model_name) throw invalid('model_name is required');
  if (msg.inputs.length === 0) throw invalid('at least one input is required');
  if (raw.length > 0 && raw.length !== msg.inputs.length) {
    throw invalid(`raw_input_contents has ${raw.length} entries but the request has ${msg.inputs.length} inputs; give one per input`);
  }
  const inputs = msg.inputs.map((t, i): RequestTensor => {
    const dtype = hostDtype(t.datatype, t.name);
    const shape = checkShape(t.shape, t.name);
    const fields = setFields(t.contents);
    if (raw.length > 0) {
      if (fields.length > 0) throw invalid(`input "${t.name}" sets contents although raw_input_contents is used`);
      return { name: t.name, dtype, shape, data: fromRawBytes(dtype, shape, raw[i], t.name) };
    }
    const field = CONTENTS_FIELD[dtype];
    const stray = fields.filter((f) => f !== field);
    if (stray.length > 0) throw invalid(`input "${t.name}": datatype ${t.datatype} reads ${field}, but ${stray.join(' and ')} ${stray.length > 1 ? 'are' : 'is'} set too`);
    const values = t.contents ? t.contents[field] : [];
    return { name: t.name, dtype, shape, data: fromValues(dtype, shape, values, t.name) };
  });
  return {
    model: msg.model_name,
    version: msg.model_version || undefined,
    id: msg.id || undefined,
    parameters: decodeParameters(msg.parameters),
    inputs,
    outputs: msg.outputs.length > 0 ? msg.outputs.map((o) => o.name) : undefined,
  };
}

/** Outputs always travel as raw_output_contents, as Triton sends them. */
export function encodeInferResponse(response: InferResponse): object {
  return {
    model_name: response.model_name,
    model_version: response.model_version,
    id: response.id ?? '',
    parameters: {},
    outputs: response.outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.dims, parameters: {} })),
    raw_output_contents: response.outputs.map((o) => toRawBytes(o.data)),
  };
}

const named = (r: { name?: string; model_name?: string }) => r.model_name ?? r.name;

export function inferenceHandlers(service: InferenceService): grpc.UntypedServiceImplementation {
  return {
    ServerLive: unary(service, 'live', () => ({ live: service.live() })),
    ServerReady: unary(service, 'ready', () => ({ ready: service.ready() })),
    ModelReady: unary(service, 'model_ready', (r: { name: string; version: string }) => ({ ready: service.modelReady(r.name, r.version || undefined) }), named),
    ServerMetadata: unary(service, 'server_metadata', () => service.serverMetadata()),
    ModelMetadata: unary(service, 'model_metadata', (r: { name: string; version: string }) => service.modelMetadata(r.name, r.version || undefined), named),
    ModelInfer: unary(
      service,
      'infer',
      async (r: ModelInferRequest, call) => encodeInferResponse(await service.infer(decodeInferRequest(r), callContext(call))),
      named,
    ),
    ModelStreamInfer: orderedStream(
      service,
      'stream_infer',
      async (r: ModelInferRequest, ctx) => ({ error_message: '', infer_response: encodeInferResponse(await service.infer(decodeInferRequest(r), ctx)) }),
      (error: TridentError, r: ModelInferRequest) => ({
        error_message: error.message,
        infer_response: { model_name: r.model_name ?? '', model_version: r.model_version ?? '', id: r.id ?? '' },
      }),
      named,
    ),
    RepositoryIndex: unary(service, 'repository_index', async (r: { ready: boolean }) => ({ models: await service.repositoryIndex(r.ready) })),
    RepositoryModelLoad: unary(
      service,
      'repository_load',
      async (r: { model_name: string }, call) => (await service.loadModel(r.model_name, metadataKey(call.metadata)), {}),
      named,
    ),
    RepositoryModelUnload: unary(
      service,
      'repository_unload',
      async (r: { model_name: string }, call) => (await service.unloadModel(r.model_name, metadataKey(call.metadata)), {}),
      named,
    ),
  };
}
