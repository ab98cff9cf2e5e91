/**
 * Packs what bench/gpu/run.sh needs on the GPU machine into .gpu-pack/ (ignored by git, carried by
 * the device tool): the GPU machine has no Node.js, no npm and no network, and one call carries at
 * most 64 MiB with the repository. Run here, after `npm ci` and `trident setup cuda`:
 *
 *   npm run gpu:pack [-- --arch 90] [-- --keep-contrib]
 *
 * - node.xz: this Node.js binary, symbols stripped;
 * - node_modules.tar.xz: the production dependencies, Linux x64 binaries only, no TypeScript,
 *   source maps, markdown or packages' own tests and examples, and of onnxruntime-web (the web
 *   app's) only its entry;
 * - dist.tar.xz: the build without tests and source maps;
 * - provider.tar.xz: the CUDA provider for one GPU architecture (sm_90: H100/H200). In its
 *   .nv_fatbin every other architecture's code is zeroed, and so are the containers whose kernels
 *   all belong to com.microsoft contrib ops (attention, MoE, LLM kernels), which Trident graphs
 *   (ai.onnx only) never run. Nothing moves, so the file is the original byte for byte outside
 *   those payloads; run.sh checks its sha256, and the CUDA-vs-CPU check is what proves it;
 * - MANIFEST.json: versions, sizes and sha256 of everything, and what was zeroed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CUDA_PROVIDER_FILE, bindingDir, onnxruntimeVersion, providerBuiltFor } from '../../runtime/cuda';
import { functionSymbols } from './elf-sections';
import { KIND_CUBIN, fatbinContainers, stripFatbin, type StripReport } from './fatbin';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PACK_DIR = path.join(ROOT, '.gpu-pack');
const MIB = 1024 * 1024;
/** What one device call may carry, repository included. */
const CARRY_LIMIT = 64 * MIB;

/** Kernels of com.microsoft contrib ops, by the words their mangled names carry. */
const CONTRIB = /onnxruntime7contrib|onnxruntime5flash|onnxruntime3llm|cutlass|fpA_intB|[Mm]oe|fmha|[Aa]ttention/;

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function run(command: string, args: string[], opts: { input?: Buffer; cwd?: string } = {}): Buffer {
  const r = spawnSync(command, args, { input: opts.input, cwd: opts.cwd, maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${r.error?.message ?? r.stderr.toString().trim()}`);
  return r.stdout;
}

/** xz at its strongest, with the x86 branch filter that makes machine code compress ~8 % smaller. */
const XZ = 'xz --x86 --lzma2=preset=9e -T1';

function xz(input: string, output: string): void {
  writeFileSync(output, run('sh', ['-c', `${XZ} -c "${input}"`]));
}

/** Keeps a container when any of its kernels is not a contrib op's. */
function keepUnlessContribOnly(cubins: Buffer[]): boolean {
  return cubins.some((payload) => {
    const cubin = payload.readUInt32LE(0) === 0xfd2fb528 ? run('zstd', ['-d', '-q', '-c'], { input: payload }) : payload;
    const kernels = functionSymbols(cubin).filter((s) => !s.startsWith('$__internal') && s !== 'vprintf' && !s.includes('EmptyKernel'));
    return kernels.some((k) => !CONTRIB.test(k));
  });
}

function packProvider(work: string, arch: number, keepContrib: boolean): { file: string; original: string; report: StripReport } {
  const source = path.join(bindingDir(), CUDA_PROVIDER_FILE);
  if (!existsSync(source)) throw new Error(`${source} is missing: run \`trident setup cuda\` first`);
  if (providerBuiltFor(source, [onnxruntimeVersion()]) !== onnxruntimeVersion()) throw new Error(`${source} is not built for ONNX Runtime ${onnxruntimeVersion()}`);
  const elf = readFileSync(source);
  const original = createHash('sha256').update(elf).digest('hex');
  const report = stripFatbin(elf, arch, keepContrib ? () => true : keepUnlessContribOnly);
  verifyStripped(readFileSync(source), elf, arch);
  const dir = path.join(work, 'provider');
  mkdirSync(dir);
  writeFileSync(path.join(dir, CUDA_PROVIDER_FILE), elf, { mode: 0o755 });
  copyFileSync(path.join(bindingDir(), 'libonnxruntime_providers_shared.so'), path.join(dir, 'libonnxruntime_providers_shared.so'));
  const file = path.join(PACK_DIR, 'provider.tar.xz');
  writeFileSync(file, run('sh', ['-c', `tar -C "${dir}" -cf - . | ${XZ}`]));
  return { file, original, report };
}

/**
 * The stripped library must equal the original except inside payloads that are now zero, and every
 * target-architecture payload left must be the original's, byte for byte.
 */
export function verifyStripped(original: Buffer, stripped: Buffer, arch: number): void {
  if (original.length !== stripped.length) throw new Error('the stripped provider changed size');
  const inPayload = new Uint8Array(original.length);
  for (const c of fatbinContainers(original)) {
    const hasTarget = c.entries.some((e) => e.kind === KIND_CUBIN && e.arch === arch);
    for (const e of c.entries) {
      inPayload.fill(1, e.offset, e.offset + e.size);
      const after = stripped.subarray(e.offset, e.offset + e.size);
      if (after.every((b) => b === 0)) continue;
      if (!after.equals(original.subarray(e.offset, e.offset + e.size))) throw new Error(`payload at ${e.offset} is neither the original nor zero`);
      const loadable = e.kind === KIND_CUBIN && e.arch === arch;
      if (hasTarget && !loadable) throw new Error(`payload at ${e.offset} (sm_${e.arch}) was kept although an sm_${arch} GPU never loads it`);
    }
  }
  for (let i = 0; i < original.length; i++) if (!inPayload[i] && original[i] !== stripped[i]) throw new Error(`byte ${i} outside the GPU code changed`);
}

/** Files of the production dependencies, without what Node never loads. */
function dependencyFiles(): string[] {
  const listing = run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT }).toString();
  const packages = [...new Set(listing.split('\n').filter((l) => l.includes(`${path.sep}node_modules${path.sep}`)))];
  const skip = (rel: string) =>
    /\.([cm]?ts|map|md|markdown)$/i.test(rel) || // TypeScript (sources and declarations), source maps, docs
    /(^|\/)node_modules\/(@[^/]+\/)?[^/]+\/(test|tests|__tests__|example|examples)\//.test(rel) ||
    (rel.startsWith('node_modules/onnxruntime-node/bin/') && !/bin\/napi-v6\/linux\/x64\/(libonnxruntime\.so\.1|onnxruntime_binding\.node)$/.test(rel)) ||
    // The browser's runtime (143 MB of wasm) serves only the web app, which the GPU run does not use.
    (rel.startsWith('node_modules/onnxruntime-web/') && !/^node_modules\/onnxruntime-web\/(package\.json|dist\/ort\.node\.min\.js)$/.test(rel));
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') walk(full); // nested packages are listed on their own
      } else {
        const rel = path.relative(ROOT, full);
        if (!skip(rel)) files.push(rel);
      }
    }
  };
  for (const p of packages) walk(p);
  return files;
}

function tarList(files: string[], output: string, work: string, name: string): void {
  const list = path.join(work, `${name}.list`);
  writeFileSync(list, files.join('\n'));
  writeFileSync(output, run('sh', ['-c', `tar -C "${ROOT}" -cf - -T "${list}" | ${XZ}`]));
}

function distFiles(): string[] {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (!entry.name.endsWith('.test.js') && !entry.name.endsWith('.map')) files.push(path.relative(ROOT, full));
    }
  };
  walk(path.join(ROOT, 'dist'));
  return files;
}

function packNode(work: string): string {
  const binary = path.join(work, 'node');
  copyFileSync(process.execPath, binary);
  try {
    execFileSync('strip', ['--strip-all', binary], { stdio: 'ignore' });
    execFileSync(binary, ['-e', '0']);
  } catch {
    copyFileSync(process.execPath, binary); // no strip here, or a stripped binary that fails: ship it whole
  }
  const file = path.join(PACK_DIR, 'node.xz');
  xz(binary, file);
  return file;
}

/** Bytes the repository itself sends: tracked files plus untracked ones git does not ignore. */
function treeBytes(): number {
  const files = run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT }).toString().split('\0').filter(Boolean);
  return files.reduce((sum, f) => sum + (existsSync(path.join(ROOT, f)) ? statSync(path.join(ROOT, f)).size : 0), 0);
}

export function pack(opts: { arch: number; keepContrib: boolean; log: (line: string) => void }): Record<string, unknown> {
  rmSync(PACK_DIR, { recursive: true, force: true });
  mkdirSync(PACK_DIR);
  const work = path.join(os.tmpdir(), `trident-gpu-pack-${process.pid}`);
  mkdirSync(work, { recursive: true });
  try {
    opts.log('node …');
    const node = packNode(work);
    opts.log('node_modules …');
    const modules = path.join(PACK_DIR, 'node_modules.tar.xz');
    tarList(dependencyFiles(), modules, work, 'node_modules');
    opts.log('dist …');
    const dist = path.join(PACK_DIR, 'dist.tar.xz');
    tarList(distFiles(), dist, work, 'dist');
    opts.log(`CUDA provider for sm_${opts.arch} …`);
    const provider = packProvider(work, opts.arch, opts.keepContrib);
    const stripped = sha256(path.join(work, 'provider', CUDA_PROVIDER_FILE));
    const files = Object.fromEntries([node, modules, dist, provider.file].map((f) => [path.basename(f), { bytes: statSync(f).size, sha256: sha256(f) }]));
    const packBytes = Object.values(files).reduce((s, f) => s + f.bytes, 0);
    const tree = treeBytes();
    const manifest = {
      createdAt: new Date().toISOString(),
      commit: run('git', ['rev-parse', 'HEAD'], { cwd: ROOT }).toString().trim(),
      node: process.version,
      onnxruntime: onnxruntimeVersion(),
      provider: { arch: opts.arch, contribKept: opts.keepContrib, originalSha256: provider.original, strippedSha256: stripped, ...provider.report },
      files,
      carry: { packBytes, treeBytes: tree, totalMiB: (packBytes + tree) / MIB, limitMiB: CARRY_LIMIT / MIB, fits: packBytes + tree <= CARRY_LIMIT },
    };
    writeFileSync(path.join(PACK_DIR, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const archAt = args.indexOf('--arch');
  const arch = archAt >= 0 ? Number(args[archAt + 1]) : 90;
  const manifest = pack({ arch, keepContrib: args.includes('--keep-contrib'), log: (l) => process.stderr.write(`${l}\n`) }) as {
    files: Record<string, { bytes: number }>;
    carry: { packBytes: number; treeBytes: number; totalMiB: number; fits: boolean };
    provider: StripReport;
  };
  for (const [name, f] of Object.entries(manifest.files)) process.stdout.write(`${name.padEnd(22)} ${(f.bytes / MIB).toFixed(2)} MiB\n`);
  const c = manifest.carry;
  const p = manifest.provider;
  process.stdout.write(`provider: ${p.kept} containers kept, ${p.dropped} dropped (contrib only), ${p.untouched} without sm code for this GPU; ${(p.keptBytes / MIB).toFixed(1)} MiB of GPU code kept, ${(p.zeroedBytes / MIB).toFixed(1)} MiB zeroed\n`);
  process.stdout.write(`carry: pack ${(c.packBytes / MIB).toFixed(2)} MiB + repository ${(c.treeBytes / MIB).toFixed(2)} MiB = ${c.totalMiB.toFixed(2)} MiB of 64 MiB${c.fits ? '' : ' — DOES NOT FIT'}\n`);
  if (!c.fits) process.exitCode = 1;
}
