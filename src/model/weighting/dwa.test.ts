import { dwa, dwaWeights } from './dwa';
import { chooseWeighting } from './index';

describe('DWA (Liu et al. 2019)', () => {
  it('T·softmax(r/2) of the ratios of the last two epochs’ mean losses, by hand', () => {
    // r = (0.5, 1, 2): exp(r/2) = (1.2840, 1.6487, 2.7183), sum 5.6510.
    const w = dwaWeights([[9, 9, 9], [1, 1, 1], [0.5, 1, 2]], 2, 3);
    expect(w[0]).toBeCloseTo(0.68166, 4);
    expect(w[1]).toBeCloseTo(0.87525, 4);
    expect(w[2]).toBeCloseTo(1.44309, 4);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(3, 12);
  });

  it('host hooks: ones until two epochs are known, then the epoch weights; two tasks when two are trained', () => {
    const { options } = chooseWeighting('dwa', { temperature: '1' });
    const host = dwa.host!;
    let state = host.init(2, options);
    expect(host.feeds(state, options).lossScale ?? [1, 1]).toEqual([1, 1]);
    state = host.onEpochEnd!(state, [1, 1], options);
    expect(host.feeds(state, options).lossScale).toEqual([1, 1]);
    state = host.onEpochEnd!(state, [2, 1], options);
    const scale = host.feeds(state, options).lossScale!;
    expect(scale[0]).toBeCloseTo((2 * Math.exp(2)) / (Math.exp(2) + Math.exp(1)), 12);
    expect((state as { history: number[][] }).history).toHaveLength(2);
  });
});
