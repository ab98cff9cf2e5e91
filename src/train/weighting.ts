/**
 * The weighting strategy's host side in the trainer (its graph side is in the train step): the
 * task weights and host inputs fed to each run, and the hooks after each step and each epoch.
 * Its state travels in the checkpoint's progress, so --resume continues it exactly.
 */
import { TASK_COUNT, TASKS, type Task, type TaskVector } from '../model/tasks';
import { weightingTensorName } from '../model/weighting/graph';
import { weightingStrategy, type WeightingChoice } from '../model/weighting/index';
import type { HostState, WeightingFeeds, WeightingStrategy } from '../model/weighting/types';
import type { StepHyper, StepResult } from '../runtime/train-step';

export { checkWeighting } from '../model/weighting/index';

/** What progress.weighting holds: the strategy's host state, tagged with the strategy's name. */
export type WeightingProgress = HostState & { strategy?: string };

export class HostWeighting {
  private readonly strategy: WeightingStrategy;
  private readonly active: number[];
  private state: HostState;

  constructor(
    private readonly choice: WeightingChoice,
    private readonly lambda: TaskVector,
    tasks: readonly Task[],
    saved?: WeightingProgress,
  ) {
    this.strategy = weightingStrategy(choice.name);
    this.active = TASKS.flatMap((t, i) => (tasks.includes(t) ? [i] : []));
    const host = this.strategy.host;
    // Checkpoints written before strategies were tagged hold DWA's history untagged.
    const own = saved && (saved.strategy === choice.name || (saved.strategy === undefined && choice.name === 'dwa' && Array.isArray(saved.history)));
    this.state = host ? (own ? { ...saved } : host.init(this.active.length, choice.options)) : {};
    if (this.state.strategy !== undefined) delete this.state.strategy;
  }

  /** Steps per ONNX Runtime run that the host allows (1 when each step's feeds depend on the last step). */
  get stepsPerRun(): number {
    return this.strategy.host?.stepsPerRun ?? Infinity;
  }

  /** λ as fed to the next run: the static weights times the strategy's scale (DWA), zero for tasks not trained. */
  taskWeights(): TaskVector {
    return this.scaled(this.feeds().lossScale);
  }

  /** The next run's task weights and host inputs. */
  hyper(): Pick<StepHyper, 'taskWeights' | 'weightingInputs'> {
    const { lossScale, inputs } = this.feeds();
    const taskWeights = this.scaled(lossScale);
    if (!inputs) return { taskWeights };
    const weightingInputs: Record<string, number[]> = {};
    for (const [name, values] of Object.entries(inputs)) weightingInputs[weightingTensorName(this.choice.name, name)] = this.spread(values);
    return { taskWeights, weightingInputs };
  }

  private feeds(): WeightingFeeds {
    return this.strategy.host?.feeds(this.state, this.choice.options) ?? {};
  }

  /** λ times `scale` (per trained task; ones when absent), zero for tasks not trained. */
  private scaled(scale: readonly number[] | undefined): TaskVector {
    return TASKS.map((_, t) => {
      const k = this.active.indexOf(t);
      return k < 0 ? 0 : this.lambda[t] * (scale?.[k] ?? 1);
    }) as TaskVector;
  }

  afterStep(result: StepResult): void {
    const hook = this.strategy.host?.afterStep;
    if (!hook) return;
    const gram = result.gram ? this.active.map((i) => this.active.map((j) => result.gram![i * TASK_COUNT + j])) : undefined;
    this.state = hook(this.state, { losses: this.active.map((t) => result.taskLosses[t]), gram }, this.choice.options);
  }

  onEpochEnd(meanLosses: TaskVector): void {
    const hook = this.strategy.host?.onEpochEnd;
    if (hook) this.state = hook(this.state, this.active.map((t) => meanLosses[t]), this.choice.options);
  }

  /** For progress.weighting (plain data). */
  progress(): WeightingProgress {
    return { strategy: this.choice.name, ...structuredClone(this.state) };
  }

  private spread(values: readonly number[]): number[] {
    const full = new Array<number>(TASK_COUNT).fill(0);
    this.active.forEach((t, k) => (full[t] = values[k]));
    return full;
  }
}
