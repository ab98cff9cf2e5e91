import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { QUICK } from '../../finetune/testing/fixtures';
import { fineTuneService } from './finetune';
import { startFinetuneStack, type FinetuneStack } from '../testing/finetune';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Message = any;

let s: FinetuneStack;
let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

beforeAll(async () => {
  s = await startFinetuneStack();
  const FineTune = fineTuneService();
  client = new FineTune(s.grpcAddress, grpc.credentials.createInsecure()) as unknown as typeof client;
});
afterAll(async () => {
  client.close();
  await s.close();
});

const keyed = (key = 'ft-key') => {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  return metadata;
};

function call(method: string, request: unknown, metadata = new grpc.Metadata()): Promise<Message> {
  return new Promise((resolve, reject) => (client[method] as (...a: unknown[]) => void).call(client, request, metadata, (e: grpc.ServiceError | null, r: Message) => (e ? reject(e) : resolve(r))));
}

function watch(id: string, until?: (event: Message) => boolean): Promise<Message[]> {
  return new Promise((resolve, reject) => {
    const events: Message[] = [];
    const stream = (client.WatchJob as (r: unknown) => grpc.ClientReadableStream<Message>).call(client, { id });
    stream.on('data', (event: Message) => {
      events.push(event);
      if (until?.(event)) stream.cancel();
    });
    stream.on('end', () => resolve(events));
    stream.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? resolve(events) : reject(e)));
  });
}

const files = () => [
  { name: 'annotations.jsonl', content: Buffer.from(s.data.lines.join('\n')) },
  ...s.data.files.map((f) => ({ name: f, content: readFileSync(path.join(s.data.dir, f)) })),
];

describe('gRPC FineTune', () => {
  it('creates a job from file bytes, streams its events to the end, lists it, lists the versions', async () => {
    const job = await call('CreateJob', { model: 'tiny', files: files(), params: { steps: 20, batch_size: 8, lr: 0.01, val_share: 0.25 } }, keyed());
    expect(job).toMatchObject({ model: 'tiny', parent_version: 1, params: { steps: 20, batch_size: 8, augment: true }, data: { source: 'upload', samples: 24 } });

    const events = await watch(job.id);
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i + 1));
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe('snapshot');
    expect(kinds[kinds.length - 1]).toBe('end');
    expect(kinds).toEqual(expect.arrayContaining(['state', 'ready', 'step', 'epoch', 'evaluation', 'decision']));
    const step = events.find((e) => e.event === 'step').step;
    expect(step).toMatchObject({ step: 1, total_steps: 20, epoch: 1, index: 0, losses: { classification: expect.any(Number) }, grad_norm: expect.any(Number) });
    expect(events.find((e) => e.event === 'epoch').epoch.metrics.values.detectionCorrect).toEqual(expect.any(Number));
    const end = events[events.length - 1].end;
    expect(end).toMatchObject({ id: job.id, state: 'succeeded', version: 2, decision: { promoted: true, version: 2, latest: 2 } });
    expect(end.evaluation.held_out.candidate.values).toMatchObject({ detectionCorrect: expect.any(Number), samples: 6 });

    expect(await call('GetJob', { id: job.id })).toEqual(end);
    expect((await call('ListJobs', { model: 'tiny', state: 'succeeded' })).jobs.map((j: Message) => j.id)).toEqual([job.id]);
    const versions = await call('ListVersions', { model: 'tiny' });
    expect(versions).toMatchObject({ model: 'tiny', latest: 2, versions: [{ version: 1, latest: false }, { version: 2, latest: true, parent_version: 1, job_id: job.id }] });
    expect(JSON.parse(versions.versions[1].lineage_json)).toMatchObject({ dataSha256: end.data.sha256 });
    expect(versions.history.map((h: Message) => [h.version, h.reason])).toEqual([[1, 'pinned'], [2, 'promoted']]);
  });

  it('refuses without a key, with a wrong key, and bad data with the file and line', async () => {
    await expect(call('CreateJob', { model: 'tiny', files: files() })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(call('CreateJob', { model: 'tiny', files: files() }, keyed('nope'))).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    await expect(call('Rollback', { model: 'tiny', version: 1 })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    await expect(call('CancelJob', { id: 'ft-a-00000000' })).rejects.toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    const bad = [{ name: 'annotations.jsonl', content: Buffer.from('{"file": "images/000.png", "label": 7, "box": [0, 0, 4, 4]}') }, ...files().slice(1)];
    await expect(call('CreateJob', { model: 'tiny', files: bad }, keyed())).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'annotations.jsonl:1: label index 7 is out of range 0..2' });
    await expect(call('CreateJob', { model: 'tiny', files: [] }, keyed())).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/upload is empty/) });
    await expect(call('CreateJob', { model: 'tiny', files: [{ name: '../x.png', content: Buffer.from('x') }] }, keyed())).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/leaves the upload folder/) });
    await expect(call('GetJob', { id: 'ft-a-00000000' })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(watch('nope')).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('answers FAILED_PRECONDITION with the running job id for a second job; cancels; rolls back', async () => {
    const first = await call('CreateJob', { model: 'tiny', data_folder: 'set1', params: { ...QUICK, steps: 100_000, batch_size: 8 } }, keyed());
    const conflict = await call('CreateJob', { model: 'tiny', files: files() }, keyed()).catch((e: grpc.ServiceError) => e);
    expect(conflict).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, details: expect.stringContaining(first.id) });
    expect((conflict as grpc.ServiceError).metadata.get('job-id')).toEqual([first.id]);

    await watch(first.id, (e) => e.event === 'step');
    expect(await call('CancelJob', { id: first.id }, keyed())).toMatchObject({ cancel_requested: true });
    const events = await watch(first.id);
    expect(events[events.length - 1].end).toMatchObject({ state: 'cancelled' });

    expect(await call('Rollback', { model: 'tiny', version: 1 }, keyed())).toEqual({ model: 'tiny', latest: 1, previous: 2 });
    await expect(call('Rollback', { model: 'tiny', version: 5 }, keyed())).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });
});
