/** Small specs for tests that need trunk blocks beyond the built-in `tiny`. */
import { parseSpec } from '../model/spec';

/**
 * Every trunk block kind at test size: conv + BatchNorm + ReLU + pool (16 → 8), a residual block
 * with a projected shortcut (stride 2: 8 → 4, 4 → 8 channels), one with an identity shortcut, and
 * global average pooling; then fc 16 and heads 3 / 1 / 4.
 */
export const TINY_RESIDUAL = parseSpec({
  name: 'tiny-residual',
  input: { channels: 3, height: 16, width: 16, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
  trunk: [
    { outChannels: 4, kernel: 3, padding: 1, batchNorm: true, pool: 2 },
    { type: 'residual', outChannels: 8, stride: 2 },
    { type: 'residual', outChannels: 8 },
    { type: 'globalAvgPool' },
  ],
  shared: [16],
  heads: { classification: { labels: ['a', 'b', 'c'] }, detection: {}, box: {} },
});
