/** What every load generator of the serving benchmark reports, and the closed loop the in-process ones use. */

export interface Measurement {
  name: string;
  concurrency: number;
  /** Samples per second. */
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the measured process (the server, or the raw ONNX Runtime process) per sample, all its threads. */
  cpuMsPerSample?: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function summarise(name: string, concurrency: number, latenciesMs: number[], seconds: number, samplesPerCall: number): Measurement {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return { name, concurrency, throughput: (sorted.length * samplesPerCall) / seconds, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}

/** Runs `once` from `concurrency` closed-loop callers for `seconds` after a warm-up of `warmUpSeconds`. */
export async function closedLoop(
  name: string,
  opts: { concurrency: number; seconds: number; warmUpSeconds: number; samplesPerCall: number; onMeasuring?: () => void },
  once: () => Promise<void>,
): Promise<Measurement> {
  const warmUpEnd = performance.now() + opts.warmUpSeconds * 1000;
  const end = warmUpEnd + opts.seconds * 1000;
  const measuring = setTimeout(() => opts.onMeasuring?.(), opts.warmUpSeconds * 1000);
  const latencies: number[] = [];
  const caller = async () => {
    while (performance.now() < end) {
      const start = performance.now();
      await once();
      const done = performance.now();
      if (start >= warmUpEnd && done <= end) latencies.push(done - start);
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, caller));
  clearTimeout(measuring);
  return summarise(name, opts.concurrency, latencies, opts.seconds, opts.samplesPerCall);
}

/** CPU time (user + system, every thread) of this process in milliseconds. */
export function processCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
