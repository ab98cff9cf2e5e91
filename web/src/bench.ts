/**
 * Loaded only by the benchmark (`npm run bench:web`): times the train step in this page with
 * onnxruntime-web, the same way the web app runs it (StepDriver, wasm).
 */
import { benchBatch } from '../../src/testing/bench-batch';
import { initialState, planTrainStep, StepDriver } from '../../src/runtime/step-driver';
import { loadOrt, sessionOptions } from './ort';
import { loadModelFiles } from './trainer';


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
