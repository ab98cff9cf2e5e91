/**
 * A training job: loads the data on this thread, starts the trainer worker, answers its batch
 * requests and relays its progress. The CLI and the server both run training through this.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Batch } from '../data/dataset';
import { stopWorker } from '../runtime/worker-exit';
import type { TrainConfig } from './config';
import type { FromWorker, ToWorker } from './protocol';
import { augmentationOf, BatchMaker, loadSources, type DataSources } from './sources';

export type DoneMessage = Extract<FromWorker, { type: 'done' }>;
export type StepMessage = Extract<FromWorker, { type: 'step' }>;
export type EpochMessage = Extract<FromWorker, { type: 'epoch' }>;
export type ReadyMessage = Extract<FromWorker, { type: 'ready' }>;

export interface TrainJobEvents {
  ready: [ReadyMessage & { stepsPerEpoch: number; trainSamples: number; valSamples: number }];
  step: [StepMessage & { imagesPerSecond: number }];
  epoch: [EpochMessage];
  checkpoint: [Extract<FromWorker, { type: 'checkpoint' }>];
  warning: [string];
}

export class TrainJob extends EventEmitter<TrainJobEvents> {
  readonly done: Promise<DoneMessage>;
  private worker?: Worker;
  private stopping = false;

  private constructor(
    readonly config: TrainConfig,
    private readonly maker: BatchMaker,
    readonly sources: DataSources,
  ) {
    super();
    this.done = new Promise((resolve, reject) => this.launch(resolve, reject));
  }

  /** Loads the data (errors surface here, before any training) and starts the worker. */
  static async start(config: TrainConfig): Promise<TrainJob> {
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
    this.send({ type: 'stop' });
  }

  /** Ends the worker after its current step, without a checkpoint; for shutdown paths. */
  async kill(): Promise<void> {
    if (this.worker) await stopWorker(this.worker);
  }

  private send(message: ToWorker, transfer: ArrayBuffer[] = []): void {
    this.worker?.postMessage(message, transfer);
  }

  private launch(resolve: (m: DoneMessage) => void, reject: (e: Error) => void): void {
    const worker = new Worker(path.join(__dirname, 'worker.js'));
    this.worker = worker;
    let settled = false;
    const fail = (e: Error) => {
      if (settled) return;
      settled = true;
      void stopWorker(worker);
      reject(e);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`trainer worker exited with code ${code} before finishing`)));
    worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'need': {
          let batch: Batch;
          try {
            batch = m.kind === 'train' ? this.maker.train(m.epoch, m.index) : this.maker.val(m.index);
          } catch (e) {
            fail(e as Error);
            return;
          }
          const buffers = [batch.images.buffer, batch.labels.buffer, batch.objectness.buffer, batch.boxes.buffer, batch.mask.buffer] as ArrayBuffer[];
          this.send({ type: 'batch', kind: m.kind, epoch: m.epoch, index: m.index, batch }, buffers);
          break;
        }
        case 'ready':
          this.emit('ready', {
            ...m,
            stepsPerEpoch: this.maker.stepsPerEpoch,
            trainSamples: this.sources.train.length,
            valSamples: this.sources.val.length,
          });
          break;
        case 'step': {
          this.emit('step', { ...m, imagesPerSecond: (this.config.batchSize * 1000) / Math.max(m.wallMs, 1e-3) });
          break;
        }
        case 'epoch':
          this.emit('epoch', m);
          break;
        case 'checkpoint':
          this.emit('checkpoint', m);
          break;
        case 'error':
          fail(new Error(m.message));
          break;
        case 'done':
          settled = true;
          void stopWorker(worker);
          resolve(m);
          break;
      }
    });
    this.send({ type: 'start', config: this.config, stepsPerEpoch: this.maker.stepsPerEpoch, valBatches: this.maker.valBatches });
  }
}
