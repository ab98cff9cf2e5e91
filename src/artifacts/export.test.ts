import { firstBitDifference } from '../testing/compare';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { initBuffers, initParams, layout } from '../model/params';
import { batchFeeds, maxAbsDiff, paramFeeds, randomBatch } from '../testing/batches';
import { TINY_RESIDUAL } from '../testing/specs';
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
    const model = decodeModel(readFileSync(path.join(dir, FILES.infer)), { readExternal: (file) => readFileSync(path.join(dir, file)) });
    const initializers = new Map(model.graph.initializers.map((i) => [i.name, i]));
    expect(firstBitDifference(expected, ckpt.params)).toBeUndefined();
    expect(firstBitDifference(expected, new Map([...expected.keys()].map((name) => [name, initializers.get(name)!.data as Float32Array])))).toBeUndefined();
  });

  it('keeps one copy of the weights: infer.onnx refers to the checkpoint\'s bytes and runs like a self-contained copy', async () => {
    const manifest = await readManifest(dir);
    expect(manifest.graphs.infer.weights).toBe(FILES.checkpoint);
    const bytes = readFileSync(path.join(dir, FILES.infer));
    expect(() => decodeModel(bytes)).toThrow(/its data is in checkpoint.safetensors; decode with readExternal/);
    const model = decodeModel(bytes, { readExternal: (file) => readFileSync(path.join(dir, file)) });
    const stored = onnx.ModelProto.decode(bytes).graph!.initializer!;
    const external = stored.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL).map((t) => t.name);
    expect(external.sort()).toEqual(layout(spec).params.map((p) => p.name).sort());
    const selfContained = encodeModel(model);
    const shared = await ort.InferenceSession.create(path.join(dir, FILES.infer), { intraOpNumThreads: 1 });
    const whole = await ort.InferenceSession.create(selfContained, { intraOpNumThreads: 1 });
    try {
      const { image } = batchFeeds(spec, randomBatch(spec, 5, 3));
      const [a, b] = [await shared.run({ image }), await whole.run({ image })];
      for (const name of shared.outputNames) expect(maxAbsDiff(a[name].data as Float32Array, b[name].data as Float32Array)).toBe(0);
    } finally {
      await shared.release();
      await whole.release();
    }
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
    async () => {
      const script = 'import onnx, sys\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\nprint("ok")';
      // The several-steps-per-run graph the trainer builds from train_step (never written by export).
      const multi = path.join(root, 'train_steps.onnx');
      writeFileSync(multi, encodeModel(buildMultiStepGraph(buildTrainStepGraph(builtinSpec('tiny'), { optimizer: DEFAULT_OPTIMIZER.adam, frozen: ['trunk'] })).model));
      // The same with BatchNorm (training mode, int64 batch counts among the carried state) and label smoothing.
      const bnDir = path.join(root, 'bn');
      await exportModel({ spec: TINY_RESIDUAL, outDir: bnDir, seed: 3 });
      const multiBn = path.join(root, 'train_steps_bn.onnx');
      writeFileSync(multiBn, encodeModel(buildMultiStepGraph(buildTrainStepGraph(TINY_RESIDUAL, { optimizer: DEFAULT_OPTIMIZER.adam, labelSmoothing: 0.1 })).model));
      const files = [...[FILES.infer, FILES.trainStep, FILES.eval].flatMap((f) => [path.join(dir, f), path.join(bnDir, f)]), multi, multiBn];
      expect(execFileSync('/usr/bin/python3', ['-c', script, ...files], { encoding: 'utf8' }).trim()).toBe('ok');
    },
  );

  describe('a model with BatchNorm, residual blocks and global average pooling', () => {
    const bnSpec = TINY_RESIDUAL;
    let bnDir: string;
    const buffers = initBuffers(bnSpec);
    beforeAll(async () => {
      bnDir = path.join(root, 'tiny-residual');
      // Running statistics of a trained model (not the initial 0 and 1), so that evaluation mode shows.
      for (const [name, v] of buffers) {
        if (v instanceof BigInt64Array) v[0] = 17n;
        else v.forEach((_, i) => (v[i] = name.endsWith('running_var') ? 0.3 + 0.2 * i : 0.1 * i - 0.2));
      }
      await exportModel({ spec: bnSpec, outDir: bnDir, checkpoint: { spec: bnSpec, params: initParams(bnSpec, 4), buffers } });
    });

    it('records every buffer with role buffer: train_step reads each and returns it as .next, eval reads the running statistics', async () => {
      const manifest = await readManifest(bnDir, { verify: true });
      const names = layout(bnSpec).buffers.map((d) => d.name);
      expect(names).toContain('trunk.1.running_mean');
      expect(names).toContain('trunk.4.downsample.1.num_batches_tracked');
      const step = manifest.graphs.train_step;
      expect(step.inputs.filter((i) => i.role === 'buffer').map((i) => i.name)).toEqual(names);
      expect(step.outputs.filter((o) => o.role === 'buffer').map((o) => o.name)).toEqual(names.map((n) => `${n}.next`));
      expect(step.inputs.find((i) => i.name === 'trunk.1.num_batches_tracked')).toEqual({ name: 'trunk.1.num_batches_tracked', dtype: 'int64', shape: [], role: 'buffer' });
      expect(manifest.graphs.eval.inputs.filter((i) => i.role === 'buffer').map((i) => i.name)).toEqual(names.filter((n) => !n.endsWith('num_batches_tracked')));
      for (const g of Object.values(manifest.graphs)) {
        const session = await ort.InferenceSession.create(path.join(bnDir, g.file), { intraOpNumThreads: 1 });
        expect([...session.inputNames].sort()).toEqual(g.inputs.map((i) => i.name).sort());
        expect([...session.outputNames].sort()).toEqual(g.outputs.map((o) => o.name).sort());
        await session.release();
      }
    });

    it('keeps the buffers in the checkpoint, and infer.onnx equals eval.onnx (evaluation mode, running statistics)', async () => {
      const ckpt = await loadCheckpoint(path.join(bnDir, FILES.checkpoint));
      for (const [name, v] of buffers) expect(Buffer.from(ckpt.buffers.get(name)!.buffer).equals(Buffer.from(v.buffer))).toBe(true);
      const batch = randomBatch(bnSpec, 6, 9);
      const infer = await ort.InferenceSession.create(path.join(bnDir, FILES.infer), { intraOpNumThreads: 1 });
      const evaluate = await ort.InferenceSession.create(path.join(bnDir, FILES.eval), { intraOpNumThreads: 1 });
      const statistics: Record<string, ort.Tensor> = {};
      for (const d of layout(bnSpec).buffers) if (d.dtype === 'float32') statistics[d.name] = new ort.Tensor('float32', buffers.get(d.name) as Float32Array, d.shape);
      const image = new ort.Tensor('float32', batch.images, [6, 3, 16, 16]);
      const inferred = await infer.run({ image });
      const evaluated = await evaluate.run({ ...batchFeeds(bnSpec, batch), ...paramFeeds(bnSpec, ckpt.params), ...statistics });
      const f32 = (t: ort.Tensor) => t.data as Float32Array;
      expect(maxAbsDiff(f32(inferred.class_probs), f32(evaluated.class_probs))).toBeLessThan(1e-6);
      expect(maxAbsDiff(f32(inferred.box), f32(evaluated.box_pred))).toBeLessThan(1e-6);
      // Evaluation mode: an image's answer does not depend on the rest of the batch.
      const one = await infer.run({ image: new ort.Tensor('float32', batch.images.slice(0, 768), [1, 3, 16, 16]) });
      expect(maxAbsDiff(f32(one.class_probs), f32(inferred.class_probs).subarray(0, 3))).toBeLessThan(1e-6);
      // And the running statistics matter: the initial ones give other answers.
      const fresh = await evaluate.run({ ...batchFeeds(bnSpec, batch), ...paramFeeds(bnSpec, ckpt.params), ...Object.fromEntries(
        layout(bnSpec).buffers.filter((d) => d.dtype === 'float32').map((d) => [d.name, new ort.Tensor('float32', initBuffers(bnSpec).get(d.name) as Float32Array, d.shape)]),
      ) });
      expect(maxAbsDiff(f32(fresh.class_probs), f32(evaluated.class_probs))).toBeGreaterThan(1e-4);
      await Promise.all([infer.release(), evaluate.release()]);
    });
  });
});
