/**
 * The long fuzz run: the test suite's hostile-input classes at a larger scale, against a real
 * `trident serve` process, restarting it after a crash so that one run lists every failing case.
 *
 *   node dist/bench/fuzz.js [--scale N] [--seed S] [--rounds R]
 */
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { makeRepository } from '../runtime/testing/repository';
import { FUZZ_CLASSES, describeCase, fuzzCases, runCases, type Target } from '../serve/testing/fuzz';
import { startServeProcess, type ServeProcess } from '../serve/testing/process';
import { table } from '../base/table';
import { parseNumber } from '../base/flags';

const SERVE_ARGS = ['--api-key', 'fuzz-key', '--finetune-api-key', 'fuzz-ft-key', '--finetune-reference-count', '0', '--max-body', '16'];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { scale: { type: 'string', default: '5' }, seed: { type: 'string', default: '1' }, rounds: { type: 'string', default: '3' } } });
  const scale = parseNumber(values.scale, '--scale', { min: 0 });
  const seed = parseNumber(values.seed, '--seed', { integer: true, min: 0 });
  const rounds = parseNumber(values.rounds, '--rounds', { integer: true, min: 1 });
  const root = await makeRepository([{ name: 'tiny', versions: [1, 2] }]);
  let server: ServeProcess = await startServeProcess(root, SERVE_ARGS);
  const rows: (string | number)[][] = [];
  let crashes = 0;
  try {
    for (const fuzzClass of FUZZ_CLASSES) {
      let sent = 0;
      let faults = 0;
      for (let round = 0; round < rounds; round++) {
        const target: Target = { httpPort: server.httpPort, grpcAddress: `127.0.0.1:${server.grpcPort}`, model: 'tiny', inputShape: [-1, 3, 16, 16], apiKey: 'fuzz-key', finetuneKey: 'fuzz-ft-key' };
        const cases = (await fuzzCases(target, seed * 1000 + round, scale))[fuzzClass];
        for (const fuzzCase of cases) {
          const [outcome] = await runCases(target, [fuzzCase]);
          sent++;
          if (outcome.failed) {
            faults++;
            console.log(`FAULT [${fuzzClass}] ${outcome.status ?? 'no answer'} ← ${describeCase(fuzzCase)}`);
          }
          if (server.exited !== undefined) {
            crashes++;
            console.log(`CRASH [${fuzzClass}] server exited (${server.exited}) after: ${describeCase(fuzzCase)}\n${server.output().slice(-2000)}`);
            server = await startServeProcess(root, SERVE_ARGS);
            target.httpPort = server.httpPort;
            target.grpcAddress = `127.0.0.1:${server.grpcPort}`;
          }
        }
      }
      rows.push([fuzzClass, sent, faults]);
    }
  } finally {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
  console.log(table(['class', 'requests', '5xx / dropped'], rows));
  console.log(`crashes: ${crashes}`);
  if (crashes > 0 || rows.some((r) => (r[2] as number) > 0)) process.exitCode = 1;
}

void main();
