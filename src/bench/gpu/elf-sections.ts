/** Section headers and function symbols of an in-memory 64-bit little-endian ELF file (a library or a cubin). */

interface Section {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
}

const SHT_SYMTAB = 2;
const STT_FUNC = 2;

function sections(elf: Buffer): Section[] {
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error('not a 64-bit little-endian ELF file');
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return {
      nameOffset: elf.readUInt32LE(at),
      type: elf.readUInt32LE(at + 4),
      offset: Number(elf.readBigUInt64LE(at + 0x18)),
      size: Number(elf.readBigUInt64LE(at + 0x20)),
      link: elf.readUInt32LE(at + 0x28),
    };
  });
  const names = raw[shstrndx];
  const text = (table: { offset: number }, at: number) => elf.toString('latin1', table.offset + at, elf.indexOf(0, table.offset + at));
  return raw.map((s) => ({ name: text(names, s.nameOffset), type: s.type, offset: s.offset, size: s.size, link: s.link }));
}

export function findSection(elf: Buffer, name: string): { offset: number; size: number } | undefined {
  const s = sections(elf).find((x) => x.name === name);
  return s && { offset: s.offset, size: s.size };
}

/** Names (mangled) of the functions in the symbol table: a cubin's kernels and device functions. */
export function functionSymbols(elf: Buffer): string[] {
  const all = sections(elf);
  const out: string[] = [];
  for (const symtab of all.filter((s) => s.type === SHT_SYMTAB)) {
    const strtab = all[symtab.link];
    for (let at = symtab.offset; at + 24 <= symtab.offset + symtab.size; at += 24) {
      if ((elf[at + 4] & 0xf) !== STT_FUNC) continue;
      const name = elf.readUInt32LE(at);
      out.push(elf.toString('latin1', strtab.offset + name, elf.indexOf(0, strtab.offset + name)));
    }
  }
  return out;
}
