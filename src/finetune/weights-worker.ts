/**
 * Builds a candidate version from uploaded weights and measures it, in its own worker thread so
 * that none of it runs on the server's event loop: exports the model folder (graphs, checkpoint,
 * manifest) into the staging folder, then evaluates it beside the serving version on the model's
 * reference set, when it has one.
 */
import { parentPort } from 'node:worker_threads';
import { exportModel } from '../artifacts/export';
import { readManifest } from '../artifacts/manifest';
import { manifestOptimizer } from '../model/optimizers';
import { evaluateModel } from '../train/evaluate';
import { lowerPriority } from './priority';
import { referenceSet } from './reference';
import type { SetMetrics } from './runner-protocol';
import type { WeightsPlan, WeightsWorkerReply } from './weights-protocol';

const port = parentPort!;

async function run(plan: WeightsPlan): Promise<WeightsWorkerReply> {
  const warning = lowerPriority(plan.nice);
  const serving = await readManifest(plan.servingDir, { verify: true });
  // The serving version's spec and optimizer; the upload brings the weights alone.
  await exportModel({
    spec: serving.spec,
    outDir: plan.staging,
    optimizer: manifestOptimizer(serving),
    checkpoint: { spec: serving.spec, ...plan.weights },
    name: plan.model,
    metrics: {},
    lineage: plan.lineage,
  });
  const reference = await referenceSet(serving, plan.reference);
  if (!reference || !('dataset' in reference)) return { type: 'done', referenceSkipped: reference?.skipped, warning };
  const options = { device: plan.device, threads: plan.threads, batchSize: 64 };
  const candidate = await evaluateModel(plan.staging, reference.dataset, options);
  const current = await evaluateModel(plan.servingDir, reference.dataset, options);
  const metrics: SetMetrics = { name: reference.name, samples: reference.dataset.length, candidate: candidate.metrics, serving: current.metrics };
  return { type: 'done', reference: metrics, warning };
}

port.once('message', (plan: WeightsPlan) => {
  run(plan).then(
    (reply) => port.postMessage(reply),
    (e: Error) => port.postMessage({ type: 'failed', message: e.message } satisfies WeightsWorkerReply),
  );
});
