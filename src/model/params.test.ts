import { firstBitDifference } from '../testing/compare';
import { initBuffers, initParams, layout } from './params';
import { TINY_RESIDUAL } from '../testing/specs';
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

describe('BatchNorm, residual blocks and global average pooling: PyTorch names', () => {
  it('names like Sequential(Conv2d(bias=False), BatchNorm2d, ReLU, MaxPool2d, BasicBlock, BasicBlock, AdaptiveAvgPool2d)', () => {
    const { params, buffers } = layout(TINY_RESIDUAL);
    const shapes = Object.fromEntries(params.map((p) => [p.name, p.shape]));
    expect(shapes).toEqual({
      'trunk.0.weight': [4, 3, 3, 3], // no bias: BatchNorm follows
      'trunk.1.weight': [4],
      'trunk.1.bias': [4],
      // trunk.2 ReLU, trunk.3 MaxPool2d; trunk.4 a BasicBlock with a projected shortcut (stride 2, 4 → 8 channels)
      'trunk.4.conv1.weight': [8, 4, 3, 3],
      'trunk.4.bn1.weight': [8],
      'trunk.4.bn1.bias': [8],
      'trunk.4.conv2.weight': [8, 8, 3, 3],
      'trunk.4.bn2.weight': [8],
      'trunk.4.bn2.bias': [8],
      'trunk.4.downsample.0.weight': [8, 4, 1, 1],
      'trunk.4.downsample.1.weight': [8],
      'trunk.4.downsample.1.bias': [8],
      // trunk.5 keeps its input's shape: identity shortcut
      'trunk.5.conv1.weight': [8, 8, 3, 3],
      'trunk.5.bn1.weight': [8],
      'trunk.5.bn1.bias': [8],
      'trunk.5.conv2.weight': [8, 8, 3, 3],
      'trunk.5.bn2.weight': [8],
      'trunk.5.bn2.bias': [8],
      // trunk.6 AdaptiveAvgPool2d(1): 8 features
      'shared.1.weight': [16, 8],
      'shared.1.bias': [16],
      'heads.cls.weight': [3, 16],
      'heads.cls.bias': [3],
      'heads.det.weight': [1, 16],
      'heads.det.bias': [1],
      'heads.box.weight': [4, 16],
      'heads.box.bias': [4],
    });
    const modules = ['trunk.1', 'trunk.4.bn1', 'trunk.4.bn2', 'trunk.4.downsample.1', 'trunk.5.bn1', 'trunk.5.bn2'];
    expect(buffers.map((d) => [d.name, d.dtype, d.shape])).toEqual(
      modules.flatMap((m) => {
        const c = m === 'trunk.1' ? 4 : 8;
        return [[`${m}.running_mean`, 'float32', [c]], [`${m}.running_var`, 'float32', [c]], [`${m}.num_batches_tracked`, 'int64', []]];
      }),
    );
  });

  it('without batchNorm, residual convolutions carry biases and there are no buffers', () => {
    const spec = parseSpec({ ...TINY_RESIDUAL, trunk: [{ type: 'residual', outChannels: 8, stride: 2, batchNorm: false }] });
    expect(layout(spec).params.slice(0, 6).map((p) => p.name)).toEqual([
      'trunk.0.conv1.weight', 'trunk.0.conv1.bias', 'trunk.0.conv2.weight', 'trunk.0.conv2.bias', 'trunk.0.downsample.0.weight', 'trunk.0.downsample.0.bias',
    ]);
    expect(layout(spec).buffers).toEqual([]);
  });

  it('initialises BatchNorm as PyTorch does: weight 1, bias 0, running mean 0, running variance 1, no batches', () => {
    const params = initParams(TINY_RESIDUAL, 1);
    expect(Array.from(params.get('trunk.4.bn1.weight')!)).toEqual(new Array(8).fill(1));
    expect(Array.from(params.get('trunk.4.bn1.bias')!)).toEqual(new Array(8).fill(0));
    const buffers = initBuffers(TINY_RESIDUAL);
    expect(buffers.get('trunk.1.running_mean')).toEqual(Float32Array.of(0, 0, 0, 0));
    expect(buffers.get('trunk.1.running_var')).toEqual(Float32Array.of(1, 1, 1, 1));
    expect(buffers.get('trunk.1.num_batches_tracked')).toEqual(BigInt64Array.of(0n));
    // Convolutions draw within ±1/√fan_in; constant tensors draw nothing, so existing specs keep their initial weights.
    const bound = 1 / Math.sqrt(4 * 9);
    expect(Math.max(...Array.from(params.get('trunk.4.conv1.weight')!, Math.abs))).toBeLessThanOrEqual(bound);
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
