/** The main-thread handle of a job's runner worker: its progress as events, its result as a promise. */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { WorkerChannel } from '../runtime/worker-channel';
import type { EpochReport, StepProgress, TrainReady } from './record';
import type { FromRunner, RunPlan, SetMetrics, ToRunner } from './runner-protocol';

export interface RunnerEvents {
  ready: [TrainReady];
  step: [StepProgress];
  epoch: [EpochReport];
  warning: [string];
  /** Training finished; evaluation starts. */
  trained: [string];
}

export type RunOutcome =
  | { kind: 'evaluated'; heldOut: SetMetrics; reference?: SetMetrics; referenceSkipped?: string }
  | { kind: 'cancelled' };

const RUNNER_SCRIPT = path.join(__dirname, 'runner-worker.js');

export class JobRunner extends EventEmitter<RunnerEvents> {
  readonly outcome: Promise<RunOutcome>;
  private readonly channel: WorkerChannel<ToRunner, FromRunner>;
  private end!: (result: RunOutcome | Error) => void;
  private cancelTimer?: NodeJS.Timeout;

  constructor(plan: RunPlan) {
    super();
    this.outcome = new Promise<RunOutcome>((resolve, reject) => {
      let ended = false;
      this.end = (result) => {
        if (ended) return;
        ended = true;
        clearTimeout(this.cancelTimer);
        void this.channel.stop();
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
    });
    this.channel = new WorkerChannel<ToRunner, FromRunner>(
      RUNNER_SCRIPT,
      {
        message: (m) => {
          switch (m.type) {
            case 'ready':
              return void this.emit('ready', m.ready);
            case 'step':
              return void this.emit('step', m.step);
            case 'epoch':
              return void this.emit('epoch', m.epoch);
            case 'warning':
              return void this.emit('warning', m.message);
            case 'trained':
              return void this.emit('trained', m.reason);
            case 'evaluated':
              return this.end({ kind: 'evaluated', heldOut: m.heldOut, reference: m.reference, referenceSkipped: m.referenceSkipped });
            case 'cancelled':
              return this.end({ kind: 'cancelled' });
            case 'failed':
              return this.end(new Error(m.message));
          }
        },
        failed: (error) => this.end(this.cancelTimer ? { kind: 'cancelled' } : error),
      },
      {},
      "the job's worker",
    );
    this.channel.send({ type: 'start', plan });
  }

  /** Asks the job to stop after its current step; ends the worker (between steps) if it has not stopped within `graceMs`. */
  cancel(graceMs: number): void {
    if (this.cancelTimer) return;
    this.channel.send({ type: 'cancel' });
    this.cancelTimer = setTimeout(() => this.end({ kind: 'cancelled' }), graceMs);
  }

  /** Ends the worker after its current step (server shutdown); the outcome is then that error. */
  async terminate(): Promise<void> {
    this.end(new Error("the job's worker was stopped: the server is shutting down"));
    await this.channel.exited;
  }
}
