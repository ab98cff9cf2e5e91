import { mkdirSync, mkdtempSync, promises as fs, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { readManifest } from '../artifacts/manifest';
import { FASHIONLOC_EVAL_SEED } from '../cli/commands/eval';
import type { Metrics } from '../runtime/metrics';
import { finetuneConfig } from './config';
import { checkData, dataChecksum } from './data-check';
import { resolveDataReference } from './data-folders';
import { JobEventHub } from './events';
import { decide } from './gate';
import { parseHyperParams, trainingLength, FINETUNE_DEFAULTS } from './hyperparams';
import type { JobEvent } from './record';
import { REFERENCE_SEED } from './reference';
import { makeLabelledSet, makeRepository } from './testing/fixtures';
import { safeUploadPath, UploadFolder } from './uploads';

let tmp: string;
beforeAll(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'trident-ft-inputs-'))));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('upload file names', () => {
  it('keeps plain relative names, with sub-folders, as "/" paths', () => {
    expect(safeUploadPath('annotations.jsonl')).toBe('annotations.jsonl');
    expect(safeUploadPath('images/001.png')).toBe('images/001.png');
    expect(safeUploadPath('images\\a b (1).png')).toBe('images/a b (1).png');
    expect(safeUploadPath('./images//x.png')).toBe('images/x.png');
    expect(safeUploadPath('_bilder/Ärmel-1.jpg')).toBe('_bilder/Ärmel-1.jpg');
  });

  it.each([
    ['../escape.png', /leaves the upload folder/],
    ['images/../../x', /leaves the upload folder/],
    ['..\\..\\win.png', /leaves the upload folder/],
    ['/etc/passwd', /absolute path/],
    ['C:\\x.png', /absolute path|may only use/],
    ['.hidden', /may only use/],
    ['images/.git/config', /may only use/],
    ['a\0b.png', /may only use/],
    ['x\ny.png', /may only use/],
    ['', /is empty/],
    ['.', /names no file/],
    ['a/b/c/d/e/f/g/h/i/j.png', /nested deeper/],
    ['-rf.png', /may only use/],
  ])('refuses %j', (name, why) => {
    expect(() => safeUploadPath(name)).toThrow(why);
  });

  it('writes files inside the folder only, once each, within the size and count limits', async () => {
    const dir = path.join(tmp, 'uploads');
    mkdirSync(dir);
    const folder = new UploadFolder(dir, { ...finetuneConfig().limits, maxFileBytes: 10, maxUploadBytes: 25, maxFiles: 3 });
    expect(await folder.writeBuffer('images/a.png', Buffer.alloc(10))).toBe('images/a.png');
    await expect(folder.writeBuffer('images/a.png', Buffer.alloc(1))).rejects.toThrow(/holds "images\/a.png" twice/);
    await expect(folder.writeStream('big.png', Readable.from([Buffer.alloc(6), Buffer.alloc(6)]))).rejects.toMatchObject({ code: 'payload_too_large', message: expect.stringMatching(/"big.png" is larger than the limit of 10 bytes/) });
    await expect(folder.writeBuffer('c.png', Buffer.alloc(10))).rejects.toMatchObject({ code: 'payload_too_large', message: expect.stringMatching(/upload is larger than the limit of 25 bytes/) });
    await expect(folder.writeBuffer('d.png', Buffer.alloc(1))).rejects.toMatchObject({ code: 'payload_too_large', message: expect.stringMatching(/more than 3 files/) });
    expect((await fs.readdir(tmp)).sort()).toEqual(['uploads']);
  });
});

describe('API keys', () => {
});

describe('hyper-parameters', () => {
  const config = finetuneConfig({ maxEpochs: 50 });

  it('takes defaults, snake_case or camelCase keys, and strings from form fields', () => {
    expect(parseHyperParams(undefined, config)).toEqual(FINETUNE_DEFAULTS);
    expect(parseHyperParams({ batch_size: '16', taskWeights: '1,0.5,2', freeze_trunk: 'true', lr: 0.01, optimizer: 'sgd', steps: 0, task_weights: [] }, config)).toMatchObject({
      batchSize: 16,
      taskWeights: [1, 0.5, 2],
      freezeTrunk: true,
      lr: 0.01,
      optimizer: 'sgd',
      epochs: 3,
    });
  });

  it.each([
    [{ epochs: 51 }, /"epochs": .*50/],
    [{ lr: -1 }, /"lr"/],
    [{ optimizer: 'lion' }, /"optimizer"/],
    [{ val_share: 0 }, /"valShare"/],
    [{ task_weights: [1, 2] }, /"taskWeights"/],
    [{ learning_rate: 0.1 }, /unknown key\(s\) learningRate/],
    [[1], /must be an object/],
  ])('refuses %j', (params, why) => {
    expect(() => parseHyperParams(params, config)).toThrow(why);
  });

  it('plans steps into epochs of the training share', () => {
    const params = { ...FINETUNE_DEFAULTS, batchSize: 8, valShare: 0.25 };
    expect(trainingLength({ ...params, steps: 5 }, 24)).toEqual({ epochs: 3, maxSteps: 5, totalSteps: 5, stepsPerEpoch: 2 });
    expect(trainingLength({ ...params, epochs: 2 }, 24)).toEqual({ epochs: 2, maxSteps: 0, totalSteps: 4, stepsPerEpoch: 2 });
  });
});

describe('data checks', () => {
  let set: Awaited<ReturnType<typeof makeLabelledSet>>;
  let manifest: Awaited<ReturnType<typeof readManifest>>;
  const limits = finetuneConfig().limits;
  beforeAll(async () => {
    set = await makeLabelledSet(path.join(tmp, 'data'), 12, 16);
    const root = await makeRepository();
    manifest = await readManifest(path.join(root, 'tiny', '1'));
    rmSync(root, { recursive: true, force: true });
  });

  const variant = async (name: string, lines: string[], extra: Record<string, Buffer> = {}) => {
    const dir = path.join(tmp, name);
    mkdirSync(path.join(dir, 'images'), { recursive: true });
    for (const f of set.files) await fs.copyFile(path.join(set.dir, f), path.join(dir, f));
    for (const [f, bytes] of Object.entries(extra)) writeFileSync(path.join(dir, f), bytes);
    writeFileSync(path.join(dir, 'annotations.jsonl'), lines.join('\n'));
    return checkData({ jsonl: path.join(dir, 'annotations.jsonl'), displayName: 'annotations.jsonl', source: 'upload', valShare: 0.25 }, manifest, limits);
  };

  it('accepts good data and checksums exactly the annotation file and the images it names', async () => {
    const checked = await checkData({ jsonl: set.jsonl, displayName: 'annotations.jsonl', source: 'upload', valShare: 0.25 }, manifest, limits);
    expect(checked.info).toMatchObject({ samples: 12, withObject: 10, withoutObject: 2, source: 'upload', annotations: 'annotations.jsonl' });
    expect(checked.info.sha256).toBe((await dataChecksum(set.jsonl, set.files)).sha256);
    writeFileSync(path.join(set.dir, 'unrelated.txt'), 'not named by any line');
    expect((await dataChecksum(set.jsonl, set.files)).sha256).toBe(checked.info.sha256);
  });

  it.each([
    ['malformed', (l: string[]) => [l[0], '{"file": "images/001.png", "label": ', ...l.slice(2)], /^annotations\.jsonl:2: invalid JSON/],
    ['unknown-label', (l: string[]) => [l[0], l[1], l[2].replace(/"label":"\w"/, '"label":"zebra"')], /^annotations\.jsonl:3: unknown label "zebra" \(known: "a", "b", "c"\)/],
    ['outside', (l: string[]) => [l[0], JSON.stringify({ file: 'images/001.png', label: 'a', box: [0, 0, 17, 8] })], /^annotations\.jsonl:2: box \[0, 0, 17, 8\] is outside the 16×16 image/],
    ['undecodable', (l: string[]) => [...l.slice(0, 3), JSON.stringify({ file: 'broken.png', label: 'a', box: [0, 0, 4, 4] })], /^annotations\.jsonl:4: "broken.png": /],
    ['missing-image', (l: string[]) => [JSON.stringify({ file: 'images/none.png', box: null }), ...l], /^annotations\.jsonl:1: file "images\/none.png" does not exist/],
    ['escape', (l: string[]) => [l[0], JSON.stringify({ file: '../data/images/000.png', box: null })], /^annotations\.jsonl:2: file "..\/data\/images\/000.png" is outside the data folder/],
    ['empty', () => ['', '  '], /^annotations\.jsonl: no samples \(the annotation file is empty\)/],
    ['single', (l: string[]) => [l[0]], /1 sample\(s\); a job needs at least one to train on and one held out/],
  ])('refuses %s data up front, naming the file and line', async (name, edit, why) => {
    await expect(variant(name, edit(set.lines), { 'broken.png': Buffer.from('not a png at all') })).rejects.toMatchObject({ code: 'invalid_argument', message: expect.stringMatching(why) });
  });

  it('refuses more samples than the limit before decoding any', async () => {
    await expect(checkData({ jsonl: set.jsonl, displayName: 'a.jsonl', source: 'upload', valShare: 0.2 }, manifest, { ...limits, maxSamples: 5 })).rejects.toMatchObject({
      code: 'payload_too_large',
      message: 'a.jsonl: 12 samples; the limit is 5',
    });
  });

  it('refuses images over the pixel limit, naming the line', async () => {
    await expect(checkData({ jsonl: set.jsonl, displayName: 'a.jsonl', source: 'upload', valShare: 0.2 }, manifest, { ...limits, maxPixels: 100 })).rejects.toMatchObject({
      message: expect.stringMatching(/^a\.jsonl:1: "images\/000.png": .*pixels/),
    });
  });
});

describe('data folder references', () => {
  it('resolves folders and .jsonl files inside the allowed folders only, links included', async () => {
    const allowed = path.join(tmp, 'allowed');
    mkdirSync(path.join(allowed, 'set1'), { recursive: true });
    writeFileSync(path.join(allowed, 'set1', 'annotations.jsonl'), '');
    writeFileSync(path.join(tmp, 'secret.jsonl'), '');
    symlinkSync(path.join(tmp, 'secret.jsonl'), path.join(allowed, 'link.jsonl'));
    const real = await fs.realpath(allowed);
    expect(await resolveDataReference('set1', [allowed])).toBe(path.join(real, 'set1', 'annotations.jsonl'));
    expect(await resolveDataReference(path.join(allowed, 'set1', 'annotations.jsonl'), [allowed])).toBe(path.join(real, 'set1', 'annotations.jsonl'));
    await expect(resolveDataReference('link.jsonl', [allowed])).rejects.toMatchObject({ code: 'permission_denied' });
    await expect(resolveDataReference('../secret.jsonl', [allowed])).rejects.toMatchObject({ code: 'permission_denied' });
    await expect(resolveDataReference('/etc', [allowed])).rejects.toMatchObject({ code: 'permission_denied' });
    await expect(resolveDataReference('/no/such/thing', [allowed])).rejects.toMatchObject({ code: 'permission_denied' });
    await expect(resolveDataReference('set2', [allowed])).rejects.toMatchObject({ code: 'not_found' });
    await expect(resolveDataReference('set1', [])).rejects.toMatchObject({ code: 'permission_denied', message: expect.stringMatching(/allows no data folders/) });
  });
});

describe('promotion gate', () => {
  const metrics = (detectionCorrect: number) => ({ detectionCorrect, classAccuracy: 0.5 }) as Metrics;
  const evaluation = (candidate: number, serving: number, reference?: [number, number]) => ({
    metric: 'detectionCorrect' as const,
    tolerance: 0.01,
    heldOut: { name: 'held-out', samples: 6, candidate: metrics(candidate), serving: metrics(serving) },
    ...(reference ? { reference: { name: 'fashionloc-test', samples: 500, candidate: metrics(reference[0]), serving: metrics(reference[1]) } } : {}),
  });

  it('promotes a candidate not worse (within the tolerance) on every set', () => {
    expect(decide(evaluation(0.5, 0.505), false)).toMatchObject({ passed: true, promoted: true, forced: false });
    expect(decide(evaluation(0.6, 0.5, [0.7, 0.7]), false)).toMatchObject({ passed: true, promoted: true });
  });

  it('does not promote a candidate worse on any set, unless forced', () => {
    const worse = decide(evaluation(0.6, 0.5, [0.6, 0.7]), false);
    expect(worse).toMatchObject({ passed: false, promoted: false });
    expect(worse.reason).toMatch(/fashionloc-test \(500 samples\): 0\.6000 vs 0\.7000 \(worse\)/);
    expect(decide(evaluation(0.4, 0.5), true)).toMatchObject({ passed: false, promoted: true, forced: true });
  });

  it('judges Fashion-MNIST models on the same FashionLoc canvases as `trident eval`', () => {
    expect(REFERENCE_SEED).toBe(FASHIONLOC_EVAL_SEED);
  });
});

describe('job events', () => {
  it('fans out to every watcher, in order, and ends them after what they have buffered', async () => {
    const hub = new JobEventHub();
    const a = hub.subscribe('j');
    const b = hub.subscribe('j');
    hub.publish('j', { type: 'state', state: 'running' });
    hub.publish('j', { type: 'warning', warning: 'w' });
    hub.publish('other', { type: 'state', state: 'failed' });
    hub.close('j');
    const drain = async (it: AsyncIterableIterator<JobEvent>) => {
      const seen: string[] = [];
      for await (const e of it) seen.push(e.type);
      return seen;
    };
    expect(await drain(a)).toEqual(['state', 'warning']);
    expect(await drain(b)).toEqual(['state', 'warning']);
    expect(hub.watcherCount('j')).toBe(0);
  });

  it('stops delivering to a watcher that returned', async () => {
    const hub = new JobEventHub();
    const a = hub.subscribe('j');
    const pending = a.next();
    hub.publish('j', { type: 'state', state: 'running' });
    expect((await pending).value).toEqual({ type: 'state', state: 'running' });
    await a.return!();
    hub.publish('j', { type: 'state', state: 'failed' });
    expect(await a.next()).toEqual({ value: undefined, done: true });
    expect(hub.watcherCount('j')).toBe(0);
  });
});
