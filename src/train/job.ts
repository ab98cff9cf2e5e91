/**
 * A training job: loads the data on this thread, starts the trainer worker, answers its batch
 * requests and relays its progress unchanged. The CLI and the server both run training through this.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Batch } from '../data/dataset';
import { WorkerChannel } from '../runtime/worker-channel';
import type { TrainConfig } from './config';
import type { EpochReport, StepProgress, TrainReady } from './progress';
import type { FromTrainer, StopReason, ToTrainer } from './protocol';

export type { TrainReady };
import { augmentationOf, BatchMaker, loadSources, type DataSources } from './sources';
import { checkWeighting } from './weighting';

export interface TrainDone {
  reason: StopReason;
  epochs: EpochReport[];
  outDir: string;
}

export interface TrainJobEvents {
  ready: [TrainReady];
  step: [StepProgress];
  epoch: [EpochReport];
  checkpoint: [{ file: string; epoch: number; index: number }];
  warning: [string];
}

const TRAINER_SCRIPT = path.join(__dirname, 'worker.js');

export class TrainJob extends EventEmitter<TrainJobEvents> {
  readonly done: Promise<TrainDone>;
  private readonly channel: WorkerChannel<ToTrainer, FromTrainer>;
  private stopping = false;

  private constructor(
    readonly config: TrainConfig,
    private readonly maker: BatchMaker,
    readonly sources: DataSources,
  ) {
    super();
    let resolve!: (done: TrainDone) => void;
    let reject!: (error: Error) => void;
    this.done = new Promise((res, rej) => ((resolve = res), (reject = rej)));
    this.channel = new WorkerChannel<ToTrainer, FromTrainer>(
      TRAINER_SCRIPT,
      {
        message: (m) => this.receive(m, resolve, (e) => this.fail(e, reject)),
        failed: reject,
      },
      {},
      'the trainer worker',
    );
    this.channel.send({ type: 'start', config, stepsPerEpoch: maker.stepsPerEpoch, valBatches: maker.valBatches });
  }

  /** Loads the data (errors surface here, before any training) and starts the worker. */
  static async start(config: TrainConfig): Promise<TrainJob> {
    checkWeighting(config.weighting, config.taskWeights, config.tasks);
    const warnings: string[] = [];
    const sources = await loadSources(config.spec, config.data, config.seed, (w) => warnings.push(w));
    if (sources.train.length === 0) throw new Error('the training set is empty');
    if (sources.val.length === 0) throw new Error('the validation set is empty; give more samples or a larger validation share');
    mkdirSync(config.outDir, { recursive: true });
    const maker = new BatchMaker(sources, config.spec, config.batchSize, config.seed, augmentationOf(config));
    const job = new TrainJob(config, maker, sources);
    // After the caller's `await TrainJob.start(…)` continuation has attached its listeners (a microtask would run before it).
    for (const w of warnings) setImmediate(() => job.emit('warning', w));
    return job;
  }

  /** Asks the worker to finish its current step, write a checkpoint and stop. */
  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.channel.send({ type: 'stop' });
  }

  /** Ends the worker after its current step, without a checkpoint; for shutdown paths. */
  async kill(): Promise<void> {
    await this.channel.stop();
  }

  private fail(error: Error, reject: (error: Error) => void): void {
    if (!this.channel.settle()) return;
    void this.channel.stop();
    reject(error);
  }

  private receive(m: FromTrainer, resolve: (done: TrainDone) => void, fail: (error: Error) => void): void {
    switch (m.type) {
      case 'need': {
        let batch: Batch;
        try {
          batch = m.kind === 'train' ? this.maker.train(m.epoch, m.index) : this.maker.val(m.index);
        } catch (e) {
          return fail(e as Error);
        }
        const buffers = [batch.images.buffer, batch.labels.buffer, batch.objectness.buffer, batch.boxes.buffer, batch.mask.buffer] as ArrayBuffer[];
        return this.channel.send({ type: 'batch', kind: m.kind, epoch: m.epoch, index: m.index, batch }, buffers);
      }
      case 'ready':
        return void this.emit('ready', { ...m.ready, trainSamples: this.sources.train.length, valSamples: this.sources.val.length });
      case 'step':
        return void this.emit('step', m.step);
      case 'epoch':
        return void this.emit('epoch', m.epoch);
      case 'checkpoint':
        return void this.emit('checkpoint', { file: m.file, epoch: m.epoch, index: m.index });
      case 'error':
        return fail(new Error(m.message));
      case 'done':
        void this.channel.stop();
        return resolve({ reason: m.reason, epochs: m.epochs, outDir: m.outDir });
    }
  }
}
