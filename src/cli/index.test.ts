import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { readManifest } from '../artifacts/manifest';
import { builtinSpec, FASHION_LABELS } from '../model/spec';
import { makeRepository } from '../runtime/testing/repository';
import { SERVER_NODE_FLAGS } from '../serve/node-flags';
import { writeTrainingFixture } from '../testing/fashion-mnist';

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = path.join(ROOT, 'bin', 'trident.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `file args…` and collects its exit code and output. */
function run(file: string, args: string[], options: { cwd?: string; timeout?: number } = {}): Promise<Result> {
  const { cwd = ROOT, timeout = 60_000 } = options;
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout, env: { ...process.env, FORCE_COLOR: '0' } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs the real CLI from the repository root (it needs dist/ built). */
const trident = (args: string[], timeout = 60_000) => run(process.execPath, [BIN, ...args], { timeout });

let tmp: string;
/** A small Fashion-MNIST training split made from the committed test split (testing/fashion-mnist). */
let fashionMnist: string;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'trident-cli-'));
  fashionMnist = await writeTrainingFixture(path.join(tmp, 'fashion-mnist'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('bin/trident.js runs the CLI however it is reached', () => {
  const COMMANDS = ['export', 'train', 'eval', 'predict', 'serve', 'finetune', 'data', 'bench'];

  it('through a symlink with another name (as npx, npm exec and global installs reach it): --help lists the commands', async () => {
    const binDir = path.join(tmp, 'bin-link');
    mkdirSync(binDir);
    const link = path.join(binDir, 'trident');
    symlinkSync(BIN, link);
    const { code, stdout, stderr } = await run(link, ['--help'], { cwd: tmp });
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout).toContain('Usage: trident [options] [command]');
    for (const command of COMMANDS) expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
  });

  it('through a symlink: a failing command exits 1 with its message', async () => {
    const link = path.join(tmp, 'bin-link', 'trident');
    const missing = path.join(tmp, 'no-such-model');
    const { code, stdout, stderr } = await run(link, ['predict', missing, path.join(tmp, 'x.png')], { cwd: tmp });
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^trident: .*no-such-model/);
  });

  it('says to run `npm run build` when dist/ is missing, instead of a module-not-found stack', async () => {
    const copy = path.join(tmp, 'unbuilt');
    cpSync(path.join(ROOT, 'bin'), path.join(copy, 'bin'), { recursive: true });
    const { code, stdout, stderr } = await run(process.execPath, [path.join(copy, 'bin', 'trident.js'), '--help'], { cwd: tmp });
    expect([code, stdout]).toEqual([1, '']);
    expect(stderr).toBe(`trident: ${path.join(copy, 'dist', 'cli', 'index.js')} is missing: the TypeScript sources are not compiled. Run \`npm run build\` in ${copy}, then try again.\n`);
  });
});

describe('trident --help', () => {
  it.each([[[]], [['export']], [['train']], [['eval']], [['predict']], [['data']], [['data', 'fashionloc']], [['bench']], [['bench', 'train']], [['bench', 'trunk']], [['bench', 'infer']]])(
    'trident %j --help exits 0 with usage',
    async (command) => {
      const { code, stdout } = await trident([...command, '--help']);
      expect(code).toBe(0);
      expect(stdout).toContain(`Usage: trident${command.length ? ' ' + command.join(' ') : ''} [options]`);
    },
  );
});

describe('trident data download fashion-mnist', () => {
  it('fetches from a local mirror, checks each file, and exits 1 naming the files no mirror had', async () => {
    const mirror = path.join(tmp, 'mirror');
    mkdirSync(mirror);
    for (const name of ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) cpSync(path.join(ROOT, 'data', 'fashion-mnist', name), path.join(mirror, name));
    const out = path.join(tmp, 'downloaded');
    const { code, stdout, stderr } = await trident(['data', 'download', 'fashion-mnist', '--mirror', mirror, '--out', out]);
    expect(code).toBe(1);
    expect(stdout).toBe(
      `${path.join(out, 't10k-images-idx3-ubyte.gz')}: downloaded from ${path.join(mirror, 't10k-images-idx3-ubyte.gz')}, checked\n` +
        `${path.join(out, 't10k-labels-idx1-ubyte.gz')}: downloaded from ${path.join(mirror, 't10k-labels-idx1-ubyte.gz')}, checked\n`,
    );
    expect(stderr).toContain('trident: Fashion-MNIST download incomplete (nothing unchecked was written):\n  train-images-idx3-ubyte: no mirror had the official file:');
    expect(stderr).toContain(`${path.join(mirror, 'train-labels-idx1-ubyte.gz')}: no such file`);
    const unknown = await trident(['data', 'download', 'mnist']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('the only downloadable data set is fashion-mnist, got "mnist"');
  });
});

describe('trident refuses bad input with a clear message', () => {
  it('train --arch tiny --data fashion-mnist: the class-count error', async () => {
    const { code, stderr } = await trident(['train', '--arch', 'tiny', '--data', 'fashion-mnist', '--out', path.join(tmp, 'never')]);
    expect(code).toBe(1);
    expect(stderr).toContain('trident: FashionLoc has the 10 Fashion-MNIST classes; architecture tiny has 3');
    expect(existsSync(path.join(tmp, 'never', 'checkpoint.safetensors'))).toBe(false);
  });

  it('train refuses an unknown schedule and out-of-range augmentation or label smoothing', async () => {
    const base = ['train', '--arch', 'fashionloc-res', '--data', 'fashion-mnist', '--out', path.join(tmp, 'never')];
    const schedule = await trident([...base, '--schedule', 'step']);
    expect([schedule.code, schedule.stderr.trim()]).toEqual([1, 'trident: unknown learning-rate schedule (--schedule) "step"; valid: cosine, constant']);
    const smoothing = await trident([...base, '--label-smoothing', '1.5']);
    expect(smoothing.code).toBe(1);
    expect(smoothing.stderr).toContain('--label-smoothing');
    const shift = await trident([...base, '--translate', '0.9']);
    expect(shift.code).toBe(1);
    expect(shift.stderr).toContain('--translate');
    expect(existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  it('train --weighting / --weighting-option / --tasks: an unknown name lists the valid ones; --help lists every strategy', async () => {
    const base = ['train', '--arch', 'tiny', '--data', 'fashion-mnist', '--out', path.join(tmp, 'never')];
    const name = await trident([...base, '--weighting', 'ew']);
    expect([name.code, name.stderr.trim()]).toEqual([1, 'trident: unknown weighting "ew"; valid: static, uw, dwa, gradnorm, famo, mgda, imtl-g, pcgrad, cagrad']);
    const option = await trident([...base, '--weighting', 'mgda', '--weighting-option', 'normalisation=l2']);
    expect(option.stderr).toContain('weighting mgda: unknown option normalisation; its options are gradients, normalization');
    const tasks = await trident([...base, '--tasks', 'cls,seg']);
    expect(tasks.stderr).toContain('--tasks must be all or a comma-separated list of cls, det, box; got "cls,seg"');
    const help = await trident(['train', '--help']);
    for (const strategy of ['static', 'uw', 'dwa', 'gradnorm', 'famo', 'mgda', 'imtl-g', 'pcgrad', 'cagrad']) expect(help.stdout).toContain(`  ${strategy}: `);
  });

  it('export --arch bad.json names the bad field', async () => {
    const bad = path.join(tmp, 'bad.json');
    const spec = builtinSpec('tiny') as unknown as { trunk: { kernel: number }[] };
    spec.trunk[1].kernel = 0;
    writeFileSync(bad, JSON.stringify(spec));
    const { code, stderr } = await trident(['export', '--arch', bad, '--out', path.join(tmp, 'bad-out')]);
    expect(code).toBe(1);
    expect(stderr).toContain(`trident: invalid model spec in ${bad}: trunk.1.kernel:`);
    const notJson = path.join(tmp, 'not.json');
    writeFileSync(notJson, '{ "name": ');
    const broken = await trident(['export', '--arch', notJson, '--out', path.join(tmp, 'bad-out')]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain(`trident: ${notJson}: not valid JSON`);
  });
});

describe('train, eval and predict on a tiny model', () => {
  const model = () => path.join(tmp, 'models', 'tiny10', 'v1');
  let data: string;

  beforeAll(async () => {
    data = path.join(tmp, 'data');
    mkdirSync(data, { recursive: true });
    const lines: string[] = [];
    for (let i = 0; i < 6; i++) {
      const file = `img-${i}.png`;
      const png = await sharp({ create: { width: 30 + i, height: 24, channels: 3, background: { r: 30 * i, g: 90, b: 160 } } }).png().toBuffer();
      writeFileSync(path.join(data, file), png);
      lines.push(JSON.stringify(i === 5 ? { file, box: null } : { file, label: FASHION_LABELS[i], box: [2, 2, 20, 18] }));
    }
    writeFileSync(path.join(data, 'annotations.jsonl'), lines.join('\n') + '\n');
  });

  it('train --json emits ready, step, epoch and done lines and writes the model folder', async () => {
    const specFile = path.join(tmp, 'tiny10.json');
    writeFileSync(specFile, JSON.stringify({ ...builtinSpec('tiny'), name: 'tiny10', heads: { classification: { labels: FASHION_LABELS } } }));
    const { code, stdout, stderr } = await trident([
      'train', '--arch', specFile, '--data', 'fashion-mnist', '--fashion-mnist', fashionMnist, '--train-count', '64', '--val-count', '32',
      '--batch', '32', '--epochs', '1', '--threads', '1', '--json', '--out', model(),
    ]);
    expect([code, stderr]).toEqual([0, '']);
    const events = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.map((e) => e.event)).toEqual(['ready', 'step', 'step', 'epoch', 'checkpoint', 'done']);
    expect(events[0]).toMatchObject({ provider: 'cpu', stepsPerEpoch: 2, trainSamples: 64, valSamples: 32, resumed: false });
    expect(events[1]).toMatchObject({ epoch: 1, epochs: 1, index: 0, step: 1, totalSteps: 2 });
    expect(typeof events[1].loss).toBe('number');
    expect(events[3]).toMatchObject({ epoch: 1, metrics: { samples: 32 } });
    expect(events[5]).toEqual({ event: 'done', reason: 'finished', outDir: model() });
    for (const f of ['checkpoint.safetensors', 'infer.onnx', 'manifest.json']) expect(existsSync(path.join(model(), f))).toBe(true);
    expect(JSON.parse(readFileSync(path.join(model(), 'manifest.json'), 'utf8'))).toMatchObject({ name: 'tiny10', metrics: { epochs: 1 } });
  });

  it('eval MODEL --data DIR/annotations.jsonl --json prints the metrics', async () => {
    const { code, stdout, stderr } = await trident(['eval', model(), '--data', path.join(data, 'annotations.jsonl'), '--threads', '1', '--json']);
    expect([code, stderr]).toEqual([0, '']);
    const result = JSON.parse(stdout);
    expect(result).toMatchObject({ model: model(), samples: 6, metrics: { samples: 6, objects: 5 } });
    for (const key of ['classAccuracy', 'objectnessPrecision', 'objectnessRecall', 'objectnessF1', 'objectnessAP', 'boxMeanIoU', 'boxIoUAbove50', 'detectionCorrect']) {
      expect(result.metrics[key]).toBeGreaterThanOrEqual(0);
      expect(result.metrics[key]).toBeLessThanOrEqual(1);
    }
    const table = await trident(['eval', model(), '--data', data, '--threads', '1']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/class accuracy/);
  });

  it('eval on the FashionLoc validation canvases reproduces the validation metrics the trainer recorded', async () => {
    // Training used seed 0: validation canvases are FashionLoc 'val' rendered with seed 1, 32 of them.
    const { code, stdout, stderr } = await trident(['eval', model(), '--data', 'fashion-mnist', '--fashion-mnist', fashionMnist, '--split', 'val', '--seed', '1', '--count', '32', '--threads', '1', '--json']);
    expect([code, stderr]).toEqual([0, '']);
    const { metrics } = JSON.parse(stdout);
    const manifest = JSON.parse(readFileSync(path.join(model(), 'manifest.json'), 'utf8'));
    const recorded = manifest.metrics.validation as Record<string, number | number[]>;
    expect(metrics.samples).toBe(32);
    for (const [key, value] of Object.entries(recorded)) {
      if (Array.isArray(value)) value.forEach((v, i) => expect(metrics[key][i]).toBeCloseTo(v, 5));
      else expect([key, metrics[key]]).toEqual([key, expect.closeTo(value, 5)]);
    }
  });

  it('export --from CHECKPOINT re-exports the model from its weights', async () => {
    const out = path.join(tmp, 're-exported');
    const { code, stdout, stderr } = await trident(['export', '--from', path.join(model(), 'checkpoint.safetensors'), '--out', out, '--no-training']);
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout).toContain(path.join(out, 'infer.onnx'));
    expect(readFileSync(path.join(out, 'infer.onnx')).equals(readFileSync(path.join(model(), 'infer.onnx')))).toBe(true);
    expect(existsSync(path.join(out, 'train_step.onnx'))).toBe(false);
  });

  it('export --from FOLDER --name --weights-only keeps metrics and lineage, renames, and ships the weights alone', async () => {
    const out = path.join(tmp, 'renamed');
    const { code, stderr } = await trident(['export', '--from', model(), '--out', out, '--no-training', '--weights-only', '--name', 'shipped']);
    expect([code, stderr]).toEqual([0, '']);
    const [source, renamed] = [await readManifest(model()), await readManifest(out)];
    expect(renamed.name).toBe('shipped');
    expect(renamed.metrics).toEqual(source.metrics);
    expect(renamed.lineage).toEqual({ ...source.lineage, exportedFrom: model() });
    expect(statSync(path.join(out, 'checkpoint.safetensors')).size).toBeLessThan(statSync(path.join(model(), 'checkpoint.safetensors')).size);
  });

  it('Ctrl-C (SIGINT) during train finishes the step, writes a checkpoint and exits with 130; --resume continues', async () => {
    const out = path.join(tmp, 'models', 'interrupted', 'v1');
    const child = execFile(process.execPath, [
      BIN, 'train', '--arch', path.join(tmp, 'tiny10.json'), '--data', 'fashion-mnist', '--fashion-mnist', fashionMnist, '--train-count', '640', '--val-count', '32',
      '--batch', '32', '--epochs', '2', '--threads', '1', '--json', '--out', out,
    ], { cwd: ROOT, timeout: 60_000 });
    let stdout = '';
    child.stdout!.on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('"event":"step"') && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    const events = stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(code).toBe(130);
    expect(events[events.length - 1]).toEqual({ event: 'done', reason: 'stopped', outDir: out });
    const steps = events.filter((e) => e.event === 'step');
    expect(steps.length).toBeLessThan(40);
    expect(existsSync(path.join(out, 'checkpoint.safetensors'))).toBe(true);
    expect(existsSync(path.join(out, 'manifest.json'))).toBe(false);
    const resumed = await trident(['train', '--data', 'fashion-mnist', '--fashion-mnist', fashionMnist, '--train-count', '640', '--val-count', '32', '--batch', '32', '--epochs', '2', '--threads', '1', '--json', '--resume', '--out', out]);
    expect(resumed.code).toBe(0);
    const next = resumed.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(next[0]).toMatchObject({ event: 'ready', resumed: true, step: steps.length });
    expect(next.filter((e) => e.event === 'step')[0]).toMatchObject({ step: steps.length + 1 });
    expect(next[next.length - 1]).toMatchObject({ event: 'done', reason: 'finished' });
  });

  it('predict MODEL img.png --json --draw out.png answers in original pixels and draws a PNG', async () => {
    const image = path.join(data, 'img-3.png');
    const out = path.join(tmp, 'out.png');
    const { code, stdout, stderr } = await trident(['predict', model(), image, '--json', '--draw', out, '--top-k', '2']);
    expect([code, stderr]).toEqual([0, '']);
    const p = JSON.parse(stdout.trim());
    expect(p.image).toBe(image);
    expect(FASHION_LABELS).toContain(p.class.label);
    expect(p.class.top_k).toHaveLength(2);
    expect(p.class.top_k[0]).toEqual({ label: p.class.label, score: p.class.score });
    expect(p.object.score).toBeGreaterThan(0);
    expect(p.object.score).toBeLessThan(1);
    expect(p.box.x1).toBeGreaterThanOrEqual(0);
    expect(p.box.x2).toBeLessThanOrEqual(33);
    expect(p.box.y2).toBeLessThanOrEqual(24);
    expect(p.box.x1).toBeLessThanOrEqual(p.box.x2);
    const drawn = readFileSync(out);
    expect(drawn.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
    expect(await sharp(drawn).metadata()).toMatchObject({ format: 'png', width: 33, height: 24 });
  });
});

describe('trident serve: the server process', () => {
  it('starts again with the server V8 flags, and SIGTERM to the command drains the server and exits 0', async () => {
    const root = await makeRepository([{ name: 'tiny', versions: [1] }]);
    const args = ['serve', '--models', root, '--host', '127.0.0.1', '--http', '0', '--grpc', '0', '--threads', '1', '--no-auth', '--no-finetune'];
    const command = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => command.once('exit', (code) => resolve(code)));
    const ready = await new Promise<{ pid: number; http: number }>((resolve, reject) => {
      let buffer = '';
      command.stdout.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        for (const line of buffer.split('\n').slice(0, -1)) if (line.includes('"msg":"ready"')) resolve(JSON.parse(line));
        buffer = buffer.slice(buffer.lastIndexOf('\n') + 1);
      });
      void exited.then((code) => reject(new Error(`trident serve exited with ${code} before it was ready`)));
    });
    expect(ready.pid).not.toBe(command.pid);
    const cmdline = readFileSync(`/proc/${ready.pid}/cmdline`, 'utf8').split('\0');
    for (const flag of SERVER_NODE_FLAGS) expect(cmdline).toContain(flag);
    expect((await fetch(`http://127.0.0.1:${ready.http}/v2/health/ready`)).status).toBe(200);

    command.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(() => process.kill(ready.pid, 0)).toThrow(/ESRCH/);
    rmSync(root, { recursive: true, force: true });
  });

  it('npm start and the Docker image start the server with the same flags, so it does not start twice', () => {
    const start = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start as string;
    const docker = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('CMD '))!;
    for (const flag of SERVER_NODE_FLAGS) {
      expect(start).toContain(` ${flag} bin/trident.js serve`);
      expect(docker).toContain(`"${flag}", "bin/trident.js", "serve"`);
    }
  });
});
