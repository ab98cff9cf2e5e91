import type { Command } from 'commander';
import { cudaProblems } from '../../runtime/cuda';
import { installCudaProvider } from '../../runtime/cuda-install';

export function register(program: Command): void {
  const setup = program.command('setup').description('install optional parts');
  setup
    .command('cuda')
    .description("install ONNX Runtime's CUDA provider for the installed onnxruntime-node from the npm registry")
    .option('--from <tarball>', 'install from this package tarball (what `npm pack NAME@VERSION` writes) instead of the registry')
    .option('--registry <url>', 'npm registry to fetch from (default: npm’s configuration)')
    .option('--force', 'reinstall even when a matching provider is installed')
    .action(async (opts: { from?: string; registry?: string; force?: boolean }) => {
      const out = (line: string) => process.stdout.write(`${line}\n`);
      await installCudaProvider({ ...opts, log: out });
      const problems = cudaProblems();
      if (problems.length === 0) {
        out('the CUDA provider, its libraries and a GPU are all there: use --device cuda');
        return;
      }
      out('still missing before --device cuda works:');
      for (const p of problems) out(`  ${p.missing}\n    fix: ${p.fix}`);
    });
}
