/**
 * Running jobs: the queue feeds at most `maxRunningJobs` runners; each job trains in its worker,
 * is evaluated, then gated and promoted (or only written) as a new version. Progress goes into the
 * record (saved now and then) and to watchers; every job ends in exactly one final state.
 */
import { promises as fs } from 'node:fs';
import { readManifest } from '../artifacts/manifest';
import { servingVersion, stagingDir } from '../artifacts/repository';
import { TridentError } from '../base/errors';
import { chooseWeighting } from '../model/weighting/index';
import { DEFAULTS, type TrainConfig } from '../train/config';
import type { ActiveJob, JobBoard } from './board';
import { decide } from './gate';
import { trainingLength } from './hyperparams';
import { annotateCandidate, jobLineage, promote, revertPromotion, versionDir, type PromotionPhase } from './promotion';
import { isEnded, type Decision, type Evaluation, type JobRecord, type JobState } from './record';
import { JobRunner } from './runner';
import type { RunPlan } from './runner-protocol';
import { checkJobId } from './store';

const PROGRESS_SAVE_INTERVAL_MS = 2000;

export interface ExecutionHooks {
  /** After a model's "latest" moved; if it throws, the promotion is undone. */
  onServingChanged?: (model: string, latest: number) => Promise<void> | void;
  /** A promotion step just finished on disk. */
  phase?: (jobId: string, phase: PromotionPhase) => void;
}

export class JobExecution {
  constructor(
    private readonly board: JobBoard,
    private readonly hooks: ExecutionHooks,
  ) {}

  /** Starts queued jobs while runner slots are free. */
  pump(): void {
    const board = this.board;
    while (!board.closing && board.running.size < board.config.maxRunningJobs && board.queue.length > 0) {
      const active = board.active.get(board.queue.shift()!);
      if (!active) continue;
      const run: Promise<void> = this.execute(active).finally(() => {
        board.running.delete(run);
        this.pump();
      });
      board.running.add(run);
    }
  }

  async cancel(id: string): Promise<JobRecord> {
    checkJobId(id);
    const board = this.board;
    const active = board.active.get(id);
    // A job that is finishing has its final state already, while its files are still being written.
    if (!active || isEnded(active.record.state)) {
      const record = active?.record ?? (await board.store.load(id));
      throw new TridentError('conflict', `job ${id} has already ended (${record.state})`);
    }
    const { record } = active;
    if (record.state === 'queued') {
      board.queue.splice(board.queue.indexOf(id), 1);
      await this.finish(active, 'cancelled');
    } else if (record.state === 'promoting') {
      throw new TridentError('conflict', `job ${id} is promoting its result and can no longer be cancelled`);
    } else {
      record.cancelRequested = true;
      await board.store.save(record);
      active.runner?.cancel(board.config.cancelGraceMs);
    }
    return structuredClone(record);
  }

  /** Ends every job (running ones are stopped at once and marked failed); new ones are refused from now on. */
  async close(): Promise<void> {
    const board = this.board;
    board.closing = true;
    for (const id of board.queue.splice(0)) {
      const active = board.active.get(id);
      if (active) await this.finish(active, 'failed', 'server shut down before the job started');
    }
    for (const active of board.active.values()) void active.runner?.terminate();
    await Promise.all([...board.running]);
  }

  private async execute(active: ActiveJob): Promise<void> {
    const board = this.board;
    const { record } = active;
    const modelDir = board.modelDir(record.model);
    const staging = stagingDir(modelDir, record.id);
    try {
      record.startedAt = new Date().toISOString();
      await this.transition(active, 'running');
      const servingDir = versionDir(modelDir, record.parentVersion);
      const manifest = await readManifest(servingDir);
      const plan: RunPlan = {
        train: this.trainConfig(record, manifest.spec, active.jsonl, staging, servingDir),
        servingDir,
        reference: board.config.reference || undefined,
        device: board.config.device,
        threads: board.config.threads,
        nice: board.config.nice,
      };
      const runner = new JobRunner(plan);
      active.runner = runner;
      if (board.closing) void runner.terminate();
      if (record.cancelRequested) runner.cancel(board.config.cancelGraceMs);
      this.follow(active, runner);
      const outcome = await runner.outcome;
      if (outcome.kind === 'cancelled' || record.cancelRequested) return await this.finish(active, 'cancelled');
      const evaluation: Evaluation = {
        metric: board.config.gate.metric,
        tolerance: board.config.gate.tolerance,
        heldOut: outcome.heldOut,
        ...(outcome.reference ? { reference: outcome.reference } : {}),
        ...(outcome.referenceSkipped ? { referenceSkipped: outcome.referenceSkipped } : {}),
      };
      record.evaluation = evaluation;
      board.publish(record.id, { type: 'evaluation', evaluation });
      await this.transition(active, 'promoting');
      record.decision = await this.promoteCandidate(record, modelDir, staging, evaluation);
      board.publish(record.id, { type: 'decision', decision: record.decision });
      await this.finish(active, 'succeeded');
    } catch (e) {
      const reason = board.closing ? 'server shut down during the job' : (e as Error).message;
      await this.finish(active, 'failed', reason).catch((error: Error) => board.log(`fine-tune job ${record.id}: could not record its failure: ${error.message}`));
    }
  }

  private trainConfig(record: JobRecord, spec: TrainConfig['spec'], jsonl: string, outDir: string, from: string): TrainConfig {
    const p = record.params;
    const config = this.board.config;
    const length = trainingLength(p, record.data.samples);
    return {
      ...DEFAULTS,
      spec,
      data: { kind: 'annotations', file: jsonl, valShare: p.valShare, maxPixels: config.limits.maxPixels },
      outDir,
      epochs: length.epochs,
      maxSteps: length.maxSteps,
      batchSize: p.batchSize,
      lr: p.lr,
      optimizer: p.optimizer,
      taskWeights: p.taskWeights,
      // Records written before strategies existed have no weighting: static λ.
      weighting: chooseWeighting(p.weighting ?? 'static', p.weightingOptions ?? {}),
      freezeTrunk: p.freezeTrunk,
      seed: p.seed,
      augment: p.augment,
      device: config.device,
      threads: config.threads,
      from,
      name: record.model,
      lineage: { jobId: record.id, parentVersion: record.parentVersion, dataSha256: record.data.sha256 },
    };
  }

  /** Relays the runner's progress into the record (saved now and then) and to watchers, unchanged. */
  private follow(active: ActiveJob, runner: JobRunner): void {
    const board = this.board;
    const { record } = active;
    let lastSave = 0;
    const saveNowAndThen = () => {
      const now = Date.now();
      if (now - lastSave < PROGRESS_SAVE_INTERVAL_MS) return;
      lastSave = now;
      void board.store.save(record).catch(() => {});
    };
    runner.on('ready', (ready) => {
      record.progress.totalSteps = ready.totalSteps;
      board.publish(record.id, { type: 'ready', ready });
    });
    runner.on('step', (step) => {
      record.progress = { ...record.progress, step: step.step, epoch: step.epoch, loss: step.loss, losses: step.losses, imagesPerSecond: step.imagesPerSecond };
      board.publish(record.id, { type: 'step', step });
      saveNowAndThen();
    });
    runner.on('epoch', (epoch) => {
      record.epochs.push(epoch);
      board.publish(record.id, { type: 'epoch', epoch });
      void board.store.save(record).catch(() => {});
    });
    runner.on('warning', (warning) => {
      record.warnings.push(warning);
      board.publish(record.id, { type: 'warning', warning });
    });
    runner.on('trained', () => void this.transition(active, 'evaluating').catch(() => {}));
  }

  private async promoteCandidate(record: JobRecord, modelDir: string, staging: string, evaluation: Evaluation): Promise<Decision> {
    const board = this.board;
    const gate = decide(evaluation, record.force);
    const { version, latest, previous } = await board.locks.run(record.model, async () => {
      await annotateCandidate(staging, record.model, evaluation, gate, jobLineage(record));
      const before = (await servingVersion(modelDir))!;
      const result = await promote(modelDir, staging, record, gate, {
        recordVersion: async (v) => {
          record.version = v;
          await board.store.save(record);
        },
        phase: (phase) => this.hooks.phase?.(record.id, phase),
      });
      return { ...result, previous: before };
    });
    board.log(`fine-tune job ${record.id}: ${record.model} version ${version} written; ${gate.reason}`);
    if (!gate.promoted) return { ...gate, version, latest };
    try {
      await this.hooks.onServingChanged?.(record.model, version);
    } catch (e) {
      await board.locks.run(record.model, () => revertPromotion(modelDir, previous, record.id));
      return { ...gate, promoted: false, version, latest: previous, reason: `${gate.reason}; but the server could not load it (${(e as Error).message}), so "latest" stays ${previous}` };
    }
    return { ...gate, version, latest };
  }

  private async transition(active: ActiveJob, state: JobState): Promise<void> {
    active.record.state = state;
    await this.board.store.save(active.record);
    this.board.publish(active.record.id, { type: 'state', state });
  }

  private async finish(active: ActiveJob, state: 'succeeded' | 'failed' | 'cancelled', error?: string): Promise<void> {
    const board = this.board;
    const { record } = active;
    record.state = state;
    record.endedAt = new Date().toISOString();
    if (error) record.error = board.withoutServerPaths(error);
    try {
      // After a promotion the staging folder is the new version and no longer exists.
      await fs.rm(stagingDir(board.modelDir(record.model), record.id), { recursive: true, force: true });
      await board.store.save(record);
      await board.store.removeUploads(record.id);
    } finally {
      board.active.delete(record.id);
      if (board.byModel.get(record.model) === record.id) board.byModel.delete(record.model);
      board.publish(record.id, { type: 'state', state });
      board.publish(record.id, { type: 'end', job: structuredClone(record) });
      board.hub.close(record.id);
      board.log(`fine-tune job ${record.id}: ${state}${error ? ` (${error})` : ''}`);
    }
  }
}
