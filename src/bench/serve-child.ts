/**
 * The serving benchmark's child processes, each started pinned to its own CPUs: the server, the raw
 * in-process ONNX Runtime measurement, and the Node load generators (gRPC, and HTTP where wrk is missing).
 * The job arrives as JSON in argv; results go back over IPC.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import * as grpc from '@grpc/grpc-js';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { createSession, type ProviderName } from '../runtime/session';
import { serveConfig, type ServeConfig } from '../serve/config';
import { SERVER_NODE_FLAGS } from '../serve/node-flags';
import { protos } from '../serve/grpc/calls';
import { closedLoop, processCpuMs, type Measurement } from './serve-measure';

export interface LoadShape {
  name: string;
  concurrency: number;
  seconds: number;
  warmUpSeconds: number;
}

export interface TensorShape {
  input: string;
  dims: number[];
}

export type ChildJob =
  | { role: 'server'; config: Partial<ServeConfig> }
  | { role: 'raw'; model: string; tensor: TensorShape; threads: number; device: ProviderName; batches: number[]; seconds: number; warmUpSeconds: number }
  /** `live`: ServerLive, the transport's floor without inference. */
  | { role: 'grpc-load'; address: string; model: string; tensor: TensorShape; loads: LoadShape[]; method?: 'infer' | 'live' }
  | { role: 'http-load'; port: number; path: string; headers: Record<string, string>; bodyFile: string; loads: LoadShape[]; method?: 'GET' | 'POST' };

/** The benchmark's input tensor: one sample, the same bytes for every transport. */
export function sampleTensor(elements: number): Buffer {
  return Buffer.from(new Float32Array(elements).map((_, i) => Math.sin(i)).buffer);
}

/** Starts `job` in a child process, under `taskset -c cpus` when cpus is given; the server with the flags `trident serve` has. */
export function startChild(job: ChildJob, cpus: string | undefined): ChildProcess {
  const node = [process.execPath, ...(job.role === 'server' ? SERVER_NODE_FLAGS : []), __filename, JSON.stringify(job)];
  const [command, ...args] = cpus === undefined ? node : ['taskset', '-c', cpus, ...node];
  return spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Runs a child job that answers once and exits; `onMeasuring` is called when a load generator's warm-up ends. */
export function runChild<T>(job: ChildJob, cpus: string | undefined, onMeasuring?: () => void): Promise<T> {
  const child = startChild(job, cpus);
  return new Promise((resolve, reject) => {
    let answer: T | undefined;
    child.on('message', (m: T | { measuring: true }) => {
      if (m !== null && typeof m === 'object' && 'measuring' in m) onMeasuring?.();
      else answer = m as T;
    });
    child.once('error', reject);
    child.once('exit', (code) => (answer !== undefined ? resolve(answer) : reject(new Error(`benchmark child (${job.role}) exited with ${code}`))));
  });
}

async function raw(job: Extract<ChildJob, { role: 'raw' }>): Promise<Measurement[]> {
  const results: Measurement[] = [];
  for (const batch of job.batches) {
    const { session } = await createSession(job.model, { threads: job.threads, device: job.device });
    const dims = [batch, ...job.tensor.dims.slice(1)];
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(0.1);
    const feeds = { [job.tensor.input]: new ort.Tensor('float32', data, dims) };
    let cpuAtStart = 0;
    const load = { concurrency: 1, seconds: job.seconds, warmUpSeconds: job.warmUpSeconds, samplesPerCall: batch, onMeasuring: () => (cpuAtStart = processCpuMs()) };
    const m = await closedLoop(`raw ONNX Runtime, batch ${batch}`, load, async () => void (await session.run(feeds)));
    results.push({ ...m, cpuMsPerSample: (processCpuMs() - cpuAtStart) / (m.throughput * job.seconds) });
    await session.release();
  }
  return results;
}

/** One channel, the request encoded once, responses left undecoded: the client costs as little as grpc-js allows. */
async function grpcLoad(job: Extract<ChildJob, { role: 'grpc-load' }>): Promise<Measurement[]> {
  const service = protos().inference.GRPCInferenceService.service;
  const method = job.method === 'live' ? service.ServerLive : service.ModelInfer;
  const encoded =
    job.method === 'live'
      ? method.requestSerialize({})
      : method.requestSerialize({
          model_name: job.model,
          inputs: [{ name: job.tensor.input, datatype: 'FP32', shape: job.tensor.dims }],
          raw_input_contents: [sampleTensor(job.tensor.dims.reduce((a, b) => a * b, 1))],
        });
  const client = new grpc.Client(job.address, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
  const same = (b: Buffer) => b;
  const once = () =>
    new Promise<void>((resolve, reject) => client.makeUnaryRequest(method.path, same, same, encoded, (e) => (e ? reject(e) : resolve())));
  const results: Measurement[] = [];
  for (const load of job.loads) results.push(await closedLoop(load.name, { ...load, samplesPerCall: 1, onMeasuring }, once));
  client.close();
  return results;
}

async function httpLoad(job: Extract<ChildJob, { role: 'http-load' }>): Promise<Measurement[]> {
  const get = job.method === 'GET';
  const body = get ? Buffer.alloc(0) : readFileSync(job.bodyFile);
  const headers = get ? job.headers : { ...job.headers, 'content-length': String(body.length) };
  const results: Measurement[] = [];
  for (const load of job.loads) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: load.concurrency });
    const once = () =>
      new Promise<void>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port: job.port, path: job.path, method: job.method ?? 'POST', agent, headers }, (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode} from ${job.path}`))));
        });
        req.on('error', reject);
        req.end(body);
      });
    results.push(await closedLoop(load.name, { ...load, samplesPerCall: 1, onMeasuring }, once));
    agent.destroy();
  }
  return results;
}

/** Tells the parent that warm-up is over, so that it can read the server's CPU time. */
function onMeasuring(): void {
  process.send!({ measuring: true });
}

async function serve(config: Partial<ServeConfig>): Promise<void> {
  // Imported here so that the load generators do not load the server's modules.
  const { startServer } = await import('../serve/server');
  const server = await startServer(serveConfig(config), pino({ level: 'warn' }));
  process.send!({ http: server.httpPort, grpc: server.grpcPort });
  process.on('message', () => process.send!({ cpuMs: processCpuMs() }));
  process.once('disconnect', () => void server.drain(1000).then(() => process.exit(0)));
}

async function main(job: ChildJob): Promise<void> {
  if (job.role === 'server') return serve(job.config);
  const result = job.role === 'raw' ? await raw(job) : job.role === 'grpc-load' ? await grpcLoad(job) : await httpLoad(job);
  process.send!(result, () => process.disconnect());
}

if (require.main === module) {
  main(JSON.parse(process.argv[2]) as ChildJob).catch((e: Error) => {
    process.stderr.write(`bench serve child: ${e.message}\n`);
    process.exit(1);
  });
}
