import type { Command } from 'commander';
import * as exportCommand from './export';
import * as trainCommand from './train';
import * as evalCommand from './eval';
import * as predictCommand from './predict';
import * as benchCommand from './bench';
import * as dataCommand from './data';
import * as serveCommand from './serve';
import * as finetuneCommand from './finetune';
import * as doctorCommand from './doctor';
import * as setupCommand from './setup';

/** Every subcommand module exports `register(program)`; the order here is the order in --help. */
const COMMANDS: { register(program: Command): void }[] = [exportCommand, trainCommand, evalCommand, predictCommand, serveCommand, finetuneCommand, dataCommand, benchCommand, doctorCommand, setupCommand];

export function registerCommands(program: Command): void {
  for (const c of COMMANDS) c.register(program);
}
