import { chooseName } from '../base/choices';
import { learningRate, LR_SCHEDULES } from './schedules';

describe('learningRate', () => {
  it('cosine without warmup: lr at step 0, lr·0.505 half-way, lr·0.01 at the end', () => {
    const c = { schedule: 'cosine' as const, lr: 0.1, warmupSteps: 0 };
    expect(learningRate(c, 0, 100)).toBeCloseTo(0.1, 12);
    expect(learningRate(c, 50, 100)).toBeCloseTo(0.1 * (0.01 + 0.99 * 0.5), 12);
    expect(learningRate(c, 100, 100)).toBeCloseTo(0.001, 12);
    // Bit for bit the formula the trainer used before warmup existed, so resumed runs continue exactly.
    for (const step of [0, 1, 17, 63, 99]) expect(learningRate(c, step, 100)).toBe(0.1 * (0.01 + 0.99 * 0.5 * (1 + Math.cos(Math.PI * (step / 100)))));
  });

  it('warmup rises linearly to lr over the warmup steps, then the cosine runs over the rest', () => {
    const c = { schedule: 'cosine' as const, lr: 0.2, warmupSteps: 10 };
    expect([0, 1, 4, 9].map((s) => learningRate(c, s, 110))).toEqual([0.02, 0.04, 0.1, 0.2]);
    expect(learningRate(c, 10, 110)).toBeCloseTo(0.2, 12);
    expect(learningRate(c, 60, 110)).toBeCloseTo(0.2 * (0.01 + 0.99 * 0.5), 12);
    expect(learningRate(c, 110, 110)).toBeCloseTo(0.002, 12);
    // Never above the peak, never below the floor.
    for (let s = 0; s <= 110; s++) {
      expect(learningRate(c, s, 110)).toBeLessThanOrEqual(0.2 + 1e-15);
      expect(learningRate(c, s, 110)).toBeGreaterThanOrEqual(0.002 - 1e-15);
    }
  });

  it('constant, with and without warmup; a warmup longer than the run stops one step short of it', () => {
    expect(learningRate({ schedule: 'constant', lr: 0.3, warmupSteps: 0 }, 7, 10)).toBe(0.3);
    expect(learningRate({ schedule: 'constant', lr: 0.3, warmupSteps: 3 }, 1, 10)).toBeCloseTo(0.2, 12);
    expect(learningRate({ schedule: 'constant', lr: 0.3, warmupSteps: 3 }, 5, 10)).toBe(0.3);
    const long = { schedule: 'cosine' as const, lr: 1, warmupSteps: 100 };
    expect(learningRate(long, 0, 5)).toBe(0.25);
    expect(learningRate(long, 3, 5)).toBe(1);
  });

  it('takes the schedule names of the table and refuses others, listing the valid ones', () => {
    expect(chooseName(LR_SCHEDULES, 'cosine', 'learning-rate schedule')).toBe('cosine');
    expect(() => chooseName(LR_SCHEDULES, 'step', 'learning-rate schedule')).toThrow('unknown learning-rate schedule "step"; valid: cosine, constant');
  });
});
