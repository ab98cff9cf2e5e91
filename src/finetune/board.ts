/**
 * What the fine-tune job system's parts share: the job records (on disk and in memory), which job
 * holds each model, the queue, watchers, per-model locks, and the checks every part makes.
 */
import path from 'node:path';
import { TridentError } from '../base/errors';
import { KeyedLock } from '../runtime/keyed-lock';
import { checkModelName } from '../runtime/model-registry';
import type { FinetuneConfig } from './config';
import { JobEventHub } from './events';
import type { JobEvent, JobRecord } from './record';
import type { JobRunner } from './runner';
import { JobStore } from './store';

/** A job that is queued or running, with what only this process knows of it. */
export interface ActiveJob {
  record: JobRecord;
  /** The annotation file on disk. */
  jsonl: string;
  runner?: JobRunner;
}

export class JobBoard {
  readonly store: JobStore;
  readonly hub = new JobEventHub();
  /** Model → id of its reserved, queued or running job. */
  readonly byModel = new Map<string, string>();
  readonly active = new Map<string, ActiveJob>();
  readonly queue: string[] = [];
  readonly running = new Set<Promise<void>>();
  /** Promotions, rollbacks and weights uploads of one model run one at a time. */
  readonly locks = new KeyedLock();
  /** Uploads holding a model's slot and a queue place, not yet jobs. */
  reserved = 0;
  closing = false;

  constructor(
    readonly models: string,
    readonly config: FinetuneConfig,
    private readonly logLine?: (message: string) => void,
  ) {
    this.store = new JobStore(models);
  }

  publish(id: string, event: JobEvent): void {
    this.hub.publish(id, event);
  }

  modelDir(name: string): string {
    return path.join(this.models, name);
  }

  checkName(model: string): string {
    return checkModelName(model);
  }

  checkOpen(): void {
    if (this.closing) throw new TridentError('unavailable', 'the server is shutting down');
  }

  /** Records are readable without a key: they name files relative to the repository, not where it lies. */
  withoutServerPaths(text: string): string {
    const root = path.resolve(this.models);
    return text.split(`${root}${path.sep}`).join('').split(root).join('.');
  }

  log(message: string): void {
    this.logLine?.(message);
  }
}
