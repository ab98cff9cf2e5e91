/**
 * Test helpers for the fine-tune transports: a model repository and the real server on it with
 * fine-tuning on (REST and gRPC on loopback), whose promotions reload its own registry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { FinetuneConfig } from '../../finetune/config';
import type { JobManager } from '../../finetune/manager';
import { makeLabelledSet, makeRepository, testConfig, type LabelledSet } from '../../finetune/testing/fixtures';
import { serveConfig } from '../config';
import { startServer } from '../server';
import { readSseEvents } from '../rest/sse';

export interface FinetuneStack {
  root: string;
  data: LabelledSet;
  manager: JobManager;
  /** The server: the fine-tune router and inference (predict, infer). */
  url: string;
  grpcAddress: string;
  close(): Promise<void>;
}

export async function startFinetuneStack(overrides: Partial<FinetuneConfig> = {}): Promise<FinetuneStack> {
  const root = await makeRepository('tiny', 1);
  const dataFolder = mkdtempSync(path.join(os.tmpdir(), 'trident-ft-data-'));
  const data = await makeLabelledSet(path.join(dataFolder, 'set1'), 24, 32);
  const server = await startServer(
    serveConfig({
      models: root,
      host: '127.0.0.1',
      httpPort: 0,
      grpcPort: 0,
      threads: 1,
      maxBatch: 8,
      drainTimeoutMs: 2000,
      sseHeartbeatMs: 200,
      finetune: testConfig({ dataFolders: [dataFolder], ...overrides }),
    }),
    pino({ level: 'silent' }),
  );
  const url = `http://127.0.0.1:${server.httpPort}`;
  return {
    root,
    data,
    manager: server.finetune!,
    url,
    grpcAddress: `127.0.0.1:${server.grpcPort}`,
    close: async () => {
      await server.drain(1000);
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
