import { firstBitDifference } from '../testing/compare';
import { initParams, layout } from './params';
import { builtinSpec, parseSpec, trunkOutput } from './spec';

describe('PyTorch state_dict names and layouts', () => {
  it('names and shapes the seed spec exactly like the equivalent PyTorch module', () => {
    const spec = builtinSpec('seed');
    expect(spec.input).toMatchObject({ channels: 3, height: 28, width: 28 });
    expect(trunkOutput(spec)).toEqual({ channels: 128, height: 7, width: 7 });
    const shapes = Object.fromEntries(layout(spec).params.map((p) => [p.name, p.shape]));
    expect(shapes).toEqual({
      // trunk = Sequential(Conv2d, ReLU, MaxPool2d, Conv2d, ReLU, MaxPool2d): conv [O, C, kh, kw]
      'trunk.0.weight': [64, 3, 3, 3],
      'trunk.0.bias': [64],
      'trunk.3.weight': [128, 64, 3, 3],
      'trunk.3.bias': [128],
      // shared = Sequential(Flatten, Linear, ReLU, Linear, ReLU): linear [out, in]
      'shared.1.weight': [1024, 6272],
      'shared.1.bias': [1024],
      'shared.3.weight': [128, 1024],
      'shared.3.bias': [128],
      'heads.cls.weight': [10, 128],
      'heads.cls.bias': [10],
      'heads.det.weight': [1, 128],
      'heads.det.bias': [1],
      'heads.box.weight': [4, 128],
      'heads.box.bias': [4],
    });
    expect(layout(spec).params.map((p) => p.group)).toEqual([
      'trunk', 'trunk', 'trunk', 'trunk', 'trunk', 'trunk', 'trunk', 'trunk', 'head', 'head', 'head', 'head', 'head', 'head',
    ]);
  });

  it('skips the module indices of absent ReLU and pool layers', () => {
    const spec = parseSpec({
      name: 'gaps',
      input: { channels: 1, height: 8, width: 8, mean: [0], std: [1] },
      trunk: [
        { outChannels: 2, kernel: 3, padding: 1, relu: false },
        { outChannels: 2, kernel: 3, padding: 1, pool: 2 },
        { outChannels: 3, kernel: 1 },
      ],
      shared: [],
      heads: { classification: { labels: ['x', 'y'] } },
    });
    const names = layout(spec).params.map((p) => p.name);
    // Conv (0) | Conv (1), ReLU (2), Pool (3) | Conv (4), ReLU (5); no shared layers: heads read the flattened map.
    expect(names).toEqual([
      'trunk.0.weight', 'trunk.0.bias', 'trunk.1.weight', 'trunk.1.bias', 'trunk.4.weight', 'trunk.4.bias',
      'heads.cls.weight', 'heads.cls.bias', 'heads.det.weight', 'heads.det.bias', 'heads.box.weight', 'heads.box.bias',
    ]);
    expect(layout(spec).params.find((p) => p.name === 'heads.cls.weight')!.shape).toEqual([2, 3 * 4 * 4]);
  });
});

describe('initialisation', () => {
  const spec = builtinSpec('tiny');

  it('is deterministic by seed and differs between seeds', () => {
    const a = initParams(spec, 7);
    const b = initParams(spec, 7);
    const c = initParams(spec, 8);
    expect(firstBitDifference(a, b)).toBeUndefined();
    for (const [name, values] of a) expect(firstBitDifference(new Map([[name, values]]), c)).toBeDefined();
  });

  it('draws every weight and bias within ±1/sqrt(fan_in), spread over the range', () => {
    const params = initParams(spec, 3);
    for (const p of layout(spec).params) {
      const values = params.get(p.name)!;
      expect(values.length).toBe(p.shape.reduce((x, y) => x * y, 1));
      const fanIn = p.shape.length === 4 ? p.shape[1] * p.shape[2] * p.shape[3] : p.name.endsWith('.bias') ? p.fanIn : p.shape[1];
      expect(p.fanIn).toBe(fanIn);
      const bound = 1 / Math.sqrt(fanIn);
      let max = 0;
      for (const v of values) {
        expect(Math.abs(v)).toBeLessThanOrEqual(bound);
        max = Math.max(max, Math.abs(v));
      }
      if (values.length >= 16) expect(max).toBeGreaterThan(0.7 * bound);
    }
    // Bias fan-in is the fan-in of its layer's weight, as in PyTorch.
    expect(layout(spec).params.find((p) => p.name === 'trunk.3.bias')!.fanIn).toBe(4 * 3 * 3);
  });
});
