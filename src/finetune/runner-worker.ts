/**
 * A job's runner, in its own worker thread so that nothing of a job runs on the server's event
 * loop: it loads the data, drives the trainer worker (TrainJob, a nested worker), then evaluates
 * the candidate and the serving version. Threads it starts inherit its lowered priority.
 */
import { parentPort } from 'node:worker_threads';
import { readManifest } from '../artifacts/manifest';
import type { Dataset } from '../data/dataset';
import { evaluateModel } from '../train/evaluate';
import { TrainJob } from '../train/job';
import { lowerPriority } from './priority';
import { taskLosses } from './record';
import { referenceSet } from './reference';
import type { FromRunner, RunPlan, SetMetrics, ToRunner } from './runner-protocol';
import { exitWhenAsked } from '../runtime/worker-exit';

const port = parentPort!;
const post = (m: FromRunner) => port.postMessage(m);
let cancelled = false;
let job: TrainJob | undefined;

class Cancelled extends Error {}

async function compare(name: string, dataset: Dataset, plan: RunPlan): Promise<SetMetrics> {
  const options = { device: plan.device, threads: plan.threads, batchSize: 64 };
  const candidate = await evaluateModel(plan.train.outDir, dataset, options);
  if (cancelled) throw new Cancelled();
  const serving = await evaluateModel(plan.servingDir, dataset, options);
  return { name, samples: dataset.length, candidate: candidate.metrics, serving: serving.metrics };
}

async function run(plan: RunPlan): Promise<void> {
  const priorityProblem = lowerPriority(plan.nice);
  if (priorityProblem) post({ type: 'warning', message: priorityProblem });
  // Checksums here rather than on the server's event loop: a damaged serving version fails the job.
  const manifest = await readManifest(plan.servingDir, { verify: true });
  job = await TrainJob.start(plan.train);
  if (cancelled) job.stop();
  job.on('warning', (message) => post({ type: 'warning', message }));
  job.on('ready', (m) =>
    post({
      type: 'ready',
      ready: { provider: m.provider, trainSamples: m.trainSamples, valSamples: m.valSamples, stepsPerEpoch: m.stepsPerEpoch, totalSteps: plan.totalSteps },
    }),
  );
  job.on('step', (m) =>
    post({
      type: 'step',
      step: { step: m.step, totalSteps: plan.totalSteps, epoch: m.epoch + 1, loss: m.loss, losses: taskLosses(m.taskLosses), imagesPerSecond: m.imagesPerSecond, lr: m.lr },
    }),
  );
  job.on('epoch', ({ summary: s }) =>
    post({
      type: 'epoch',
      epoch: { epoch: s.epoch + 1, trainLoss: s.trainLoss, valLoss: s.valLoss, valLosses: taskLosses(s.valLosses), metrics: s.metrics, seconds: s.seconds },
    }),
  );
  const done = await job.done;
  if (cancelled || done.reason === 'stopped') return post({ type: 'cancelled' });
  post({ type: 'trained', reason: done.reason });

  const heldOut = await compare('held-out', job.sources.val, plan);
  if (cancelled) return post({ type: 'cancelled' });
  const reference = await referenceSet(manifest, plan.reference);
  if (reference && 'dataset' in reference) {
    post({ type: 'evaluated', heldOut, reference: await compare(reference.name, reference.dataset, plan) });
  } else {
    post({ type: 'evaluated', heldOut, referenceSkipped: reference?.skipped });
  }
}

// Nested trainer workers stop first: terminating a thread inside a session run aborts the process.
exitWhenAsked(async () => {
  await job?.kill();
});

port.on('message', (m: ToRunner) => {
  if (m.type === 'cancel') {
    cancelled = true;
    job?.stop();
  } else if (m.type === 'start') {
    run(m.plan).catch((e: Error) => post(e instanceof Cancelled ? { type: 'cancelled' } : { type: 'failed', message: e.message }));
  }
});
