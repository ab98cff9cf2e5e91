/** Small seeded pseudo-random generators, so that data is a pure function of its seeds. */

// Bound once: inside jest's vm context every lookup of a global such as `Math` is ~50× slower.
const imul = Math.imul;

/** A generator of uniform floats in [0, 1). */
export type Random = () => number;

/** mulberry32: 32-bit state, fast, good enough for data synthesis and shuffling. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = imul(state ^ (state >>> 15), 1 | state);
    t = (t + imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** MurmurHash3's 32-bit finaliser: every input bit affects every output bit. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hashes integers (any safe integer, negative included) into one 32-bit seed.
 * Order matters: hashSeed(1, 2) differs from hashSeed(2, 1).
 */
export function hashSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    if (!Number.isSafeInteger(part)) throw new Error(`seed parts must be safe integers, got ${part}`);
    const low = part >>> 0;
    const high = Math.floor(part / 4294967296) >>> 0;
    h = mix32((h ^ low) + 0x7f4a7c15);
    h = mix32((h ^ high) + 0x165667b1);
  }
  return h;
}

/** Integer in [min, max] inclusive. */
export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** Float in [min, max). */
export function randomRange(random: Random, min: number, max: number): number {
  return min + random() * (max - min);
}
