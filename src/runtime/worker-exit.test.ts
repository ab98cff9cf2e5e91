import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// A worker loops over train steps; the parent stops it mid-loop. With worker.terminate() this
// aborts the process (exit 134); with stopWorker it must end normally.
const script = (dist: string, how: 'stopWorker' | 'terminate') => `
const { Worker, isMainThread, parentPort } = require('node:worker_threads');
const { stopWorker, exitWhenAsked } = require(${JSON.stringify(path.join(dist, 'runtime/worker-exit.js'))});
if (isMainThread) {
  const w = new Worker(__filename);
  w.on('message', () => setTimeout(() => ${how === 'stopWorker' ? 'stopWorker(w)' : 'w.terminate()'}.then(() => console.log('stopped')), 30));
} else {
  exitWhenAsked();
  const { TrainStepRunner } = require(${JSON.stringify(path.join(dist, 'runtime/train-step.js'))});
  const { builtinSpec } = require(${JSON.stringify(path.join(dist, 'model/spec.js'))});
  const { initParams } = require(${JSON.stringify(path.join(dist, 'model/params.js'))});
  const { DEFAULT_OPTIMIZER } = require(${JSON.stringify(path.join(dist, 'model/optimizers.js'))});
  const { randomBatch } = require(${JSON.stringify(path.join(dist, 'bench/train.js'))});
  (async () => {
    const spec = builtinSpec('tiny');
    const runner = await TrainStepRunner.create({ spec, params: initParams(spec, 0) }, { optimizer: DEFAULT_OPTIMIZER.adam, threads: 1 });
    const batch = randomBatch(spec, 256);
    parentPort.postMessage('running');
    for (;;) await runner.run(batch, { lr: 1e-4, weightDecay: 0, clipNorm: 0, taskWeights: [1, 1, 1] });
  })();
}`;

describe('stopping a worker that runs ONNX Runtime sessions', () => {
  it('ends the worker between runs, without aborting the process', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'trident-exit-'));
    try {
      const file = path.join(dir, 'stop.js');
      writeFileSync(file, script(path.join(__dirname, '..'), 'stopWorker'));
      for (let i = 0; i < 3; i++) {
        const r = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: path.join(__dirname, '..', '..'), timeout: 30_000 });
        expect({ status: r.status, out: r.stdout.trim() }).toEqual({ status: 0, out: 'stopped' });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
