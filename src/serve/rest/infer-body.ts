/** OIP REST inference bodies: JSON tensors and Triton's binary tensor extension, in and out. */
import { z } from 'zod';
import { checkShape, fromRawBytes, fromValues, hostDtype, toJsonData, toRawBytes } from '../core/datatypes';
import { invalid } from '../../base/errors';
import { quote } from '../../base/quote';
import type { InferRequest, InferResponse, ParameterValue, RequestTensor, TensorMetadata } from '../core/service';

export const HEADER_LENGTH = 'inference-header-content-length';

/**
 * The Inference-Header-Content-Length header: undefined when absent, else a safe non-negative
 * integer (checked against the body length once the body is read).
 */
export function parseHeaderLength(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const length = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(length)) {
    throw invalid(`Inference-Header-Content-Length ${quote(String(value))} must be a non-negative integer (the byte length of the JSON header)`);
  }
  return length;
}

const Parameters = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));

const InferBody = z.object({
  id: z.string().optional(),
  parameters: Parameters.optional(),
  inputs: z
    .array(
      z.object({
        name: z.string(),
        shape: z.array(z.unknown()),
        datatype: z.string(),
        parameters: Parameters.optional(),
        data: z.unknown().optional(),
      }),
    )
    .min(1, 'at least one input is required'),
  outputs: z.array(z.object({ name: z.string(), parameters: Parameters.optional() })).optional(),
});

type InferBody = z.infer<typeof InferBody>;

/** What the response should look like, decided by the request. */
export interface OutputFormat {
  /** Output names to send as binary. */
  binary: Set<string> | 'all';
}

export interface ParsedInfer {
  request: InferRequest;
  format: OutputFormat;
}

/**
 * Parses a request body. `headerLength` is the Inference-Header-Content-Length value, if any;
 * `rawInput` describes the model's single input, for Triton's header-length-0 raw requests.
 */
export function parseInferBody(
  model: string,
  version: string | undefined,
  body: Buffer,
  headerLength: number | undefined,
  rawInput: () => TensorMetadata,
): ParsedInfer {
  let jsonPart: Buffer = body;
  let binary: Buffer = Buffer.alloc(0);
  if (headerLength !== undefined) {
    if (headerLength > body.length) {
      throw invalid(`Inference-Header-Content-Length ${headerLength} is longer than the body (${body.length} bytes)`);
    }
    if (headerLength === 0) return rawRequest(model, version, body, rawInput());
    jsonPart = body.subarray(0, headerLength);
    binary = body.subarray(headerLength);
  }
  const parsed = InferBody.safeParse(parseJson(jsonPart));
  if (!parsed.success) {
    throw invalid(`invalid inference request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`);
  }
  const inputs = decodeInputs(parsed.data, binary);
  const wantAll = parsed.data.parameters?.binary_data_output === true;
  const binaryOutputs = new Set<string>();
  for (const o of parsed.data.outputs ?? []) {
    const flag = o.parameters?.binary_data;
    if (flag === true || (flag === undefined && wantAll)) binaryOutputs.add(o.name);
  }
  const format: OutputFormat = { binary: wantAll && !parsed.data.outputs ? 'all' : binaryOutputs };
  return {
    request: {
      model,
      version,
      id: parsed.data.id,
      parameters: parsed.data.parameters ?? {},
      inputs,
      outputs: parsed.data.outputs?.map((o) => o.name),
    },
    format,
  };
}

function parseJson(bytes: Buffer): unknown {
  if (bytes.length === 0) throw invalid('empty request body: expected an inference request as JSON');
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw invalid(`malformed JSON in the request body: ${(e as Error).message}`);
  }
}

function decodeInputs(body: InferBody, binary: Buffer): RequestTensor[] {
  let offset = 0;
  const inputs = body.inputs.map((input): RequestTensor => {
    const dtype = hostDtype(input.datatype, input.name);
    const shape = checkShape(input.shape, input.name);
    const size = input.parameters?.binary_data_size;
    if (size !== undefined) {
      if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) {
        throw invalid(`input "${input.name}": binary_data_size must be a non-negative integer`);
      }
      if (input.data !== undefined) throw invalid(`input "${input.name}" has both binary_data_size and data`);
      if (offset + size > binary.length) {
        throw invalid(`input "${input.name}": binary_data_size ${size} runs past the end of the body (${binary.length - offset} bytes left)`);
      }
      const data = fromRawBytes(dtype, shape, binary.subarray(offset, offset + size), input.name);
      offset += size;
      return { name: input.name, dtype, shape, data };
    }
    if (input.data === undefined) throw invalid(`input "${input.name}" has no data (and no binary_data_size)`);
    return { name: input.name, dtype, shape, data: fromValues(dtype, shape, input.data, input.name) };
  });
  if (offset !== binary.length) throw invalid(`${binary.length - offset} bytes of binary data follow the last tensor that uses any`);
  return inputs;
}

function rawRequest(model: string, version: string | undefined, body: Buffer, input: TensorMetadata): ParsedInfer {
  const dtype = hostDtype(input.datatype, input.name);
  const shape = input.shape.map((d, i) => (d === -1 && i === 0 ? 1 : d));
  if (shape.some((d) => d === -1)) throw invalid(`input "${input.name}" has variable dimensions; a raw binary request cannot give its shape`);
  return {
    request: { model, version, parameters: {}, inputs: [{ name: input.name, dtype, shape, data: fromRawBytes(dtype, shape, body, input.name) }] },
    format: { binary: 'all' },
  };
}

export interface EncodedResponse {
  body: Buffer | string;
  contentType: string;
  headerLength?: number;
}

export function encodeInferResponse(response: InferResponse, format: OutputFormat): EncodedResponse {
  const chunks: Buffer[] = [];
  const outputs = response.outputs.map((o) => {
    const meta: { name: string; datatype: string; shape: number[]; parameters?: Record<string, ParameterValue>; data?: unknown } = {
      name: o.name,
      datatype: o.datatype,
      shape: o.dims,
    };
    if (format.binary === 'all' || format.binary.has(o.name)) {
      const bytes = toRawBytes(o.data);
      chunks.push(bytes);
      meta.parameters = { binary_data_size: bytes.length };
    } else {
      meta.data = toJsonData(o);
    }
    return meta;
  });
  const json = JSON.stringify({ ...response, outputs });
  if (chunks.length === 0) return { body: json, contentType: 'application/json' };
  const header = Buffer.from(json, 'utf8');
  return { body: Buffer.concat([header, ...chunks]), contentType: 'application/octet-stream', headerLength: header.length };
}
