import { fashionLocPool, renderFashionLoc, type FashionLocSource, type FashionLocSplit } from './fashionloc';
import { FASHION_MNIST_REPO_DIR, loadFashionMnistSplit } from './idx';
import { syntheticFashionMnist } from './synthetic';

const synthetic: FashionLocSource = { train: syntheticFashionMnist(120, 1), test: syntheticFashionMnist(30, 2) };

describe('FashionLoc', () => {
  it('renders sample i as a pure function of (seed, split, i)', () => {
    const a = renderFashionLoc(synthetic, { seed: 5 }, 'train', 17);
    const b = renderFashionLoc(synthetic, { seed: 5 }, 'train', 17);
    expect(Buffer.from(b.rgb).equals(Buffer.from(a.rgb))).toBe(true);
    expect(b.label).toBe(a.label);
    expect(b.box).toEqual(a.box);
    const others = [
      renderFashionLoc(synthetic, { seed: 6 }, 'train', 17),
      renderFashionLoc(synthetic, { seed: 5 }, 'val', 17),
      renderFashionLoc(synthetic, { seed: 5 }, 'train', 18),
    ];
    for (const other of others) expect(Buffer.from(other.rgb).equals(Buffer.from(a.rgb))).toBe(false);
  });

  it('gives an RGB canvas of the requested size with a box fully inside it', () => {
    for (let i = 0; i < 200; i++) {
      const s = renderFashionLoc(synthetic, { seed: 1, width: 48, height: 40, p: 1 }, 'test', i);
      expect(s.rgb.length).toBe(48 * 40 * 3);
      expect(s.label).not.toBeNull();
      const [x1, y1, x2, y2] = s.box!;
      expect([x1, y1, x2, y2].every(Number.isInteger)).toBe(true);
      expect(x1).toBeGreaterThanOrEqual(0);
      expect(y1).toBeGreaterThanOrEqual(0);
      expect(x2).toBeLessThanOrEqual(48);
      expect(y2).toBeLessThanOrEqual(40);
      expect(x2 - x1).toBeGreaterThanOrEqual(2);
      expect(y2 - y1).toBeGreaterThanOrEqual(2);
    }
  });

  it('puts an item in about a share p of samples, none at p = 0', () => {
    const count = (p: number, n: number) => {
      let objects = 0;
      for (let i = 0; i < n; i++) if (renderFashionLoc(synthetic, { seed: 2, p }, 'train', i).box) objects++;
      return objects;
    };
    expect(count(0, 200)).toBe(0);
    expect(count(1, 200)).toBe(200);
    const typical = count(0.8, 1000);
    expect(typical).toBeGreaterThan(760);
    expect(typical).toBeLessThan(840);
    const empty = renderFashionLoc(synthetic, { seed: 2, p: 0 }, 'train', 3);
    expect(empty.label).toBeNull();
    expect(empty.box).toBeNull();
  });

  it('keeps train, val and test source images apart', () => {
    const train = fashionLocPool(synthetic, 'train');
    const val = fashionLocPool(synthetic, 'val');
    const test = fashionLocPool(synthetic, 'test');
    expect([train.start, train.count, val.start, val.count]).toEqual([0, 110, 110, 10]);
    expect(test.images).toBe(synthetic.test!.images);
    expect(fashionLocPool({ train: { images: new Uint8Array(60000 * 784), labels: new Uint8Array(60000), count: 60000 } }, 'val').count).toBe(5000);
    expect(() => renderFashionLoc({ train: synthetic.train }, { seed: 1 }, 'test', 0)).toThrow(/needs Fashion-MNIST's test images/);
  });

  it('draws labels from the split they belong to', () => {
    // Synthetic label of source image n is n % 10, and val is images 110..119: every class is possible,
    // so compare against the pool instead: each label must be one of the pool's labels.
    const labelsOf = (split: FashionLocSplit) => {
      const pool = fashionLocPool(synthetic, split);
      return new Set(pool.labels.subarray(pool.start, pool.start + pool.count));
    };
    for (const split of ['train', 'val', 'test'] as const) {
      const allowed = labelsOf(split);
      for (let i = 0; i < 50; i++) {
        const label = renderFashionLoc(synthetic, { seed: 9, p: 1 }, split, i).label!;
        expect(allowed.has(label)).toBe(true);
      }
    }
  });

  it('returns the tight box of the pasted item (x2, y2 exclusive)', async () => {
    const source = { test: await loadFashionMnistSplit('test', FASHION_MNIST_REPO_DIR) };
    for (let i = 0; i < 300; i++) {
      // Background and clutter are drawn before the item, so p = 0 and p = 1 differ only by the item.
      const without = renderFashionLoc(source, { seed: 4, p: 0 }, 'test', i).rgb;
      const withItem = renderFashionLoc(source, { seed: 4, p: 1 }, 'test', i);
      const [x1, y1, x2, y2] = withItem.box!;
      const change = (x: number, y: number) => {
        let sum = 0;
        for (let c = 0, o = (y * 64 + x) * 3; c < 3; c++) {
          const d = without[o + c] - withItem.rgb[o + c];
          sum += d < 0 ? -d : d;
        }
        return sum;
      };
      let changedOutside = 0;
      for (let y = 0; y < 64; y++) {
        for (let x = 0; x < 64; x++) {
          const inside = x >= x1 && x < x2 && y >= y1 && y < y2;
          if (!inside && change(x, y) > 0) changedOutside++;
        }
      }
      expect(changedOutside).toBe(0);
      const edgeChanges = (xs: number[], ys: number[]) => Math.max(...xs.flatMap((x) => ys.map((y) => change(x, y))));
      const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
      expect(edgeChanges([x1], range(y1, y2))).toBeGreaterThanOrEqual(2);
      expect(edgeChanges([x2 - 1], range(y1, y2))).toBeGreaterThanOrEqual(2);
      expect(edgeChanges(range(x1, x2), [y1])).toBeGreaterThanOrEqual(2);
      expect(edgeChanges(range(x1, x2), [y2 - 1])).toBeGreaterThanOrEqual(2);
    }
  });

  it('rejects bad options', () => {
    expect(() => renderFashionLoc(synthetic, { seed: 1, p: 1.5 }, 'train', 0)).toThrow(/p must be in \[0, 1\]/);
    expect(() => renderFashionLoc(synthetic, { seed: 1, width: 4 }, 'train', 0)).toThrow(/width must be an integer/);
    expect(() => renderFashionLoc(synthetic, { seed: 1 }, 'train', -1)).toThrow(/index must be a non-negative integer/);
    expect(() => renderFashionLoc({ train: syntheticFashionMnist(5) }, { seed: 1 }, 'val', 0)).toThrow(/at least 12 training images/);
  });
});
