/**
 * The dynamic-linking facts of an ELF shared library (x86-64 and other 64-bit little-endian Linux
 * targets): the libraries it names as NEEDED and its RUNPATH/RPATH. Only the program headers and
 * the dynamic section are read, never the whole file.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface DynamicInfo {
  needed: string[];
  runpath: string[];
  rpath: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;
const DT_STRSZ = 10n;
const DT_RPATH = 15n;
const DT_RUNPATH = 29n;

function read(fd: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const got = readSync(fd, buf, 0, length, offset);
  if (got !== length) throw new Error(`truncated ELF file (wanted ${length} bytes at ${offset}, got ${got})`);
  return buf;
}

export function readDynamicInfo(file: string): DynamicInfo {
  const fd = openSync(file, 'r');
  try {
    const header = read(fd, 0, 64);
    if (header.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
    if (header[4] !== 2 || header[5] !== 1) throw new Error(`${file} is not a 64-bit little-endian ELF file`);
    const phoff = Number(header.readBigUInt64LE(0x20));
    const phentsize = header.readUInt16LE(0x36);
    const phnum = header.readUInt16LE(0x38);
    const table = read(fd, phoff, phentsize * phnum);
    const loads: { offset: number; vaddr: number; size: number }[] = [];
    let dynamic: { offset: number; size: number } | undefined;
    for (let i = 0; i < phnum; i++) {
      const at = i * phentsize;
      const type = table.readUInt32LE(at);
      const offset = Number(table.readBigUInt64LE(at + 8));
      const vaddr = Number(table.readBigUInt64LE(at + 16));
      const size = Number(table.readBigUInt64LE(at + 32));
      if (type === PT_LOAD) loads.push({ offset, vaddr, size });
      if (type === PT_DYNAMIC) dynamic = { offset, size };
    }
    if (!dynamic) return { needed: [], runpath: [], rpath: [] }; // statically linked
    const entries = read(fd, dynamic.offset, dynamic.size);
    const refs: { tag: bigint; value: number }[] = [];
    let strtab = 0;
    let strsz = 0;
    for (let at = 0; at + 16 <= entries.length; at += 16) {
      const tag = entries.readBigInt64LE(at);
      if (tag === DT_NULL) break;
      const value = Number(entries.readBigUInt64LE(at + 8));
      if (tag === DT_STRTAB) strtab = value;
      else if (tag === DT_STRSZ) strsz = value;
      else if (tag === DT_NEEDED || tag === DT_RPATH || tag === DT_RUNPATH) refs.push({ tag, value });
    }
    const segment = loads.find((l) => strtab >= l.vaddr && strtab < l.vaddr + l.size);
    if (!segment || strsz === 0) throw new Error(`${file}: dynamic string table not found`);
    const strings = read(fd, strtab - segment.vaddr + segment.offset, strsz);
    const text = (offset: number) => strings.toString('latin1', offset, strings.indexOf(0, offset));
    const paths = (tag: bigint) => refs.filter((r) => r.tag === tag).flatMap((r) => text(r.value).split(':')).filter(Boolean);
    return { needed: refs.filter((r) => r.tag === DT_NEEDED).map((r) => text(r.value)), runpath: paths(DT_RUNPATH), rpath: paths(DT_RPATH) };
  } finally {
    closeSync(fd);
  }
}
