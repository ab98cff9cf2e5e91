/** The gRPC FineTune service (proto/finetune.proto), added to an existing grpc.Server. */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { FinetuneError } from '../finetune/errors';
import type { JobManager, ModelVersions } from '../finetune/manager';
import type { EpochReport, Evaluation, JobEvent, JobRecord, JobState, MetricsPair } from '../finetune/record';
import type { Metrics } from '../runtime/metrics';
import { eventPayload, grpcStatus, wireError } from './finetune-common';
import { isMalformed, metadataKey, PROTO_DIR, tolerantDecoding } from './grpc-common';

// camelCase field names in JavaScript (the messages mirror the job records), numbers for 64-bit values.
const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] };

let loaded: grpc.ServiceClientConstructor | undefined;

/** The FineTune service constructor, for servers (`.service`) and clients (`new FineTune(address, credentials)`). */
export function fineTuneService(): grpc.ServiceClientConstructor {
  if (!loaded) {
    const definition = protoLoader.loadSync(path.join(PROTO_DIR, 'finetune.proto'), LOADER_OPTIONS);
    const packages = grpc.loadPackageDefinition(definition) as unknown as { trident: { finetune: { v1: { FineTune: grpc.ServiceClientConstructor } } } };
    loaded = packages.trident.finetune.v1.FineTune;
  }
  return loaded;
}

export interface FineTuneServiceOptions {
  /** Server faults (INTERNAL) are reported here. */
  log?: (message: string) => void;
}

type Message = Record<string, unknown>;

export function addFineTuneService(server: grpc.Server, manager: JobManager, options: FineTuneServiceOptions = {}): void {
  const fail = (error: unknown): Partial<grpc.StatusObject> => {
    const wire = wireError(error);
    const code = grpcStatus(wire);
    if (code === grpc.status.INTERNAL) options.log?.(`fine-tune call failed: ${wire.message}`);
    const metadata = new grpc.Metadata();
    if (wire.jobId) metadata.set('job-id', wire.jobId);
    return { code, details: wire.message, metadata };
  };
  const unary =
    (handle: (request: Message, call: grpc.ServerUnaryCall<Message, Message>) => Promise<Message>): grpc.handleUnaryCall<Message, Message> =>
    (call, callback) => {
      if (isMalformed(call.request)) return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'malformed protobuf message' });
      handle(call.request, call).then(
        (response) => callback(null, response),
        (error: unknown) => callback(fail(error)),
      );
    };
  const key = (call: { metadata: grpc.Metadata }) => metadataKey(call.metadata);

  const handlers: grpc.UntypedServiceImplementation = {
    CreateJob: unary(async (r, call) => {
      manager.authorize(key(call), 'fine-tune job creation');
      const model = String(r.model ?? '');
      const files = (r.files as { name: string; content: Buffer }[] | undefined) ?? [];
      const create = { params: presentFields(r.params as Message | null), force: !!r.force };
      if (r.dataFolder) {
        if (files.length > 0) throw new FinetuneError('invalid', 'give either files or data_folder, not both');
        return jobMessage(await manager.createFromFolder(model, String(r.dataFolder), create));
      }
      return jobMessage(await manager.createFromFiles(model, files, (r.annotations as string) || undefined, create));
    }),
    ListJobs: unary(async (r) => {
      const jobs = await manager.list({ model: (r.model as string) || undefined, state: ((r.state as string) || undefined) as JobState | undefined });
      return { jobs: jobs.map(jobMessage) };
    }),
    GetJob: unary(async (r) => jobMessage(await manager.get(String(r.id ?? '')))),
    CancelJob: unary(async (r, call) => {
      manager.authorize(key(call), 'fine-tune job cancellation');
      return jobMessage(await manager.cancel(String(r.id ?? '')));
    }),
    WatchJob: (call: grpc.ServerWritableStream<Message, Message>) => {
      const id = String(call.request.id ?? '');
      void (async () => {
        try {
          if (isMalformed(call.request)) throw new FinetuneError('invalid', 'malformed protobuf message');
          const events = await manager.watch(id);
          call.on('cancelled', () => void events.return!());
          let sequence = 0;
          for await (const event of events) {
            if (call.cancelled) break;
            call.write({ jobId: id, sequence: ++sequence, ...eventMessage(event) });
          }
          call.end();
        } catch (error) {
          call.emit('error', fail(error));
        }
      })();
    },
    ListVersions: unary(async (r) => versionsMessage(await manager.listVersions(String(r.model ?? '')))),
    Rollback: unary(async (r, call) => {
      manager.authorize(key(call), 'rollback');
      return manager.rollback(String(r.model ?? ''), Number(r.version ?? 0));
    }),
  };
  server.addService(tolerantDecoding(fineTuneService().service), handlers);
}

/** The fields a message sets, without proto-loader's "_name" markers of proto3 optional fields. */
function presentFields(message: Message | null | undefined): Message | undefined {
  if (!message) return undefined;
  return Object.fromEntries(Object.entries(message).filter(([name]) => !name.startsWith('_')));
}

function metricsMessage(m: Metrics): Message {
  const values: Record<string, number> = {};
  for (const [name, value] of Object.entries(m)) if (typeof value === 'number') values[name] = value;
  return { values, perClassAccuracy: m.perClassAccuracy };
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
  return {
    ...r,
    epochs: r.epochs.map(epochMessage),
    evaluation: r.evaluation ? evaluationMessage(r.evaluation) : undefined,
    cancelRequested: !!r.cancelRequested,
  };
}

function eventMessage(event: JobEvent): Message {
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
  return {
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
  };
}
