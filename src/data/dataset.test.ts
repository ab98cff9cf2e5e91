import type { InputSpec } from '../model/spec';
import { annotatedDataset, batches, collate, epochOrder, fashionLocDataset, type Sample } from './dataset';
import { renderFashionLoc } from './fashionloc';
import { toCHW } from './image';
import { syntheticFashionMnist } from './synthetic';

const input: InputSpec = { channels: 3, height: 32, width: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const tinyInput: InputSpec = { channels: 1, height: 2, width: 3, mean: [0.5], std: [0.5] };
const source = { train: syntheticFashionMnist(120, 1), test: syntheticFashionMnist(30, 2) };

function tinySample(values: number[], label: number, box: Sample['box'] = [0.1, 0.2, 0.4, 0.9]): Sample {
  const present = label >= 0;
  return { image: Float32Array.from(values), label, objectness: present ? 1 : 0, box: present ? box : [0, 0, 0, 0] };
}

describe('fashionLocDataset', () => {
  it('renders normalised images and normalised boxes at the input size', () => {
    const dataset = fashionLocDataset(source, input, 'train', { seed: 3, count: 50 });
    expect(dataset.length).toBe(50);
    let objects = 0;
    for (let i = 0; i < 50; i++) {
      const sample = dataset.get(i);
      const rendered = renderFashionLoc(source, { seed: 3, width: 32, height: 32 }, 'train', i);
      expect(Array.from(sample.image)).toEqual(Array.from(toCHW(rendered.rgb, input)));
      if (rendered.box) {
        objects++;
        expect(sample.objectness).toBe(1);
        expect(sample.label).toBe(rendered.label);
        expect(sample.box).toEqual(rendered.box.map((v) => v / 32));
      } else {
        expect(sample).toMatchObject({ objectness: 0, label: -1, box: [0, 0, 0, 0] });
      }
    }
    expect(objects).toBeGreaterThan(25);
    expect(() => dataset.get(50)).toThrow(/out of range 0..49/);
  });

  it('defaults its length to the split size', () => {
    expect(fashionLocDataset(source, input, 'val', { seed: 1 }).length).toBe(10);
    expect(fashionLocDataset(source, input, 'test', { seed: 1 }).length).toBe(30);
  });
});

describe('collate and batches', () => {
  const samples = [tinySample([1, 2, 3, 4, 5, 6], 2), tinySample([7, 8, 9, 10, 11, 12], -1), tinySample([0, 0, 0, 0, 0, 1], 0, [0, 0, 1, 1])];

  it('stacks images, masks absent objects and zeroes their label', () => {
    const batch = collate(samples, tinyInput);
    expect(batch.size).toBe(3);
    expect(Array.from(batch.images)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0, 0, 1]);
    expect(Array.from(batch.labels)).toEqual([2n, 0n, 0n]);
    expect(Array.from(batch.objectness)).toEqual([1, 0, 1]);
    expect(Array.from(batch.mask)).toEqual([1, 0, 1]);
    expect(Array.from(batch.boxes)).toEqual(Array.from(Float32Array.from([0.1, 0.2, 0.4, 0.9, 0, 0, 0, 0, 0, 0, 1, 1])));
    expect(() => collate([tinySample([1, 2], 0)], tinyInput)).toThrow(/has 2 image values, expected 6/);
  });

  it('batches in the given order, with or without the short last batch', () => {
    const dataset = annotatedDataset(samples);
    const all = [...batches(dataset, [2, 0, 1], 2)];
    expect(all.map((b) => b.size)).toEqual([2, 1]);
    expect(Array.from(all[0].labels)).toEqual([0n, 2n]);
    expect(Array.from(all[1].mask)).toEqual([0]);
    expect([...batches(dataset, [2, 0, 1], 2, { dropLast: true })].map((b) => b.size)).toEqual([2]);
    expect(() => [...batches(dataset, [0], 0)]).toThrow(/batch size must be a positive integer/);
  });
});

describe('epochOrder', () => {
  it('is a permutation that depends only on (length, seed, epoch)', () => {
    const a = epochOrder(1000, 7, 0);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(epochOrder(1000, 7, 0))).toEqual(Array.from(a));
    expect(Array.from(epochOrder(1000, 7, 1))).not.toEqual(Array.from(a));
    expect(Array.from(epochOrder(1000, 8, 0))).not.toEqual(Array.from(a));
    expect(Array.from(a.subarray(0, 20))).not.toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(epochOrder(0, 1, 1).length).toBe(0);
  });
});
