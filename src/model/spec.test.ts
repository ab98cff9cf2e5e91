import { BUILTIN_SPECS, builtinSpec, parseSpec, trunkOutput } from './spec';

const valid = () => structuredClone(BUILTIN_SPECS.tiny) as unknown as Record<string, any>;

describe('parseSpec', () => {
  it('accepts the built-in specs and fills defaults', () => {
    for (const name of Object.keys(BUILTIN_SPECS)) expect(() => parseSpec(BUILTIN_SPECS[name])).not.toThrow();
    const spec = parseSpec({ ...valid(), trunk: [{ outChannels: 2, kernel: 3 }] });
    expect(spec.trunk[0]).toEqual({ type: 'conv', outChannels: 2, kernel: 3, stride: 1, padding: 0, batchNorm: false, relu: true });
  });

  it.each([
    ['a negative kernel', (s: any) => (s.trunk[1].kernel = -3), 'trunk.1.kernel'],
    ['a missing label list', (s: any) => delete s.heads.classification.labels, 'heads.classification.labels'],
    ['one label only', (s: any) => (s.heads.classification.labels = ['only']), 'heads.classification.labels'],
    ['duplicate labels', (s: any) => (s.heads.classification.labels = ['a', 'a']), 'heads.classification.labels'],
    ['2 channels', (s: any) => (s.input.channels = 2), 'input.channels'],
    ['a short mean', (s: any) => (s.input.mean = [0.5]), 'input.mean'],
    ['a zero std', (s: any) => (s.input.std = [0.2, 0, 0.2]), 'input.std.1'],
    ['a string width', (s: any) => (s.shared = ['16']), 'shared.0'],
    ['a trunk that shrinks to nothing', (s: any) => s.trunk.push({ outChannels: 8, kernel: 3, pool: 4 }), 'trunk.2'],
    ['no trunk', (s: any) => (s.trunk = []), 'trunk'],
    ['an unknown block type', (s: any) => (s.trunk[1] = { type: 'transformer', outChannels: 8 }), 'trunk.1.type'],
    ['global average pooling before another block', (s: any) => (s.trunk = [{ type: 'globalAvgPool' }, { outChannels: 4, kernel: 1 }]), 'trunk.0'],
    ['a residual block with a zero stride', (s: any) => s.trunk.push({ type: 'residual', outChannels: 8, stride: 0 }), 'trunk.2.stride'],
    ['a residual block without channels', (s: any) => s.trunk.push({ type: 'residual' }), 'trunk.2.outChannels'],
  ])('refuses %s, naming the field', (_what, mutate, field) => {
    const spec = valid();
    mutate(spec);
    expect(() => parseSpec(spec, 'bad.json')).toThrow(`invalid model spec in bad.json: ${field}:`);
  });

  it('reads residual blocks and global average pooling, with their defaults, and sizes the trunk output', () => {
    const spec = parseSpec({
      ...valid(),
      trunk: [{ outChannels: 4, kernel: 3, padding: 1, batchNorm: true }, { type: 'residual', outChannels: 8, stride: 2 }, { type: 'globalAvgPool' }],
    });
    expect(spec.trunk).toEqual([
      { type: 'conv', outChannels: 4, kernel: 3, stride: 1, padding: 1, batchNorm: true, relu: true },
      { type: 'residual', outChannels: 8, stride: 2, batchNorm: true },
      { type: 'globalAvgPool' },
    ]);
    expect(trunkOutput(spec)).toEqual({ channels: 8, height: 1, width: 1 });
    expect(trunkOutput(parseSpec({ ...valid(), trunk: [{ type: 'residual', outChannels: 8, stride: 2 }] }))).toEqual({ channels: 8, height: 8, width: 8 });
    // 16 → (16 + 2 − 3)/3 + 1 = 6 with stride 3.
    expect(trunkOutput(parseSpec({ ...valid(), trunk: [{ type: 'residual', outChannels: 2, stride: 3 }] }))).toEqual({ channels: 2, height: 6, width: 6 });
  });

  it('refuses an unknown built-in name with the known ones', () => {
    expect(() => builtinSpec('huge')).toThrow(/unknown architecture "huge"; built-in ones are seed, fashionloc, fashionloc-res, tiny/);
  });
});
