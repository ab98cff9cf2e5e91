/**
 * "Nothing lost": a real process running a job is killed with SIGKILL at several moments; recovery
 * must leave every visible version complete, "latest" on the last promoted version, and the job
 * ended with the reason.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { readManifest } from '../artifacts/manifest';
import { listVersions, servingVersion } from '../artifacts/repository';
import { JobManager } from './manager';
import type { JobRecord } from './record';
import { RESTART_REASON } from './recovery';
import { JOBS_FOLDER, JobStore } from './store';
import { makeLabelledSet, makeRepository, QUICK, testConfig, type LabelledSet } from './testing/fixtures';

let data: LabelledSet;
const roots: string[] = [];

beforeAll(async () => {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'trident-crash-'));
  roots.push(scratch);
  data = await makeLabelledSet(path.join(scratch, 'data'), 24, 16);
});
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

interface Killed {
  root: string;
  jobId: string;
  /** The job's record as the killed process left it. */
  before: JobRecord;
  uploadsBefore: boolean;
}

/** Runs a job in a child process and kills it (or lets it kill itself) with SIGKILL at `moment`. */
async function killAt(moment: 'step' | 'epoch' | 'staged' | 'committed' | 'promoted'): Promise<Killed> {
  const root = await makeRepository('tiny', 1);
  roots.push(root);
  const child = spawn(process.execPath, [path.join(__dirname, 'testing', 'crash-child.js'), root, data.dir, moment], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let jobId = '';
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (line) => {
    if (line.startsWith('JOB ')) jobId = line.slice(4);
    if (line === 'STEP 3' && moment === 'step') child.kill('SIGKILL');
  });
  const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, s) => resolve(s)));
  if (signal !== 'SIGKILL') throw new Error(`the child was not killed (signal ${signal}): ${stderr}`);
  const jobDir = path.join(root, JOBS_FOLDER, jobId);
  const before = await new JobStore(root).load(jobId);
  return { root, jobId, before, uploadsBefore: existsSync(path.join(jobDir, 'uploads', 'annotations.jsonl')) };
}

async function recoverAndCheck(killed: Killed, expected: { versions: number[]; latest: number }): Promise<JobRecord> {
  const { manager } = await JobManager.open({ models: killed.root, config: testConfig() });
  const modelDir = path.join(killed.root, 'tiny');
  expect(readdirSync(modelDir).filter((f) => f.startsWith('.'))).toEqual([]);
  expect(await listVersions(modelDir)).toEqual(expected.versions);
  expect(await servingVersion(modelDir)).toBe(expected.latest);
  for (const v of expected.versions) await expect(readManifest(path.join(modelDir, String(v)), { verify: true })).resolves.toBeDefined();
  const job = await manager.get(killed.jobId);
  expect(existsSync(path.join(killed.root, JOBS_FOLDER, killed.jobId, 'uploads'))).toBe(false);
  await manager.close();
  return job;
}

describe('kill -9 during a job, then recovery', () => {
  it('mid-step: the job is failed, no version appears, the served version is untouched; uploads were kept until then', async () => {
    const killed = await killAt('step');
    expect(killed.before.state).toBe('running');
    expect(killed.uploadsBefore).toBe(true);
    expect(existsSync(path.join(killed.root, 'tiny', `.staging-${killed.jobId}`))).toBe(true);
    const job = await recoverAndCheck(killed, { versions: [1], latest: 1 });
    expect(job).toMatchObject({ state: 'failed', error: RESTART_REASON });
  });

  it('right after an epoch (checkpoint being written): same', async () => {
    const killed = await killAt('epoch');
    const job = await recoverAndCheck(killed, { versions: [1], latest: 1 });
    expect(job).toMatchObject({ state: 'failed', error: RESTART_REASON });
  });

  it('with the candidate complete in staging, before the rename: no version appears', async () => {
    const killed = await killAt('staged');
    expect(killed.before.state).toBe('promoting');
    const job = await recoverAndCheck(killed, { versions: [1], latest: 1 });
    expect(job).toMatchObject({ state: 'failed', error: RESTART_REASON });
  });

  it('right after the rename, before the pointer moved: the new version exists, complete, and the old one still serves', async () => {
    const killed = await killAt('committed');
    expect(killed.before).toMatchObject({ state: 'promoting', version: 2 });
    const job = await recoverAndCheck(killed, { versions: [1, 2], latest: 1 });
    expect(job).toMatchObject({ state: 'failed', error: `${RESTART_REASON}; version 2 was written but not promoted` });

    // The model takes jobs again, and version numbers go on.
    const { manager } = await JobManager.open({ models: killed.root, config: testConfig({ dataFolders: [data.dir] }) });
    const next = await manager.createFromFolder('tiny', data.dir, { params: QUICK });
    for await (const event of await manager.watch(next.id)) if (event.type === 'end') expect(event.job).toMatchObject({ state: 'succeeded', version: 3 });
    await manager.close();
  });

  it('right after the pointer moved: recovery completes the job and the new version serves', async () => {
    const killed = await killAt('promoted');
    expect(killed.before).toMatchObject({ state: 'promoting', version: 2 });
    const job = await recoverAndCheck(killed, { versions: [1, 2], latest: 2 });
    expect(job).toMatchObject({ state: 'succeeded', decision: { promoted: true, version: 2, latest: 2 } });
  });
});
