/**
 * Serving benchmark, every figure measured side by side in one run on the default model:
 * raw in-process ONNX Runtime at batch 1 and at the batcher's max batch, then the server (in its
 * own process, same threads per session) through REST tensor infer (binary tensors), REST image
 * predict and gRPC infer (raw contents), each at several client concurrencies.
 *
 *   node dist/bench/serve.js [--models DIR] [--model NAME] [--threads N] [--instances N] [--max-batch N]
 *                            [--seconds S] [--concurrency 1,16,64] [--json]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import sharp from 'sharp';
import { exportModel } from '../artifacts/export';
import { readManifest, type Manifest } from '../artifacts/manifest';
import { table } from '../cli/format';
import { createSession } from '../runtime/session';
import { serveConfig, type ServeConfig } from '../serve/config';
import { protos } from '../serve/grpc-common';
import { startServer } from '../serve/server';

export interface ServeBenchOptions {
  models: string;
  model: string;
  threads: number;
  /** Worker threads (sessions) in the server. */
  instances: number;
  maxBatch: number;
  seconds: number;
  concurrencies: number[];
}

export interface Measurement {
  name: string;
  concurrency: number;
  /** Samples per second. */
  throughput: number;
  p50Ms: number;
  p99Ms: number;
}

export interface ServeBenchResult {
  model: string;
  options: ServeBenchOptions;
  raw: { batch1: Measurement; batched: Measurement };
  served: Measurement[];
  checks: { name: string; value: number; target: string; met: boolean }[];
}

const DEFAULTS: ServeBenchOptions = { models: 'models', model: 'fashionloc', threads: 1, instances: 1, maxBatch: 32, seconds: 3, concurrencies: [1, 16, 64] };

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `once` from `concurrency` closed-loop clients for `seconds` after a short warm-up. */
async function closedLoop(name: string, concurrency: number, seconds: number, samplesPerCall: number, once: () => Promise<void>): Promise<Measurement> {
  const warmUpEnd = performance.now() + Math.min(1000, seconds * 250);
  const end = warmUpEnd + seconds * 1000;
  const latencies: number[] = [];
  const client = async () => {
    while (performance.now() < end) {
      const start = performance.now();
      await once();
      if (start >= warmUpEnd) latencies.push(performance.now() - start);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  latencies.sort((a, b) => a - b);
  return { name, concurrency, throughput: (latencies.length * samplesPerCall) / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

async function modelFolder(opts: ServeBenchOptions): Promise<{ root: string; manifest: Manifest; dir: string }> {
  const base = path.join(opts.models, opts.model);
  const versions = existsSync(base) ? readdirSync(base).filter((v) => /^\d+$/.test(v)).map(Number).sort((a, b) => b - a) : [];
  for (const v of versions) {
    const dir = path.join(base, String(v));
    if (existsSync(path.join(dir, 'manifest.json'))) return { root: opts.models, dir, manifest: await readManifest(dir, { verify: true }) };
  }
  // No trained default model yet: an exported one with fresh weights costs the same to run.
  const root = mkdtempSync(path.join(os.tmpdir(), 'trident-bench-'));
  const dir = path.join(root, opts.model, '1');
  return { root, dir, manifest: await exportModel({ spec: opts.model, outDir: dir, training: false }) };
}

async function rawThroughput(file: string, manifest: Manifest, batch: number, opts: ServeBenchOptions): Promise<Measurement> {
  const { session } = await createSession(file, { threads: opts.threads });
  const { channels, height, width } = manifest.input;
  const feeds = { [manifest.input.name]: new ort.Tensor('float32', new Float32Array(batch * channels * height * width).fill(0.1), [batch, channels, height, width]) };
  try {
    return await closedLoop(`raw ONNX Runtime, batch ${batch}`, 1, opts.seconds, batch, async () => void (await session.run(feeds)));
  } finally {
    await session.release();
  }
}

function post(agent: http.Agent, port: number, urlPath: string, headers: http.OutgoingHttpHeaders, body: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', agent, headers: { ...headers, 'content-length': body.length } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode} from ${urlPath}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The server runs in a child process so that its event loop does not share a thread with the load generator. */
function startServerProcess(config: Partial<ServeConfig>): Promise<{ child: ChildProcess; http: number; grpc: number }> {
  const child = fork(__filename, ['--serve-child', JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m: { http: number; grpc: number }) => resolve({ child, ...m }));
    child.once('exit', (code) => reject(new Error(`benchmark server exited with ${code}`)));
  });
}

async function serveChild(configJson: string): Promise<void> {
  const server = await startServer(serveConfig(JSON.parse(configJson)), pino({ level: 'warn' }));
  process.send!({ http: server.httpPort, grpc: server.grpcPort });
  process.once('disconnect', () => void server.drain(1000).then(() => process.exit(0)));
}

export async function runServeBenchmark(options: Partial<ServeBenchOptions> = {}): Promise<ServeBenchResult> {
  const opts = { ...DEFAULTS, ...options };
  const { root, dir, manifest } = await modelFolder(opts);
  const inferFile = path.join(dir, manifest.graphs.infer.file);
  const batch1 = await rawThroughput(inferFile, manifest, 1, opts);
  const batched = await rawThroughput(inferFile, manifest, opts.maxBatch, opts);

  const server = await startServerProcess({
    models: root,
    host: '127.0.0.1',
    httpPort: 0,
    grpcPort: 0,
    threads: opts.threads,
    instances: opts.instances,
    maxBatch: opts.maxBatch,
    maxQueueSize: 4096,
    versionPolicy: 'latest',
    defaultModel: opts.model,
  });
  const { channels, height, width } = manifest.input;
  const tensor = Buffer.from(new Float32Array(channels * height * width).map((_, i) => Math.sin(i)).buffer);
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: manifest.input.name, shape: [1, channels, height, width], datatype: 'FP32', parameters: { binary_data_size: tensor.length } }] }));
  const tensorBody = Buffer.concat([header, tensor]);
  const png = await sharp(Buffer.from(new Uint8Array(width * height * 3).map((_, i) => (i * 7) & 0xff)), { raw: { width, height, channels: 3 } }).png().toBuffer();
  const client = new (protos().inference.GRPCInferenceService)(`127.0.0.1:${server.grpc}`, grpc.credentials.createInsecure());
  const grpcRequest = {
    model_name: opts.model,
    inputs: [{ name: manifest.input.name, datatype: 'FP32', shape: [1, channels, height, width] }],
    raw_input_contents: [tensor],
  };
  const grpcInfer = () =>
    new Promise<void>((resolve, reject) =>
      (client as unknown as Record<string, (r: unknown, cb: (e: Error | null) => void) => void>).ModelInfer(grpcRequest, (e) => (e ? reject(e) : resolve())),
    );

  const served: Measurement[] = [];
  try {
    for (const concurrency of opts.concurrencies) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
      served.push(
        await closedLoop('REST tensor infer (binary)', concurrency, opts.seconds, 1, () =>
          post(agent, server.http, `/v2/models/${opts.model}/infer`, { 'content-type': 'application/octet-stream', 'inference-header-content-length': header.length }, tensorBody),
        ),
      );
      served.push(
        await closedLoop('REST image predict (PNG)', concurrency, opts.seconds, 1, () =>
          post(agent, server.http, `/v2/models/${opts.model}/predict`, { 'content-type': 'image/png' }, png),
        ),
      );
      served.push(await closedLoop('gRPC infer (raw contents)', concurrency, opts.seconds, 1, grpcInfer));
      agent.destroy();
    }
  } finally {
    client.close();
    server.child.disconnect();
    await new Promise((r) => server.child.once('exit', r));
  }
  return { model: opts.model, options: opts, raw: { batch1, batched }, served, checks: checks(batch1, batched, served, opts) };
}

function checks(batch1: Measurement, batched: Measurement, served: Measurement[], opts: ServeBenchOptions) {
  const find = (name: string, c: number) => served.find((m) => m.name.startsWith(name) && m.concurrency === c);
  const high = Math.max(...opts.concurrencies);
  const low = Math.min(...opts.concurrencies);
  const result: ServeBenchResult['checks'] = [];
  for (const name of ['REST tensor infer', 'gRPC infer']) {
    const top = find(name, high);
    const one = find(name, low);
    if (!top || !one) continue;
    const vsRaw = top.throughput / batched.throughput;
    const vsUnbatched = top.throughput / one.throughput;
    const overRaw = one.p50Ms - batch1.p50Ms;
    result.push(
      { name: `${name} c=${high} / raw batch ${opts.maxBatch}`, value: vsRaw, target: '≥ 0.9', met: vsRaw >= 0.9 },
      { name: `${name} c=${high} / c=${low}`, value: vsUnbatched, target: '≥ 3', met: vsUnbatched >= 3 },
      { name: `${name} c=${low} p50 − raw batch-1 p50 (ms)`, value: overRaw, target: '≤ 1', met: overRaw <= 1 },
    );
  }
  return result;
}

export function formatServeBenchmark(r: ServeBenchResult): string {
  const row = (m: Measurement) => [m.name, m.concurrency, m.throughput, m.p50Ms, m.p99Ms];
  const headers = ['measure', 'concurrency', 'samples/s', 'p50 ms', 'p99 ms'];
  const o = r.options;
  return [
    `${r.model}: ${o.threads} ONNX Runtime thread(s) per session, ${o.instances} server worker(s), max batch ${o.maxBatch}, ${o.seconds} s per cell, ${os.cpus().length} CPUs`,
    table(headers, [row(r.raw.batch1), row(r.raw.batched), ...r.served.map(row)]),
    '',
    table(['target', 'measured', 'wanted', 'met'], r.checks.map((c) => [c.name, c.value, c.target, c.met ? 'yes' : 'no'])),
  ].join('\n');
}

function parseArgs(argv: string[]): Partial<ServeBenchOptions> & { json?: boolean } {
  const out: Partial<ServeBenchOptions> & { json?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${argv[i - 1]} needs a value`);
      return v;
    };
    const number = (flag: string) => {
      const n = Number(value());
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag} must be a positive number`);
      return n;
    };
    switch (argv[i]) {
      case '--models': out.models = value(); break;
      case '--model': out.model = value(); break;
      case '--threads': out.threads = number('--threads'); break;
      case '--instances': out.instances = number('--instances'); break;
      case '--max-batch': out.maxBatch = number('--max-batch'); break;
      case '--seconds': out.seconds = number('--seconds'); break;
      case '--concurrency': out.concurrencies = value().split(',').map(Number); break;
      case '--json': out.json = true; break;
      default: throw new Error(`unknown option ${argv[i]}`);
    }
  }
  return out;
}

if (require.main === module) {
  const childAt = process.argv.indexOf('--serve-child');
  if (childAt >= 0) {
    void serveChild(process.argv[childAt + 1]);
  } else {
    const { json, ...options } = parseArgs(process.argv.slice(2));
    runServeBenchmark(options).then(
      (result) => process.stdout.write(`${json ? JSON.stringify(result) : formatServeBenchmark(result)}\n`),
      (e: Error) => {
        process.stderr.write(`bench serve: ${e.message}\n`);
        process.exitCode = 1;
      },
    );
  }
}
