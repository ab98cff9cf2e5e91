/** Prometheus metrics of the server: requests, latency, queue time and batch sizes. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchObserver } from '../../runtime/batcher';

export type Protocol = 'rest' | 'grpc';

export class ServeMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({
    name: 'trident_requests_total',
    help: 'Requests by model, protocol, endpoint and outcome',
    labelNames: ['model', 'protocol', 'endpoint', 'status'] as const,
    registers: [this.registry],
  });
  private readonly latency = new Histogram({
    name: 'trident_request_duration_seconds',
    help: 'Time from receiving a request to answering it',
    labelNames: ['model', 'protocol', 'endpoint'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly queueTime = new Histogram({
    name: 'trident_queue_duration_seconds',
    help: 'Time a sample waited in the batcher before its batch started',
    labelNames: ['model', 'version'] as const,
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  private readonly batchSize = new Histogram({
    name: 'trident_batch_size',
    help: 'Samples per model run',
    labelNames: ['model', 'version'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });
  readonly inflight = new Gauge({
    name: 'trident_inflight_requests',
    help: 'Requests being handled',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'trident_' });
  }

  request(labels: { model: string; protocol: Protocol; endpoint: string; status: string }, seconds: number): void {
    this.requests.inc(labels);
    this.latency.observe({ model: labels.model, protocol: labels.protocol, endpoint: labels.endpoint }, seconds);
  }

  /** Batcher callbacks for one model version. */
  batchObserver(model: string, version: number): BatchObserver {
    const labels = { model, version: String(version) };
    return {
      batch: (samples) => this.batchSize.observe(labels, samples),
      queued: (ms) => this.queueTime.observe(labels, ms / 1000),
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
