import * as grpc from '@grpc/grpc-js';
import { grpcClients, startTestServer, tinyTensor, unaryCall, type TestServer } from './testing/harness';

// A long queue delay makes every request that arrives within it join the same batch.
const QUEUE_DELAY_MS = 200;

let s: TestServer;
let clients: ReturnType<typeof grpcClients>;

beforeAll(async () => {
  s = await startTestServer({ maxQueueDelayMs: QUEUE_DELAY_MS, maxBatch: 16, maxQueueSize: 6 }, [{ name: 'tiny', versions: [1] }]);
  clients = grpcClients(s.grpcAddress);
});
afterAll(async () => {
  clients.close();
  await s.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Message = any;

const restInfer = (seed: number, extra: Message = {}, init: RequestInit = {}) =>
  fetch(`${s.url}/v2/models/tiny/infer`, {
    method: 'POST',
    body: JSON.stringify({ inputs: [{ name: 'image', shape: [1, 3, 16, 16], datatype: 'FP32', data: Array.from(tinyTensor(1, seed)) }], ...extra }),
    ...init,
  });

const grpcRequest = (seed: number) => ({
  model_name: 'tiny',
  inputs: [{ name: 'image', datatype: 'FP32', shape: [1, 3, 16, 16] }],
  raw_input_contents: [Buffer.from(tinyTensor(1, seed).buffer)],
});

function floats(bytes: Buffer): number[] {
  const copy = Buffer.from(bytes);
  return Array.from(new Float32Array(copy.buffer, copy.byteOffset, copy.length / 4));
}

async function metric(pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  return Number(text.match(pattern)?.[1] ?? 0);
}

describe('scheduling: batching, overload, deadlines, cancellation', () => {
  it('merges concurrent REST and gRPC requests into one batch and gives each caller its own rows', async () => {
    const seeds = [0, 1, 2, 3, 4, 5];
    const joined = new Float32Array(seeds.flatMap((seed) => Array.from(tinyTensor(1, seed))));
    const expected = (await (
      await fetch(`${s.url}/v2/models/tiny/infer`, {
        method: 'POST',
        body: JSON.stringify({ inputs: [{ name: 'image', shape: [6, 3, 16, 16], datatype: 'FP32', data: Array.from(joined) }], outputs: [{ name: 'class_probs' }] }),
      })
    ).json()) as Message;
    const rows = seeds.map((i) => expected.outputs[0].data.slice(i * 3, i * 3 + 3));
    const batchesBefore = await metric(/trident_batch_size_count\{model="tiny",version="1"\} (\d+)/);

    const results = await Promise.all(
      seeds.map(async (seed) => {
        if (seed % 2 === 0) return ((await (await restInfer(seed, { outputs: [{ name: 'class_probs' }] })).json()) as Message).outputs[0].data;
        const response = await unaryCall<Message>(clients.inference, 'ModelInfer', { ...grpcRequest(seed), outputs: [{ name: 'class_probs' }] });
        return floats(response.raw_output_contents[0]);
      }),
    );

    results.forEach((row, i) => rows[i].forEach((v: number, j: number) => expect(row[j]).toBeCloseTo(v, 5)));
    const batches = (await metric(/trident_batch_size_count\{model="tiny",version="1"\} (\d+)/)) - batchesBefore;
    expect(batches).toBeLessThan(seeds.length);
    expect(await metric(/trident_batch_size_bucket\{le="8",model="tiny",version="1"\} (\d+)/)).toBeGreaterThan(await metric(/trident_batch_size_bucket\{le="1",model="tiny",version="1"\} (\d+)/));
  });

  it('refuses work beyond the bounded queue with 503 and RESOURCE_EXHAUSTED', async () => {
    const rest = await Promise.all(Array.from({ length: 8 }, (_, i) => restInfer(i)));
    const statuses = rest.map((r) => r.status).sort();
    expect(statuses.filter((c) => c === 200)).toHaveLength(6);
    expect(statuses.filter((c) => c === 503)).toHaveLength(2);
    const refused = rest.find((r) => r.status === 503)!;
    expect(((await refused.json()) as Message).error).toMatch(/overloaded: 6 samples already queued \(limit 6\)/);

    const viaGrpc = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => unaryCall(clients.inference, 'ModelInfer', grpcRequest(i))));
    const codes = viaGrpc.map((r) => (r.status === 'fulfilled' ? grpc.status.OK : (r.reason as grpc.ServiceError).code));
    expect(codes.filter((c) => c === grpc.status.RESOURCE_EXHAUSTED)).toHaveLength(2);
  });

  it('drops a request whose OIP timeout or gRPC deadline passes while queued', async () => {
    const late = await restInfer(1, { parameters: { timeout: 50_000 } });
    expect(late.status).toBe(504);
    expect(((await late.json()) as Message).error).toMatch(/deadline passed while it was queued/);
    await expect(unaryCall(clients.inference, 'ModelInfer', grpcRequest(1), { deadline: Date.now() + 50 })).rejects.toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    // The client gives up at its deadline; the server records the drop when it sees the cancellation.
    const dropped = () => metric(/trident_requests_total\{model="tiny",protocol="grpc",endpoint="infer",status="deadline_exceeded"\} (\d+)/);
    for (let waited = 0; (await dropped()) === 0 && waited < 2000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(await dropped()).toBe(1);
  });

  it('drops queued work when the client disconnects or cancels', async () => {
    const cancelledBefore = await metric(/trident_requests_total\{model="tiny",protocol="rest",endpoint="infer",status="cancelled"\} (\d+)/);
    const grpcCancelledBefore = await metric(/trident_requests_total\{model="tiny",protocol="grpc",endpoint="infer",status="cancelled"\} (\d+)/);
    const batchesBefore = await metric(/trident_batch_size_count\{model="tiny",version="1"\} (\d+)/);
    const controller = new AbortController();
    const aborted = restInfer(2, {}, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(aborted).rejects.toThrow();

    const call = (clients.inference.ModelInfer as (...a: unknown[]) => grpc.ClientUnaryCall).call(clients.inference, grpcRequest(3), () => {});
    await new Promise((r) => setTimeout(r, 50));
    call.cancel();

    await new Promise((r) => setTimeout(r, QUEUE_DELAY_MS + 100));
    expect(await metric(/trident_requests_total\{model="tiny",protocol="rest",endpoint="infer",status="cancelled"\} (\d+)/)).toBe(cancelledBefore + 1);
    expect(await metric(/trident_requests_total\{model="tiny",protocol="grpc",endpoint="infer",status="cancelled"\} (\d+)/)).toBe(grpcCancelledBefore + 1);
    expect(await metric(/trident_batch_size_count\{model="tiny",version="1"\} (\d+)/)).toBe(batchesBefore);
  });
});
