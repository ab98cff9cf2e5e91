import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadCheckpoint } from '../../artifacts/checkpoint';
import { checkpointFileOf, exportModel } from '../../artifacts/export';
import { readManifest } from '../../artifacts/manifest';
import { OPTIMIZERS, parseOptimizer } from '../../model/optimizers';
import { describeChoices } from '../../base/choices';
import { builtinSpec, parseSpec, type ModelSpec, BUILTIN_SPECS } from '../../model/spec';
import { checkModelName } from '../../runtime/model-registry';

/** A built-in architecture name or a path to a JSON spec file. */
export async function resolveSpec(arch: string): Promise<ModelSpec> {
  if (BUILTIN_SPECS[arch]) return builtinSpec(arch);
  if (arch.endsWith('.json')) {
    let text: string;
    try {
      text = await fs.readFile(arch, 'utf8');
    } catch {
      throw new Error(`cannot read spec file ${arch}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`${arch}: not valid JSON (${(e as Error).message})`);
    }
    return parseSpec(json, arch);
  }
  return builtinSpec(arch);
}

export function register(program: Command): void {
  program
    .command('export')
    .description('write infer.onnx, train_step.onnx, eval.onnx, a checkpoint and manifest.json for a model')
    .option('--arch <name|spec.json>', `architecture: ${Object.keys(BUILTIN_SPECS).join(', ')} or a JSON spec file`)
    .option('--from <model|checkpoint>', 're-export from a model folder or a checkpoint.safetensors (metrics and lineage carry over from a folder)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--optimizer <name>', describeChoices(OPTIMIZERS), 'adam')
    .option('--seed <n>', 'initialisation seed', '0')
    .option('--no-training', 'write only infer.onnx, the checkpoint and the manifest')
    .option('--name <name>', "the model's name in its manifest (default: the --from model's, else the architecture's)")
    .option('--weights-only', 'leave the optimizer state out of the checkpoint (a smaller file to ship)')
    .action(async (opts) => {
      if (!opts.arch && !opts.from) throw new Error('give --arch or --from');
      const checkpointFile = opts.from ? checkpointFileOf(opts.from) : undefined;
      const source = checkpointFile && checkpointFile !== opts.from ? await readManifest(opts.from) : undefined;
      const loaded = checkpointFile ? await loadCheckpoint(checkpointFile) : undefined;
      const checkpoint = loaded && opts.weightsOnly ? { spec: loaded.spec, params: loaded.params, buffers: loaded.buffers } : loaded;
      const spec = checkpoint?.spec ?? (await resolveSpec(opts.arch));
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, got ${opts.seed}`);
      const manifest = await exportModel({
        spec,
        outDir: opts.out,
        seed,
        optimizer: parseOptimizer(opts.optimizer),
        training: opts.training,
        checkpoint,
        name: opts.name !== undefined ? checkModelName(opts.name) : source?.name,
        metrics: source?.metrics,
        lineage: source ? { ...source.lineage, exportedFrom: opts.from } : undefined,
      });
      for (const [file, info] of Object.entries(manifest.files)) {
        process.stdout.write(`${path.join(opts.out, file)}  ${(info.bytes / 1e6).toFixed(2)} MB\n`);
      }
    });
}
