/** Conversion between the IR and ONNX `ModelProto` bytes (protobuf, via onnx-proto). */
import { onnx } from 'onnx-proto';
import type Long from 'long';
import type { AttrValue, DType, Graph, Initializer, Model, Node, Shape, TensorValue, ValueInfo } from './ir';
import { dtypeArray, numel } from './ir';

const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

const DTYPE_TO_ONNX: Record<DType, number> = {
  float32: DT.FLOAT,
  float64: DT.DOUBLE,
  int64: DT.INT64,
  int32: DT.INT32,
  uint8: DT.UINT8,
  bool: DT.BOOL,
};

const ONNX_TO_DTYPE = new Map<number, DType>(Object.entries(DTYPE_TO_ONNX).map(([k, v]) => [v, k as DType]));

export function onnxDataType(dtype: DType): number {
  return DTYPE_TO_ONNX[dtype];
}

function toLong(n: number | Long | null | undefined): number {
  if (n === null || n === undefined) return 0;
  return typeof n === 'number' ? n : n.toNumber();
}

function rawBytes(t: TensorValue): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Where an initializer's bytes lie in another file of the model's folder (ONNX external data). */
export interface ExternalLocation {
  location: string;
  offset: number;
  length: number;
}

export interface EncodeOptions {
  /** Initializers stored outside the model file, by name; the bytes there must be the tensor's own. */
  external?: ReadonlyMap<string, ExternalLocation>;
}

export interface DecodeOptions {
  /** The bytes of a file that external data names; without it, such tensors are an error. */
  readExternal?: (location: string) => Uint8Array;
}

function encodeTensor(name: string, t: TensorValue, external?: ExternalLocation): onnx.ITensorProto {
  if (!external) return { name, dims: t.dims, dataType: DTYPE_TO_ONNX[t.dtype], rawData: rawBytes(t) };
  return {
    name,
    dims: t.dims,
    dataType: DTYPE_TO_ONNX[t.dtype],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: external.location },
      { key: 'offset', value: String(external.offset) },
      { key: 'length', value: String(external.length) },
    ],
  };
}

function externalBytes(p: onnx.ITensorProto, opts: DecodeOptions): Uint8Array {
  const entry = (key: string) => p.externalData?.find((e) => e.key === key)?.value ?? '';
  if (!opts.readExternal) throw new Error(`tensor ${p.name}: its data is in ${entry('location')}; decode with readExternal`);
  const file = opts.readExternal(entry('location'));
  const offset = Number(entry('offset') || 0);
  const length = Number(entry('length') || file.length - offset);
  if (!(offset >= 0 && offset + length <= file.length)) throw new Error(`tensor ${p.name}: external data past the end of ${entry('location')}`);
  return file.subarray(offset, offset + length);
}

function decodeTensor(p: onnx.ITensorProto, opts: DecodeOptions = {}): Initializer {
  const dtype = ONNX_TO_DTYPE.get(p.dataType ?? 0);
  if (!dtype) throw new Error(`tensor ${p.name}: unsupported data type ${p.dataType}`);
  const dims = (p.dims ?? []).map(toLong);
  const data = dtypeArray(dtype, numel(dims));
  if (p.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const bytes = externalBytes(p, opts);
    if (bytes.length !== data.byteLength) throw new Error(`tensor ${p.name}: external data holds ${bytes.length} bytes, shape needs ${data.byteLength}`);
    new Uint8Array(data.buffer).set(bytes);
  } else if (p.rawData && p.rawData.length > 0) {
    if (p.rawData.length !== data.byteLength) {
      throw new Error(`tensor ${p.name}: raw data holds ${p.rawData.length} bytes, shape needs ${data.byteLength}`);
    }
    new Uint8Array(data.buffer).set(p.rawData);
  } else if (dtype === 'float32' && p.floatData?.length) data.set(p.floatData as never);
  else if (dtype === 'float64' && p.doubleData?.length) data.set(p.doubleData as never);
  else if (dtype === 'int64' && p.int64Data?.length) {
    (p.int64Data as (number | Long)[]).forEach((v, i) => ((data as BigInt64Array)[i] = BigInt(toLong(v))));
  } else if (p.int32Data?.length) data.set(p.int32Data as never);
  return { name: p.name ?? '', dtype, dims, data };
}

function encodeShape(shape: Shape): onnx.ITensorShapeProto {
  return { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
}

function encodeValueInfo(v: ValueInfo): onnx.IValueInfoProto {
  return { name: v.name, type: { tensorType: { elemType: DTYPE_TO_ONNX[v.dtype], shape: encodeShape(v.shape) } } };
}

function decodeValueInfo(p: onnx.IValueInfoProto): ValueInfo {
  const tt = p.type?.tensorType;
  const dtype = ONNX_TO_DTYPE.get(tt?.elemType ?? 0);
  if (!dtype) throw new Error(`value ${p.name}: unsupported element type ${tt?.elemType}`);
  const shape: Shape = (tt?.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : toLong(d.dimValue)));
  return { name: p.name ?? '', dtype, shape };
}

function encodeAttr(name: string, a: AttrValue): onnx.IAttributeProto {
  switch (a.type) {
    case 'int':
      return { name, type: AT.INT, i: a.value };
    case 'ints':
      return { name, type: AT.INTS, ints: a.value };
    case 'float':
      return { name, type: AT.FLOAT, f: a.value };
    case 'floats':
      return { name, type: AT.FLOATS, floats: a.value };
    case 'string':
      return { name, type: AT.STRING, s: new TextEncoder().encode(a.value) };
    case 'tensor':
      return { name, type: AT.TENSOR, t: encodeTensor('', a.value) };
    case 'graph':
      return { name, type: AT.GRAPH, g: encodeGraph(a.value) };
  }
}

function decodeAttr(p: onnx.IAttributeProto): AttrValue {
  switch (p.type) {
    case AT.INT:
      return { type: 'int', value: toLong(p.i) };
    case AT.INTS:
      return { type: 'ints', value: (p.ints ?? []).map(toLong) };
    case AT.FLOAT:
      return { type: 'float', value: p.f ?? 0 };
    case AT.FLOATS:
      return { type: 'floats', value: [...(p.floats ?? [])] };
    case AT.STRING:
      return { type: 'string', value: new TextDecoder().decode(p.s ?? new Uint8Array()) };
    case AT.TENSOR:
      return { type: 'tensor', value: decodeTensor(p.t ?? {}) };
    case AT.GRAPH:
      return { type: 'graph', value: decodeGraph(p.g ?? {}) };
    default:
      throw new Error(`attribute ${p.name}: unsupported type ${p.type}`);
  }
}

function encodeNode(n: Node): onnx.INodeProto {
  return {
    name: n.name,
    opType: n.opType,
    domain: n.domain ?? '',
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attrs).map(([k, v]) => encodeAttr(k, v)),
  };
}

function decodeNode(p: onnx.INodeProto): Node {
  const attrs: Record<string, AttrValue> = {};
  for (const a of p.attribute ?? []) attrs[a.name ?? ''] = decodeAttr(a);
  return {
    name: p.name ?? '',
    opType: p.opType ?? '',
    domain: p.domain || undefined,
    inputs: [...(p.input ?? [])],
    outputs: [...(p.output ?? [])],
    attrs,
  };
}

export function encodeGraph(g: Graph, opts: EncodeOptions = {}): onnx.IGraphProto {
  return {
    name: g.name,
    input: g.inputs.map(encodeValueInfo),
    output: g.outputs.map(encodeValueInfo),
    node: g.nodes.map(encodeNode),
    initializer: g.initializers.map((t) => encodeTensor(t.name, t, opts.external?.get(t.name))),
    valueInfo: (g.valueInfo ?? []).map(encodeValueInfo),
  };
}

export function decodeGraph(p: onnx.IGraphProto, opts: DecodeOptions = {}): Graph {
  return {
    name: p.name ?? '',
    inputs: (p.input ?? []).map(decodeValueInfo),
    outputs: (p.output ?? []).map(decodeValueInfo),
    nodes: (p.node ?? []).map(decodeNode),
    initializers: (p.initializer ?? []).map((t) => decodeTensor(t, opts)),
    valueInfo: (p.valueInfo ?? []).map(decodeValueInfo),
  };
}

export function encodeModel(m: Model, opts: EncodeOptions = {}): Uint8Array {
  const proto: onnx.IModelProto = {
    irVersion: m.irVersion,
    producerName: m.producerName,
    producerVersion: m.producerVersion,
    opsetImport: [{ domain: '', version: m.opset }],
    graph: encodeGraph(m.graph, opts),
    metadataProps: Object.entries(m.metadata).map(([key, value]) => ({ key, value })),
  };
  return onnx.ModelProto.encode(proto).finish();
}

export function decodeModel(bytes: Uint8Array, opts: DecodeOptions = {}): Model {
  let p: onnx.ModelProto;
  try {
    p = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new Error(`not an ONNX model: ${(e as Error).message}`);
  }
  if (!p.graph) throw new Error('not an ONNX model: no graph');
  const opset = (p.opsetImport ?? []).find((o) => !o.domain)?.version;
  const metadata: Record<string, string> = {};
  for (const e of p.metadataProps ?? []) metadata[e.key ?? ''] = e.value ?? '';
  return {
    irVersion: toLong(p.irVersion),
    opset: toLong(opset),
    producerName: p.producerName ?? '',
    producerVersion: p.producerVersion ?? '',
    graph: decodeGraph(p.graph, opts),
    metadata,
  };
}
