import { existsSync, mkdirSync, promises as fs, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { exportModel } from '../artifacts/export';
import { readManifest } from '../artifacts/manifest';
import { listVersions, readServingPointer, stagingDir, writeServingPointer } from '../artifacts/repository';
import { builtinSpec, FASHION_LABELS, parseSpec } from '../model/spec';
import type { FinetuneConfig } from './config';
import { dataChecksum } from './data-check';
import { TridentError } from '../base/errors';
import { JobManager, type JobManagerOptions } from './manager';
import type { JobEvent, JobRecord } from './record';
import { RESTART_REASON } from './recovery';
import { JOBS_FOLDER } from './store';
import { makeLabelledSet, makeRepository, QUICK, testConfig, type LabelledSet } from './testing/fixtures';

/** Settings that wreck the tiny model in three steps: a worse candidate, deterministically. */
const DESTRUCTIVE = { steps: 3, batch_size: 8, lr: 1, val_share: 0.25 };

let root: string;
let data: LabelledSet;
const changes: [string, number][] = [];

async function open(overrides: Partial<FinetuneConfig> = {}, options: Partial<JobManagerOptions> = {}): Promise<JobManager> {
  const config = testConfig({ dataFolders: [data.dir], ...overrides });
  const { manager } = await JobManager.open({ models: root, config, onServingChanged: (model, v) => void changes.push([model, v]), ...options });
  return manager;
}

async function follow(manager: JobManager, id: string): Promise<{ events: JobEvent[]; end: JobRecord }> {
  const events: JobEvent[] = [];
  for await (const event of await manager.watch(id)) events.push(event);
  const last = events[events.length - 1];
  if (last.type !== 'end') throw new Error(`the stream ended with ${last.type}`);
  return { events, end: last.job };
}

const modelDir = (name = 'tiny') => path.join(root, name);

beforeAll(async () => {
  root = await makeRepository('tiny', 1);
  data = await makeLabelledSet(path.join(root, '..', `${path.basename(root)}-data`), 24, 32);
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(data.dir, { recursive: true, force: true });
});

describe('JobManager: jobs, gate, promotion, rollback', () => {
  let manager: JobManager;
  beforeAll(async () => (manager = await open()));
  afterAll(() => manager.close());

  it('fine-tunes, evaluates both versions, writes version 2 with lineage and promotes it', async () => {
    const created = await manager.createFromFolder('tiny', data.dir, { params: { ...QUICK, steps: 40 } });
    expect(created).toMatchObject({ model: 'tiny', parentVersion: 1, data: { source: 'folder', samples: 24 }, progress: { totalSteps: 40 } });
    const { events, end } = await follow(manager, created.id);

    const types = events.map((e) => e.type).filter((t, i, all) => t !== all[i - 1]);
    expect(types[0]).toBe('snapshot');
    expect(types.slice(-5)).toEqual(['evaluation', 'state', 'decision', 'state', 'end']);
    expect(types).toEqual(expect.arrayContaining(['ready', 'step', 'epoch']));
    const steps = events.flatMap((e) => (e.type === 'step' ? [e.step] : []));
    expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(steps[0]).toMatchObject({ totalSteps: 40, epoch: 1, losses: { classification: expect.any(Number), objectness: expect.any(Number), box: expect.any(Number) } });
    expect(steps[0].imagesPerSecond).toBeGreaterThan(0);
    const states = events.flatMap((e) => (e.type === 'state' ? [e.state] : []));
    expect(states).toEqual(expect.arrayContaining(['evaluating', 'promoting', 'succeeded']));

    expect(end).toMatchObject({ state: 'succeeded', version: 2, decision: { promoted: true, passed: true, version: 2, latest: 2 } });
    expect(end.evaluation!.heldOut).toMatchObject({ name: 'held-out', samples: 6 });
    expect(end.evaluation!.heldOut.candidate.detectionCorrect).toBeGreaterThanOrEqual(end.evaluation!.heldOut.serving.detectionCorrect);
    expect(end.epochs.length).toBeGreaterThan(0);
    expect(await manager.get(created.id)).toEqual(end);

    expect((await readServingPointer(modelDir()))!.latest).toBe(2);
    const manifest = await readManifest(path.join(modelDir(), '2'), { verify: true });
    expect(manifest.lineage).toMatchObject({
      parentVersion: 1,
      jobId: created.id,
      dataSha256: (await dataChecksum(data.jsonl, data.files)).sha256,
      from: 'tiny/1',
      gate: { metric: 'detectionCorrect', passed: true },
    });
    expect(manifest.metrics.finetune).toMatchObject({ heldOut: { samples: 6, candidate: end.evaluation!.heldOut.candidate, serving: end.evaluation!.heldOut.serving } });
    expect(changes).toContainEqual(['tiny', 2]);
    expect(readdirSync(modelDir()).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('writes a worse candidate as a version but does not promote it', async () => {
    const job = await manager.createFromFolder('tiny', data.dir, { params: DESTRUCTIVE });
    const { end } = await follow(manager, job.id);
    expect(end).toMatchObject({ state: 'succeeded', parentVersion: 2, version: 3, decision: { promoted: false, passed: false, version: 3, latest: 2 } });
    expect(end.decision!.reason).toMatch(/^worse, not promoted — detectionCorrect/);
    expect(end.evaluation!.heldOut.candidate.detectionCorrect).toBeLessThan(end.evaluation!.heldOut.serving.detectionCorrect);
    expect(await listVersions(modelDir())).toEqual([1, 2, 3]);
    expect((await readServingPointer(modelDir()))!.latest).toBe(2);
  });

  it('promotes a worse candidate when the job says force; rollback moves latest back', async () => {
    const job = await manager.createFromFolder('tiny', data.dir, { params: DESTRUCTIVE, force: true });
    const { end } = await follow(manager, job.id);
    expect(end.decision).toMatchObject({ promoted: true, passed: false, forced: true, version: 4, latest: 4 });

    expect(await manager.rollback('tiny', 2)).toEqual({ model: 'tiny', latest: 2, previous: 4 });
    expect(changes[changes.length - 1]).toEqual(['tiny', 2]);
    const listing = await manager.listVersions('tiny');
    expect(listing.latest).toBe(2);
    expect(listing.versions.map((v) => [v.version, v.latest])).toEqual([[1, false], [2, true], [3, false], [4, false]]);
    expect(listing.versions[2].lineage).toMatchObject({ parentVersion: 2, jobId: expect.stringMatching(/^ft-/) });
    expect(listing.history.map((h) => [h.version, h.reason])).toEqual([[1, 'pinned'], [2, 'promoted'], [4, 'promoted'], [2, 'rollback']]);

    await expect(manager.rollback('tiny', 9)).rejects.toMatchObject({ code: 'not_found', message: expect.stringMatching(/no version 9 \(versions: 1, 2, 3, 4\)/) });
    await expect(manager.rollback('nope', 1)).rejects.toMatchObject({ code: 'not_found' });
    await expect(manager.rollback('../etc', 1)).rejects.toMatchObject({ code: 'invalid_argument' });
  });

  it('undoes a rollback the server cannot load', async () => {
    const failing = await open({}, { onServingChanged: () => Promise.reject(new Error('warm-up failed')) });
    await expect(failing.rollback('tiny', 1)).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/warm-up failed; "latest" stays 2/) });
    expect((await readServingPointer(modelDir()))!.latest).toBe(2);
    await failing.close();
  });

  it('refuses bad data up front: no job, no folder, the model stays free', async () => {
    const bad = path.join(data.dir, 'bad');
    mkdirSync(bad, { recursive: true });
    writeFileSync(path.join(bad, 'annotations.jsonl'), `${JSON.stringify({ file: '../images/000.png', label: 'a', box: [0, 0, 8, 8] })}\n{"file": 3}\n`);
    await expect(manager.createFromFolder('tiny', 'bad', { params: QUICK })).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(/^bad:1: file "..\/images\/000.png" is outside the data folder/) });
    await expect(manager.createFromFolder('tiny', data.dir, { params: { epochs: 0 } })).rejects.toMatchObject({ code: 'invalid_argument' });
    expect(readdirSync(path.join(root, JOBS_FOLDER)).length).toBe((await manager.list()).length);
  });
});

describe('JobManager: uploads, one job per model, bounded queue, cancel', () => {
  let manager: JobManager;
  beforeAll(async () => {
    for (const name of ['second', 'third']) await exportModel({ spec: 'tiny', outDir: path.join(root, name, '1'), training: false, name });
    manager = await open({ maxQueuedJobs: 1, maxRunningJobs: 1 });
  });
  afterAll(() => manager.close());

  it('runs uploaded files, keeps them while the job lives and removes them when it ends', async () => {
    const reservation = await manager.reserve('second');
    for (const file of [...data.files, 'annotations.jsonl']) await reservation.uploads.writeBuffer(file, await fs.readFile(path.join(data.dir, file)));
    const job = await manager.submit(reservation, undefined, { params: QUICK });
    const uploads = manager.store.uploadsDir(job.id);
    expect(existsSync(path.join(uploads, 'images', '000.png'))).toBe(true);
    const { end } = await follow(manager, job.id);
    expect(end).toMatchObject({ state: 'succeeded', data: { source: 'upload', annotations: 'annotations.jsonl', sha256: (await dataChecksum(data.jsonl, data.files)).sha256 } });
    expect(existsSync(uploads)).toBe(false);
    expect(existsSync(path.join(manager.store.jobDir(job.id), 'job.json'))).toBe(true);
  });

  it('releases a refused upload: its folder goes and the model can take a job again', async () => {
    const reservation = await manager.reserve('second');
    await reservation.uploads.writeBuffer('notes.txt', Buffer.from('no annotations here'));
    await expect(manager.submit(reservation, undefined, { params: QUICK })).rejects.toThrow(/no annotation file "annotations.jsonl"/);
    expect(existsSync(manager.store.jobDir(reservation.id))).toBe(false);
    await (await manager.reserve('second')).release();
  });

  it('allows one job per model (the error carries the running job), bounds the queue, cancels queued and running jobs', async () => {
    const long = { ...QUICK, steps: 100_000 };
    const first = await manager.createFromFolder('tiny', data.dir, { params: long });
    const conflict = await manager.createFromFolder('tiny', data.dir, { params: QUICK }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(TridentError);
    expect((conflict as TridentError).details).toEqual({ job_id: expect.any(String) });
    expect(conflict).toMatchObject({ code: 'conflict', details: { job_id: first.id } });

    const queued = await manager.createFromFolder('second', data.dir, { params: QUICK });
    expect(queued.state).toBe('queued');
    await expect(manager.createFromFolder('third', data.dir, { params: QUICK })).rejects.toMatchObject({ code: 'unavailable', message: expect.stringMatching(/queue is full/) });

    expect(await manager.cancel(queued.id)).toMatchObject({ state: 'cancelled' });
    await expect(manager.cancel(queued.id)).rejects.toMatchObject({ code: 'conflict', message: expect.stringMatching(/already ended \(cancelled\)/) });

    const watch = await manager.watch(first.id);
    for await (const event of watch) if (event.type === 'step') break;
    await watch.return!();
    expect(await manager.cancel(first.id)).toMatchObject({ cancelRequested: true });
    const { end } = await follow(manager, first.id);
    expect(end).toMatchObject({ state: 'cancelled' });
    expect(end.version).toBeUndefined();
    expect(end.progress.step).toBeLessThan(100_000);
    expect(await listVersions(modelDir())).toEqual([1, 2, 3, 4]);
    expect(existsSync(stagingDir(modelDir(), first.id))).toBe(false);
    expect((await manager.list({ state: 'cancelled' })).map((j) => j.id).sort()).toEqual([first.id, queued.id].sort());
    await expect(manager.get('ft-zz-00000000')).rejects.toMatchObject({ code: 'not_found' });
    await expect(manager.get('../../etc')).rejects.toMatchObject({ code: 'not_found' });
  });

  it('ends a running job as failed when the server shuts down', async () => {
    const other = await open();
    const job = await other.createFromFolder('third', data.dir, { params: { ...QUICK, steps: 100_000 } });
    const watch = await other.watch(job.id);
    for await (const event of watch) if (event.type === 'step') break;
    await other.close();
    expect(await other.get(job.id)).toMatchObject({ state: 'failed', error: 'server shut down during the job' });
    await expect(other.createFromFolder('third', data.dir)).rejects.toMatchObject({ code: 'unavailable' });
  });
});

describe('JobManager: reference evaluation set', () => {
  it('judges a model with Fashion-MNIST labels on FashionLoc test canvases as well', async () => {
    const spec = parseSpec({ ...builtinSpec('tiny'), name: 'tiny10', heads: { classification: { labels: FASHION_LABELS }, detection: {}, box: {} } });
    await exportModel({ spec, outDir: path.join(root, 'fashion', '1'), training: false, name: 'fashion' });
    const fashionData = await makeLabelledSet(path.join(data.dir, 'fashion'), 12, 16, 2, FASHION_LABELS);
    const manager = await open({ reference: { count: 24 } });
    const job = await manager.createFromFolder('fashion', fashionData.dir, { params: QUICK });
    const { end } = await follow(manager, job.id);
    expect(end.state).toBe('succeeded');
    expect(end.evaluation!.reference).toMatchObject({ name: 'fashionloc-test', samples: 24 });
    expect(end.decision!.reason).toMatch(/fashionloc-test \(24 samples\)/);
    expect((await readManifest(path.join(root, 'fashion', '2'))).metrics.finetune).toMatchObject({ reference: { name: 'fashionloc-test', samples: 24 } });
    await manager.close();
  });
});

describe('JobManager: recovery', () => {
  it('ends interrupted jobs, completes finished promotions, removes staging and abandoned uploads, repairs pointers', async () => {
    const repo = await makeRepository('m', 2);
    const jobs = path.join(repo, JOBS_FOLDER);
    const base: JobRecord = {
      id: '',
      model: 'm',
      state: 'running',
      createdAt: new Date().toISOString(),
      parentVersion: 1,
      params: {} as JobRecord['params'],
      force: false,
      data: { source: 'upload', annotations: 'annotations.jsonl', samples: 2, withObject: 1, withoutObject: 1, sha256: '', bytes: 0 },
      progress: { step: 3, totalSteps: 10, epoch: 1, epochs: 1 },
      epochs: [],
      warnings: [],
    };
    const metrics = { detectionCorrect: 0.5 } as never;
    const evaluation = { metric: 'detectionCorrect' as const, tolerance: 0, heldOut: { name: 'held-out', samples: 1, candidate: metrics, serving: metrics } };
    const records: JobRecord[] = [
      { ...base, id: 'ft-a-00000001', state: 'running' },
      { ...base, id: 'ft-a-00000002', state: 'queued', cancelRequested: true },
      { ...base, id: 'ft-a-00000003', state: 'promoting', version: 2, evaluation },
      { ...base, id: 'ft-a-00000004', state: 'promoting', version: 7, evaluation },
    ];
    for (const r of records) {
      mkdirSync(path.join(jobs, r.id, 'uploads'), { recursive: true });
      writeFileSync(path.join(jobs, r.id, 'job.json'), JSON.stringify(r));
    }
    mkdirSync(path.join(jobs, 'ft-a-00000005', 'uploads'), { recursive: true });
    writeFileSync(path.join(jobs, 'ft-a-00000001', 'job.json.tmp-1-0badc0de'), '{');
    mkdirSync(stagingDir(path.join(repo, 'm'), 'ft-a-00000001'));
    await writeServingPointer(path.join(repo, 'm'), {
      latest: 5,
      history: [
        { version: 1, at: '', reason: 'pinned' },
        { version: 2, at: '', reason: 'promoted', jobId: 'ft-a-00000003' },
        { version: 5, at: '', reason: 'promoted', jobId: 'ft-x' },
      ],
    });

    const { manager, recovery } = await JobManager.open({ models: repo, config: testConfig() });
    expect(recovery).toMatchObject({
      interruptedJobs: ['ft-a-00000001', 'ft-a-00000002', 'ft-a-00000004'],
      completedJobs: ['ft-a-00000003'],
      abandonedUploads: ['ft-a-00000005'],
      removedStaging: ['m/.staging-ft-a-00000001'],
      repairedPointers: [{ model: 'm', from: 5, to: 2 }],
      problems: [],
    });
    expect(await manager.get('ft-a-00000001')).toMatchObject({ state: 'failed', error: RESTART_REASON, endedAt: expect.any(String) });
    expect(await manager.get('ft-a-00000002')).toMatchObject({ state: 'cancelled' });
    expect(await manager.get('ft-a-00000003')).toMatchObject({ state: 'succeeded', decision: { promoted: true, version: 2, latest: 2 } });
    expect(await manager.get('ft-a-00000004')).toMatchObject({ state: 'failed', error: RESTART_REASON });
    expect(readdirSync(jobs).sort()).toEqual(['ft-a-00000001', 'ft-a-00000002', 'ft-a-00000003', 'ft-a-00000004']);
    expect(readdirSync(path.join(jobs, 'ft-a-00000001'))).toEqual(['job.json']);
    expect((await readServingPointer(path.join(repo, 'm')))!.latest).toBe(2);
    await manager.close();
    rmSync(repo, { recursive: true, force: true });
  });
});
