import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { builtinSpec, FASHION_LABELS, parseSpec } from '../model/spec';
import { chooseWeighting } from '../model/weighting/index';
import { writeTrainingFixture } from '../testing/fashion-mnist';
import { benchMtl, deltaM, formatMtlTable, inferenceMacs, planBudget, type MtlBenchResult } from './mtl';

describe('bench mtl arithmetic', () => {
  it('Δm: the mean relative gain over the single-task models, by hand', () => {
    // (+0.04/0.8 + 0/0.9 − 0.05/0.5) / 3 = (0.05 + 0 − 0.1) / 3 = −1.667 %.
    expect(deltaM({ cls: 0.84, det: 0.9, box: 0.45 }, { cls: 0.8, det: 0.9, box: 0.5 })).toBeCloseTo(-5 / 3, 12);
    expect(deltaM({ cls: 0.8, det: 0.9, box: 0.5 }, { cls: 0.8, det: 0.9, box: 0.5 })).toBe(0);
  });

  it('multiply-accumulates of the tiny spec, by hand', () => {
    // conv 16·16·4·3·9 + conv 8·8·8·4·9 + fc 128·16 + heads 16·(3 + 1 + 4).
    const trunk = 27648 + 18432 + 2048;
    expect(inferenceMacs(builtinSpec('tiny'), ['cls', 'det', 'box'])).toBe(trunk + 128);
    expect(inferenceMacs(builtinSpec('tiny'), ['cls'])).toBe(trunk + 48);
  });

  it('spends the budget in whole batches of at most 55 000 distinct canvases per epoch', () => {
    expect(planBudget(24000, 64)).toEqual({ epochs: 1, trainCount: 24000, samples: 24000 });
    expect(planBudget(100000, 64)).toEqual({ epochs: 2, trainCount: 49984, samples: 99968 });
    expect(planBudget(1000, 64, 3)).toEqual({ epochs: 3, trainCount: 320, samples: 960 });
  });
});

describe('bench mtl smoke run (tiny, a few dozen samples)', () => {
  let root: string;
  let result: MtlBenchResult;
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'trident-bench-mtl-test-'));
    const fashionMnist = await writeTrainingFixture(path.join(root, 'fashion-mnist'), 200);
    const spec = parseSpec({ ...builtinSpec('tiny'), name: 'tiny10', heads: { classification: { labels: FASHION_LABELS }, detection: {}, box: {} } });
    result = await benchMtl({
      spec,
      budget: 48,
      strategies: [chooseWeighting('static'), chooseWeighting('mgda')],
      seed: 1,
      threads: 1,
      batch: 16,
      lr: 0.01,
      taskWeights: [1, 1, 1],
      fashionMnist,
      valCount: 16,
      testCount: 40,
      overheadSteps: 4,
      inferenceRuns: 3,
    });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('trains three single-task models and one multi-task model per strategy, and fills the table consistently', () => {
    expect(result.rows.map((r) => [r.model, r.weighting])).toEqual([['single cls', 'static'], ['single det', 'static'], ['single box', 'static'], ['multi', 'static'], ['multi', 'mgda']]);
    expect(result).toMatchObject({ samples: 48, epochs: 1, trainCount: 48, testCount: 40 });
    const single = { cls: result.rows[0].scores.cls, det: result.rows[1].scores.det, box: result.rows[2].scores.box };
    for (const row of result.rows.slice(3)) {
      expect(row.deltaM).toBeCloseTo(deltaM(row.scores, single), 12);
      expect(row.metrics.samples).toBe(40);
    }
    expect(result.rows.slice(0, 3).every((r) => r.deltaM === undefined)).toBe(true);
    expect(result.overhead.map((o) => o.weighting)).toEqual(['static', 'mgda']);
    expect(result.overhead[0].ratio).toBe(1);
    // tiny10: heads 16·(10 + 1 + 4) = 240 on a trunk of 48 128.
    expect(result.inference.macsRatio).toBeCloseTo((48128 + 240) / (3 * 48128 + 240), 12);
    expect(result.inference.ratio).toBeGreaterThan(0);

    const text = formatMtlTable(result);
    const mgda = text.split('\n').find((l) => l.startsWith('multi') && l.includes('mgda'))!;
    const signed = `${result.rows[4].deltaM! >= 0 ? '+' : ''}${result.rows[4].deltaM!.toFixed(2)}`;
    expect(mgda).toContain(signed);
    // A single-task row shows only its own task's metric.
    expect(text.split('\n').find((l) => l.startsWith('single det'))!.match(/—/g)!.length).toBeGreaterThanOrEqual(5);
  });
});
