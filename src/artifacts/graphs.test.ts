import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { initParams, layout } from '../model/params';
import { builtinSpec } from '../model/spec';
import { batchFeeds, maxAbsDiff, paramFeeds, randomBatch } from '../testing/batches';
import { exportModel, FILES } from './export';
import { IO, next } from './graphs';

const spec = builtinSpec('tiny');
const params = initParams(spec, 21);
const batch = randomBatch(spec, 12, 4);
const weights = [1, 0.7, 2.5];
const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, graphOptimizationLevel: 'all' };
const f32 = (t: ort.Tensor) => t.data as Float32Array;

function trainFeeds(state: 'zeros' | Map<string, Float32Array>, hyper: { lr: number; step?: number; weightDecay?: number; clipNorm?: number }, taskWeights = weights, b = batch) {
  const feeds: Record<string, ort.Tensor> = { ...batchFeeds(spec, b, taskWeights), ...paramFeeds(spec, params) };
  for (const p of layout(spec).params) {
    const size = p.shape.reduce((x, y) => x * y, 1);
    const value = state === 'zeros' ? new Float32Array(size) : Float32Array.from(state.get(p.name)!);
    feeds[`${p.name}.momentum_buffer`] = new ort.Tensor('float32', value, p.shape);
  }
  const scalar = (v: number) => new ort.Tensor('float32', Float32Array.of(v), []);
  feeds[IO.lr] = scalar(hyper.lr);
  feeds[IO.step] = scalar(hyper.step ?? 0);
  feeds[IO.weightDecay] = scalar(hyper.weightDecay ?? 0);
  feeds[IO.clipNorm] = scalar(hyper.clipNorm ?? 0);
  return feeds;
}

describe('the exported graphs agree with each other', () => {
  let dir: string;
  let infer: ort.InferenceSession;
  let evaluate: ort.InferenceSession;
  let trainStep: ort.InferenceSession;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'trident-graphs-'));
    await exportModel({ spec, outDir: dir, optimizer: 'sgd', checkpoint: { spec, params, buffers: new Map() } });
    infer = await ort.InferenceSession.create(path.join(dir, FILES.infer), sessionOptions);
    evaluate = await ort.InferenceSession.create(path.join(dir, FILES.eval), sessionOptions);
    trainStep = await ort.InferenceSession.create(path.join(dir, FILES.trainStep), sessionOptions);
  });
  afterAll(async () => {
    await Promise.all([infer?.release(), evaluate?.release(), trainStep?.release()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('infer.onnx outputs equal the post-processed heads inside eval.onnx on the same params and batch', async () => {
    const { channels, height, width } = spec.input;
    const inferred = await infer.run({ [IO.image]: new ort.Tensor('float32', batch.images, [batch.size, channels, height, width]) });
    const evaluated = await evaluate.run({ ...batchFeeds(spec, batch, weights), ...paramFeeds(spec, params) });
    const pairs: [string, string, number][] = [[IO.classProbs, IO.classProbs, 3], [IO.objectnessProb, 'objectness_prob', 1], [IO.boxOut, 'box_pred', 4]];
    for (const [a, b, width] of pairs) {
      expect(inferred[a].dims).toEqual([batch.size, width]);
      expect(evaluated[b].dims).toEqual([batch.size, width]);
      expect(maxAbsDiff(f32(inferred[a]), f32(evaluated[b]))).toBeLessThan(1e-6);
    }
    // Sanity of the post-processing: probabilities sum to 1, boxes are ordered corners in 0..1.
    const probs = f32(inferred[IO.classProbs]);
    const box = f32(inferred[IO.boxOut]);
    for (let i = 0; i < batch.size; i++) {
      expect(probs[3 * i] + probs[3 * i + 1] + probs[3 * i + 2]).toBeCloseTo(1, 6);
      expect(box[4 * i]).toBeLessThanOrEqual(box[4 * i + 2]);
      expect(box[4 * i + 1]).toBeLessThanOrEqual(box[4 * i + 3]);
      for (let k = 0; k < 4; k++) expect(box[4 * i + k]).toBeGreaterThanOrEqual(0);
      for (let k = 0; k < 4; k++) expect(box[4 * i + k]).toBeLessThanOrEqual(1);
    }
    // The batch dimension is dynamic: one image alone gives the same answer as inside the batch.
    const one = await infer.run({ [IO.image]: new ort.Tensor('float32', batch.images.slice(0, channels * height * width), [1, channels, height, width]) });
    expect(maxAbsDiff(f32(one[IO.classProbs]), f32(inferred[IO.classProbs]).subarray(0, 3))).toBeLessThan(1e-6);
  });

  it('eval.onnx losses equal the losses train_step.onnx reports (before its update)', async () => {
    const evaluated = await evaluate.run({ ...batchFeeds(spec, batch, weights), ...paramFeeds(spec, params) });
    const stepped = await trainStep.run(trainFeeds('zeros', { lr: 0.5 }));
    const evalLosses = f32(evaluated[IO.taskLosses]);
    const stepLosses = f32(stepped[IO.taskLosses]);
    expect(maxAbsDiff(evalLosses, stepLosses)).toBeLessThanOrEqual(1e-6 * Math.max(...evalLosses));
    expect(f32(stepped[IO.loss])[0]).toBeCloseTo(f32(evaluated[IO.loss])[0], 6);
    // total = Σ λ_t L_t
    const total = evalLosses.reduce((a, l, t) => a + l * weights[t], 0);
    expect(f32(evaluated[IO.loss])[0]).toBeCloseTo(total, 5);
    for (const l of evalLosses) expect(l).toBeGreaterThan(0);
    // The reported loss is the one before the update: evaluating the updated parameters gives another.
    const updated = new Map(layout(spec).params.map((p) => [p.name, f32(stepped[next(p.name)])]));
    const after = await evaluate.run({ ...batchFeeds(spec, batch, weights), ...paramFeeds(spec, updated) });
    expect(f32(after[IO.loss])[0]).toBeLessThan(f32(evaluated[IO.loss])[0]);
  });

  it('a batch without objects: class and box losses exactly 0, objectness still trained', async () => {
    const empty = randomBatch(spec, 8, 5, { objects: 0 });
    expect(Array.from(empty.mask)).toEqual(new Array(8).fill(0));
    const evaluated = await evaluate.run({ ...batchFeeds(spec, empty, weights), ...paramFeeds(spec, params) });
    const [cls, det, box] = f32(evaluated[IO.taskLosses]);
    expect(cls).toBe(0);
    expect(box).toBe(0);
    expect(det).toBeGreaterThan(0.1);
    // SGD (momentum 0.9, but a zero buffer and a zero gradient) leaves the class and box heads as they were.
    const stepped = await trainStep.run(trainFeeds('zeros', { lr: 0.1 }, weights, empty));
    expect(Array.from(f32(stepped[IO.taskLosses]))).toEqual([0, det, 0]);
    expect(f32(stepped[IO.gradNorm])[0]).toBeGreaterThan(0);
    const changed = (name: string) => maxAbsDiff(f32(stepped[next(name)]), params.get(name)!);
    for (const name of ['heads.cls.weight', 'heads.cls.bias', 'heads.box.weight', 'heads.box.bias']) {
      expect(changed(name)).toBe(0);
      expect(maxAbsDiff(f32(stepped[next(`${name}.momentum_buffer`)]), new Float32Array(params.get(name)!.length))).toBe(0);
    }
    expect(changed('heads.det.weight')).toBeGreaterThan(0);
    expect(changed('heads.det.bias')).toBeGreaterThan(0);
    expect(changed('shared.1.weight')).toBeGreaterThan(0);
    expect(changed('trunk.0.weight')).toBeGreaterThan(0);
  });

  it('with momentum the step carries the buffer: buf = 0.9·buf + g, p −= lr·buf', async () => {
    const first = await trainStep.run(trainFeeds('zeros', { lr: 0.1 }));
    const buffers = new Map(layout(spec).params.map((p) => [p.name, f32(first[next(`${p.name}.momentum_buffer`)])]));
    const second = await trainStep.run(trainFeeds(buffers, { lr: 0.1, step: 1 }));
    // Same params and batch: gradient g is the same, so the new buffer is 0.9·g + g = 1.9·g.
    for (const p of layout(spec).params) {
      const g = buffers.get(p.name)!;
      const expected = g.map((v) => 1.9 * v);
      expect(maxAbsDiff(f32(second[next(`${p.name}.momentum_buffer`)]), expected)).toBeLessThan(1e-6 * (1 + Math.max(...g.map(Math.abs))));
      const stepped = params.get(p.name)!.map((v, i) => v - 0.1 * expected[i]);
      expect(maxAbsDiff(f32(second[next(p.name)]), stepped)).toBeLessThan(1e-6);
    }
    expect(f32(second[next(IO.step)])[0]).toBe(2);
  });

  it('weight decay: SGD adds wd·p to the gradient', async () => {
    const plain = await trainStep.run(trainFeeds('zeros', { lr: 0.1 }));
    const decayed = await trainStep.run(trainFeeds('zeros', { lr: 0.1, weightDecay: 0.01 }));
    for (const p of layout(spec).params) {
      const expected = f32(plain[next(p.name)]).map((v, i) => v - 0.1 * 0.01 * params.get(p.name)![i]);
      expect(maxAbsDiff(f32(decayed[next(p.name)]), expected)).toBeLessThan(1e-6);
    }
  });
});
