import { chooseWeighting, parseOptionPairs, parseWeightingSpec, weightingHelp, weightingLabel, WEIGHTING_NAMES, WEIGHTINGS } from './index';
import { resolveOptions } from './options';

describe('the weighting registry', () => {
  it('holds every strategy of the issue, each with a doc line, a paper (but static), options with valid defaults, and a graph part or host hooks', () => {
    expect(WEIGHTING_NAMES).toEqual(['static', 'uw', 'dwa', 'gradnorm', 'famo', 'mgda', 'imtl-g', 'pcgrad', 'cagrad']);
    expect(Object.isFrozen(WEIGHTINGS)).toBe(true);
    for (const [key, w] of Object.entries(WEIGHTINGS)) {
      expect(w.name).toBe(key);
      expect(Object.isFrozen(w)).toBe(true);
      expect(w.doc).toMatch(/(exact|one step stale|per epoch|approximation)/);
      if (key !== 'static') expect(w.paper?.url).toMatch(/^https:\/\//);
      expect(resolveOptions(w)).toEqual(Object.fromEntries(Object.entries(w.options).map(([k, o]) => [k, o.default])));
      expect(['losses', 'representation', 'parameters']).toContain(w.needs(resolveOptions(w)).gradients);
      if (key !== 'static') expect(!!w.graph || !!w.host).toBe(true);
    }
  });

  it('refuses an unknown name or option, listing the valid ones', () => {
    expect(() => chooseWeighting('ew')).toThrow(/unknown weighting "ew"; valid: static, uw, dwa, gradnorm, famo, mgda, imtl-g, pcgrad, cagrad/);
    expect(() => chooseWeighting('mgda', { normalisation: 'l2' })).toThrow(/mgda: unknown option normalisation; its options are gradients, normalization/);
    expect(() => chooseWeighting('uw', { lr: 1 })).toThrow(/uw takes no options/);
    expect(() => chooseWeighting('mgda', { gradients: 'trunk' })).toThrow(/gradients must be one of representation, parameters; got "trunk"/);
    expect(() => chooseWeighting('dwa', { temperature: 'warm' })).toThrow(/temperature must be a number/);
    expect(() => chooseWeighting('cagrad', { rescale: '1.5' })).toThrow(/rescale must be an integer/);
    expect(() => chooseWeighting('famo', { lr: -1 })).toThrow(/lr must be at least 0/);
    expect(() => chooseWeighting('__proto__')).toThrow(/unknown weighting/);
  });

  it('parses options from strings and k=v pairs, and labels a choice by what differs from the defaults', () => {
    expect(chooseWeighting('famo', parseOptionPairs(['lr=0.01', 'update=next_batch'])).options).toEqual({ lr: 0.01, gamma: 0.01, update: 'next_batch' });
    expect(parseOptionPairs('c=0.5, rescale=0')).toEqual({ c: '0.5', rescale: '0' });
    expect(() => parseOptionPairs(['c'])).toThrow(/not of the form key=value/);
    expect(() => parseOptionPairs(['c=1', 'c=2'])).toThrow(/given twice/);
    expect(parseWeightingSpec('famo:update=next_batch:lr=0.01').options).toEqual({ lr: 0.01, gamma: 0.01, update: 'next_batch' });
    expect(weightingLabel(parseWeightingSpec('famo:update=next_batch:lr=0.01'))).toBe('famo:lr=0.01:update=next_batch');
    const spec = parseWeightingSpec('pcgrad:gradients=parameters');
    expect(spec).toEqual({ name: 'pcgrad', options: { gradients: 'parameters' } });
    expect(weightingLabel(spec)).toBe('pcgrad:gradients=parameters');
    expect(weightingLabel(parseWeightingSpec('mgda'))).toBe('mgda');
  });

  it('the help text names every strategy and option', () => {
    const help = weightingHelp();
    for (const [name, w] of Object.entries(WEIGHTINGS)) {
      expect(help).toContain(`${name}: `);
      for (const option of Object.keys(w.options)) expect(help).toContain(`${option} (default`);
    }
  });
});
