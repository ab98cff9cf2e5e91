import { fatbinContainers, KIND_CUBIN, KIND_PTX, stripFatbin } from './fatbin';
import { verifyStripped } from './pack';

/** An entry: 64-byte header, then the payload padded to 8 bytes. */
function entry(kind: number, arch: number, payload: string): Buffer {
  const data = Buffer.from(payload);
  const padded = Math.ceil(data.length / 8) * 8;
  const header = Buffer.alloc(64);
  header.writeUInt16LE(kind, 0);
  header.writeUInt16LE(0x0101, 2);
  header.writeUInt32LE(64, 4);
  header.writeUInt32LE(padded, 8);
  header.writeUInt32LE(data.length, 16);
  header.writeUInt32LE(arch, 28);
  return Buffer.concat([header, data, Buffer.alloc(padded - data.length)]);
}

function container(...entries: Buffer[]): Buffer {
  const body = Buffer.concat(entries);
  const header = Buffer.alloc(16);
  header.writeUInt32LE(0xba55ed50, 0);
  header.writeUInt16LE(1, 4);
  header.writeUInt16LE(16, 6);
  header.writeBigUInt64LE(BigInt(body.length), 8);
  return Buffer.concat([header, body]);
}

/** A 64-bit ELF file whose only sections are .nv_fatbin and the section name table. */
function elfWith(fatbin: Buffer): Buffer {
  const names = Buffer.from('\0.nv_fatbin\0.shstrtab\0');
  const fatbinAt = 64;
  const namesAt = fatbinAt + fatbin.length;
  const shoff = Math.ceil((namesAt + names.length) / 8) * 8;
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2;
  header[5] = 1;
  header.writeBigUInt64LE(BigInt(shoff), 0x28);
  header.writeUInt16LE(64, 0x3a);
  header.writeUInt16LE(3, 0x3c);
  header.writeUInt16LE(2, 0x3e);
  const section = (name: number, type: number, offset: number, size: number) => {
    const s = Buffer.alloc(64);
    s.writeUInt32LE(name, 0);
    s.writeUInt32LE(type, 4);
    s.writeBigUInt64LE(BigInt(offset), 0x18);
    s.writeBigUInt64LE(BigInt(size), 0x20);
    return s;
  };
  const table = Buffer.concat([section(0, 0, 0, 0), section(1, 1, fatbinAt, fatbin.length), section(12, 3, namesAt, names.length)]);
  return Buffer.concat([header, fatbin, names, Buffer.alloc(shoff - namesAt - names.length), table]);
}

describe('stripping a CUDA fat binary for one architecture', () => {
  const fatbin = Buffer.concat([
    container(entry(KIND_CUBIN, 80, 'keep-sm80'), entry(KIND_CUBIN, 90, 'keep-sm90-code'), entry(KIND_PTX, 90, 'keep-ptx')),
    container(entry(KIND_CUBIN, 120, 'blackwell-only')),
    container(entry(KIND_CUBIN, 80, 'contrib-sm80'), entry(KIND_CUBIN, 90, 'contrib-sm90')),
  ]);

  it('walks containers and entries', () => {
    const containers = fatbinContainers(elfWith(fatbin));
    expect(containers.map((c) => c.entries.map((e) => `${e.kind}:${e.arch}:${e.size}`))).toEqual([
      ['2:80:9', '2:90:14', '1:90:8'],
      ['2:120:14'],
      ['2:80:12', '2:90:12'],
    ]);
  });

  it('zeroes what the GPU never loads and the containers not needed, moving nothing', () => {
    const original = elfWith(fatbin);
    const elf = Buffer.from(original);
    const seen: string[] = [];
    const report = stripFatbin(elf, 90, (cubins) => {
      seen.push(...cubins.map((c) => c.toString()));
      return !cubins[0].toString().startsWith('contrib');
    });
    expect(seen).toEqual(['keep-sm90-code', 'contrib-sm90']);
    expect(report).toEqual({ containers: 3, kept: 1, dropped: 1, untouched: 1, keptBytes: 14, zeroedBytes: 9 + 8 + 12 + 12 });
    expect(elf.length).toBe(original.length);
    const text = elf.toString('latin1');
    expect(text).toContain('keep-sm90-code');
    expect(text).toContain('blackwell-only');
    for (const gone of ['keep-sm80', 'keep-ptx', 'contrib-sm80', 'contrib-sm90']) expect(text).not.toContain(gone);
    expect(() => verifyStripped(original, elf, 90)).not.toThrow();
    // The headers still describe the same entries.
    expect(fatbinContainers(elf)).toEqual(fatbinContainers(original));
  });

  it('the check refuses a changed header, a half-zeroed payload and a kept payload the GPU never loads', () => {
    const original = elfWith(fatbin);
    const stripped = Buffer.from(original);
    stripFatbin(stripped, 90, () => true);
    const header = Buffer.from(stripped);
    header[64 + 16 + 28] ^= 1; // the first entry's architecture
    expect(() => verifyStripped(original, header, 90)).toThrow(/outside the GPU code changed/);
    const half = Buffer.from(stripped);
    const sm90 = fatbinContainers(original)[0].entries[1];
    half[sm90.offset] = 0;
    expect(() => verifyStripped(original, half, 90)).toThrow(/neither the original nor zero/);
    expect(() => verifyStripped(original, original, 90)).toThrow(/sm_80\) was kept although an sm_90 GPU never loads it/);
  });
});
