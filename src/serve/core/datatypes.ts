/** Open Inference Protocol datatypes: names, sizes, and conversion of tensor data from and to the wire. */
import { ARRAY_TYPES, elementCount, type HostTensor, type NumericDType, type TypedArray } from '../../runtime/tensor';
import { invalid } from '../../base/errors';

/** OIP datatype → host dtype, for every datatype with a fixed element size that we can run. */
const TO_DTYPE: Readonly<Record<string, NumericDType>> = Object.freeze({
  BOOL: 'bool',
  UINT8: 'uint8',
  UINT16: 'uint16',
  UINT32: 'uint32',
  UINT64: 'uint64',
  INT8: 'int8',
  INT16: 'int16',
  INT32: 'int32',
  INT64: 'int64',
  FP32: 'float32',
  FP64: 'float64',
});

const FROM_DTYPE: Readonly<Record<NumericDType, string>> = Object.freeze(
  Object.fromEntries(Object.entries(TO_DTYPE).map(([k, v]) => [v, k])) as Record<NumericDType, string>,
);

const KNOWN_DATATYPES = new Set([...Object.keys(TO_DTYPE), 'FP16', 'BF16', 'BYTES']);

export function oipDatatype(dtype: NumericDType): string {
  return FROM_DTYPE[dtype];
}

/** The host dtype of an OIP datatype; unknown or unsupported names are a client error. */
export function hostDtype(datatype: string, tensor: string): NumericDType {
  const dtype = TO_DTYPE[datatype];
  if (dtype) return dtype;
  if (KNOWN_DATATYPES.has(datatype)) throw invalid(`input "${tensor}": datatype ${datatype} is not supported by this server`);
  throw invalid(`input "${tensor}": unknown datatype "${datatype}"; expected one of ${Object.keys(TO_DTYPE).join(', ')}`);
}

export function checkShape(shape: unknown, tensor: string): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw invalid(`input "${tensor}": shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

/** The integer range of each integer dtype (64-bit ones as far as a JSON or protobuf number is exact). */
const INTEGER_RANGE: Readonly<Partial<Record<NumericDType, [number, number]>>> = Object.freeze({
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
});

/** A value for an error message: JSON would print NaN and Infinity as null. */
function describe(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

/**
 * Flattens nested JSON arrays or protobuf repeated values (row-major) into a typed array, checking
 * count, type and range. Floats may be NaN or ±Infinity (protobuf can carry them; JSON cannot).
 */
export function fromValues(dtype: NumericDType, shape: number[], data: unknown, tensor: string): TypedArray {
  const expected = elementCount(shape);
  const flat = Array.isArray(data) ? flatten(data as unknown[], tensor) : [data];
  if (flat.length !== expected) {
    throw invalid(`input "${tensor}": data has ${flat.length} elements but shape [${shape}] needs ${expected}`);
  }
  const out = new ARRAY_TYPES[dtype](expected);
  const big = dtype === 'int64' || dtype === 'uint64';
  const range = INTEGER_RANGE[dtype];
  for (let i = 0; i < expected; i++) {
    const v = flat[i];
    if (dtype === 'bool') {
      if (typeof v !== 'boolean') throw invalid(`input "${tensor}": element ${i} is ${describe(v)}, expected true or false`);
      out[i] = v ? 1 : 0;
    } else if (typeof v !== 'number') {
      throw invalid(`input "${tensor}": element ${i} is ${describe(v)}, expected ${range ? 'an integer' : 'a number'}`);
    } else if (range && !(Number.isInteger(v) && v >= range[0] && v <= range[1])) {
      throw invalid(`input "${tensor}": element ${i} is ${describe(v)}, expected an integer in ${range[0]}..${range[1]} for ${oipDatatype(dtype)}`);
    } else {
      out[i] = big ? (BigInt(v) as never) : v;
    }
  }
  return out;
}

/** Nested arrays to one list, iteratively: a hostile nesting depth must not overflow the stack. */
function flatten(data: unknown[], tensor: string): unknown[] {
  const out: unknown[] = [];
  const stack: [unknown[], number][] = [[data, 0]];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top[1] >= top[0].length) {
      stack.pop();
      continue;
    }
    const v = top[0][top[1]++];
    if (!Array.isArray(v)) out.push(v);
    else if (stack.length >= 64) throw invalid(`input "${tensor}": data is nested more than 64 levels deep`);
    else stack.push([v, 0]);
  }
  return out;
}

/**
 * Reads little-endian raw bytes as a typed array, checking the byte length: a view of `bytes` where
 * they are aligned for the element type, else a copy. The request owns the result only for reading.
 */
export function fromRawBytes(dtype: NumericDType, shape: number[], bytes: Uint8Array, tensor: string): TypedArray {
  const Type = ARRAY_TYPES[dtype];
  const expected = elementCount(shape) * Type.BYTES_PER_ELEMENT;
  if (bytes.byteLength !== expected) {
    throw invalid(`input "${tensor}": got ${bytes.byteLength} bytes of data but shape [${shape}] of ${oipDatatype(dtype)} needs ${expected}`);
  }
  if (bytes.byteOffset % Type.BYTES_PER_ELEMENT === 0) return new Type(bytes.buffer, bytes.byteOffset, expected / Type.BYTES_PER_ELEMENT);
  const copy = new Uint8Array(expected);
  copy.set(bytes);
  return new Type(copy.buffer, 0, expected / Type.BYTES_PER_ELEMENT);
}

export function toRawBytes(data: TypedArray): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

export function toJsonData(t: HostTensor): (number | boolean)[] {
  if (t.dtype === 'bool') return Array.from(t.data as Uint8Array, (v) => v !== 0);
  if (t.data instanceof BigInt64Array || t.data instanceof BigUint64Array) return Array.from(t.data, Number);
  return Array.from(t.data as Float32Array);
}
