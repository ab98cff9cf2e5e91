/**
 * Installs the CUDA execution provider from the npm registry alone: the provider package built for
 * the installed onnxruntime-node (CUDA_PROVIDER_PACKAGES), fetched with the user's own npm (its
 * registry, proxy and cache), checked against the pinned integrity, and its libraries placed where
 * onnxruntime-node loads them. A version pair that does not match is refused.
 */
import { TridentError } from '../base/errors';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import * as tar from 'tar';
import { CUDA_PROVIDER_FILE, CUDA_PROVIDER_PACKAGES, PROVIDER_FILES, bindingDir, onnxruntimeVersion, providerBuiltFor, type CudaProviderPackage } from './cuda';

/** The CUDA provider could not be installed: what went wrong and, in the message, what to do. */
export class SetupError extends TridentError {
  constructor(message: string) {
    super('unavailable', message);
  }
}

export interface InstallOptions {
  /** A tarball of the provider package (what `npm pack NAME@VERSION` writes) instead of the registry. */
  from?: string;
  /** The npm registry to ask; default: npm's own configuration. */
  registry?: string;
  /** Reinstall even when a matching provider is already there. */
  force?: boolean;
  /** Where onnxruntime-node loads the provider from; default: its binding folder. */
  dest?: string;
  /** The onnxruntime-node version to match; default: the installed one. */
  ortVersion?: string;
  /** The provider builds on offer; default: CUDA_PROVIDER_PACKAGES. */
  packages?: readonly CudaProviderPackage[];
  /** npm's command line; default: the npm running this script, else `npm` on the PATH. */
  npm?: string[];
  log?: (line: string) => void;
}

export interface InstallResult {
  package: string;
  dest: string;
  files: string[];
  /** False when a matching provider was already installed and nothing was fetched. */
  installed: boolean;
}

function npmCommand(): string[] {
  const cli = process.env.npm_execpath;
  return cli && /\.[cm]?js$/.test(cli) ? [process.execPath, cli] : ['npm'];
}

async function sha512(file: string): Promise<string> {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest('base64')}`;
}

async function npmPack(pkg: CudaProviderPackage, dir: string, opts: InstallOptions): Promise<string> {
  const [command, ...pre] = opts.npm ?? npmCommand();
  const spec = `${pkg.name}@${pkg.version}`;
  const args = [...pre, 'pack', spec, '--pack-destination', dir, '--json', ...(opts.registry ? ['--registry', opts.registry] : [])];
  try {
    await promisify(execFile)(command, args, { maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    const detail = (err.stderr ?? err.message).trim().split('\n').slice(-4).join(' | ');
    throw new SetupError(`npm could not fetch ${spec} from the registry (${detail}). On a machine that can, run \`npm pack ${spec}\` and then \`trident setup cuda --from ${pkg.name}-${pkg.version}.tgz\` here`);
  }
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new SetupError(`npm pack ${spec} wrote no tarball`);
  return path.join(dir, tarball);
}

function mismatch(core: string, packages: readonly CudaProviderPackage[]): SetupError {
  const offered = packages.map((p) => `${p.name}@${p.version} for ONNX Runtime ${p.ort}`).join(', ');
  return new SetupError(
    `onnxruntime-node ${core} is installed, and the npm registry has no CUDA provider built for it (it has ${offered || 'none'}). ` +
      'A provider built for another version is refused: ONNX Runtime does not check the pairing, and a mismatched pair can load and then misbehave. ' +
      `Install a matching onnxruntime-node (${packages.map((p) => p.ort).join(' or ') || 'none on offer'}), or, on a machine that reaches api.nuget.org, ` +
      'fetch the provider for this version with: npm rebuild onnxruntime-node --ignore-scripts=false',
  );
}

export async function installCudaProvider(opts: InstallOptions = {}): Promise<InstallResult> {
  const log = opts.log ?? (() => {});
  const dest = opts.dest ?? bindingDir();
  if (!opts.dest && (process.platform !== 'linux' || process.arch !== 'x64')) {
    throw new SetupError(`the CUDA provider on the npm registry is for Linux x64; this is ${process.platform}/${process.arch}`);
  }
  const core = opts.ortVersion ?? onnxruntimeVersion();
  const packages = opts.packages ?? CUDA_PROVIDER_PACKAGES;
  const pkg = packages.find((p) => p.ort === core);
  if (!pkg) throw mismatch(core, packages);
  const label = `${pkg.name}@${pkg.version}`;
  const present = PROVIDER_FILES.every((f) => existsSync(path.join(dest, f)));
  if (present && !opts.force && !opts.from && providerBuiltFor(path.join(dest, CUDA_PROVIDER_FILE), [core]) === core) {
    log(`the CUDA provider for ONNX Runtime ${core} is already installed in ${dest}`);
    return { package: label, dest, files: [...PROVIDER_FILES], installed: false };
  }
  // Work beside the destination, so that the finished files are moved into place by rename.
  const work = mkdtempSync(path.join(dest, '.trident-setup-'));
  try {
    let tarball = opts.from;
    if (!tarball) {
      log(`fetching ${label} (the CUDA ${pkg.cuda} provider for ONNX Runtime ${pkg.ort}, about 180 MB) with npm`);
      tarball = await npmPack(pkg, work, opts);
    }
    const integrity = await sha512(tarball);
    if (integrity !== pkg.integrity) {
      throw new SetupError(`${tarball} is not ${label}: its sha512 integrity is ${integrity}, expected ${pkg.integrity}`);
    }
    const wanted = new Map(PROVIDER_FILES.map((f) => [`${pkg.folder}/${f}`, f]));
    await tar.x({ file: tarball, cwd: work, preserveOwner: false, filter: (p) => wanted.has(p) });
    for (const [inside, file] of wanted) {
      if (!existsSync(path.join(work, inside))) throw new SetupError(`${label} has no ${inside}`);
      log(`extracted ${file}`);
    }
    const builtFor = providerBuiltFor(path.join(work, pkg.folder, CUDA_PROVIDER_FILE), [core]);
    if (builtFor !== core) throw new SetupError(`${label}'s ${CUDA_PROVIDER_FILE} does not carry ONNX Runtime's version ${core}; refusing a mismatched pair`);
    for (const [inside, file] of wanted) renameSync(path.join(work, inside), path.join(dest, file));
    log(`installed ${[...wanted.values()].join(', ')} in ${dest}`);
    return { package: label, dest, files: [...wanted.values()], installed: true };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
