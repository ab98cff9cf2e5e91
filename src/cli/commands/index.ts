import type { Command } from 'commander';
import * as exportCommand from './export';

/** Every subcommand module exports `register(program)`; the order here is the order in --help. */
const COMMANDS: { register(program: Command): void }[] = [exportCommand];

export function registerCommands(program: Command): void {
  for (const c of COMMANDS) c.register(program);
}
