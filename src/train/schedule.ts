/** Learning-rate schedules: pure functions of the step, so a run resumed at step k continues exactly. */

export type Schedule = 'cosine' | 'constant';

export interface ScheduleConfig {
  schedule: Schedule;
  /** Peak learning rate. */
  lr: number;
  /** Steps of linear warmup before the schedule proper; 0: none. */
  warmupSteps: number;
}

/** Cosine decay ends at this share of the peak rate. */
const COSINE_FLOOR = 0.01;

/**
 * The rate for step `step` (0-based) of a run of `totalSteps`: during warmup lr·(step + 1)/warmup,
 * then constant, or cosine from lr down to lr·0.01 over the remaining steps.
 */
export function learningRate(c: ScheduleConfig, step: number, totalSteps: number): number {
  const warmup = Math.max(0, Math.min(c.warmupSteps, totalSteps - 1));
  if (step < warmup) return (c.lr * (step + 1)) / warmup;
  if (c.schedule === 'constant' || totalSteps - warmup <= 1) return c.lr;
  const progress = Math.min(1, (step - warmup) / (totalSteps - warmup));
  return c.lr * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

export function parseSchedule(value: string): Schedule {
  if (value === 'cosine' || value === 'constant') return value;
  throw new Error(`--schedule must be cosine or constant, got "${value}"`);
}
