/**
 * `trident doctor`: which ONNX Runtime is installed, which execution providers can create a session
 * here (each tried on a one-node model), and for CUDA every library by file name, found or missing,
 * with the GPU and driver when one is visible.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../onnx/builder';
import { encodeModel } from '../onnx/serialize';
import { CUDA_PROVIDER_FILE, CUDA_PROVIDER_PACKAGES, PROVIDER_FILES, bindingDir, cudaLibraries, gpuInfo, loaderPath, onnxruntimeVersion, providerBuiltFor, type GpuInfo, type LibraryStatus } from './cuda';
import { EXECUTION_PROVIDERS, PROVIDER_NAMES, ProviderUnavailableError, type Problem, type ProviderName } from './execution-providers';
import { PROVIDER_CHECKS } from './provider-checks';
import { createSession } from './session';

export interface ProviderReport {
  name: ProviderName;
  doc: string;
  /** A session was created and ran. */
  usable: boolean;
  problems: Problem[];
  /** ONNX Runtime's own message when it refused. */
  error?: string;
}

export interface DoctorReport {
  onnxruntime: { version: string; bindingDir: string };
  providers: ProviderReport[];
  cuda: {
    providerFiles: { file: string; present: boolean }[];
    /** The ONNX Runtime version the installed CUDA provider was built for. */
    providerBuiltFor?: string;
    libraries: LibraryStatus[];
    libraryPath: string[];
    gpu: GpuInfo;
  };
}

function probeModel(): Uint8Array {
  const b = new GraphBuilder();
  b.output(b.op('Relu', [b.input('x', 'float32', [2])]), 'y');
  return encodeModel(b.model());
}

async function probe(name: ProviderName): Promise<ProviderReport> {
  const report = { name, doc: EXECUTION_PROVIDERS[name].doc };
  const checks = PROVIDER_CHECKS[name];
  const missing = checks.preflight();
  if (missing.length) return { ...report, usable: false, problems: missing };
  try {
    const { session } = await createSession(probeModel(), { device: name, threads: 1 });
    await session.run({ x: new ort.Tensor('float32', Float32Array.of(-1, 2), [2]) });
    await session.release();
    return { ...report, usable: true, problems: [] };
  } catch (e) {
    if (e instanceof ProviderUnavailableError) return { ...report, usable: false, problems: e.problems, ...(e.ortMessage ? { error: e.ortMessage } : {}) };
    return { ...report, usable: false, problems: checks.diagnose(), error: (e as Error).message.split('\n')[0] };
  }
}

export async function doctor(): Promise<DoctorReport> {
  const dir = bindingDir();
  const version = onnxruntimeVersion();
  const providers: ProviderReport[] = [];
  for (const name of PROVIDER_NAMES) providers.push(await probe(name));
  const lp = loaderPath();
  const cudaFile = path.join(dir, CUDA_PROVIDER_FILE);
  const providerFiles = PROVIDER_FILES.map((file) => ({ file, present: existsSync(path.join(dir, file)) }));
  const builtFor = providerFiles[0].present ? providerBuiltFor(cudaFile, [version, ...CUDA_PROVIDER_PACKAGES.map((p) => p.ort)]) : undefined;
  return {
    onnxruntime: { version, bindingDir: dir },
    providers,
    cuda: {
      providerFiles,
      ...(builtFor ? { providerBuiltFor: builtFor } : {}),
      libraries: cudaLibraries(lp, dir),
      libraryPath: lp.libraryPath,
      gpu: gpuInfo(),
    },
  };
}

/** The report as text, one fact a line. */
export function formatDoctor(r: DoctorReport): string {
  const lines = [`ONNX Runtime ${r.onnxruntime.version} (onnxruntime-node, ${r.onnxruntime.bindingDir})`, '', 'execution providers:'];
  for (const p of r.providers) {
    lines.push(`  ${p.name.padEnd(5)} ${p.usable ? 'usable' : 'NOT usable'}  (${p.doc})`);
    for (const problem of p.problems) lines.push(`        missing: ${problem.missing}`, `        fix: ${problem.fix}`);
    if (!p.usable && p.error && p.problems.length === 0) lines.push(`        ONNX Runtime said: ${p.error}`);
  }
  lines.push('', 'CUDA provider files:');
  for (const f of r.cuda.providerFiles) lines.push(`  ${f.present ? 'present' : 'missing'}  ${f.file}`);
  if (r.cuda.providerBuiltFor) lines.push(`  built for ONNX Runtime ${r.cuda.providerBuiltFor}${r.cuda.providerBuiltFor === r.onnxruntime.version ? ' (matches)' : ' (DOES NOT MATCH)'}`);
  if (r.cuda.libraries.length) {
    lines.push('', `CUDA libraries (LD_LIBRARY_PATH: ${r.cuda.libraryPath.join(':') || 'unset'}):`);
    for (const l of r.cuda.libraries) {
      const note = [l.role, `needed by ${l.neededBy}`, l.required ? undefined : 'optional'].filter(Boolean).join('; ');
      lines.push(`  ${l.path ? 'found  ' : 'MISSING'}  ${l.file.padEnd(26)} ${l.path ?? ''}  (${note})`);
    }
  }
  lines.push('', 'GPU:');
  if (r.cuda.gpu.devices.length === 0) lines.push(`  none visible: ${r.cuda.gpu.reason}`);
  for (const d of r.cuda.gpu.devices) lines.push(`  ${d.index}: ${d.name}, ${d.memoryMiB} MiB, compute capability ${d.computeCapability}, driver ${d.driver}`);
  return lines.join('\n');
}
