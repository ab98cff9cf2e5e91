import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { readServingPointer } from '../../artifacts/repository';
import { JOBS_FOLDER } from '../../finetune/store';
import { QUICK } from '../../finetune/testing/fixtures';
import { solidImage } from '../testing/harness';
import { readSse, startFinetuneStack, type FinetuneStack, type ParsedEvent } from '../testing/finetune';

let s: FinetuneStack;
beforeAll(async () => {
  s = await startFinetuneStack({ limits: { maxUploadBytes: 256 * 1024, maxFileBytes: 64 * 1024, maxFiles: 100, maxSamples: 100, maxPixels: 1_000_000 } });
});
afterAll(() => s.close());

const KEY = { authorization: 'Bearer ft-key' };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

function form(files: { name: string; bytes: Buffer }[], fields: Record<string, string> = {}): FormData {
  const body = new FormData();
  for (const [name, value] of Object.entries(fields)) body.append(name, value);
  for (const f of files) body.append(f.name.endsWith('.jsonl') ? 'annotations' : 'images', new Blob([f.bytes]), f.name);
  return body;
}

/** The labelled set as upload parts, with the annotation lines optionally replaced. */
function dataset(lines?: string[]): { name: string; bytes: Buffer }[] {
  const images = s.data.files.map((f) => ({ name: f, bytes: readFileSync(path.join(s.data.dir, f)) }));
  return [{ name: 'annotations.jsonl', bytes: Buffer.from((lines ?? s.data.lines).join('\n')) }, ...images];
}

const post = (url: string, body: FormData | string, headers: Record<string, string> = {}) =>
  fetch(`${s.url}${url}`, { method: 'POST', body, headers: typeof body === 'string' ? { 'content-type': 'application/json', ...headers } : headers });
const createJob = (body: FormData | string, headers: Record<string, string> = KEY) => post('/v2/models/tiny/finetune', body, headers);

async function expectError(response: Response, status: number, message: RegExp): Promise<Json> {
  const body = await json(response);
  expect({ status: response.status, error: body.error }).toEqual({ status, error: expect.stringMatching(message) });
  return body;
}

const predict = async () => {
  const response = await fetch(`${s.url}/v2/models/tiny/predict`, { method: 'POST', body: await solidImage(32, 32, '#d02828'), headers: { 'content-type': 'image/png' } });
  return { status: response.status, body: await json(response) };
};

const json = (response: Response): Promise<Json> => response.json();
const events = (id: string, until?: (e: ParsedEvent) => boolean | Promise<boolean>) => fetch(`${s.url}/v2/finetune/jobs/${id}/events`).then((r) => readSse(r, until));

describe('fine-tune REST: a job end to end', () => {
  it('uploads a labelled set, streams progress while serving answers, promotes version 2 and serves it', async () => {
    expect((await predict()).body.model_version).toBe('1');
    const response = await createJob(form(dataset(), { params: JSON.stringify({ ...QUICK, steps: 40, weighting: 'famo', weighting_options: 'update=next_batch' }) }));
    expect(response.status).toBe(201);
    const job = await json(response);
    expect(response.headers.get('location')).toBe(`/v2/finetune/jobs/${job.id}`);
    expect(job).toMatchObject({ model: 'tiny', parentVersion: 1, params: { steps: 40, batchSize: 8, weighting: 'famo', weightingOptions: { update: 'next_batch' } }, data: { source: 'upload', samples: 24, annotations: 'annotations.jsonl' } });
    expect(existsSync(path.join(s.root, JOBS_FOLDER, job.id, 'uploads', 'images', '000.png'))).toBe(true);

    let duringTraining: Awaited<ReturnType<typeof predict>> | undefined;
    const stream = await events(job.id, async (e) => {
      if (e.event === 'step' && !duringTraining) duringTraining = await predict();
      return false;
    });
    expect(duringTraining).toMatchObject({ status: 200, body: { model_version: '1' } });

    const names = stream.map((e) => e.event);
    expect(names[0]).toBe('snapshot');
    expect(names[names.length - 1]).toBe('end');
    expect(names).toEqual(expect.arrayContaining(['ready', 'step', 'epoch', 'evaluation', 'decision']));
    expect(stream.map((e) => Number(e.id))).toEqual(stream.map((_, i) => i + 1));
    const step = stream.find((e) => e.event === 'step')!.data as Json;
    expect(step).toMatchObject({ step: 1, totalSteps: 40, losses: { classification: expect.any(Number), objectness: expect.any(Number), box: expect.any(Number) }, imagesPerSecond: expect.any(Number) });
    // FAMO's weights start equal (z = softmax(0)) and are logged every step.
    expect(step.appliedWeights).toMatchObject({ classification: expect.any(Number), objectness: expect.any(Number), box: expect.any(Number) });
    const epoch = stream.find((e) => e.event === 'epoch')!.data as Json;
    expect(epoch.metrics).toMatchObject({ detectionCorrect: expect.any(Number), boxMeanIoU: expect.any(Number) });
    const end = stream[stream.length - 1].data as Json;
    expect(end).toMatchObject({ state: 'succeeded', version: 2, decision: { promoted: true, version: 2, latest: 2 } });
    expect(end.evaluation.heldOut).toMatchObject({ samples: 6, candidate: expect.any(Object), serving: expect.any(Object) });

    expect((await predict()).body.model_version).toBe('2');
    expect(await json(await fetch(`${s.url}/v2/finetune/jobs/${job.id}`))).toEqual(end);
    expect(existsSync(path.join(s.root, JOBS_FOLDER, job.id, 'uploads'))).toBe(false);
    const versions = await json(await fetch(`${s.url}/v2/models/tiny/versions`));
    expect(versions).toMatchObject({ model: 'tiny', latest: 2, versions: [{ version: 1, latest: false }, { version: 2, latest: true, lineage: { jobId: job.id, parentVersion: 1, weighting: { name: 'famo', options: { update: 'next_batch' } } } }] });

    // A stream opened after the end gets the final state at once.
    expect((await events(job.id)).map((e) => e.event)).toEqual(['snapshot', 'end']);
  });

  it('does not promote a worse model; the served version stays', async () => {
    const response = await createJob(JSON.stringify({ data: 'set1', params: { steps: 3, batch_size: 8, lr: 1, val_share: 0.25 } }));
    expect(response.status).toBe(201);
    const job = await json(response);
    expect(job.data).toMatchObject({ source: 'folder', annotations: 'set1' });
    const stream = await events(job.id);
    expect(stream[stream.length - 1].data).toMatchObject({ state: 'succeeded', version: 3, decision: { promoted: false, latest: 2 } });
    expect((await predict()).body.model_version).toBe('2');
    expect((await readServingPointer(path.join(s.root, 'tiny')))!.latest).toBe(2);
  });

  it('rolls back with a key', async () => {
    await expectError(await post('/v2/models/tiny/rollback', JSON.stringify({ version: 1 })), 401, /rollback needs a fine-tune API key/);
    const response = await post('/v2/models/tiny/rollback', JSON.stringify({ version: '1' }), KEY);
    expect([response.status, await json(response)]).toEqual([200, { model: 'tiny', latest: 1, previous: 2 }]);
    expect((await json(await fetch(`${s.url}/v2/models/tiny/versions`))).latest).toBe(1);
    await expectError(await post('/v2/models/tiny/rollback', JSON.stringify({ version: 7 }), KEY), 404, /no version 7/);
    await expectError(await post('/v2/models/tiny/rollback', JSON.stringify({ v: 1 }), KEY), 400, /give the version/);
    await expectError(await post('/v2/models/tiny/rollback', '{"version":', KEY), 400, /could not read the JSON body/);
  });
});

describe('fine-tune REST: refusals', () => {
  it('refuses calls without a valid key', async () => {
    await expectError(await createJob(form(dataset()), {}), 401, /needs a fine-tune API key/);
    await expectError(await createJob(form(dataset()), { 'x-api-key': 'wrong' }), 403, /the API key is not valid/);
    await expectError(await post('/v2/finetune/jobs/ft-abc-00000000/cancel', ''), 401, /cancellation needs a fine-tune API key/);
  });

  it.each([
    ['unknown label', () => form(dataset([s.data.lines[0], s.data.lines[1].replace(/"label":"\w"/, '"label":"zebra"')])), 400, /^annotations\.jsonl:2: unknown label "zebra"/],
    ['malformed JSON line', () => form(dataset(['{"file": "images/000.png", "box": null}', '{oops'])), 400, /^annotations\.jsonl:2: invalid JSON/],
    ['box outside the image', () => form(dataset([s.data.lines[0], JSON.stringify({ file: 'images/001.png', label: 'b', box: [0, 0, 33, 10] })])), 400, /^annotations\.jsonl:2: box \[0, 0, 33, 10\] is outside the 32×32 image/],
    ['image that does not decode', () => form([...dataset([s.data.lines[0], JSON.stringify({ file: 'x.png', box: null })]), { name: 'x.png', bytes: Buffer.from('GIF89a-not-really') }]), 400, /^annotations\.jsonl:2: "x.png": /],
    ['empty annotation file', () => form(dataset([])), 400, /no samples \(the annotation file is empty\)/],
    ['empty upload', () => form([], { steps: '3' }), 400, /the upload is empty/],
    ['upload without annotations', () => form(dataset().slice(1)), 400, /no annotation file "annotations.jsonl"/],
    ['file name leaving the folder', () => form([...dataset(), { name: '../../evil.png', bytes: Buffer.from('x') }]), 400, /leaves the upload folder/],
    ['hidden file name', () => form([...dataset(), { name: 'images/.htaccess', bytes: Buffer.from('x') }]), 400, /may only use/],
    ['bad hyper-parameter', () => form(dataset(), { lr: '-1' }), 400, /hyper-parameter "lr"/],
    ['unknown hyper-parameter', () => form(dataset(), { learning_rate: '0.1' }), 400, /unknown key\(s\) learningRate/],
    ['file over the size limit', () => form([...dataset(), { name: 'big.png', bytes: Buffer.alloc(65 * 1024) }]), 413, /"big.png" is larger than the limit of 65536 bytes/],
    ['upload over the total limit', () => form([...dataset(), ...[1, 2, 3, 4, 5].map((i) => ({ name: `pad${i}.bin`, bytes: Buffer.alloc(60 * 1024) }))]), 413, /upload is larger than the limit/],
  ])('refuses an upload with %s, leaving nothing behind', async (_what, body, status, message) => {
    await expectError(await createJob(body()), status, message);
    const jobs = readdirSync(path.join(s.root, JOBS_FOLDER));
    const records = (await json(await fetch(`${s.url}/v2/finetune/jobs`))).jobs;
    expect(jobs.length).toBe(records.length);
  });

  it('refuses unknown models, data folders outside the allowed ones, other content types', async () => {
    await expectError(await post('/v2/models/nope/finetune', form(dataset()), KEY), 404, /no model "nope"/);
    await expectError(await post('/v2/models/bad%20name/finetune', form(dataset()), KEY), 400, /invalid model name/);
    await expectError(await createJob(JSON.stringify({ data: '/etc' })), 403, /not inside a data folder this server allows/);
    await expectError(await createJob(JSON.stringify({ params: {} })), 400, /give "data"/);
    await expectError(await post('/v2/models/tiny/finetune', 'x', { ...KEY, 'content-type': 'text/plain' }), 400, /send multipart\/form-data/);
  });

  it('answers 404 for unknown jobs and 400 for bad filters', async () => {
    await expectError(await fetch(`${s.url}/v2/finetune/jobs/ft-zzz-00000000`), 404, /no fine-tune job/);
    await expectError(await fetch(`${s.url}/v2/finetune/jobs/..%2F..%2Fetc`), 404, /no fine-tune job/);
    await expectError(await fetch(`${s.url}/v2/finetune/jobs/nope/events`), 404, /no fine-tune job/);
    await expectError(await fetch(`${s.url}/v2/finetune/jobs?state=sleeping`), 400, /state must be one of/);
    await expectError(await fetch(`${s.url}/v2/models/nope/versions`), 404, /no model "nope"/);
  });

  it('allows one job per model: 409 names the running job; cancel ends it', async () => {
    const first = await json(await createJob(JSON.stringify({ data: s.data.dir, params: { ...QUICK, steps: 100_000 } })));
    const conflict = await expectError(await createJob(form(dataset())), 409, new RegExp(`already has a fine-tune job in progress: ${first.id}`));
    expect(conflict.job_id).toBe(first.id);
    await events(first.id, (e) => e.event === 'step');
    const cancelled = await post(`/v2/finetune/jobs/${first.id}/cancel`, '', KEY);
    expect([cancelled.status, (await json(cancelled)).cancelRequested]).toEqual([200, true]);
    const stream = await events(first.id);
    expect(stream[stream.length - 1].data).toMatchObject({ state: 'cancelled' });
    await expectError(await post(`/v2/finetune/jobs/${first.id}/cancel`, '', KEY), 409, /already ended \(cancelled\)/);
    const listed = (await json(await fetch(`${s.url}/v2/finetune/jobs?model=tiny&state=cancelled`))).jobs;
    expect(listed.map((j: Json) => j.id)).toEqual([first.id]);
  });
});
