/**
 * What the CUDA execution provider needs on this machine, found the way the dynamic loader finds
 * it: the provider's files beside onnxruntime-node's binding, the CUDA libraries they load (by file
 * name), and a visible GPU. Each missing piece comes with the command that fixes it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readDynamicInfo } from './elf';
import { SETUP_CUDA_COMMAND, type Problem } from './execution-providers';

export const CUDA_PROVIDER_FILE = 'libonnxruntime_providers_cuda.so';
/** The files onnxruntime-node's own install script places; it downloads nothing when all are present. */
export const PROVIDER_FILES = [CUDA_PROVIDER_FILE, 'libonnxruntime_providers_shared.so', 'libonnxruntime_providers_tensorrt.so'] as const;
/** Files the CUDA provider cannot load without (the TensorRT one is only for TensorRT). */
const REQUIRED_PROVIDER_FILES = PROVIDER_FILES.slice(0, 2);

/**
 * CUDA provider builds on the npm registry, by the ONNX Runtime version they were built for. A
 * provider is installed only beside the same onnxruntime-node version: ONNX Runtime does not check
 * the pairing, and a mismatched pair may load and then misbehave.
 */
export interface CudaProviderPackage {
  /** The ONNX Runtime version the provider was built for. */
  ort: string;
  name: string;
  version: string;
  /** npm's sha512 integrity of the package tarball. */
  integrity: string;
  /** Folder of the provider files inside the package tarball. */
  folder: string;
  cuda: string;
  cudnn: string;
}

export const CUDA_PROVIDER_PACKAGES: readonly CudaProviderPackage[] = Object.freeze([
  Object.freeze({
    ort: '1.29.0',
    name: 'com.github.asus4.onnxruntime.linux-x64-gpu',
    version: '0.4.9',
    integrity: 'sha512-FopIhNE/Ng+v2X65wVc9clPCBCvhvA53Hxo2U0Kf5fGdVsC7iCA+mZ0KLWggcQAj7TIZ6pNidR4AC10g74Xo6w==',
    folder: 'package/Plugins/Linux/x64',
    cuda: '13',
    cudnn: '9',
  }),
]);

export function onnxruntimeVersion(): string {
  return (JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')) as { version: string }).version;
}

/** Where onnxruntime-node loads its native libraries from, and therefore the provider's files. */
export function bindingDir(): string {
  return path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
}

/** Libraries the provider opens itself while running (dlopen), so its NEEDED list does not name them. */
const ON_DEMAND = [
  { file: 'libcudnn.so.9', required: true, role: 'cuDNN 9: convolutions and pooling' },
  { file: 'libnvrtc.so.13', required: false, role: 'NVRTC: not used by Trident graphs' },
  { file: 'libcufft.so.12', required: false, role: 'cuFFT: not used by Trident graphs' },
];

/** The C and C++ runtimes every Linux system has; listed only when missing. */
const SYSTEM = new Set(['libc.so.6', 'libm.so.6', 'libdl.so.2', 'librt.so.1', 'libpthread.so.0', 'ld-linux-x86-64.so.2', 'libstdc++.so.6', 'libgcc_s.so.1']);

/** Where each CUDA library comes from. */
const SOURCES: [RegExp, string][] = [
  [/^libcuda\.so/, 'the NVIDIA driver (580 or later for CUDA 13)'],
  [/^libcudart\./, 'pip install nvidia-cuda-runtime, or the CUDA 13 toolkit'],
  [/^libcublas(Lt)?\./, 'pip install nvidia-cublas, or the CUDA 13 toolkit'],
  [/^libcurand\./, 'pip install nvidia-curand, or the CUDA 13 toolkit'],
  [/^libcudnn/, 'pip install nvidia-cudnn-cu13, or cuDNN 9 for CUDA 13'],
  [/^libnvrtc/, 'pip install nvidia-cuda-nvrtc, or the CUDA 13 toolkit'],
  [/^libcufft/, 'pip install nvidia-cufft, or the CUDA 13 toolkit'],
  [/^libnvJitLink/, 'pip install nvidia-nvjitlink, or the CUDA 13 toolkit'],
];

function sourceOf(file: string): string {
  return SOURCES.find(([re]) => re.test(file))?.[1] ?? 'the CUDA 13 toolkit';
}

/** The dynamic loader's search: LD_LIBRARY_PATH, then ld.so.cache, then the default folders. */
export interface LoaderPath {
  libraryPath: string[];
  cache: Map<string, string>;
  defaults: string[];
}

function ldconfigCache(): Map<string, string> {
  const cache = new Map<string, string>();
  for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    if (!existsSync(ldconfig)) continue;
    try {
      const text = execFileSync(ldconfig, ['-p'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
      for (const line of text.split('\n')) {
        const m = /^\s+(\S+) \(([^)]*)\) => (.+)$/.exec(line);
        if (m && (process.arch !== 'x64' || m[2].includes('x86-64')) && !cache.has(m[1])) cache.set(m[1], m[3]);
      }
      break;
    } catch {
      // an unreadable cache leaves LD_LIBRARY_PATH and the default folders
    }
  }
  return cache;
}

export function loaderPath(env: NodeJS.ProcessEnv = process.env): LoaderPath {
  const multiarch = process.arch === 'x64' ? ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu'] : [];
  return {
    libraryPath: (env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    cache: ldconfigCache(),
    defaults: [...multiarch, '/lib64', '/usr/lib64', '/lib', '/usr/lib'],
  };
}

interface Loader {
  dir: string;
  runpath: string[];
  rpath: string[];
}

export function resolveLibrary(name: string, lp: LoaderPath, from?: Loader): string | undefined {
  if (name.includes('/')) return existsSync(name) ? name : undefined;
  const origin = (dirs: string[]) => dirs.map((d) => d.replace(/\$ORIGIN|\$\{ORIGIN\}/g, from!.dir));
  const dirs = [...(from && from.runpath.length === 0 ? origin(from.rpath) : []), ...lp.libraryPath, ...(from ? origin(from.runpath) : [])];
  for (const dir of dirs) if (existsSync(path.join(dir, name))) return path.join(dir, name);
  const cached = lp.cache.get(name);
  if (cached && existsSync(cached)) return cached;
  for (const dir of lp.defaults) if (existsSync(path.join(dir, name))) return path.join(dir, name);
  return undefined;
}

export interface LibraryStatus {
  file: string;
  /** Where the loader finds it; absent when it does not. */
  path?: string;
  /** The library that loads it. */
  neededBy: string;
  /** False for libraries only some ONNX Runtime ops load, none of them in Trident graphs. */
  required: boolean;
  role?: string;
}

/** Every library the provider needs, directly or through another library, and the ones it opens itself. */
export function cudaLibraries(lp: LoaderPath = loaderPath(), dir = bindingDir()): LibraryStatus[] {
  const provider = path.join(dir, CUDA_PROVIDER_FILE);
  if (!existsSync(provider)) return [];
  const out: LibraryStatus[] = [];
  const seen = new Set<string>();
  const walk = (file: string, neededBy: string, required: boolean, role: string | undefined, from?: Loader) => {
    if (seen.has(file)) return;
    seen.add(file);
    const found = resolveLibrary(file, lp, from);
    if (!SYSTEM.has(file) || !found) out.push({ file, ...(found ? { path: found } : {}), neededBy, required, ...(role ? { role } : {}) });
    if (!found) return;
    let info;
    try {
      info = readDynamicInfo(found);
    } catch {
      return; // a linker script or a foreign file: the loader will say so itself
    }
    for (const needed of info.needed) walk(needed, file, required, undefined, { dir: path.dirname(found), runpath: info.runpath, rpath: info.rpath });
  };
  const info = readDynamicInfo(provider);
  const self = { dir, runpath: info.runpath, rpath: info.rpath };
  seen.add(CUDA_PROVIDER_FILE);
  for (const needed of info.needed) walk(needed, CUDA_PROVIDER_FILE, true, undefined, self);
  for (const d of ON_DEMAND) walk(d.file, `${CUDA_PROVIDER_FILE} (opened at run time)`, d.required, d.role, self);
  return out;
}

/** Folders that hold CUDA libraries but may not be on the loader's path: pip wheels, toolkits. */
function candidateLibraryDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  const prefixes = [env.VIRTUAL_ENV, env.CONDA_PREFIX, '/usr', '/usr/local', path.join(os.homedir(), '.local')].filter((p): p is string => !!p);
  for (const opt of list('/opt')) prefixes.push(path.join('/opt', opt), path.join('/opt', opt, '.venv'), path.join('/opt', opt, 'venv'));
  const dirs: string[] = [];
  for (const prefix of prefixes) {
    for (const lib of ['lib', 'lib64']) {
      for (const py of list(path.join(prefix, lib)).filter((d) => d.startsWith('python3'))) {
        for (const packages of ['site-packages', 'dist-packages']) {
          const nvidia = path.join(prefix, lib, py, packages, 'nvidia');
          for (const pkg of list(nvidia)) dirs.push(path.join(nvidia, pkg, 'lib'));
        }
      }
    }
  }
  for (const cuda of list('/usr/local').filter((d) => d.startsWith('cuda'))) {
    dirs.push(path.join('/usr/local', cuda, 'lib64'), path.join('/usr/local', cuda, 'targets', 'x86_64-linux', 'lib'));
  }
  return dirs.filter((d) => existsSync(d));
}

/** The LD_LIBRARY_PATH line that makes the loader find `files`, where they exist on this machine. */
export function libraryPathHint(files: string[], env: NodeJS.ProcessEnv = process.env): { dirs: string[]; command: string } | undefined {
  const dirs = candidateLibraryDirs(env).filter((d) => files.some((f) => existsSync(path.join(d, f))));
  if (dirs.length === 0) return undefined;
  return { dirs, command: `export LD_LIBRARY_PATH=${dirs.join(':')}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}` };
}

export interface GpuInfo {
  devices: { index: number; name: string; driver: string; memoryMiB: number; computeCapability: string }[];
  /** Why no device is listed. */
  reason?: string;
}

export function gpuInfo(): GpuInfo {
  try {
    const text = execFileSync('nvidia-smi', ['--query-gpu=index,name,driver_version,memory.total,compute_cap', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 15_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const devices = text
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [index, name, driver, memory, cc] = line.split(',').map((s) => s.trim());
        return { index: Number(index), name, driver, memoryMiB: Number(memory), computeCapability: cc };
      });
    return devices.length ? { devices } : { devices, reason: 'nvidia-smi lists no GPU' };
  } catch (e) {
    const driver = existsSync('/proc/driver/nvidia/version') ? readFileSync('/proc/driver/nvidia/version', 'utf8').split('\n')[0] : undefined;
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'nvidia-smi is not installed' : `nvidia-smi failed: ${(e as Error).message.split('\n')[0]}`;
    return { devices: [], reason: driver ? `${why}; the kernel driver reports: ${driver}` : `${why} and no NVIDIA kernel driver is loaded` };
  }
}

/** The ONNX Runtime version among `versions` whose string the provider binary carries. */
export function providerBuiltFor(file: string, versions: string[]): string | undefined {
  const bytes = readFileSync(file);
  return versions.find((v) => bytes.includes(Buffer.from(`\0${v}\0`, 'latin1')));
}

/** Problems found without loading anything: the platform and the provider's files. */
export function cudaPreflight(dir = bindingDir()): Problem[] {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return [{ missing: `a CUDA provider for ${process.platform}/${process.arch}`, fix: 'Trident installs the CUDA provider on Linux x64 only; use --device cpu' }];
  }
  const absent = REQUIRED_PROVIDER_FILES.filter((f) => !existsSync(path.join(dir, f)));
  return absent.length ? [{ missing: `${absent.join(' and ')} (the CUDA provider is not installed in ${dir})`, fix: SETUP_CUDA_COMMAND }] : [];
}

/** Everything that stands between this machine and a CUDA session, each with its fix. */
export function cudaProblems(lp: LoaderPath = loaderPath(), dir = bindingDir()): Problem[] {
  const preflight = cudaPreflight(dir);
  if (preflight.length) return preflight;
  const problems: Problem[] = [];
  const core = onnxruntimeVersion();
  const known = [core, ...CUDA_PROVIDER_PACKAGES.map((p) => p.ort)];
  const builtFor = providerBuiltFor(path.join(dir, CUDA_PROVIDER_FILE), known);
  if (builtFor !== core) {
    problems.push({
      missing: `a CUDA provider built for ONNX Runtime ${core} (the installed one is built for ${builtFor ?? 'an unknown version'})`,
      fix: SETUP_CUDA_COMMAND,
    });
  }
  const missing = cudaLibraries(lp, dir).filter((l) => l.required && !l.path);
  const hint = libraryPathHint(missing.map((l) => l.file));
  for (const lib of missing) {
    const here = hint?.dirs.some((d) => existsSync(path.join(d, lib.file)));
    problems.push({
      missing: `${lib.file}${lib.role ? ` (${lib.role})` : ''}, needed by ${lib.neededBy}, is not on the library path`,
      fix: here ? hint!.command : sourceOf(lib.file) + (lib.file.startsWith('libcuda.so') ? '' : ', then add its lib folder to LD_LIBRARY_PATH'),
    });
  }
  const gpu = gpuInfo();
  if (gpu.devices.length === 0 && !missing.some((l) => l.file.startsWith('libcuda.so'))) {
    problems.push({ missing: `a visible NVIDIA GPU (${gpu.reason})`, fix: 'run on a machine with an NVIDIA GPU and driver 580 or later, or use --device cpu' });
  }
  return problems;
}
