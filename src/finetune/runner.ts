/** The main-thread handle of a job's runner worker: its progress as events, its result as a promise. */
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { stopWorker } from '../runtime/worker-exit';
import type { EpochReport, ReadyInfo, StepInfo } from './record';
import type { FromRunner, RunPlan, SetMetrics, ToRunner } from './runner-protocol';

export interface RunnerEvents {
  ready: [ReadyInfo];
  step: [StepInfo];
  epoch: [EpochReport];
  warning: [string];
  /** Training finished; evaluation starts. */
  trained: [string];
}

export type RunOutcome =
  | { kind: 'evaluated'; heldOut: SetMetrics; reference?: SetMetrics; referenceSkipped?: string }
  | { kind: 'cancelled' };

export class JobRunner extends EventEmitter<RunnerEvents> {
  readonly outcome: Promise<RunOutcome>;
  private readonly worker: Worker;
  private cancelTimer?: NodeJS.Timeout;

  constructor(plan: RunPlan) {
    super();
    this.worker = new Worker(path.join(__dirname, 'runner-worker.js'));
    this.outcome = new Promise<RunOutcome>((resolve, reject) => {
      let settled = false;
      const settle = (result: RunOutcome | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(this.cancelTimer);
        void stopWorker(this.worker);
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      this.worker.on('error', (e) => settle(e));
      this.worker.on('exit', (code) => settle(this.cancelTimer ? { kind: 'cancelled' } : new Error(`the job's worker exited with code ${code}`)));
      this.worker.on('message', (m: FromRunner) => {
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
            return settle({ kind: 'evaluated', heldOut: m.heldOut, reference: m.reference, referenceSkipped: m.referenceSkipped });
          case 'cancelled':
            return settle({ kind: 'cancelled' });
          case 'failed':
            return settle(new Error(m.message));
        }
      });
    });
    this.send({ type: 'start', plan });
  }

  /** Asks the job to stop after its current step; ends the worker (between steps) if it has not stopped within `graceMs`. */
  cancel(graceMs: number): void {
    if (this.cancelTimer) return;
    this.send({ type: 'cancel' });
    this.cancelTimer = setTimeout(() => void stopWorker(this.worker), graceMs);
  }

  /** Ends the worker after its current step (server shutdown). */
  async terminate(): Promise<void> {
    await stopWorker(this.worker);
  }

  private send(message: ToRunner): void {
    this.worker.postMessage(message);
  }
}
