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
  job.on('ready', (ready) => post({ type: 'ready', ready }));
  job.on('step', (step) => post({ type: 'step', step }));
  job.on('epoch', (epoch) => post({ type: 'epoch', epoch }));
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
