/** `trident <command>`: the command-line entry point. */
import { Command } from 'commander';
import { TRIDENT_VERSION } from '../artifacts/version';
import { registerCommands } from './commands';

export function buildProgram(): Command {
  const program = new Command('trident')
    .description('Train, fine-tune and serve multi-task vision models on ONNX Runtime')
    .version(TRIDENT_VERSION)
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });
  registerCommands(program);
  return program;
}

if (require.main === module || process.argv[1]?.endsWith('trident.js')) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((e: Error) => {
      process.stderr.write(`trident: ${e.message}\n`);
      process.exitCode = 1;
    });
}
