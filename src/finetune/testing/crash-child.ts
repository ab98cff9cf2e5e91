/**
 * A process running one fine-tune job, for kill -9 tests: node crash-child.js MODELS DATA MOMENT.
 * Prints "JOB id" and "STEP n" lines. MOMENT "step" leaves the killing to the parent; "epoch" and
 * the promotion phases (staged, committed, promoted) make it SIGKILL itself right at that point.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { JobManager } from '../manager';
import { testConfig } from './fixtures';

async function main(): Promise<void> {
  const [models, data, moment] = process.argv.slice(2);
  const die = () => process.kill(process.pid, 'SIGKILL');
  const { manager } = await JobManager.open({ models, config: testConfig() });
  manager.on('phase', (_id, phase) => {
    if (phase === moment) die();
  });
  const reservation = await manager.reserve('tiny');
  const files = (await fs.readdir(path.join(data, 'images'))).map((f) => `images/${f}`);
  for (const file of [...files, 'annotations.jsonl']) await reservation.uploads.writeBuffer(file, await fs.readFile(path.join(data, file)));
  const steps = moment === 'step' ? 100_000 : 6;
  const job = await manager.submit(reservation, 'annotations.jsonl', { params: { steps, batch_size: 8, lr: 0.01, val_share: 0.25 } });
  process.stdout.write(`JOB ${job.id}\n`);
  for await (const event of await manager.watch(job.id)) {
    if (event.type === 'step') process.stdout.write(`STEP ${event.step.step}\n`);
    if (event.type === 'epoch' && moment === 'epoch') die();
  }
  process.stdout.write('ENDED\n');
}

main().catch((e: Error) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
