/**
 * The trainer worker: owns the ONNX Runtime sessions, runs the epoch loop, writes checkpoints and
 * exports the model. Batches come from the main thread on request (see batch-queue.ts).
 */
import path from 'node:path';
import { parentPort } from 'node:worker_threads';
import { saveCheckpointSync } from '../artifacts/checkpoint';
import { exportModel, FILES } from '../artifacts/export';
import { buildEvalGraph } from '../artifacts/graphs';
import { DEFAULT_OPTIMIZER } from '../model/optimizers';
import { encodeModel } from '../onnx/serialize';
import { createSession } from '../runtime/session';
import { TrainStepRunner } from '../runtime/train-step';
import { exitWhenAsked } from '../runtime/worker-exit';
import { BatchQueue } from './batch-queue';
import type { TrainConfig } from './config';
import { runEpochs, totalSteps } from './epochs';
import type { FromTrainer, ToTrainer } from './protocol';
import { freshProgress, startingPoint } from './resume';
import { HostWeighting } from './weighting';

const port = parentPort!;
const post = (m: FromTrainer) => port.postMessage(m);
const batches = new BatchQueue((kind, epoch, index) => post({ type: 'need', kind, epoch, index }));
let stopRequested = false;

async function train(config: TrainConfig, stepsPerEpoch: number, valBatches: number): Promise<void> {
  const start = startingPoint(config);
  const optimizer = DEFAULT_OPTIMIZER[config.optimizer];
  const runner = await TrainStepRunner.create(start.checkpoint, {
    optimizer,
    frozen: config.freezeTrunk ? ['trunk'] : [],
    labelSmoothing: config.labelSmoothing,
    weighting: config.weighting,
    tasks: config.tasks,
    device: config.device,
    threads: config.threads,
    stepsPerRun: config.stepsPerRun,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const evalSession = (await createSession(encodeModel(buildEvalGraph(config.spec).model), { device: runner.provider, threads: config.threads })).session;
  const progress = start.progress ?? freshProgress(config.seed);
  const weighting = new HostWeighting(config.weighting, config.taskWeights, config.tasks, progress.weighting);
  post({
    type: 'ready',
    ready: { provider: runner.provider, epoch: progress.epoch + 1, index: progress.index, step: runner.stepsTaken, resumed: !!start.progress, stepsPerEpoch, totalSteps: totalSteps(config, stepsPerEpoch) },
  });
  const own = path.join(config.outDir, FILES.checkpoint);
  const saveCheckpoint = () => {
    saveCheckpointSync(own, runner.checkpoint({ ...progress }));
    post({ type: 'checkpoint', file: own, epoch: progress.epoch, index: progress.index });
  };
  const { reason, partial } = await runEpochs({ config, runner, evalSession, batches, stepsPerEpoch, valBatches, progress, weighting, stopRequested: () => stopRequested, post, saveCheckpoint });
  if (reason !== 'stopped') {
    const last = partial ?? progress.epochs[progress.epochs.length - 1];
    await exportModel({
      spec: config.spec,
      outDir: config.outDir,
      checkpoint: runner.checkpoint({ ...progress }),
      name: config.name,
      metrics: last ? { validation: last.metrics, validationLoss: last.valLoss, epochs: progress.epochs.length } : {},
      lineage: { ...(config.lineage ?? {}), from: config.from ?? null, seed: config.seed, optimizer: optimizer.name, weighting: config.weighting, tasks: config.tasks },
      weighting: config.weighting,
      tasks: config.tasks,
    });
  }
  await evalSession.release();
  await runner.release();
  post({ type: 'done', reason, epochs: progress.epochs, outDir: config.outDir });
}

exitWhenAsked();

port.on('message', (m: ToTrainer) => {
  if (m.type === 'batch') batches.deliver(m.kind, m.epoch, m.index, m.batch);
  else if (m.type === 'stop') stopRequested = true;
  else if (m.type === 'start') {
    train(m.config, m.stepsPerEpoch, m.valBatches).catch((e: Error) => post({ type: 'error', message: e.message }));
  }
});
