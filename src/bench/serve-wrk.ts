/** REST load from wrk (a C load generator, far lighter than a Node client) with a Lua script that posts one prepared body. */
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { LoadShape } from './serve-child';
import type { Measurement } from './serve-measure';

const SCRIPT = `
wrk.method = os.getenv("TRIDENT_METHOD") or "POST"
if wrk.method == "POST" then
  local f = assert(io.open(os.getenv("TRIDENT_BODY"), "rb"))
  wrk.body = f:read("*all")
  f:close()
end
for name, value in string.gmatch(os.getenv("TRIDENT_HEADERS"), "([^:\\n]+):([^\\n]*)") do wrk.headers[name] = value end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"bad_status":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
`;

export function wrkAvailable(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return true;
  } catch (e) {
    // wrk --version prints its usage and exits 1; only a missing binary fails to spawn.
    return (e as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

export interface WrkTarget {
  url: string;
  /** Default POST (of bodyFile). */
  method?: 'GET' | 'POST';
  bodyFile: string;
  headers: Record<string, string>;
}

export interface WrkReport {
  requests: number;
  duration_us: number;
  bad_status: number;
  socket_errors: number;
  p50_us: number;
  p99_us: number;
}

/** One wrk run of `seconds` at `connections` against `target`, pinned to `cpus` when given. */
export function runWrk(target: WrkTarget, dir: string, connections: number, seconds: number, cpus: string | undefined): Promise<WrkReport> {
  const script = path.join(dir, 'post.lua');
  writeFileSync(script, SCRIPT);
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', script, target.url];
  const [command, ...rest] = cpus === undefined ? ['wrk', ...args] : ['taskset', '-c', cpus, 'wrk', ...args];
  const env = { ...process.env, TRIDENT_METHOD: target.method ?? 'POST', TRIDENT_BODY: target.bodyFile, TRIDENT_HEADERS: Object.entries(target.headers).map(([k, v]) => `${k}:${v}`).join('\n') };
  return new Promise((resolve, reject) => {
    const child = spawn(command, rest, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`wrk exited with ${code}: ${out.trim()}`));
      resolve(JSON.parse(line) as WrkReport);
    });
  });
}

/** A warm-up run, then the measured one; any non-200 answer or socket error fails the measurement. */
export async function wrkLoad(target: WrkTarget, load: LoadShape, dir: string, cpus: string | undefined, onMeasuring?: () => Promise<unknown>): Promise<Measurement> {
  if (load.warmUpSeconds > 0) await runWrk(target, dir, load.concurrency, Math.max(1, Math.round(load.warmUpSeconds)), cpus);
  await onMeasuring?.();
  const r = await runWrk(target, dir, load.concurrency, load.seconds, cpus);
  if (r.bad_status > 0 || r.socket_errors > 0) throw new Error(`${load.name}: ${r.bad_status} non-2xx answers and ${r.socket_errors} socket errors from ${target.url}`);
  return { name: load.name, concurrency: load.concurrency, throughput: r.requests / (r.duration_us / 1e6), p50Ms: r.p50_us / 1000, p99Ms: r.p99_us / 1000 };
}
