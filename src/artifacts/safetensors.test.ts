import { decodeSafetensors, encodeSafetensors, type SafeTensor } from './safetensors';

describe('safetensors', () => {
  const tensors = new Map<string, SafeTensor>([
    ['b.weight', { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 1e-7, -0, 6) }],
    ['a.step', { dtype: 'I64', shape: [], data: BigInt64Array.of(9007199254740993n) }],
    ['c.empty', { dtype: 'F32', shape: [0], data: new Float32Array(0) }],
  ]);

  it('round-trips from a Buffer that is a view into a larger allocation (as fs reads can be)', () => {
    const encoded = encodeSafetensors(tensors, { note: 'hi' });
    const pooled = Buffer.concat([Buffer.from('junk!'), Buffer.from(encoded), Buffer.from('more')]);
    const view = pooled.subarray(5, 5 + encoded.length);
    const file = decodeSafetensors(view);
    expect(file.metadata).toEqual({ note: 'hi' });
    expect(Array.from(file.tensors.get('b.weight')!.data as Float32Array)).toEqual([1, -2, 3.5, Math.fround(1e-7), -0, 6]);
    expect(file.tensors.get('b.weight')!.shape).toEqual([2, 3]);
    expect((file.tensors.get('a.step')!.data as BigInt64Array)[0]).toBe(9007199254740993n);
    expect(file.tensors.get('c.empty')!.data.length).toBe(0);
  });

  it('lays out the header as the format requires: u64 length, JSON, sorted data, 8-byte aligned', () => {
    const encoded = Buffer.from(encodeSafetensors(tensors));
    const length = Number(encoded.readBigUInt64LE(0));
    expect((8 + length) % 8).toBe(0);
    const header = JSON.parse(encoded.subarray(8, 8 + length).toString('utf8'));
    expect(header['a.step']).toEqual({ dtype: 'I64', shape: [], data_offsets: [0, 8] });
    expect(header['b.weight']).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [8, 32] });
    expect(encoded.length).toBe(8 + length + 32);
  });

  it('refuses inconsistent files and tensors, saying what is wrong', () => {
    const encoded = Buffer.from(encodeSafetensors(tensors));
    expect(() => decodeSafetensors(Buffer.concat([encoded, Buffer.alloc(4)]), 'x')).toThrow('x: corrupt safetensors file (data section holds 36 bytes, tensors cover 32)');
    expect(() => encodeSafetensors(new Map([['w', { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) }]]))).toThrow('tensor w: 3 values for shape [2,2]');
  });
});
