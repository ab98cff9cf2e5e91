/**
 * Test helpers for the fine-tune transports: a model repository, the real inference server on it,
 * a JobManager whose promotions reload that server's registry, the fine-tune router on its own
 * express app and the FineTune service on its own gRPC server, all on loopback.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import express from 'express';
import pino from 'pino';
import type { FinetuneConfig } from '../../finetune/config';
import { JobManager } from '../../finetune/manager';
import { makeLabelledSet, makeRepository, testConfig, type LabelledSet } from '../../finetune/testing/fixtures';
import { serveConfig } from '../config';
import { createFinetuneRouter } from '../finetune-rest';
import { addFineTuneService } from '../grpc-finetune';
import { startServer, type RunningServer } from '../server';
import { readSseEvents } from '../sse';

export interface FinetuneStack {
  root: string;
  data: LabelledSet;
  manager: JobManager;
  inference: RunningServer;
  /** The inference server (predict, infer). */
  inferenceUrl: string;
  /** The fine-tune router's app. */
  url: string;
  grpcAddress: string;
  close(): Promise<void>;
}

export async function startFinetuneStack(overrides: Partial<FinetuneConfig> = {}): Promise<FinetuneStack> {
  const root = await makeRepository('tiny', 1);
  const dataFolder = mkdtempSync(path.join(os.tmpdir(), 'trident-ft-data-'));
  const data = await makeLabelledSet(path.join(dataFolder, 'set1'), 24, 32);
  const inference = await startServer(
    serveConfig({ models: root, host: '127.0.0.1', httpPort: 0, grpcPort: undefined, threads: 1, maxBatch: 8, drainTimeoutMs: 2000 }),
    pino({ level: 'silent' }),
  );
  const { manager } = await JobManager.open({
    models: root,
    config: testConfig({ dataFolders: [dataFolder], ...overrides }),
    onServingChanged: (model) => inference.service.registry.load(model),
  });
  const app = express();
  app.use(createFinetuneRouter(manager, { heartbeatMs: 200 }));
  const httpServer = http.createServer(app);
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  const grpcServer = new grpc.Server();
  addFineTuneService(grpcServer, manager);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))),
  );
  return {
    root,
    data,
    manager,
    inference,
    inferenceUrl: `http://127.0.0.1:${inference.httpPort}`,
    url: `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`,
    grpcAddress: `127.0.0.1:${grpcPort}`,
    close: async () => {
      await manager.close();
      grpcServer.forceShutdown();
      httpServer.closeAllConnections();
      await new Promise((resolve) => httpServer.close(resolve));
      await inference.drain(1000);
      rmSync(root, { recursive: true, force: true });
      rmSync(dataFolder, { recursive: true, force: true });
    },
  };
}

export interface ParsedEvent {
  event: string;
  id?: string;
  data: unknown;
}

/** Reads a Server-Sent Events response to its end (or until `until` says stop), parsing each event's JSON. */
export async function readSse(response: Response, until?: (event: ParsedEvent) => boolean | Promise<boolean>): Promise<ParsedEvent[]> {
  const events: ParsedEvent[] = [];
  for await (const raw of readSseEvents(response.body!)) {
    const event = { ...raw, data: JSON.parse(raw.data) as unknown };
    events.push(event);
    if (until && (await until(event))) break;
  }
  return events;
}
