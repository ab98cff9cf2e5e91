import type { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { doctor, formatDoctor } from '../../runtime/doctor';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('ONNX Runtime version, the execution providers that work here, and for CUDA every library found or missing')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }) => {
      // ONNX Runtime would print its own error line for a provider that fails to load; the report
      // carries that message already.
      ort.env.logLevel = 'fatal';
      const report = await doctor();
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatDoctor(report)}\n`);
    });
}
