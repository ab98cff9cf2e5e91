/** `trident <command>`: the command-line entry point; bin/trident.js calls `main`. */
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

/**
 * Runs one command line (the arguments after the script name). A command that fails prints
 * `trident: <message>` and sets exit code 1; usage errors and --help exit through commander.
 */
export async function main(args: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...args], { from: 'user' });
  } catch (e) {
    process.stderr.write(`trident: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
