/**
 * Loaded only by the benchmark (`npm run bench:web`): times the train step in this page with
 * onnxruntime-web, the same way the web app runs it (StepDriver, wasm).
 */
import { stackSamples, type Sample } from '../../src/data/batch';
import { mulberry32 } from '../../src/base/random';
import { initialState, planTrainStep, StepDriver } from '../../src/runtime/step-driver';
import { loadOrt, sessionOptions } from './ort';
import { loadModelFiles } from './trainer';

/** A batch of `size` samples drawn from a seed (the benchmark's Node side draws the same). */
export function benchBatch(size: number, shape: { channels: number; height: number; width: number }, classes: number) {
  const random = mulberry32(12345);
  const pixels = shape.channels * shape.height * shape.width;
  const samples: Sample[] = Array.from({ length: size }, (_, i) => ({
    image: Float32Array.from({ length: pixels }, () => random() * 4 - 2),
    label: i % 4 === 3 ? -1 : Math.floor(random() * classes),
    objectness: i % 4 === 3 ? 0 : 1,
    box: [0.1, 0.2, 0.6, 0.7],
  }));
  return stackSamples(samples, pixels);
}

async function timeTrainStep(model: string, batchSize: number, steps: number): Promise<{ stepMs: number[]; sessionMs: number; threads: number }> {
  const files = await loadModelFiles(model, 'latest');
  const ort = await loadOrt('wasm');
  const graph = files.manifest.graphs.train_step;
  const started = performance.now();
  const driver = await StepDriver.create(ort, files.trainStep, graph, initialState(planTrainStep(graph), files.checkpoint.params), sessionOptions('wasm'));
  const sessionMs = performance.now() - started;
  const batch = benchBatch(batchSize, files.manifest.spec.input, files.manifest.labels.length);
  const stepMs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await driver.run(batch, { values: { lr: 1e-4, weight_decay: 0, clip_norm: 0 }, taskWeights: [1, 1, 1] });
    stepMs.push(performance.now() - t);
  }
  await driver.release();
  return { stepMs, sessionMs, threads: ort.env.wasm.numThreads as number };
}

(globalThis as unknown as { tridentBench: typeof timeTrainStep }).tridentBench = timeTrainStep;
