import { twoStageRows } from './optimizers';

describe('twoStageRows', () => {
  it('splits a sum into two stages of about √n each, along a divisor of n', () => {
    // seed's shared.0.weight: 1024 × 6272 values.
    const n = 1024 * 6272;
    const k = twoStageRows(n);
    expect(n % k).toBe(0);
    expect(k).toBeLessThanOrEqual(Math.sqrt(n));
    expect(k).toBeGreaterThan(Math.sqrt(n) / 2);
    expect(twoStageRows(4096)).toBe(64);
    expect(twoStageRows(64 * 3 * 3 * 3)).toBe(36);
  });

  it('keeps one stage for a prime count', () => {
    expect(twoStageRows(4099)).toBe(1);
  });
});
