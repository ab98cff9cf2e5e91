/**
 * Memory soak: `trident serve` on the embedded model under wrk load against /predict and /infer at
 * once, for a long time, with the server's resident memory sampled throughout. After the warm-up,
 * RSS should stay flat: the script prints the samples and the drift from the first post-warm-up sample.
 *
 *   node dist/bench/soak.js [--minutes 10] [--warm-up 60] [--connections 32] [--sample 5]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { startServeProcess } from '../serve/testing/process';
import { table } from '../base/table';
import { parseNumber } from '../base/flags';
import { runWrk, wrkAvailable, type WrkReport } from './serve-wrk';

const MODELS = path.join(__dirname, '..', '..', 'models');

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

interface Sample {
  at: number;
  rss: number;
  /** The main thread's V8 heap and external memory, from the server's /metrics (workers' memory is only in RSS). */
  heap: number;
  external: number;
}

async function heapMiB(metricsUrl: string): Promise<{ heap: number; external: number }> {
  const text = await (await fetch(metricsUrl)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { heap: value('trident_nodejs_heap_size_total_bytes'), external: value('trident_nodejs_external_memory_bytes') };
}

/** Least-squares slope of RSS over time, in MiB per minute. */
function slopePerMinute(samples: Sample[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const mt = samples.reduce((a, s) => a + s.at, 0) / n;
  const mr = samples.reduce((a, s) => a + s.rss, 0) / n;
  const cov = samples.reduce((a, s) => a + (s.at - mt) * (s.rss - mr), 0);
  const varT = samples.reduce((a, s) => a + (s.at - mt) ** 2, 0);
  return (cov / varT) * 60;
}

async function bodies(dir: string): Promise<{ image: string; tensor: string; headerLength: number }> {
  const pixels = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 31 + ((i / 192) | 0) * 7) & 0xff;
  const image = path.join(dir, 'image.png');
  writeFileSync(image, await sharp(pixels, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer());
  const data = new Float32Array(3 * 64 * 64).map((_, i) => Math.sin(i * 0.01));
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'image', shape: [1, 3, 64, 64], datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }] }));
  const tensor = path.join(dir, 'infer.bin');
  writeFileSync(tensor, Buffer.concat([header, Buffer.from(data.buffer)]));
  return { image, tensor, headerLength: header.length };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { minutes: { type: 'string', default: '10' }, 'warm-up': { type: 'string', default: '60' }, connections: { type: 'string', default: '32' }, sample: { type: 'string', default: '5' } },
  });
  const seconds = Math.round(parseNumber(values.minutes, '--minutes', { min: 0 }) * 60);
  const warmUp = parseNumber(values['warm-up'], '--warm-up', { min: 0 });
  const connections = parseNumber(values.connections, '--connections', { integer: true, min: 1 });
  const sample = parseNumber(values.sample, '--sample', { min: 0 });
  if (sample <= 0) throw new Error(`--sample must be > 0, got ${values.sample}`);
  if (warmUp >= seconds) throw new Error(`--warm-up must be shorter than --minutes (warm-up ${warmUp} s, run ${seconds} s)`);
  if (!wrkAvailable()) throw new Error('wrk is not installed (apt-get install wrk)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trident-soak-'));
  const files = await bodies(dir);
  const server = await startServeProcess(MODELS, ['--no-finetune', '--log-level', 'info', '--threads', '0']);
  const pid = server.child.pid!;
  const base = `http://127.0.0.1:${server.httpPort}/v2/models/fashionloc`;
  const samples: Sample[] = [];
  const started = Date.now();
  const take = async () => samples.push({ at: (Date.now() - started) / 1000, rss: rssMiB(pid), ...(await heapMiB(`http://127.0.0.1:${server.httpPort}/metrics`)) });
  const sampler = setInterval(() => void take(), sample * 1000);
  await take();
  console.log(`soak: ${seconds} s of wrk at c=${connections} on /predict and c=${connections} on /infer; RSS sampled every ${values.sample} s; warm-up ${warmUp} s`);
  let reports: WrkReport[];
  try {
    reports = await Promise.all([
      runWrk({ url: `${base}/predict`, bodyFile: files.image, headers: { 'Content-Type': 'image/png' } }, dir, connections, seconds, undefined),
      runWrk({ url: `${base}/infer`, bodyFile: files.tensor, headers: { 'Content-Type': 'application/octet-stream', 'Inference-Header-Content-Length': String(files.headerLength) } }, dir, connections, seconds, undefined),
    ]);
  } finally {
    clearInterval(sampler);
    await take();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const afterWarmUp = samples.filter((s) => s.at >= warmUp);
  const reference = afterWarmUp[0]?.rss ?? samples[0].rss;
  const rows = samples
    .filter((_, i) => i % Math.max(1, Math.round(60 / sample)) === 0 || i === samples.length - 1)
    .map((s) => [s.at.toFixed(0), s.rss.toFixed(1), s.heap.toFixed(1), s.external.toFixed(1), s.at >= warmUp ? (((s.rss - reference) / reference) * 100).toFixed(2) : '(warm-up)']);
  console.log(table(['t (s)', 'RSS (MiB)', 'V8 heap (MiB)', 'external (MiB)', 'RSS vs first after warm-up (%)'], rows));
  const maxDrift = Math.max(...afterWarmUp.map((s) => Math.abs(s.rss - reference) / reference)) * 100;
  const last = afterWarmUp[afterWarmUp.length - 1]?.rss ?? reference;
  for (const [name, r] of [['predict', reports[0]], ['infer', reports[1]]] as const) {
    console.log(`${name}: ${r.requests} requests, ${(r.requests / (r.duration_us / 1e6)).toFixed(0)}/s, ${r.bad_status} non-2xx, ${r.socket_errors} socket errors, p50 ${(r.p50_us / 1000).toFixed(1)} ms, p99 ${(r.p99_us / 1000).toFixed(1)} ms`);
  }
  const half = afterWarmUp.filter((s) => s.at >= (warmUp + seconds) / 2);
  console.log(`RSS trend after warm-up: ${slopePerMinute(afterWarmUp).toFixed(3)} MiB/min over the whole, ${slopePerMinute(half).toFixed(3)} MiB/min over the second half`);
  console.log(`RSS after warm-up: first ${reference.toFixed(1)} MiB, last ${last.toFixed(1)} MiB (${(((last - reference) / reference) * 100).toFixed(2)} %), largest deviation ${maxDrift.toFixed(2)} % over ${afterWarmUp.length} samples`);
  console.log(`flat within 5 %: ${maxDrift <= 5 ? 'yes' : 'NO'}`);
}

main().catch((e: Error) => {
  console.error(e.message);
  process.exitCode = 1;
});
