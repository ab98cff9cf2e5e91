/**
 * `npm run bench:web`: the web app measured side by side on this machine.
 *
 * 1. Time to interactive of the page on loopback (navigation to the app's ready mark), median of
 *    several fresh pages.
 * 2. The `seed` train step at batch 32: onnxruntime-web (wasm, 2 threads, cross-origin-isolated
 *    page) in headless Chromium against onnxruntime-node (2 intra-op threads), the same graph and
 *    the same batch, in alternating rounds so that both meet the same machine.
 *
 * Options: --batch N (32), --threads N (2), --rounds N (3), --steps N per round (5), --model seed|fashionloc|tiny.
 */
import { benchBatch } from '../testing/bench-batch';
import type { TaskVector } from '../model/tasks';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { exportModel } from '../artifacts/export';
import type { ServedManifest } from '../artifacts/manifest-schema';
import { decodeCheckpoint } from '../artifacts/checkpoint';
import { serveConfig } from '../serve/config';
import { startServer } from '../serve/server';
import { initialState, planTrainStep, StepDriver } from '../runtime/step-driver';
import { findChromium, launchChromium, CHROMIUM_INSTALL } from '../testing/browser';
import { parseNumber } from '../base/flags';
import { median } from './train';

function option(name: string, fallback: number | string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : String(fallback);
}

/** A positive whole-number option. */
const count = (name: string, fallback: number) => parseNumber(option(name, fallback), `--${name}`, { integer: true, min: 1 });

async function main(): Promise<void> {
  const batch = count('batch', 32);
  const threads = count('threads', 2);
  const rounds = count('rounds', 3);
  const steps = count('steps', 5);
  const model = option('model', 'seed');
  const executable = findChromium();
  if (!executable) throw new Error(`no Chromium found; install it with: ${CHROMIUM_INSTALL}`);

  const root = mkdtempSync(path.join(os.tmpdir(), 'trident-bench-web-'));
  await exportModel({ spec: model, outDir: path.join(root, model, '1'), training: false, seed: 1, name: model });
  const [server, browser] = await Promise.all([
    startServer(serveConfig({ models: root, host: '127.0.0.1', httpPort: 0, grpcPort: undefined, threads: 1 }), pino({ level: 'silent' })),
    launchChromium(executable),
  ]);
  const url = `http://127.0.0.1:${server.httpPort}`;
  try {
    const context = await browser.newContext();
    // 1. Time to interactive: navigation start to the app's ready mark, fresh page each time.
    const tti: number[] = [];
    for (let i = 0; i < 5; i++) {
      const page = await context.newPage();
      await page.goto(`${url}/?threads=${threads}`);
      await page.waitForSelector('body[data-ready="true"]');
      tti.push(await page.evaluate(() => performance.now()));
      await page.close();
    }

    // 2. The train step, browser and Node in alternating rounds.
    const page = await context.newPage();
    await page.goto(`${url}/?threads=${threads}#device`);
    await page.waitForSelector('body[data-ready="true"]');
    await page.addScriptTag({ url: '/app/bench.js', type: 'module' });
    await page.waitForFunction(() => 'tridentBench' in globalThis);
    const runBrowser = (n: number) =>
      page.evaluate(
        ([m, b, s]) => (globalThis as unknown as { tridentBench: (m: string, b: number, s: number) => Promise<{ stepMs: number[]; sessionMs: number; threads: number }> }).tridentBench(m, b, s),
        [model, batch, n] as [string, number, number],
      );
    const manifest = (await (await fetch(`${url}/v2/models/${model}/versions/latest/files/manifest.json`)).json()) as ServedManifest;
    const stepBytes = new Uint8Array(await (await fetch(`${url}/v2/models/${model}/versions/latest/files/train_step.onnx`)).arrayBuffer());
    const params = decodeCheckpoint(new Uint8Array(await (await fetch(`${url}/v2/models/${model}/versions/latest/files/checkpoint.safetensors`)).arrayBuffer())).params;
    const graph = manifest.graphs.train_step;
    const nodeBatch = benchBatch(batch, manifest.spec.input, manifest.labels.length);
    const sessionStart = performance.now();
    const node = await StepDriver.create(ort, stepBytes, graph, initialState(planTrainStep(graph), params), { intraOpNumThreads: threads, interOpNumThreads: 1 });
    const nodeSessionMs = performance.now() - sessionStart;
    const hyper = { values: { lr: 1e-4, weight_decay: 0, clip_norm: 0 }, taskWeights: [1, 1, 1] as TaskVector };
    await node.run(nodeBatch, hyper); // warm-up
    const warm = await runBrowser(1);
    const browserMs: number[] = [];
    const nodeMs: number[] = [];
    let browserThreads = warm.threads;
    for (let r = 0; r < rounds; r++) {
      const result = await runBrowser(steps + 1);
      browserThreads = result.threads;
      browserMs.push(...result.stepMs.slice(1)); // each round's first step pays for its fresh session
      for (let i = 0; i < steps; i++) {
        const t = performance.now();
        await node.run(nodeBatch, hyper);
        nodeMs.push(performance.now() - t);
      }
    }
    await node.release();

    const b = median(browserMs);
    const n = median(nodeMs);
    const lines = [
      `web app benchmark on ${os.cpus().length} core(s), ${os.cpus()[0]?.model ?? 'unknown CPU'} (figures are medians measured side by side in this run; this machine is shared and noisy)`,
      '',
      `time to interactive on loopback (navigation → app ready), 5 fresh pages: median ${median(tti).toFixed(0)} ms (min ${Math.min(...tti).toFixed(0)}, max ${Math.max(...tti).toFixed(0)}); target ≤ 2000 ms`,
      '',
      `${model} train step, batch ${batch}, ${rounds} rounds × ${steps} steps each:`,
      `  onnxruntime-node, ${threads} threads:                  ${n.toFixed(1)} ms/step (session ${nodeSessionMs.toFixed(0)} ms)`,
      `  onnxruntime-web in Chromium, wasm, ${browserThreads} thread(s):  ${b.toFixed(1)} ms/step (session ${warm.sessionMs.toFixed(0)} ms)`,
      `  ratio browser / node: ${(b / n).toFixed(2)}× (target ≤ 2.5×)`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await browser.close();
    await server.drain(1000);
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e: Error) => {
  process.stderr.write(`bench:web failed: ${e.message}\n`);
  process.exit(1);
});
