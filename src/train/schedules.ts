/** Learning-rate schedules: the rate of each step from the peak rate, the step and the run's length. */
import type { Documented } from '../base/choices';

export interface LrSchedule extends Documented {
  rate(peak: number, step: number, totalSteps: number): number;
}

/** Cosine decay ends at this share of the peak rate. */
const COSINE_FLOOR = 0.01;

export const LR_SCHEDULES = Object.freeze({
  cosine: {
    doc: `cosine decay from the peak rate to ${COSINE_FLOOR * 100} % of it over the run`,
    rate: (peak, step, totalSteps) => {
      if (totalSteps <= 1) return peak;
      const progress = Math.min(1, step / totalSteps);
      return peak * (COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    },
  },
  constant: { doc: 'the peak rate throughout', rate: (peak) => peak },
} satisfies Record<string, LrSchedule>);

export type ScheduleName = keyof typeof LR_SCHEDULES;
