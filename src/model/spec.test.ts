import { BUILTIN_SPECS, builtinSpec, parseSpec } from './spec';

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
  ])('refuses %s, naming the field', (_what, mutate, field) => {
    const spec = valid();
    mutate(spec);
    expect(() => parseSpec(spec, 'bad.json')).toThrow(`invalid model spec in bad.json: ${field}:`);
  });

  it('refuses an unknown built-in name with the known ones', () => {
    expect(() => builtinSpec('huge')).toThrow(/unknown architecture "huge"; built-in ones are seed, fashionloc, tiny/);
  });
});
