/**
 * Shrinks a CUDA library for one GPU architecture without moving a byte. Inside the ELF section
 * .nv_fatbin, a container per compiled source file holds one entry per architecture (SASS as a
 * compressed cubin, or PTX). On a GPU of compute capability X.Y the driver takes the sm_XY cubin
 * and never reads the others, so their payloads can be overwritten with zeros: the file keeps its
 * layout (and every address in it), and the zeros cost nothing once compressed. Containers whose
 * kernels the caller does not need can be zeroed whole; a container without the target
 * architecture is left as it is. Layout of the container and entry headers: 16-byte header
 * (magic 0xBA55ED50, version, header size, size of what follows), then entries of a header (kind
 * at 0: 1 PTX, 2 cubin; header size at 4; padded payload size at 8; payload size at 16; SM
 * architecture at 28) followed by the payload.
 */
import { findSection } from './elf-sections';

const CONTAINER_MAGIC = 0xba55ed50;
export const KIND_PTX = 1;
export const KIND_CUBIN = 2;

export interface FatbinEntry {
  kind: number;
  arch: number;
  /** File offset of the payload. */
  offset: number;
  /** Payload bytes (the padding after it is already zero). */
  size: number;
}

export interface FatbinContainer {
  offset: number;
  entries: FatbinEntry[];
}

export function fatbinContainers(elf: Buffer): FatbinContainer[] {
  const section = findSection(elf, '.nv_fatbin');
  if (!section) throw new Error('no .nv_fatbin section: not a CUDA library');
  const end = section.offset + section.size;
  const containers: FatbinContainer[] = [];
  let at = section.offset;
  while (at + 16 <= end) {
    if (elf.readUInt32LE(at) !== CONTAINER_MAGIC) {
      at += 8; // containers are 8-byte aligned; zeros pad between them
      continue;
    }
    const headerSize = elf.readUInt16LE(at + 6);
    const stop = at + headerSize + Number(elf.readBigUInt64LE(at + 8));
    if (stop > end) throw new Error(`fatbin container at ${at} runs past the section`);
    const entries: FatbinEntry[] = [];
    let e = at + headerSize;
    while (e + 64 <= stop) {
      const size = elf.readUInt32LE(e + 4);
      if (size === 0) break;
      const padded = elf.readUInt32LE(e + 8);
      entries.push({ kind: elf.readUInt16LE(e), arch: elf.readUInt32LE(e + 28), offset: e + size, size: elf.readUInt32LE(e + 16) });
      e += size + padded;
    }
    containers.push({ offset: at, entries });
    at = stop;
  }
  return containers;
}

export interface StripReport {
  containers: number;
  /** Containers kept for the target: their target cubin stays. */
  kept: number;
  /** Containers the caller did not need: every payload zeroed. */
  dropped: number;
  /** Containers with no cubin for the target, left untouched. */
  untouched: number;
  keptBytes: number;
  zeroedBytes: number;
}

/**
 * Zeroes, in place, every payload the target architecture never loads, and every payload of the
 * containers `keep` rejects (it sees the container's target cubins).
 */
export function stripFatbin(elf: Buffer, arch: number, keep: (cubins: Buffer[]) => boolean): StripReport {
  const report: StripReport = { containers: 0, kept: 0, dropped: 0, untouched: 0, keptBytes: 0, zeroedBytes: 0 };
  for (const c of fatbinContainers(elf)) {
    report.containers += 1;
    const target = c.entries.filter((e) => e.kind === KIND_CUBIN && e.arch === arch);
    if (target.length === 0) {
      report.untouched += 1;
      continue;
    }
    const needed = keep(target.map((e) => elf.subarray(e.offset, e.offset + e.size)));
    report[needed ? 'kept' : 'dropped'] += 1;
    for (const e of c.entries) {
      if (needed && target.includes(e)) {
        report.keptBytes += e.size;
        continue;
      }
      elf.fill(0, e.offset, e.offset + e.size);
      report.zeroedBytes += e.size;
    }
  }
  return report;
}
