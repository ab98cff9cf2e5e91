/**
 * Hostile input against a real `trident serve` process on loopback: every class of request must
 * get a 4xx (or a 2xx), never a 5xx or a dropped connection, and the process must stay up.
 * `node dist/bench/fuzz.js` runs the same classes with more cases.
 */
import { FUZZ_CLASSES, describeCase, fuzzCases, runCases, type FuzzCase, type Target } from './testing/fuzz';
import { startServeProcess, type ServeProcess } from './testing/process';
import { makeRepository } from '../runtime/testing/repository';

let server: ServeProcess;
let target: Target;
let cases: Record<string, FuzzCase[]>;

beforeAll(async () => {
  const root = await makeRepository([{ name: 'tiny', versions: [1, 2] }]);
  server = await startServeProcess(root, ['--api-key', 'fuzz-key', '--finetune-api-key', 'fuzz-ft-key', '--finetune-reference-count', '0', '--max-body', '16']);
  target = { httpPort: server.httpPort, grpcAddress: `127.0.0.1:${server.grpcPort}`, model: 'tiny', inputShape: [-1, 3, 16, 16], apiKey: 'fuzz-key', finetuneKey: 'fuzz-ft-key' };
  cases = await fuzzCases(target, 20261130);
}, 60_000);

afterAll(() => server?.stop());

describe.each(FUZZ_CLASSES)('fuzz: %s', (fuzzClass) => {
  it('gets no 5xx and no dropped connection, and the server stays up', async () => {
    const outcomes = await runCases(target, cases[fuzzClass]);
    expect(outcomes.length).toBeGreaterThan(5);
    const failures = outcomes.filter((o) => o.failed).map((o) => `${o.status ?? 'no answer'} ← ${describeCase(o.fuzzCase)} :: ${o.detail.split('\r\n').pop()}`);
    expect(failures).toEqual([]);
    expect(server.exited).toBeUndefined();
    const live = await fetch(`http://127.0.0.1:${server.httpPort}/v2/health/live`);
    expect(live.status).toBe(200);
  }, 60_000);
});
