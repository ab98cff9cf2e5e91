/** Starts the whole server (registry, service core, REST and gRPC) and shuts it down gracefully. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import pino, { type Logger } from 'pino';
import { JobManager } from '../finetune/manager';
import { lockRepository } from '../artifacts/repository-lock';
import { ModelRegistry } from '../runtime/model-registry';
import { RepositoryWatcher } from '../runtime/repository-watch';
import type { ServeConfig } from './config';
import { startGrpcServer, type GrpcServer } from './grpc/server';
import { ServeMetrics } from './core/metrics';
import { createRestApp } from './rest/app';
import { fastInferPath } from './rest/fast-path';
import { InferenceService } from './core/service';

export interface RunningServer {
  service: InferenceService;
  metrics: ServeMetrics;
  /** Fine-tuning jobs, where the server runs them. */
  finetune?: JobManager;
  httpPort: number;
  grpcPort?: number;
  /** Readiness off, stop accepting, wait for in-flight calls (up to the timeout), release everything. */
  drain(timeoutMs?: number): Promise<{ drained: boolean }>;
}

async function openFinetune(config: ServeConfig, registry: ModelRegistry, log: Logger): Promise<JobManager> {
  const { manager, recovery } = await JobManager.open({
    models: config.models,
    config: config.finetune!,
    onServingChanged: (model) => registry.load(model),
    log: (message) => log.info(message),
  });
  const notable = Object.entries(recovery).filter(([, items]) => items.length > 0);
  if (notable.length > 0) log.warn(Object.fromEntries(notable), 'fine-tuning recovery after an interrupted run');
  return manager;
}

export function createLogger(level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({ name: 'trident', level });
}

/**
 * Listens first (liveness answers, readiness says no), then loads and warms every model in the
 * repository, then reports ready.
 */
export async function startServer(config: ServeConfig, log: Logger = createLogger()): Promise<RunningServer> {
  const metrics = new ServeMetrics();
  const registry = new ModelRegistry({
    root: config.models,
    versionPolicy: config.versionPolicy,
    device: config.device,
    instances: config.instances,
    threads: config.threads,
    maxBatch: config.maxBatch,
    maxQueueDelayMs: config.maxQueueDelayMs,
    maxQueueSize: config.maxQueueSize,
    log: (message) => log.info(message),
    observe: (model, version) => metrics.batchObserver(model, version),
  });
  const service = new InferenceService(registry, config, metrics, (labels, error) => log.error({ ...labels, err: error.message }, 'request failed'));
  // A server that may write to the repository holds its lock first: recovery must never run on another server's live jobs.
  const writes = config.finetune !== undefined && !config.readOnly;
  const lock = writes ? await lockRepository(config.models) : undefined;
  // Recovery of interrupted fine-tuning jobs fixes the serving pointers before any model loads.
  const finetune = writes ? await openFinetune(config, registry, log).catch(async (e) => {
    await lock?.release();
    throw e;
  }) : undefined;
  const watcher = config.readOnly ? new RepositoryWatcher(registry, config.watchIntervalMs, (message) => log.info(message)) : undefined;
  const app = createRestApp(service, metrics, config, log, finetune);
  const fast = fastInferPath(service, config, log);
  const httpServer = http.createServer((req, res) => fast(req, res) || app(req, res));
  // Behind load balancers idle connections must outlive theirs (often 60 s).
  httpServer.keepAliveTimeout = 65_000;
  httpServer.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.httpPort, config.host, () => resolve());
  });
  const httpPort = (httpServer.address() as AddressInfo).port;
  let grpc: GrpcServer | undefined;
  try {
    if (config.grpcPort !== undefined) grpc = await startGrpcServer(service, config, config.grpcPort, finetune);
    log.info({ http: httpPort, grpc: grpc?.port, models: config.models, device: config.device, readOnly: config.readOnly }, 'listening; loading models');
    await registry.loadAll();
    await watcher?.start();
  } catch (e) {
    grpc?.server.forceShutdown();
    httpServer.closeAllConnections();
    httpServer.close();
    await watcher?.stop();
    await finetune?.close();
    await registry.close();
    await lock?.release();
    throw e;
  }
  if (registry.names.length === 0) log.warn({ models: config.models }, 'the model repository is empty; nothing to serve');
  service.markStarted();
  log.info({ http: httpPort, grpc: grpc?.port, models: registry.names }, 'ready');

  let draining: Promise<{ drained: boolean }> | undefined;
  const drain = (timeoutMs = config.drainTimeoutMs) =>
    (draining ??= (async () => {
      service.beginDrain();
      log.info({ inflight: service.inflightCount, timeoutMs }, 'draining');
      httpServer.close();
      httpServer.closeIdleConnections();
      grpc?.server.unbind(`${config.host}:${grpc.port}`);
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        service.idle().then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
      ]);
      clearTimeout(timer);
      grpc?.server.forceShutdown();
      httpServer.closeAllConnections();
      await watcher?.stop();
      await finetune?.close();
      await registry.close();
      await lock?.release();
      log.info({ drained, abandoned: service.inflightCount }, drained ? 'drained; stopped' : 'drain timed out; stopped');
      return { drained };
    })());

  return { service, metrics, finetune, httpPort, grpcPort: grpc?.port, drain };
}

const CLIENT_ERROR_STATUS: Readonly<Record<string, string>> = Object.freeze({
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_URI_TOO_LONG: '414 URI Too Long',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
});

/**
 * A request node:http could not parse (a header past its limit, a malformed request line). Node's
 * own answer destroys the socket with the request still arriving, and the client then often sees a
 * reset instead of the answer: answer, then read and drop the rest for a moment before closing.
 */
const answeredSockets = new WeakSet<Duplex>();

function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  // node:http reports the parse error again for data it had already buffered.
  if (answeredSockets.has(socket)) return;
  if (error.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
  answeredSockets.add(socket);
  const status = CLIENT_ERROR_STATUS[error.code ?? ''] ?? '400 Bad Request';
  const body = JSON.stringify({ error: `the HTTP request could not be read: ${status.slice(4)}` });
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  // The parser would fail again on every further chunk: stop feeding it, and drop what still arrives.
  socket.removeAllListeners('data');
  socket.on('error', () => {});
  socket.resume();
  setTimeout(() => socket.destroy(), 2000).unref();
}
