import { hashSeed, mulberry32, randomInt } from './random';

describe('seeded randomness', () => {
  it('hashes seed parts deterministically, order and sign included', () => {
    expect(hashSeed(1, 2, 3)).toBe(hashSeed(1, 2, 3));
    const distinct = new Set([hashSeed(1, 2), hashSeed(2, 1), hashSeed(-1, 2), hashSeed(1, 2 + 2 ** 32), hashSeed(1), hashSeed(1, 2, 0)]);
    expect(distinct.size).toBe(6);
    expect(() => hashSeed(1.5)).toThrow(/safe integers/);
  });

  it('gives uniform floats in [0, 1) and inclusive integer ranges', () => {
    const random = mulberry32(hashSeed(42));
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 6000; i++) {
      const v = random();
      expect(v >= 0 && v < 1).toBe(true);
      counts[randomInt(random, 0, 5)]++;
    }
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(150);
    const a = mulberry32(7);
    const b = mulberry32(7);
    expect([a(), a(), a()]).toEqual([b(), b(), b()]);
  });
});
