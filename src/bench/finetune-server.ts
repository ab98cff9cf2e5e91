/**
 * The server process of the fine-tune benchmark until the fine-tune router is mounted in the real
 * server: the real inference server and, in the same process, the job manager with its router on a
 * second port. Prints one JSON line {"inference": port, "finetune": port} once ready.
 *
 *   node dist/bench/finetune-server.js MODELS DATA_FOLDER SERVING_THREADS JOB_NICE
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pino from 'pino';
import { finetuneConfig } from '../finetune/config';
import { JobManager } from '../finetune/manager';
import { serveConfig } from '../serve/config';
import { createFinetuneRouter } from '../serve/finetune-rest';
import { startServer } from '../serve/server';

export const BENCH_KEY = 'bench-key';

async function main(): Promise<void> {
  const [models, dataFolder, threads, nice] = process.argv.slice(2);
  const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' });
  const server = await startServer(
    serveConfig({ models, host: '127.0.0.1', httpPort: 0, grpcPort: undefined, threads: Number(threads), instances: 1, maxBatch: 16 }),
    log,
  );
  const { manager } = await JobManager.open({
    models,
    config: finetuneConfig({ apiKeys: [BENCH_KEY], dataFolders: [dataFolder], reference: false, nice: Number(nice) }),
    onServingChanged: (model) => server.service.registry.load(model),
    log: (message) => log.info(message),
  });
  const app = express();
  app.use(createFinetuneRouter(manager));
  const finetune = http.createServer(app);
  await new Promise<void>((resolve) => finetune.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${JSON.stringify({ inference: server.httpPort, finetune: (finetune.address() as AddressInfo).port })}\n`);
  process.once('SIGTERM', () => {
    void manager.close().then(() => server.drain(1000)).then(() => process.exit(0));
  });
}

if (require.main === module) {
  main().catch((e: Error) => {
    process.stderr.write(`${e.stack}\n`);
    process.exit(1);
  });
}
