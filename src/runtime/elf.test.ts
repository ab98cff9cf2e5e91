import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bindingDir } from './cuda';
import { readDynamicInfo } from './elf';

describe('readDynamicInfo', () => {
  it("reads NEEDED and RUNPATH of onnxruntime-node's binding", () => {
    const info = readDynamicInfo(path.join(bindingDir(), 'onnxruntime_binding.node'));
    expect(info.needed[0]).toBe('libonnxruntime.so.1');
    expect(info.needed).toContain('libc.so.6');
    expect(info.runpath).toEqual(['$ORIGIN/']);
    expect(info.rpath).toEqual([]);
  });

  it('refuses a file that is not ELF', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'trident-elf-'));
    try {
      const file = path.join(dir, 'libfake.so.1');
      writeFileSync(file, Buffer.alloc(128, 0x41));
      expect(() => readDynamicInfo(file)).toThrow(/is not an ELF file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
