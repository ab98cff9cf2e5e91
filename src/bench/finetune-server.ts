/**
 * The server process of the fine-tune benchmark until the fine-tune router is mounted in the real
 * server: the real inference server and, in the same process, the job manager with its router on a
 * second port. Prints one JSON line {"inference": port, "finetune": port} once ready.
 *
 *   node dist/bench/finetune-server.js MODELS DATA_FOLDER SERVING_THREADS JOB_NICE
 */
import pino from 'pino';
import { finetuneConfig } from '../finetune/config';
import { serveConfig } from '../serve/config';
import { startServer } from '../serve/server';

export const BENCH_KEY = 'bench-key';

async function main(): Promise<void> {
  const [models, dataFolder, threads, nice] = process.argv.slice(2);
  const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
  const server = await startServer(
    serveConfig({
      models,
      host: '127.0.0.1',
      httpPort: 0,
      grpcPort: undefined,
      threads: Number(threads),
      instances: 1,
      maxBatch: 16,
      finetune: finetuneConfig({ apiKeys: [BENCH_KEY], dataFolders: [dataFolder], reference: false, nice: Number(nice) }),
    }),
    log,
  );
  // One server answers both; the two names keep the bench's view of it.
  process.stdout.write(`${JSON.stringify({ inference: server.httpPort, finetune: server.httpPort })}\n`);
  process.once('SIGTERM', () => {
    void server.drain(1000).then(() => process.exit(0));
  });
}

if (require.main === module) {
  main().catch((e: Error) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  });
}
