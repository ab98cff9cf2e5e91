/** The gRPC FineTune service (proto/finetune.proto): the fine-tune job system through the service's one call path. */
import type * as grpc from '@grpc/grpc-js';
import { TridentError } from '../../base/errors';
import type { JobManager, ModelVersions } from '../../finetune/manager';
import type { EpochReport, Evaluation, JobEvent, JobRecord, JobState, MetricsPair } from '../../finetune/record';
import type { Metrics } from '../../runtime/metrics';
import { eventPayload } from '../core/job-events';
import type { InferenceService } from '../core/service';
import { metadataKey, protos, serverStream, unary } from './calls';

type Message = Record<string, unknown>;

/** The FineTune service constructor, for servers (`.service`) and clients (`new FineTune(address, credentials)`). */
export function fineTuneService(): grpc.ServiceClientConstructor {
  return protos().trident.finetune.v1.FineTune;
}

export function fineTuneHandlers(service: InferenceService, manager: JobManager): grpc.UntypedServiceImplementation {
  const key = (call: { metadata: grpc.Metadata }) => metadataKey(call.metadata);
  const model = (r: Message) => (r.model as string) || undefined;
  return {
    CreateJob: unary(service, 'finetune_create', async (r: Message, call) => {
      manager.authorize(key(call), 'fine-tune job creation');
      const files = (r.files as { name: string; content: Buffer }[] | undefined) ?? [];
      const create = { params: presentFields(r.params as Message | null), force: !!r.force };
      if (r.data_folder) {
        if (files.length > 0) throw new TridentError('invalid_argument', 'give either files or data_folder, not both');
        return jobMessage(await manager.createFromFolder(String(r.model ?? ''), String(r.data_folder), create));
      }
      return jobMessage(await manager.createFromFiles(String(r.model ?? ''), files, (r.annotations as string) || undefined, create));
    }, model),
    ListJobs: unary(service, 'finetune_list', async (r: Message) => {
      const jobs = await manager.list({ model: (r.model as string) || undefined, state: ((r.state as string) || undefined) as JobState | undefined });
      return { jobs: jobs.map(jobMessage) };
    }),
    GetJob: unary(service, 'finetune_get', async (r: Message) => jobMessage(await manager.get(String(r.id ?? '')))),
    CancelJob: unary(service, 'finetune_cancel', async (r: Message, call) => {
      manager.authorize(key(call), 'fine-tune job cancellation');
      return jobMessage(await manager.cancel(String(r.id ?? '')));
    }),
    WatchJob: serverStream(service, 'finetune_events', async (r: Message) => {
      const id = String(r.id ?? '');
      const events = await manager.watch(id);
      let sequence = 0;
      return mapEvents(events, (event) => ({ job_id: id, sequence: ++sequence, ...eventMessage(event) }));
    }),
    ListVersions: unary(service, 'versions', async (r: Message) => versionsMessage(await manager.listVersions(String(r.model ?? ''))), model),
    Rollback: unary(service, 'rollback', async (r: Message, call) => {
      manager.authorize(key(call), 'rollback');
      return protoFields(await manager.rollback(String(r.model ?? ''), Number(r.version ?? 0)));
    }, model),
  };
}

/** The events as messages, ending (and ending the source) when the consumer stops. */
function mapEvents<T, U>(source: AsyncIterableIterator<T>, f: (item: T) => U): AsyncIterableIterator<U> {
  const mapped: AsyncIterableIterator<U> = {
    next: async () => {
      const item = await source.next();
      return item.done ? { value: undefined, done: true } : { value: f(item.value), done: false };
    },
    return: async () => {
      await source.return?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]: () => mapped,
  };
  return mapped;
}

/** A record's camelCase fields as the proto's snake_case ones, deeply; the keys inside `values` (a proto map) are data and stay. */
function protoFields(value: unknown): Message {
  return convert(value) as Message;
}

function convert(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(convert);
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value)) return value;
  return Object.fromEntries(
    Object.entries(value as Message).map(([key, v]) => [key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), key === 'values' ? v : convert(v)]),
  );
}

/** The fields a message sets, without proto-loader's "_name" markers of proto3 optional fields. */
function presentFields(message: Message | null | undefined): Message | undefined {
  if (!message) return undefined;
  return Object.fromEntries(Object.entries(message).filter(([name]) => !name.startsWith('_')));
}

function metricsMessage(m: Metrics): Message {
  const values: Record<string, number> = {};
  for (const [name, value] of Object.entries(m)) if (typeof value === 'number') values[name] = value;
  return { values, per_class_accuracy: m.perClassAccuracy };
}

const pairMessage = (p: MetricsPair): Message => ({ name: p.name, samples: p.samples, candidate: metricsMessage(p.candidate), serving: metricsMessage(p.serving) });

const epochMessage = (e: EpochReport): Message => ({ ...e, metrics: metricsMessage(e.metrics) });

const evaluationMessage = (e: Evaluation): Message => ({
  metric: e.metric,
  tolerance: e.tolerance,
  heldOut: pairMessage(e.heldOut),
  ...(e.reference ? { reference: pairMessage(e.reference) } : {}),
  referenceSkipped: e.referenceSkipped ?? '',
});

export function jobMessage(r: JobRecord): Message {
  return protoFields({
    ...r,
    epochs: r.epochs.map(epochMessage),
    evaluation: r.evaluation ? evaluationMessage(r.evaluation) : undefined,
    cancelRequested: !!r.cancelRequested,
  });
}

function eventMessage(event: JobEvent): Message {
  return protoFields(eventFields(event));
}

function eventFields(event: JobEvent): Message {
  switch (event.type) {
    case 'snapshot':
    case 'end':
      return { [event.type]: jobMessage(event.job) };
    case 'state':
      return { state: event.state };
    case 'warning':
      return { warning: event.warning };
    case 'epoch':
      return { epoch: epochMessage(event.epoch) };
    case 'evaluation':
      return { evaluation: evaluationMessage(event.evaluation) };
    default:
      return { [event.type]: eventPayload(event) };
  }
}

function versionsMessage(v: ModelVersions): Message {
  return protoFields({
    model: v.model,
    latest: v.latest,
    versions: v.versions.map((info) => {
      const lineage = info.lineage ?? {};
      return {
        version: info.version,
        latest: info.latest,
        createdAt: info.createdAt ?? '',
        parentVersion: typeof lineage.parentVersion === 'number' ? lineage.parentVersion : 0,
        jobId: typeof lineage.jobId === 'string' ? lineage.jobId : '',
        dataSha256: typeof lineage.dataSha256 === 'string' ? lineage.dataSha256 : '',
        metricsJson: JSON.stringify(info.metrics ?? {}),
        lineageJson: JSON.stringify(lineage),
        error: info.error ?? '',
      };
    }),
    history: v.history,
  });
}
