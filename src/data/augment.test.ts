import type { InputSpec } from '../model/spec';
import { augmentSample, augmented } from './augment';
import { annotatedDataset, fashionLocDataset, type NormalisedBox, type Sample } from './dataset';
import { hashSeed, mulberry32 } from '../base/random';
import { syntheticFashionMnist } from './synthetic';

const input: InputSpec = { channels: 3, height: 32, width: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const source = { train: syntheticFashionMnist(120, 1) };
// Grey images with mean 0.5, std 0.5: a pixel p (0..255) is p/127.5 − 1, so values below read as pixels.
const row: InputSpec = { channels: 1, height: 1, width: 4, mean: [0.5], std: [0.5] };
const square: InputSpec = { channels: 1, height: 4, width: 4, mean: [0.5], std: [0.5] };
const toValue = (p: number) => p / 127.5 - 1;
const toPixel = (v: number) => (v + 1) * 127.5;

function sampleOf(pixels: number[], box: NormalisedBox | null): Sample {
  return { image: Float32Array.from(pixels, toValue), label: box ? 1 : -1, objectness: box ? 1 : 0, box: box ?? [0, 0, 0, 0] };
}
const pixelsOf = (s: Sample) => Array.from(s.image, (v) => Math.round(toPixel(v) * 1000) / 1000);

describe('augmentSample', () => {
  const line = sampleOf([0, 64, 191, 255], [0.25, 0, 0.5, 1]);

  it('mirrors the image and the box', () => {
    const flipped = augmentSample(line, row, { flip: true, brightness: 1 });
    expect(Array.from(flipped.image)).toEqual(Array.from(line.image).reverse());
    expect(flipped.box).toEqual([0.5, 0, 0.75, 1]);
    expect(flipped.label).toBe(1);
  });

  it('scales brightness in pixel space and clamps to the valid range', () => {
    const back = pixelsOf(augmentSample(line, row, { flip: false, brightness: 1.5 }));
    expect(back).toEqual([0, 96, 255, 255]);
  });

  it('shifts by one pixel: the image moves right (the left edge repeats) and the box with it', () => {
    const moved = augmentSample(line, row, { flip: false, brightness: 1, shift: [0.25, 0] });
    expect(pixelsOf(moved)).toEqual([0, 0, 64, 191]);
    expect(moved.box).toEqual([0.5, 0, 0.75, 1]);
    // Left by one pixel, then mirrored: the box goes to [0, 0.25] then to [0.75, 1].
    const both = augmentSample(line, row, { flip: true, brightness: 1, shift: [-0.25, 0] });
    expect(pixelsOf(both)).toEqual([255, 255, 191, 64]);
    expect(both.box).toEqual([0.75, 0, 1, 1]);
  });

  it('scales about the centre: ×2 blows the middle 2×2 up to the whole image and its box to [0, 0, 1, 1]', () => {
    // 4×4 image, rows of 0, 40, 80, 120 plus 4 per column.
    const pixels = Array.from({ length: 16 }, (_, i) => 40 * Math.floor(i / 4) + 4 * (i % 4));
    const zoomed = augmentSample(sampleOf(pixels, [0.25, 0.25, 0.75, 0.75]), square, { flip: false, brightness: 1, scale: 2 });
    expect(zoomed.box).toEqual([0, 0, 1, 1]);
    // Output pixel 1 has its centre at 1.5/4 = 0.375, which reads 0.4375 of the input: pixel coordinate 1.25.
    // Output pixel 0 reads pixel coordinate 0.75; 2 reads 1.75; 3 reads 2.25.
    const at = (y: number, x: number) => 40 * y + 4 * x;
    const expected = [0.75, 1.25, 1.75, 2.25].flatMap((y) => [0.75, 1.25, 1.75, 2.25].map((x) => at(y, x)));
    expect(pixelsOf(zoomed)).toEqual(expected);
  });

  it('×0.5 shrinks the box towards the centre; the borders repeat the edge pixels', () => {
    const pixels = Array.from({ length: 16 }, (_, i) => 10 * i);
    const small = augmentSample(sampleOf(pixels, [0, 0, 1, 1]), square, { flip: false, brightness: 1, scale: 0.5 });
    expect(small.box).toEqual([0.25, 0.25, 0.75, 0.75]);
    // Output pixel 0 reads pixel coordinate −1.5, clamped to 0; pixel 1 reads −0.5 → 0; 2 reads 0.5+... symmetric.
    expect(pixelsOf(small)[0]).toBe(0);
    expect(pixelsOf(small)[15]).toBe(150);
    // The centre of the image is where it was: the mean of the middle 2×2 of the output is the input's centre value.
    const out = pixelsOf(small);
    expect((out[5] + out[6] + out[9] + out[10]) / 4).toBeCloseTo((pixels[5] + pixels[6] + pixels[9] + pixels[10]) / 4, 6);
  });

  it('moves the box with the object it bounds, under any combination (box of the bright pixels ≈ the transformed box)', () => {
    const size = 32;
    const grid: InputSpec = { channels: 1, height: size, width: size, mean: [0.5], std: [0.5] };
    // A bright rectangle over columns 6..13 and rows 10..21 on black: box [6, 10, 14, 22] / 32.
    const pixels = Array.from({ length: size * size }, (_, i) => (i % size >= 6 && i % size < 14 && Math.floor(i / size) >= 10 && Math.floor(i / size) < 22 ? 255 : 0));
    const sample = sampleOf(pixels, [6 / 32, 10 / 32, 14 / 32, 22 / 32]);
    for (const t of [
      { flip: false, brightness: 1, scale: 1.25, shift: [0.1, -0.05] as [number, number] },
      { flip: true, brightness: 1, scale: 0.8, shift: [-0.125, 0.2] as [number, number] },
      { flip: true, brightness: 1, scale: 1, shift: [0.3, 0] as [number, number] },
    ]) {
      const out = augmentSample(sample, grid, t);
      let [x1, y1, x2, y2] = [Infinity, Infinity, -Infinity, -Infinity];
      out.image.forEach((v, i) => {
        if (toPixel(v) < 127.5) return;
        const [x, y] = [i % size, Math.floor(i / size)];
        [x1, y1, x2, y2] = [Math.min(x1, x), Math.min(y1, y), Math.max(x2, x + 1), Math.max(y2, y + 1)];
      });
      const drawn = [x1, y1, x2, y2].map((v) => v / size);
      for (let k = 0; k < 4; k++) expect(Math.abs(drawn[k] - out.box[k])).toBeLessThanOrEqual(1 / size);
    }
  });

  it('leaves the box of a sample without an object at zeros', () => {
    const empty = augmentSample(sampleOf([0, 64, 191, 255], null), row, { flip: true, brightness: 1, scale: 1.2, shift: [0.1, 0] });
    expect(empty.box).toEqual([0, 0, 0, 0]);
    expect(empty.objectness).toBe(0);
  });
});

describe('augmented', () => {
  it('is deterministic per (seed, epoch, index) and leaves the wrapped data untouched', () => {
    const base = fashionLocDataset(source, input, 'train', { seed: 1, count: 40 });
    const epoch0 = augmented(base, input, { seed: 5, epoch: 0, translate: 0.1, scale: 0.1 });
    const again = augmented(base, input, { seed: 5, epoch: 0, translate: 0.1, scale: 0.1 });
    const epoch1 = augmented(base, input, { seed: 5, epoch: 1, translate: 0.1, scale: 0.1 });
    let differ = 0;
    for (let i = 0; i < 40; i++) {
      expect(Array.from(again.get(i).image)).toEqual(Array.from(epoch0.get(i).image));
      expect(again.get(i).box).toEqual(epoch0.get(i).box);
      if (Array.from(epoch1.get(i).image).some((v, k) => v !== epoch0.get(i).image[k])) differ++;
    }
    expect(differ).toBeGreaterThan(30);
    const original = base.get(3);
    const copy = Float32Array.from(original.image);
    augmented(annotatedDataset([original]), input, { seed: 1, epoch: 0, flip: 1, translate: 0.2, scale: 0.2 }).get(0);
    expect(Array.from(original.image)).toEqual(Array.from(copy));
  });

  it('without translation or scale jitter: the flip and brightness drawn from (seed, epoch, index) as before, pixel for pixel', () => {
    const base = fashionLocDataset(source, input, 'train', { seed: 1, count: 20 });
    const plain = augmented(base, input, { seed: 5, epoch: 0 });
    let flips = 0;
    for (let i = 0; i < 20; i++) {
      const random = mulberry32(hashSeed(5, 0, i, 0xa06));
      const flip = random() < 0.5;
      const factor = 1 + (random() * 2 - 1) * 0.1;
      const s = base.get(i);
      const a = plain.get(i);
      flips += flip ? 1 : 0;
      // Pixel (c, y, x) = the source pixel at (c, y, flip ? W − 1 − x : x), scaled by the factor in pixel space.
      for (const [c, y, x] of [[0, 0, 0], [1, 5, 7], [2, 31, 30]]) {
        const from = s.image[c * 1024 + y * 32 + (flip ? 31 - x : x)];
        const expected = Math.min(Math.max(from * factor + (0.5 * (factor - 1)) / 0.25, -2), 2);
        expect(a.image[c * 1024 + y * 32 + x]).toBeCloseTo(expected, 5);
      }
      if (s.objectness === 1) expect(a.box).toEqual(flip ? [1 - s.box[2], s.box[1], 1 - s.box[0], s.box[3]] : s.box);
    }
    expect(flips).toBeGreaterThan(3);
    expect(flips).toBeLessThan(17);
  });

  it('keeps every box inside the image, shifts within ±translate where the box allows, and scales within the jitter', () => {
    const base = fashionLocDataset(source, input, 'train', { seed: 2, count: 200 });
    const translate = 0.1;
    const scale = 0.15;
    const set = augmented(base, input, { seed: 9, epoch: 0, flip: 0, brightness: 0, translate, scale });
    let moved = 0;
    for (let i = 0; i < set.length; i++) {
      const s = base.get(i);
      const a = set.get(i);
      if (s.objectness !== 1) continue;
      for (const v of a.box) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      const ratio = (a.box[2] - a.box[0]) / (s.box[2] - s.box[0]);
      expect(ratio).toBeGreaterThanOrEqual(1 - scale - 1e-6);
      expect(ratio).toBeLessThanOrEqual(1 + scale + 1e-6);
      expect((a.box[3] - a.box[1]) / (s.box[3] - s.box[1])).toBeCloseTo(ratio, 6);
      // The box centre moves by the scaling about the image centre plus a shift of at most ±translate.
      const centre = (b: NormalisedBox, k: 0 | 1) => (b[k] + b[k + 2]) / 2;
      for (const k of [0, 1] as const) {
        const shift = centre(a.box, k) - (ratio * (centre(s.box, k) - 0.5) + 0.5);
        expect(Math.abs(shift)).toBeLessThanOrEqual(translate + 1e-6);
      }
      if (Math.abs(ratio - 1) > 0.01) moved++;
    }
    expect(moved).toBeGreaterThan(50);
  });
});
