import { firstBitDifference } from '../testing/compare';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { initParams, layout } from '../model/params';
import { builtinSpec } from '../model/spec';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { decodeModel, encodeModel } from '../onnx/serialize';
import { loadCheckpoint } from './checkpoint';
import { exportModel, FILES } from './export';
import { buildTrainStepGraph } from './graphs';
import { buildMultiStepGraph } from './multi-step';
import { readManifest } from './manifest';

const spec = builtinSpec('tiny');

describe('exportModel', () => {
  let root: string;
  let dir: string;
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'trident-export-'));
    dir = path.join(root, 'tiny');
    await exportModel({ spec: 'tiny', outDir: dir, seed: 11, optimizer: 'sgd' });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('writes the five files and nothing else', () => {
    expect(readdirSync(dir).sort()).toEqual(['checkpoint.safetensors', 'eval.onnx', 'infer.onnx', 'manifest.json', 'train_step.onnx']);
    expect(Object.values(FILES).sort()).toEqual(readdirSync(dir).sort());
  });

  it('writes a manifest that describes the model and verifies against the files', async () => {
    const manifest = await readManifest(dir, { verify: true });
    expect(manifest).toMatchObject({
      format: 'trident-model/1',
      name: 'tiny',
      labels: ['a', 'b', 'c'],
      input: { name: 'image', channels: 3, height: 16, width: 16, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25], layout: 'NCHW', resize: 'stretch' },
      opset: 17,
      optimizer: 'sgd',
    });
    expect(manifest.spec).toEqual(spec);
    expect(Object.keys(manifest.files).sort()).toEqual(['checkpoint.safetensors', 'eval.onnx', 'infer.onnx', 'train_step.onnx']);
    for (const [file, info] of Object.entries(manifest.files)) expect(info.bytes).toBe(readFileSync(path.join(dir, file)).length);
    const infer = manifest.graphs.infer;
    expect(infer.file).toBe('infer.onnx');
    expect(infer.inputs).toEqual([{ name: 'image', dtype: 'float32', shape: ['N', 3, 16, 16], role: 'image' }]);
    expect(infer.outputs).toEqual([
      { name: 'class_probs', dtype: 'float32', shape: ['N', 3], role: 'class_probs' },
      { name: 'objectness', dtype: 'float32', shape: ['N', 1], role: 'objectness' },
      { name: 'box', dtype: 'float32', shape: ['N', 4], role: 'box' },
    ]);
    const step = manifest.graphs.train_step;
    const role = (name: string) => step.inputs.find((i) => i.name === name)?.role;
    expect(role('trunk.0.weight')).toBe('parameter');
    expect(role('trunk.0.weight.momentum_buffer')).toBe('optimizer_state');
    expect(role('lr')).toBe('hyperparameter');
    expect(role('task_weights')).toBe('task_weights');
    expect(role('label')).toBe('target');
    expect(step.outputs.find((o) => o.name === 'heads.box.bias.next')).toEqual({ name: 'heads.box.bias.next', dtype: 'float32', shape: [4], role: 'parameter' });
    expect(step.outputs.filter((o) => o.role === 'parameter')).toHaveLength(layout(spec).params.length);
    expect(manifest.graphs.eval.outputs.map((o) => o.role)).toEqual(['loss', 'task_losses', 'class_probs', 'objectness', 'box']);
  });

  it('lists exactly the inputs and outputs ONNX Runtime sees in each graph', async () => {
    const manifest = await readManifest(dir);
    for (const g of Object.values(manifest.graphs)) {
      const session = await ort.InferenceSession.create(path.join(dir, g.file), { intraOpNumThreads: 1 });
      expect([...session.inputNames].sort()).toEqual(g.inputs.map((i) => i.name).sort());
      expect([...session.outputNames].sort()).toEqual(g.outputs.map((o) => o.name).sort());
      await session.release();
    }
  });

  it('writes the seeded initial weights into the checkpoint and into infer.onnx', async () => {
    const ckpt = await loadCheckpoint(path.join(dir, FILES.checkpoint));
    const expected = initParams(spec, 11);
    expect(ckpt.optimizer).toMatchObject({ step: 0, config: { name: 'sgd', momentum: 0.9 } });
    const model = decodeModel(readFileSync(path.join(dir, FILES.infer)));
    const initializers = new Map(model.graph.initializers.map((i) => [i.name, i]));
    expect(firstBitDifference(expected, ckpt.params)).toBeUndefined();
    expect(firstBitDifference(expected, new Map([...expected.keys()].map((name) => [name, initializers.get(name)!.data as Float32Array])))).toBeUndefined();
  });

  describe('manifest checksums detect', () => {
    let copy: string;
    beforeEach(() => {
      copy = path.join(root, `copy-${Math.random().toString(36).slice(2)}`);
      execFileSync('cp', ['-r', dir, copy]);
    });

    it('a corrupted file (same size, one byte flipped)', async () => {
      const file = path.join(copy, FILES.infer);
      const bytes = readFileSync(file);
      bytes[bytes.length >> 1] ^= 1;
      writeFileSync(file, bytes);
      await expect(readManifest(copy, { verify: true })).rejects.toThrow(`${file}: checksum mismatch with manifest.json (file corrupt or replaced)`);
      // Without verify the manifest itself still reads.
      await expect(readManifest(copy)).resolves.toMatchObject({ name: 'tiny' });
    });

    it('a file replaced by another model’s', async () => {
      const other = path.join(root, `other-${Math.random().toString(36).slice(2)}`);
      await exportModel({ spec: 'tiny', outDir: other, seed: 12, optimizer: 'sgd' });
      execFileSync('cp', [path.join(other, FILES.checkpoint), path.join(copy, FILES.checkpoint)]);
      await expect(readManifest(copy, { verify: true })).rejects.toThrow(/checkpoint.safetensors: checksum mismatch with manifest.json/);
    });

    it('a missing file, and a missing or invalid manifest', async () => {
      rmSync(path.join(copy, FILES.eval));
      await expect(readManifest(copy, { verify: true })).rejects.toThrow(`${path.join(copy, FILES.eval)}: listed in the manifest but missing`);
      writeFileSync(path.join(copy, FILES.manifest), '{"format": "trident-model/1"');
      await expect(readManifest(copy)).rejects.toThrow(/manifest.json: not valid JSON/);
      writeFileSync(path.join(copy, FILES.manifest), '{"format": "trident-model/1"}');
      await expect(readManifest(copy)).rejects.toThrow(/manifest.json: invalid manifest: name:/);
      rmSync(path.join(copy, FILES.manifest));
      await expect(readManifest(copy)).rejects.toThrow('missing; not a Trident model folder');
    });
  });

  it('re-exports from a checkpoint: its weights, its optimizer, and infer.onnx alone with training false', async () => {
    const ckpt = await loadCheckpoint(path.join(dir, FILES.checkpoint));
    const again = path.join(root, 'again');
    const manifest = await exportModel({ spec: ckpt.spec, outDir: again, checkpoint: ckpt, training: false, optimizer: 'adam' });
    expect(readdirSync(again).sort()).toEqual(['checkpoint.safetensors', 'infer.onnx', 'manifest.json']);
    expect(manifest.optimizer).toBe('sgd');
    expect(readFileSync(path.join(again, FILES.infer)).equals(readFileSync(path.join(dir, FILES.infer)))).toBe(true);
    expect(existsSync(path.join(again, FILES.trainStep))).toBe(false);
  });

  const onnxChecker = spawnSync('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0;
  (onnxChecker ? it : it.skip)(
    `passes onnx.checker.check_model(full_check=True)${onnxChecker ? '' : ' [skipped: /usr/bin/python3 cannot import onnx]'}`,
    () => {
      const script = 'import onnx, sys\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\nprint("ok")';
      // The several-steps-per-run graph the trainer builds from train_step (never written by export).
      const multi = path.join(root, 'train_steps.onnx');
      writeFileSync(multi, encodeModel(buildMultiStepGraph(buildTrainStepGraph(builtinSpec('tiny'), { optimizer: DEFAULT_OPTIMIZER.adam, frozen: ['trunk'] })).model));
      const files = [...[FILES.infer, FILES.trainStep, FILES.eval].map((f) => path.join(dir, f)), multi];
      expect(execFileSync('/usr/bin/python3', ['-c', script, ...files], { encoding: 'utf8' }).trim()).toBe('ok');
    },
  );
});
