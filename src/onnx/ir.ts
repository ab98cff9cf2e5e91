/** The in-memory ONNX graph representation that every other layer builds on. */

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool';

/** A dimension is a fixed size or a symbolic name (e.g. "N" for the batch). */
export type Dim = number | string;
export type Shape = Dim[];

export type TensorArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface TensorValue {
  dtype: DType;
  dims: number[];
  data: TensorArray;
}

export interface ValueInfo {
  name: string;
  dtype: DType;
  shape: Shape;
}

export type AttrValue =
  | { type: 'int'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'float'; value: number }
  | { type: 'floats'; value: number[] }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: TensorValue }
  | { type: 'graph'; value: Graph };

export interface Node {
  name: string;
  opType: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface Initializer extends TensorValue {
  name: string;
}

export interface Graph {
  name: string;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  nodes: Node[];
  initializers: Initializer[];
  /** Shapes of intermediate values; optional, written to the model only if asked. */
  valueInfo?: ValueInfo[];
}

export interface Model {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  graph: Graph;
  metadata: Record<string, string>;
}

export const DEFAULT_OPSET = 17;
export const DEFAULT_IR_VERSION = 8;

export function dtypeArray(dtype: DType, size: number): TensorArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(size);
    case 'float64':
      return new Float64Array(size);
    case 'int64':
      return new BigInt64Array(size);
    case 'int32':
      return new Int32Array(size);
    case 'uint8':
    case 'bool':
      return new Uint8Array(size);
  }
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function tensor(dtype: DType, dims: number[], values?: ArrayLike<number> | ArrayLike<bigint>): TensorValue {
  const data = dtypeArray(dtype, numel(dims));
  if (values) {
    if (values.length !== data.length) {
      throw new RangeError(`tensor of shape [${dims}] needs ${data.length} values, got ${values.length}`);
    }
    if (data instanceof BigInt64Array) {
      for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i] as number | bigint);
    } else {
      for (let i = 0; i < values.length; i++) data[i] = Number(values[i]);
    }
  }
  return { dtype, dims: [...dims], data };
}

/** Attribute constructors: plain numbers are ints, floats must be marked. */
export const attr = {
  int: (value: number): AttrValue => ({ type: 'int', value }),
  ints: (value: number[]): AttrValue => ({ type: 'ints', value }),
  float: (value: number): AttrValue => ({ type: 'float', value }),
  floats: (value: number[]): AttrValue => ({ type: 'floats', value }),
  string: (value: string): AttrValue => ({ type: 'string', value }),
  tensor: (value: TensorValue): AttrValue => ({ type: 'tensor', value }),
  graph: (value: Graph): AttrValue => ({ type: 'graph', value }),
};

/** Loosely typed attributes accepted by the builder: number → int, number[] → ints, string → string. */
export type AttrInput = AttrValue | number | number[] | string;
export type AttrsInput = Record<string, AttrInput | undefined>;

export function normaliseAttrs(attrs: AttrsInput = {}): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const [key, v] of Object.entries(attrs)) {
    if (v === undefined) continue;
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new TypeError(`attribute ${key}=${v} is not an integer; wrap floats with attr.float`);
      out[key] = attr.int(v);
    } else if (typeof v === 'string') out[key] = attr.string(v);
    else if (Array.isArray(v)) out[key] = attr.ints(v);
    else out[key] = v;
  }
  return out;
}

type AttrOf<T extends AttrValue['type']> = Extract<AttrValue, { type: T }>['value'];

export function getAttr<T extends AttrValue['type']>(node: Node, key: string, type: T, fallback?: AttrOf<T>): AttrOf<T> {
  const a = node.attrs[key];
  if (!a) {
    if (fallback === undefined) throw new Error(`node ${node.name} (${node.opType}) lacks attribute ${key}`);
    return fallback;
  }
  if (a.type !== type) throw new Error(`node ${node.name} (${node.opType}) attribute ${key} is ${a.type}, expected ${type}`);
  return a.value as AttrOf<T>;
}
