import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { exportModel } from '../../artifacts/export';
import { startFinetuneStack, type FinetuneStack } from '../../serve/testing/finetune';
import { API_KEY_ENV, register } from './finetune';

let s: FinetuneStack;
beforeAll(async () => {
  s = await startFinetuneStack();
  // A model whose weights no longer match its manifest: accepted, but its job fails when it starts.
  const broken = path.join(s.root, 'broken', '1');
  await exportModel({ spec: 'tiny', outDir: broken, training: false, name: 'broken' });
  const infer = readFileSync(path.join(broken, 'infer.onnx'));
  infer[infer.length - 1] ^= 0xff;
  writeFileSync(path.join(broken, 'infer.onnx'), infer);
});
afterAll(() => s.close());

interface Run {
  stdout: string;
  stderr: string;
  exitCode: number | undefined;
  error?: Error;
}

async function trident(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const program = new Command('trident').exitOverride();
  register(program);
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  const saved = { ...process.env };
  Object.assign(process.env, env);
  process.exitCode = undefined;
  try {
    await program.parseAsync(['node', 'trident', 'finetune', '--server', s.url, ...args]);
    return { stdout, stderr, exitCode: process.exitCode as number | undefined };
  } catch (error) {
    return { stdout, stderr, exitCode: process.exitCode as number | undefined, error: error as Error };
  } finally {
    process.env = saved;
    process.exitCode = undefined;
    out.mockRestore();
    err.mockRestore();
  }
}

const QUICK = ['--steps', '10', '--batch', '8', '--lr', '0.01', '--val-share', '0.25'];

describe('trident finetune', () => {
  it('uploads the folder, follows the job to the end and prints the decision and metrics', async () => {
    const run = await trident(['--model', 'tiny', '--data', s.data.dir, ...QUICK], { [API_KEY_ENV]: 'ft-key' });
    expect(run.error).toBeUndefined();
    expect(run.exitCode).toBeUndefined();
    expect(run.stderr).toMatch(/uploading 25 files/);
    expect(run.stdout).toMatch(/^job ft-\S+: fine-tuning tiny version 1 on 24 samples/);
    expect(run.stdout).toMatch(/training on cpu: 18 training \/ 6 held-out samples, 10 steps/);
    expect(run.stdout).toMatch(/version 2 of tiny is now latest/);
    expect(run.stdout).toMatch(/decision: not worse — detectionCorrect/);
    expect(run.stdout).toMatch(/held-out \(6 samples\)\nmetric\s+serving v1\s+new v2/);
    expect(run.stdout).toMatch(/detection correct \*/);
  });

  it('prints JSON lines with --json', async () => {
    const run = await trident(['--model', 'tiny', '--data', path.join(s.data.dir, 'annotations.jsonl'), ...QUICK, '--api-key', 'ft-key', '--json']);
    const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; job?: { state: string } });
    expect(events[0].event).toBe('snapshot');
    expect(events.filter((e) => e.event === 'step')).toHaveLength(10);
    expect(events[events.length - 1]).toMatchObject({ event: 'end', job: { state: 'succeeded' } });
  });

  it('reports a refusal with the server\'s message (file and line), and a missing key', async () => {
    const bad = path.join(path.dirname(s.data.dir), 'bad');
    cpSync(s.data.dir, bad, { recursive: true });
    writeFileSync(path.join(bad, 'annotations.jsonl'), [s.data.lines[0], s.data.lines[1].replace(/"label":"\w"/, '"label":"zebra"')].join('\n'));
    const refused = await trident(['--model', 'tiny', '--data', bad, '--api-key', 'ft-key']);
    expect(refused.error?.message).toMatch(/^the server refused the job \(400\): annotations\.jsonl:2: unknown label "zebra"/);
    const noKey = await trident(['--model', 'tiny', '--data', s.data.dir]);
    expect(noKey.error?.message).toMatch(/\(401\): fine-tune job creation needs a fine-tune API key/);
  });

  it('exits non-zero when the job fails', async () => {
    const run = await trident(['--model', 'broken', '--data', s.data.dir, ...QUICK, '--api-key', 'ft-key']);
    expect(run.error).toBeUndefined();
    expect(run.exitCode).toBe(1);
    expect(run.stdout).toMatch(/job ft-\S+ failed: broken\/1\/infer\.onnx: checksum mismatch/);
  });
});
