/**
 * A stand-in for Fashion-MNIST made of soft-edged ellipses and rectangles, one shape family per
 * class, for tests and offline smoke runs where the real files are not available.
 */
import { FASHION_MNIST_CLASSES, FASHION_MNIST_SIDE, type FashionMnistSplit } from './idx';
import { hashSeed, mulberry32, randomRange } from '../base/random';

export function syntheticFashionMnist(count: number, seed = 0): FashionMnistSplit {
  const side = FASHION_MNIST_SIDE;
  const images = new Uint8Array(count * side * side);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const random = mulberry32(hashSeed(seed, n));
    const label = n % FASHION_MNIST_CLASSES;
    labels[n] = label;
    const cx = randomRange(random, 11, 17);
    const cy = randomRange(random, 11, 17);
    const rx = randomRange(random, 4, 10);
    const ry = randomRange(random, 4, 10);
    const ellipse = label % 2 === 0;
    for (let y = 0; y < side; y++) {
      for (let x = 0; x < side; x++) {
        const dx = Math.abs(x - cx) / rx;
        const dy = Math.abs(y - cy) / ry;
        const d = ellipse ? Math.hypot(dx, dy) : Math.max(dx, dy);
        const ink = Math.max(0, Math.min(1, (1 - d) * 4));
        images[n * side * side + y * side + x] = Math.round(ink * (120 + 13 * label));
      }
    }
  }
  return { images, labels, count };
}
