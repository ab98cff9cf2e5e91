import { firstBitDifference } from '../testing/compare';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { initBuffers, initParams, layout } from '../model/params';
import { mulberry32 } from '../base/random';
import { TINY_RESIDUAL } from '../testing/specs';
import { builtinSpec, parseSpec } from '../model/spec';
import {
  decodeCheckpoint,
  emptyOptimizerState,
  encodeCheckpoint,
  loadCheckpoint,
  loadCheckpointSync,
  saveCheckpoint,
  specDifference,
  type Checkpoint,
} from './checkpoint';
import { decodeSafetensors, encodeSafetensors } from './safetensors';

const spec = builtinSpec('tiny');

function filled(values: Map<string, Float32Array>, seed: number): Map<string, Float32Array> {
  const random = mulberry32(seed);
  const out = new Map<string, Float32Array>();
  for (const [k, v] of values) out.set(k, v.map(() => random() - 0.5));
  return out;
}

function sampleCheckpoint(): Checkpoint {
  const optimizer = emptyOptimizerState(spec, DEFAULT_OPTIMIZER.adam);
  return {
    spec,
    params: initParams(spec, 5),
    buffers: new Map(),
    optimizer: { ...optimizer, state: filled(optimizer.state, 9), step: 1234 },
    progress: { epoch: 2, index: 7, lossSums: [0.1, 1 / 3, 2e-9], weighting: { history: [[1, 2, 3]] }, best: null },
  };
}


describe('checkpoint safetensors', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'trident-ckpt-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips parameters, optimizer state, step, spec and progress bit for bit', async () => {
    const ckpt = sampleCheckpoint();
    const file = path.join(dir, 'a.safetensors');
    await saveCheckpoint(file, ckpt);
    const back = await loadCheckpoint(file);
    expect(back.spec).toEqual(spec);
    expect([...back.params.keys()].sort()).toEqual([...ckpt.params.keys()].sort());
    expect(firstBitDifference(ckpt.params, back.params)).toBeUndefined();
    expect(back.optimizer!.config).toEqual(DEFAULT_OPTIMIZER.adam);
    expect(back.optimizer!.step).toBe(1234);
    expect(back.optimizer!.state.size).toBe(2 * layout(spec).params.length);
    expect(firstBitDifference(ckpt.optimizer!.state, back.optimizer!.state)).toBeUndefined();
    expect(back.progress).toEqual(ckpt.progress);
    // No temporary files are left behind by the atomic write.
    expect(readdirSync(dir)).toEqual(['a.safetensors']);
  });

  it('is a plain safetensors file with PyTorch names and layouts', () => {
    const file = decodeSafetensors(encodeCheckpoint(sampleCheckpoint()));
    expect(file.tensors.get('trunk.0.weight')).toMatchObject({ dtype: 'F32', shape: [4, 3, 3, 3] });
    expect(file.tensors.get('heads.cls.weight')).toMatchObject({ dtype: 'F32', shape: [3, 16] });
    expect(file.tensors.get('optim.shared.1.weight.exp_avg_sq')).toMatchObject({ dtype: 'F32', shape: [16, 128] });
    expect(file.tensors.get('optim.step')).toMatchObject({ dtype: 'I64', shape: [] });
    expect(Object.keys(file.metadata).sort()).toEqual(['format', 'optimizer', 'progress', 'sha256', 'spec', 'trident']);
    // The data section starts 8-byte aligned.
    const bytes = encodeCheckpoint(sampleCheckpoint());
    const headerLength = Number(Buffer.from(bytes).readBigUInt64LE(0));
    expect((8 + headerLength) % 8).toBe(0);
  });

  it('round-trips a checkpoint without optimizer state', () => {
    const back = decodeCheckpoint(encodeCheckpoint({ spec, params: initParams(spec, 1), buffers: new Map() }));
    expect(back.optimizer).toBeUndefined();
    expect(back.progress).toBeUndefined();
  });

  describe('a corrupt checkpoint gives a clear error', () => {
    const good = () => Buffer.from(encodeCheckpoint(sampleCheckpoint()));
    const write = (name: string, bytes: Uint8Array) => {
      const file = path.join(dir, name);
      writeFileSync(file, bytes);
      return file;
    };

    it('truncated', async () => {
      const bytes = good();
      const file = write('truncated.safetensors', bytes.subarray(0, bytes.length - 100));
      await expect(loadCheckpoint(file)).rejects.toThrow(`${file}: corrupt safetensors file (tensor`);
      await expect(loadCheckpoint(file)).rejects.toThrow(/offsets out of range/);
      const stub = write('stub.safetensors', bytes.subarray(0, 5));
      expect(() => loadCheckpointSync(stub)).toThrow(`${stub}: corrupt safetensors file (shorter than its 8-byte header length)`);
      const headerOnly = write('header-only.safetensors', bytes.subarray(0, 200));
      expect(() => loadCheckpointSync(headerOnly)).toThrow(/header length \d+ exceeds the file/);
    });

    it('a flipped byte in the tensor data → checksum mismatch', async () => {
      const bytes = good();
      bytes[bytes.length - 37] ^= 0x10;
      const file = write('flipped.safetensors', bytes);
      await expect(loadCheckpoint(file)).rejects.toThrow(`${file}: checksum mismatch, the checkpoint is corrupt`);
    });

    it('a flipped byte in the metadata (spec, progress) → checksum mismatch', () => {
      const bytes = good();
      // Metadata values are JSON inside JSON strings, so their quotes are escaped.
      const at = bytes.indexOf('lossSums\\":[0.1');
      expect(at).toBeGreaterThan(0);
      bytes[at + 14] = '2'.charCodeAt(0); // 0.1 → 0.2: valid JSON, silently different without the checksum
      expect(() => decodeCheckpoint(bytes, 'm.safetensors')).toThrow('m.safetensors: checksum mismatch, the checkpoint is corrupt');
      const label = good();
      const labelAt = label.indexOf('labels\\":[\\"a');
      expect(labelAt).toBeGreaterThan(0);
      label[labelAt + 12] = 'x'.charCodeAt(0); // label "a" → "x"
      expect(() => decodeCheckpoint(label, 'l.safetensors')).toThrow('l.safetensors: checksum mismatch');
    });

    it('any single flipped bit in the header, or sampled across the data, is refused', () => {
      const bytes = good();
      const dataStart = 8 + Number(bytes.readBigUInt64LE(0));
      const positions: number[] = [];
      for (let i = 0; i < dataStart; i++) positions.push(i);
      for (let i = dataStart; i < bytes.length; i += 61) positions.push(i);
      const undetected = positions.filter((i) => {
        bytes[i] ^= 0x04;
        try {
          decodeCheckpoint(bytes);
          return true;
        } catch {
          return false;
        } finally {
          bytes[i] ^= 0x04;
        }
      });
      expect(undetected).toEqual([]);
    });

    it('a wrong header', () => {
      const bytes = good();
      bytes.writeBigUInt64LE(BigInt(bytes.length * 2), 0);
      expect(() => decodeCheckpoint(bytes, 'x.safetensors')).toThrow('x.safetensors: corrupt safetensors file (header length');
      const garbled = good();
      garbled[8] = 0x5b; // '{' → '['
      garbled[9] = 0x7d;
      expect(() => decodeCheckpoint(garbled, 'y.safetensors')).toThrow('y.safetensors: corrupt safetensors file (header is not JSON)');
      const other = encodeSafetensors(new Map([['w', { dtype: 'F32', shape: [1], data: Float32Array.of(1) }]]), { format: 'other' });
      expect(() => decodeCheckpoint(other, 'z.safetensors')).toThrow('z.safetensors: not a Trident checkpoint (format other)');
    });

    it('an unreadable file', async () => {
      const missing = path.join(dir, 'missing.safetensors');
      await expect(loadCheckpoint(missing)).rejects.toThrow(`${missing}: cannot read checkpoint`);
    });
  });

  it('saving refuses a checkpoint that lacks a parameter', () => {
    const params = initParams(spec, 1);
    params.delete('heads.box.bias');
    expect(() => encodeCheckpoint({ spec, params, buffers: new Map() })).toThrow('checkpoint: missing parameter heads.box.bias');
    // Parameters of another spec (3 classes saved under a 5-class spec).
    const wider = parseSpec({ ...spec, heads: { ...spec.heads, classification: { labels: ['a', 'b', 'c', 'd', 'e'] } } });
    expect(() => encodeCheckpoint({ spec: wider, params: initParams(spec, 1), buffers: new Map() })).toThrow('tensor heads.cls.bias: 3 values for shape [5]');
  });

  it('round-trips BatchNorm buffers under their PyTorch names (num_batches_tracked as a 0-d int64), and refuses to save without them', () => {
    const buffers = initBuffers(TINY_RESIDUAL);
    buffers.set('trunk.4.bn2.num_batches_tracked', BigInt64Array.of(123456789012n));
    (buffers.get('trunk.4.bn2.running_var') as Float32Array)[3] = 0.125;
    const ckpt: Checkpoint = { spec: TINY_RESIDUAL, params: initParams(TINY_RESIDUAL, 2), buffers };
    const bytes = encodeCheckpoint(ckpt);
    const file = decodeSafetensors(bytes);
    expect(file.tensors.get('trunk.4.bn2.num_batches_tracked')).toMatchObject({ dtype: 'I64', shape: [] });
    expect(file.tensors.get('trunk.1.running_mean')).toMatchObject({ dtype: 'F32', shape: [4] });
    const back = decodeCheckpoint(bytes);
    expect(back.buffers).toEqual(buffers);
    buffers.delete('trunk.1.running_var');
    expect(() => encodeCheckpoint(ckpt)).toThrow('checkpoint: missing buffer trunk.1.running_var');
  });

  it('loads every tensor from a file as its own aligned copy of the right bytes', () => {
    const ckpt = sampleCheckpoint();
    const file = path.join(dir, 'copy.safetensors');
    writeFileSync(file, encodeCheckpoint(ckpt));
    const back = loadCheckpointSync(file);
    for (const v of back.params.values()) {
      expect(v.byteOffset).toBe(0);
      expect(v.buffer.byteLength).toBe(v.byteLength);
    }
    expect(firstBitDifference(back.params, ckpt.params)).toBeUndefined();
    expect(readFileSync(file).length).toBeGreaterThan(0);
  });
});

describe('specDifference', () => {
  const tiny = builtinSpec('tiny');
  it('is undefined for the same architecture, even under another name or normalisation', () => {
    expect(specDifference(tiny, builtinSpec('tiny'))).toBeUndefined();
    expect(specDifference(tiny, { ...tiny, name: 'renamed', input: { ...tiny.input, mean: [0, 0, 0] } })).toBeUndefined();
  });

  it('says which tensors differ and how', () => {
    const wider = parseSpec({ ...tiny, trunk: [{ ...tiny.trunk[0], outChannels: 6 }, tiny.trunk[1]] });
    expect(specDifference(tiny, wider)).toBe('trunk.0.weight is 4×3×3×3 vs 6×3×3×3; trunk.0.bias is 4 vs 6; trunk.3.weight is 8×4×3×3 vs 8×6×3×3');
    const tenClasses = parseSpec({ ...tiny, heads: { ...tiny.heads, classification: { labels: 'abcdefghij'.split('') } } });
    expect(specDifference(tiny, tenClasses)).toBe('heads.cls.weight is 3×16 vs 10×16; heads.cls.bias is 3 vs 10');
    expect(specDifference(tiny, builtinSpec('seed'))).toMatch(/^input 3×16×16 vs 3×28×28; trunk.0.weight is 4×3×3×3 vs 64×3×3×3/);
    const deeper = parseSpec({ ...tiny, shared: [16, 8] });
    expect(specDifference(deeper, tiny)).toContain('shared.3.weight only in one');
    expect(specDifference(tiny, deeper)).toBe('heads.cls.weight is 3×16 vs 3×8; heads.det.weight is 1×16 vs 1×8; heads.box.weight is 4×16 vs 4×8; 12 vs 14 parameter tensors');
    const normalised = parseSpec({ ...tiny, trunk: [{ ...tiny.trunk[0], batchNorm: true }, tiny.trunk[1]] });
    expect(specDifference(tiny, normalised)).toBe('trunk.0.bias only in one; trunk.3.weight only in one; trunk.3.bias only in one; 12 vs 13 parameter tensors; buffers none vs trunk.1.running_mean,trunk.1.running_var,trunk.1.num_batches_tracked');
  });
});
