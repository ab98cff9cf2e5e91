import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CUDA_PROVIDER_FILE, bindingDir, cudaLibraries, cudaPreflight, cudaProblems, libraryPathHint, loaderPath, onnxruntimeVersion, providerBuiltFor, resolveLibrary, type LoaderPath } from './cuda';

/**
 * A stand-in provider folder: a real ELF file (onnxruntime-node's binding, which needs
 * libonnxruntime.so.1 through RUNPATH $ORIGIN) under the CUDA provider's name.
 */
function fakeProviderDir(root: string, withOrt: boolean): string {
  const dir = path.join(root, 'binding');
  mkdirSync(dir);
  copyFileSync(path.join(bindingDir(), 'onnxruntime_binding.node'), path.join(dir, CUDA_PROVIDER_FILE));
  writeFileSync(path.join(dir, 'libonnxruntime_providers_shared.so'), '');
  if (withOrt) copyFileSync(path.join(bindingDir(), 'libonnxruntime.so.1'), path.join(dir, 'libonnxruntime.so.1'));
  return dir;
}

const noSystem = (libraryPath: string[] = []): LoaderPath => ({ libraryPath, cache: new Map(), defaults: [] });

describe('CUDA library resolution', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'trident-cuda-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('searches LD_LIBRARY_PATH, then the loader cache, then the default folders', () => {
    const a = path.join(root, 'a');
    const b = path.join(root, 'b');
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(path.join(b, 'libx.so.1'), '');
    expect(resolveLibrary('libx.so.1', noSystem([a]))).toBeUndefined();
    expect(resolveLibrary('libx.so.1', noSystem([a, b]))).toBe(path.join(b, 'libx.so.1'));
    expect(resolveLibrary('libx.so.1', { libraryPath: [], cache: new Map([['libx.so.1', path.join(b, 'libx.so.1')]]), defaults: [] })).toBe(path.join(b, 'libx.so.1'));
    expect(resolveLibrary('libx.so.1', { libraryPath: [], cache: new Map(), defaults: [a, b] })).toBe(path.join(b, 'libx.so.1'));
  });

  it("expands $ORIGIN in the loading library's RUNPATH", () => {
    writeFileSync(path.join(root, 'liby.so.2'), '');
    expect(resolveLibrary('liby.so.2', noSystem(), { dir: root, runpath: ['$ORIGIN/'], rpath: [] })).toBe(path.join(root, 'liby.so.2'));
  });

  it("lists what the provider needs, found or missing, and the libraries it opens itself", () => {
    const dir = fakeProviderDir(root, false);
    const missing = cudaLibraries(noSystem(), dir);
    const ortCore = missing.find((l) => l.file === 'libonnxruntime.so.1')!;
    expect(ortCore).toEqual({ file: 'libonnxruntime.so.1', neededBy: CUDA_PROVIDER_FILE, required: true });
    const cudnn = missing.find((l) => l.file === 'libcudnn.so.9')!;
    expect(cudnn.path).toBeUndefined();
    expect(cudnn.required).toBe(true);
    expect(missing.find((l) => l.file === 'libcufft.so.12')!.required).toBe(false);
    // Missing system libraries are reported too; found ones are not listed.
    expect(missing.some((l) => l.file === 'libc.so.6')).toBe(true);

    writeFileSync(path.join(root, 'libcudnn.so.9'), 'not an ELF file');
    mkdirSync(path.join(root, 'b'));
    const system = loaderPath({});
    const found = cudaLibraries({ ...system, libraryPath: [root] }, fakeProviderDir(path.join(root, 'b'), true));
    expect(found.find((l) => l.file === 'libonnxruntime.so.1')!.path).toBe(path.join(root, 'b', 'binding', 'libonnxruntime.so.1'));
    expect(found.find((l) => l.file === 'libcudnn.so.9')!.path).toBe(path.join(root, 'libcudnn.so.9'));
    expect(found.some((l) => l.file === 'libc.so.6')).toBe(false);
  });

  it('points at folders that hold a missing library but are not on the path', () => {
    const venv = path.join(root, 'venv');
    const lib = path.join(venv, 'lib', 'python3.12', 'site-packages', 'nvidia', 'cudnn', 'lib');
    mkdirSync(lib, { recursive: true });
    writeFileSync(path.join(lib, 'libcudnn.so.9'), '');
    const hint = libraryPathHint(['libcudnn.so.9'], { VIRTUAL_ENV: venv })!;
    expect(hint.dirs).toEqual([lib]);
    expect(hint.command).toBe(`export LD_LIBRARY_PATH=${lib}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}`);
    expect(libraryPathHint(['libnothing.so.7'], { VIRTUAL_ENV: venv })).toBeUndefined();
  });

  it('finds the ONNX Runtime version a provider binary was built for', () => {
    const file = path.join(root, 'provider.so');
    writeFileSync(file, Buffer.concat([Buffer.from('\x7fELF....'), Buffer.from('\x001.29.0\x00'), Buffer.alloc(64)]));
    expect(providerBuiltFor(file, ['1.30.0', '1.29.0'])).toBe('1.29.0');
    expect(providerBuiltFor(file, ['1.30.0'])).toBeUndefined();
  });

  it('asks for the setup command when the provider files are absent', () => {
    const dir = path.join(root, 'empty');
    mkdirSync(dir);
    const problems = cudaPreflight(dir);
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      expect(problems[0].missing).toBe(`a CUDA provider for ${process.platform}/${process.arch}`);
      return;
    }
    expect(problems).toEqual([
      { missing: `libonnxruntime_providers_cuda.so and libonnxruntime_providers_shared.so (the CUDA provider is not installed in ${dir})`, fix: 'trident setup cuda (in a checkout: npm run setup:cuda)' },
    ]);
  });

  it('refuses a provider built for another ONNX Runtime and names each missing library with its fix', () => {
    const dir = fakeProviderDir(root, false);
    const problems = cudaProblems(noSystem(), dir);
    expect(problems[0]).toEqual({
      missing: `a CUDA provider built for ONNX Runtime ${onnxruntimeVersion()} (the installed one is built for an unknown version)`,
      fix: 'trident setup cuda (in a checkout: npm run setup:cuda)',
    });
    const cudnn = problems.find((p) => p.missing.startsWith('libcudnn.so.9'))!;
    expect(cudnn.missing).toBe(`libcudnn.so.9 (cuDNN 9: convolutions and pooling), needed by ${CUDA_PROVIDER_FILE} (opened at run time), is not on the library path`);
    expect(cudnn.fix).toMatch(/nvidia-cudnn-cu13|LD_LIBRARY_PATH=/);
    expect(problems.some((p) => p.missing.startsWith('libcufft'))).toBe(false);
  });
});
