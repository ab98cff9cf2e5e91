/**
 * The web app in real headless Chromium against a real server on loopback: predict, browser
 * inference against the server's, browser training against onnxruntime-node's steps, resume
 * after a reload, upload as a new version, server fine-tuning. One browser for the whole file.
 * With TRIDENT_SCREENSHOTS=DIR it saves a screenshot of each part there (docs/screenshots).
 */
import { mkdirSync, mkdtempSync, promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { decodeCheckpoint } from '../../artifacts/checkpoint';
import type { ServedManifest } from '../../artifacts/manifest-schema';
import { loadAnnotatedDataset } from '../../data/annotations';
import { collate, splitSamples } from '../../data/batch';
import { exportModel } from '../../artifacts/export';
import { makeLabelledSet, testConfig, type LabelledSet } from '../../finetune/testing/fixtures';
import { iou } from '../../runtime/metrics';
import { batchIndices, initialState, planTrainStep, StepDriver } from '../../runtime/step-driver';
import { describeWithChromium, launchChromium } from '../../testing/browser';
import { serveConfig } from '../config';
import { startServer, type RunningServer } from '../server';

// Page-side globals used inside page.evaluate / waitForFunction callbacks.
declare const document: { querySelectorAll(selector: string): { length: number }; querySelector(selector: string): unknown };
declare const crossOriginIsolated: boolean;

const REPO = path.join(__dirname, '..', '..', '..');
const FIXTURES = path.join(REPO, 'web', 'fixtures');
const SHOTS = process.env.TRIDENT_SCREENSHOTS;
const KEY = 'ft-key';
const TRAIN = { stepsFirst: 3, steps: 6, batch: 8, lr: 0.01, share: 0.25, seed: 0 };

describeWithChromium('web app in Chromium', (executable) => {
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let server: RunningServer;
  let url: string;
  let root: string;
  let data: LabelledSet;
  const requests: string[] = [];
  const pageErrors: string[] = [];

  const shot = async (name: string) => {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };
  const open = async (part: string) => {
    await page.click(`#tab-${part}`);
    await page.waitForSelector(`#${part}:not([hidden])`);
  };
  const choose = async (part: string, model: string) => {
    await page.waitForSelector(`#${part}-model option[value="${model}"]`, { state: 'attached' });
    await page.selectOption(`#${part}-model`, model);
  };

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'trident-web-'));
    await exportModel({ spec: 'tiny', outDir: path.join(root, 'tiny', '1'), training: false, seed: 1, name: 'tiny' });
    await fs.cp(path.join(REPO, 'models', 'fashionloc', '3'), path.join(root, 'fashionloc', '3'), { recursive: true });
    data = await makeLabelledSet(path.join(root, '..', path.basename(root) + '-data'), 24, 16);
    [server, browser] = await Promise.all([
      startServer(serveConfig({ models: root, host: '127.0.0.1', httpPort: 0, grpcPort: undefined, threads: 1, maxBatch: 8, finetune: testConfig() }), pino({ level: 'silent' })),
      launchChromium(executable),
    ]);
    url = `http://127.0.0.1:${server.httpPort}`;
    context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
    page = await context.newPage();
    page.on('request', (r) => requests.push(r.url()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.drain(1000);
    rmSync(root, { recursive: true, force: true });
    rmSync(data.dir, { recursive: true, force: true });
  });

  it('serves an interactive, cross-origin-isolated page that loads nothing from elsewhere', async () => {
    const started = Date.now();
    await page.goto(`${url}/`);
    await page.waitForSelector('body[data-ready="true"]');
    const interactiveMs = Date.now() - started;
    expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
    expect(interactiveMs).toBeLessThan(10_000); // the 2 s target is measured by `npm run bench:web`
    await page.waitForSelector('#predict-model option[value="fashionloc"]', { state: 'attached' });
  });

  it('predicts the right class and box for known FashionLoc images', async () => {
    await choose('predict', 'fashionloc');
    const truth = (await fs.readFile(path.join(FIXTURES, 'annotations.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { file: string; label: string; box: number[] });
    await page.setInputFiles('#predict-files', truth.map((t) => path.join(FIXTURES, t.file)));
    await page.waitForFunction((n) => document.querySelectorAll('#predict-results .card').length === n, truth.length);
    const shown = await page.$$eval('#predict-results .card', (cards) => cards.map((c) => JSON.parse(c.getAttribute('data-prediction')!)));
    // Cards are prepended: the last file comes first.
    shown.reverse().forEach((p, i) => {
      expect(p.class.label).toBe(truth[i].label);
      expect(p.object.present).toBe(true);
      expect(iou([p.box.x1, p.box.y1, p.box.x2, p.box.y2], 0, truth[i].box, 0)).toBeGreaterThan(0.5);
    });
    await shot('predict');
  });

  it('runs the model in the browser with the same answer as the server (within 1e-4)', async () => {
    await open('device');
    await choose('device', 'fashionloc');
    await page.setInputFiles('#device-infer-files', [path.join(FIXTURES, 'fashionloc-test-000004.png'), path.join(FIXTURES, 'fashionloc-test-000005.png')]);
    await page.waitForFunction(() => document.querySelectorAll('#device-infer-results .card').length === 2, undefined, { timeout: 30_000 });
    const differences = await page.$$eval('#device-infer-results .card', (cards) => cards.map((c) => Number(c.getAttribute('data-max-difference'))));
    for (const d of differences) expect(d).toBeLessThan(1e-4);
  }, 40_000);

  it('fine-tunes in the browser: the loss falls, a reload resumes, and the steps match onnxruntime-node', async () => {
    await choose('device', 'tiny');
    await page.fill('#device-steps', String(TRAIN.stepsFirst));
    await page.fill('#device-batch', String(TRAIN.batch));
    await page.fill('#device-lr', String(TRAIN.lr));
    await page.fill('#device-share', String(TRAIN.share));
    await page.fill('#device-seed', String(TRAIN.seed));
    await page.setInputFiles('#device-train-files', [data.jsonl, ...data.files.map((f) => path.join(data.dir, f))]);
    await page.waitForSelector('#device-train:not([disabled])');
    await page.click('#device-train');
    await page.waitForSelector(`#device-progress[data-step="${TRAIN.stepsFirst}"][data-state="done"]`, { timeout: 30_000 });

    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    await page.click('#device-resume', { timeout: 15_000 });
    await page.waitForSelector(`#device-progress[data-step="${TRAIN.stepsFirst}"]`);
    await page.fill('#device-steps', String(TRAIN.steps));
    await page.click('#device-train');
    await page.waitForSelector(`#device-progress[data-step="${TRAIN.steps}"][data-state="done"]`, { timeout: 30_000 });
    const losses = JSON.parse((await page.getAttribute('#device-progress', 'data-losses'))!) as number[];
    expect(losses).toHaveLength(TRAIN.steps);
    expect(losses[TRAIN.steps - 1]).toBeLessThan(losses[0]);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#device-download')]);
    const browserCkpt = decodeCheckpoint(await fs.readFile((await download.path())!));
    expect(browserCkpt.optimizer?.step).toBe(TRAIN.steps);

    // The same steps on onnxruntime-node: the graph the page ran, the same samples, order and hyper-parameters.
    const manifest = (await (await fetch(`${url}/v2/models/tiny/versions/1/files/manifest.json`)).json()) as ServedManifest;
    const stepBytes = new Uint8Array(await (await fetch(`${url}/v2/models/tiny/versions/1/files/train_step.onnx`)).arrayBuffer());
    const start = decodeCheckpoint(await fs.readFile(path.join(root, 'tiny', '1', 'checkpoint.safetensors')));
    const { samples } = await loadAnnotatedDataset(data.jsonl, manifest.labels, manifest.spec.input, { onWarning: () => {} });
    const { train } = splitSamples(samples, TRAIN.share, TRAIN.seed);
    const graph = manifest.graphs.train_step;
    const driver = await StepDriver.create(ort, stepBytes, graph, initialState(planTrainStep(graph), start.params), { intraOpNumThreads: 1 });
    const nodeLosses: number[] = [];
    for (let s = 0; s < TRAIN.steps; s++) {
      const batch = collate(Array.from(batchIndices(train.length, TRAIN.batch, TRAIN.seed, s), (i) => train[i]), manifest.spec.input);
      nodeLosses.push((await driver.run(batch, { values: { lr: TRAIN.lr, weight_decay: 0, clip_norm: 0 }, taskWeights: [1, 1, 1] })).loss);
    }
    await driver.release();
    losses.forEach((l, i) => expect(Math.abs(l - nodeLosses[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(nodeLosses[i]))));
    let diff = 0;
    let moved = 0;
    for (const [name, value] of browserCkpt.params) {
      const node = driver.state.get(name)!;
      const before = start.params.get(name)!;
      for (let i = 0; i < value.length; i++) {
        diff += (value[i] - node[i]) ** 2;
        moved += (node[i] - before[i]) ** 2;
      }
    }
    process.stdout.write(`browser vs node after ${TRAIN.steps} steps: |Δ weights| / |update| = ${(Math.sqrt(diff) / Math.sqrt(moved)).toExponential(2)}\n`);
    expect(Math.sqrt(diff)).toBeLessThan(1e-3 * Math.sqrt(moved));
  }, 90_000);

  it('uploads the browser-trained weights with a key, and they become a version through the gate', async () => {
    await page.fill('#device-key', KEY);
    await page.dispatchEvent('#device-key', 'change');
    await page.click('#device-evaluate');
    await page.waitForSelector('#device-evaluation table');
    await page.click('#device-upload');
    await page.waitForSelector('#device-verdict .verdict', { timeout: 60_000 });
    const decision = JSON.parse((await page.getAttribute('#device-verdict .verdict', 'data-decision'))!) as { version: number };
    expect(decision.version).toBe(2);
    const versions = (await (await fetch(`${url}/v2/models/tiny/versions`)).json()) as { versions: { version: number; lineage?: Record<string, unknown> }[] };
    const created = versions.versions.find((v) => v.version === 2);
    expect(created?.lineage).toMatchObject({ source: 'weights upload', parentVersion: 1, heldOutMeasuredBy: 'client' });
    await shot('device');
  }, 90_000);

  it('starts a fine-tune job on the server and shows its live losses and the verdict', async () => {
    await open('finetune');
    await choose('finetune', 'tiny');
    await page.fill('#finetune-key', KEY);
    await page.dispatchEvent('#finetune-key', 'change');
    await page.fill('#finetune-epochs', '1');
    await page.fill('#finetune-steps', '4');
    await page.fill('#finetune-batch', '8');
    await page.setInputFiles('#finetune-files', [data.jsonl, ...data.files.map((f) => path.join(data.dir, f))]);
    await page.click('#finetune-start');
    await page.waitForSelector('#finetune-verdict .verdict', { timeout: 60_000 });
    expect(Number(await page.getAttribute('#finetune-progress', 'data-step'))).toBeGreaterThan(0);
    await shot('finetune');
  }, 90_000);

  it('lists the versions with their metrics and moves the serving pointer with the key', async () => {
    await open('models');
    await page.waitForSelector('#models-list table[data-model="tiny"] tr[data-version="2"]');
    const target = await page.$eval('#models-list table[data-model="tiny"]', (t) => [...t.querySelectorAll('tr[data-version]')].find((r) => r.querySelector('button'))!.getAttribute('data-version'));
    await page.click(`#models-list table[data-model="tiny"] tr[data-version="${target}"] button`);
    await page.waitForSelector(`#models-list table[data-model="tiny"] tr[data-version="${target}"] strong`);
    const versions = (await (await fetch(`${url}/v2/models/tiny/versions`)).json()) as { latest: number };
    expect(versions.latest).toBe(Number(target));
    await shot('models');
    expect(requests.filter((r) => !r.startsWith(url) && !r.startsWith('blob:') && !r.startsWith('data:'))).toEqual([]);
    // No script error and no content-security-policy violation in the whole session.
    expect(pageErrors).toEqual([]);
  }, 30_000);
});
