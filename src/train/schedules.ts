/**
 * Learning-rate schedules: the rate of each step from the peak rate, a pure function of the step,
 * so that a run resumed at step k continues exactly. An optional linear warmup comes first.
 */
import type { Documented } from '../base/choices';

export interface LrSchedule extends Documented {
  /** The rate at `progress` (0 at the schedule's first step, 1 at its end). */
  rate(peak: number, progress: number): number;
}

/** Cosine decay ends at this share of the peak rate. */
const COSINE_FLOOR = 0.01;

export const LR_SCHEDULES = Object.freeze({
  cosine: {
    doc: `cosine decay from the peak rate to ${COSINE_FLOOR * 100} % of it over the run`,
    rate: (peak, progress) => peak * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + Math.cos(Math.PI * progress))),
  },
  constant: { doc: 'the peak rate throughout', rate: (peak) => peak },
} satisfies Record<string, LrSchedule>);

export type ScheduleName = keyof typeof LR_SCHEDULES;

export interface ScheduleConfig {
  schedule: ScheduleName;
  /** Peak learning rate. */
  lr: number;
  /** Steps of linear warmup before the schedule proper; 0: none. */
  warmupSteps: number;
}

/**
 * The rate of step `step` (0-based) of a run of `totalSteps`: during warmup lr·(step + 1)/warmup,
 * then the schedule over the remaining steps.
 */
export function learningRate(c: ScheduleConfig, step: number, totalSteps: number): number {
  const warmup = Math.max(0, Math.min(c.warmupSteps, totalSteps - 1));
  if (step < warmup) return (c.lr * (step + 1)) / warmup;
  if (totalSteps - warmup <= 1) return c.lr;
  return LR_SCHEDULES[c.schedule].rate(c.lr, Math.min(1, (step - warmup) / (totalSteps - warmup)));
}
