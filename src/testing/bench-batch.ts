/** The train-step benchmark's batch, drawn from a fixed seed: the same in Node and in the browser (bench:web), so both time the same work. */
import { mulberry32 } from '../base/random';
import { stackSamples, type Sample } from '../data/batch';

export function benchBatch(size: number, shape: { channels: number; height: number; width: number }, classes: number) {
  const random = mulberry32(12345);
  const pixels = shape.channels * shape.height * shape.width;
  const samples: Sample[] = Array.from({ length: size }, (_, i) => ({
    image: Float32Array.from({ length: pixels }, () => random() * 4 - 2),
    label: i % 4 === 3 ? -1 : Math.floor(random() * classes),
    objectness: i % 4 === 3 ? 0 : 1,
    box: [0.1, 0.2, 0.6, 0.7],
  }));
  return stackSamples(samples, pixels);
}
