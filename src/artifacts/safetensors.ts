/**
 * The safetensors format: 8-byte little-endian header length, JSON header, then raw tensor bytes.
 * Pure (no Node API): the web app uses it too.
 */

export type SafeDType = 'F32' | 'I64';

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  data: Float32Array | BigInt64Array;
}

export interface SafeFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

const BYTES: Record<SafeDType, number> = { F32: 4, I64: 8 };

const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;

export function encodeSafetensors(tensors: Map<string, SafeTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name)!;
    const expected = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== expected) throw new Error(`tensor ${name}: ${t.data.length} values for shape [${t.shape}]`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  // Pad the header with spaces so the data starts 8-byte aligned.
  const encoder = new TextEncoder();
  json += ' '.repeat((8 - ((8 + encoder.encode(json).length) % 8)) % 8);
  const headerBytes = encoder.encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = tensors.get(name)!;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/** Parses a safetensors file; any inconsistency is an error that says what is wrong. */
export function decodeSafetensors(bytes: Uint8Array, source = 'checkpoint'): SafeFile {
  const fail = (why: string): never => {
    throw new Error(`${source}: corrupt safetensors file (${why})`);
  };
  if (bytes.length < 8) fail('shorter than its 8-byte header length');
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLength <= 0 || 8 + headerLength > bytes.length) fail(`header length ${headerLength} exceeds the file`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength)));
  } catch {
    return fail('header is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const tensors = new Map<string, SafeTensor>();
  let covered = 0;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const e = entry as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    if (e.dtype !== 'F32' && e.dtype !== 'I64') fail(`tensor ${name} has unsupported dtype ${e.dtype}`);
    const dtype = e.dtype as SafeDType;
    if (!Array.isArray(e.shape) || !Array.isArray(e.data_offsets)) fail(`tensor ${name} lacks shape or offsets`);
    if (!e.shape!.every(isCount) || e.data_offsets!.length !== 2 || !e.data_offsets!.every(isCount)) fail(`tensor ${name} has a malformed shape or offsets`);
    const [begin, end] = e.data_offsets!;
    const count = e.shape!.reduce((a, b) => a * b, 1);
    if (!(begin >= 0 && end <= dataLength && end - begin === count * BYTES[dtype])) fail(`tensor ${name} has offsets out of range`);
    // A copy (a subarray would be a view into the whole file), so the typed array starts at 0 and is aligned.
    const slice = new Uint8Array(end - begin);
    slice.set(bytes.subarray(dataStart + begin, dataStart + end));
    const data = dtype === 'F32' ? new Float32Array(slice.buffer, 0, count) : new BigInt64Array(slice.buffer, 0, count);
    tensors.set(name, { dtype, shape: e.shape!, data });
    covered += end - begin;
  }
  if (covered !== dataLength) fail(`data section holds ${dataLength} bytes, tensors cover ${covered}`);
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  if (typeof metadata !== 'object' || metadata === null || Object.values(metadata).some((v) => typeof v !== 'string')) fail('__metadata__ is not an object of strings');
  return { tensors, metadata };
}

/** Where each tensor's bytes lie in an encoded file: absolute offset and length, for ONNX external data. */
export function tensorLocations(bytes: Uint8Array): Map<string, { offset: number; length: number }> {
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength))) as Record<string, { data_offsets?: [number, number] }>;
  const locations = new Map<string, { offset: number; length: number }>();
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__' || !entry.data_offsets) continue;
    const [begin, end] = entry.data_offsets;
    locations.set(name, { offset: 8 + headerLength + begin, length: end - begin });
  }
  return locations;
}
