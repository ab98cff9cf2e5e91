import type { InputSpec } from '../model/spec';
import { annotatedDataset, augmentSample, augmented, batches, collate, epochOrder, fashionLocDataset, type Sample } from './dataset';
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

describe('augmentation', () => {
  const grey: InputSpec = { channels: 1, height: 1, width: 4, mean: [0.5], std: [0.5] };
  // Normalised values of pixels 0, 64, 191 and 255 for mean 0.5, std 0.5: v/127.5 - 1.
  const pixels = [0, 64, 191, 255];
  const sample = tinySample(pixels.map((p) => p / 127.5 - 1), 1, [0.25, 0, 0.5, 1]);

  it('mirrors the image and the box', () => {
    const flipped = augmentSample(sample, grey, true, 1);
    expect(Array.from(flipped.image)).toEqual(Array.from(sample.image).reverse());
    expect(flipped.box).toEqual([0.5, 0, 0.75, 1]);
    expect(flipped.label).toBe(1);
  });

  it('scales brightness in pixel space and clamps to the valid range', () => {
    const brighter = augmentSample(sample, grey, false, 1.5);
    const back = Array.from(brighter.image, (v) => (v + 1) * 127.5);
    expect(back[0]).toBeCloseTo(0, 4);
    expect(back[1]).toBeCloseTo(96, 4);
    expect(back[2]).toBeCloseTo(255, 4);
    expect(back[3]).toBeCloseTo(255, 4);
  });

  it('is deterministic per (seed, epoch, index) and leaves the wrapped data untouched', () => {
    const base = fashionLocDataset(source, input, 'train', { seed: 1, count: 40 });
    const epoch0 = augmented(base, input, { seed: 5, epoch: 0 });
    const again = augmented(base, input, { seed: 5, epoch: 0 });
    const epoch1 = augmented(base, input, { seed: 5, epoch: 1 });
    let differ = 0;
    for (let i = 0; i < 40; i++) {
      expect(Array.from(again.get(i).image)).toEqual(Array.from(epoch0.get(i).image));
      if (Array.from(epoch1.get(i).image).some((v, k) => v !== epoch0.get(i).image[k])) differ++;
    }
    expect(differ).toBeGreaterThan(30);
    const original = base.get(3);
    const copy = Float32Array.from(original.image);
    augmented(annotatedDataset([original]), input, { seed: 1, epoch: 0, flip: 1 }).get(0);
    expect(Array.from(original.image)).toEqual(Array.from(copy));
  });
});
