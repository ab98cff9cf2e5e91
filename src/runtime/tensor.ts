/** Plain host tensors as they cross thread boundaries, and batching along the leading dimension. */

export type NumericDType =
  | 'float32' | 'float64' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool';

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

export interface HostTensor {
  dtype: NumericDType;
  dims: number[];
  data: TypedArray;
}

type ArrayConstructor = { new (length: number): TypedArray; new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray; BYTES_PER_ELEMENT: number };

export const ARRAY_TYPES: Readonly<Record<NumericDType, ArrayConstructor>> = Object.freeze({
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
});

export function isNumericDType(value: string): value is NumericDType {
  return Object.prototype.hasOwnProperty.call(ARRAY_TYPES, value);
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function zeros(dtype: NumericDType, dims: number[]): HostTensor {
  return { dtype, dims, data: new ARRAY_TYPES[dtype](elementCount(dims)) };
}

/**
 * Joins tensors along dimension 0 into a buffer of its own (safe to transfer to a worker), taken
 * from `allocate` where given.
 */
export function concatBatch(parts: readonly HostTensor[], allocate?: (byteLength: number) => ArrayBuffer): HostTensor {
  const first = parts[0];
  const rows = parts.reduce((n, t) => n + t.dims[0], 0);
  const type = ARRAY_TYPES[first.dtype];
  const length = parts.reduce((n, t) => n + t.data.length, 0);
  const data = allocate ? new type(allocate(length * type.BYTES_PER_ELEMENT), 0, length) : new type(length);
  let offset = 0;
  for (const t of parts) {
    (data as Float32Array).set(t.data as Float32Array, offset);
    offset += t.data.length;
  }
  return { dtype: first.dtype, dims: [rows, ...first.dims.slice(1)], data };
}

/** Rows [start, start + count) of a tensor, as a view without copying. */
export function sliceBatch(t: HostTensor, start: number, count: number): HostTensor {
  const rowSize = elementCount(t.dims.slice(1));
  return {
    dtype: t.dtype,
    dims: [count, ...t.dims.slice(1)],
    data: t.data.subarray(start * rowSize, (start + count) * rowSize) as TypedArray,
  };
}
