import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FASHION_LABELS, type InputSpec } from '../model/spec';
import { loadAnnotatedDataset } from './annotations';
import { exportFashionLoc } from './export';
import { renderFashionLoc } from './fashionloc';
import { toCHW } from './image';
import { syntheticFashionMnist } from './synthetic';

describe('exportFashionLoc', () => {
  let out: string;
  beforeEach(() => {
    out = mkdtempSync(path.join(tmpdir(), 'trident-export-'));
  });
  afterEach(() => rmSync(out, { recursive: true, force: true }));

  it('round-trips through the user-data loader with the same labels, boxes and pixels', async () => {
    const source = { test: syntheticFashionMnist(40, 3) };
    const progress: number[] = [];
    const result = await exportFashionLoc(source, { out, count: 12, split: 'test', seed: 9, size: 48, p: 0.7, onProgress: (done) => progress.push(done) });
    expect(result.written).toBe(12);
    expect(progress).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    const lines = readFileSync(result.annotations, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0].file).toBe('images/000000.png');

    const input: InputSpec = { channels: 3, height: 48, width: 48, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
    const { samples, report } = await loadAnnotatedDataset(result.annotations, FASHION_LABELS, input, { onWarning: () => {} });
    expect(report).toMatchObject({ loaded: 12, skipped: 0, withObject: result.withObject });
    expect(result.withObject).toBeGreaterThan(0);
    expect(result.withObject).toBeLessThan(12);
    samples.forEach((sample, i) => {
      const rendered = renderFashionLoc(source, { seed: 9, width: 48, height: 48, p: 0.7 }, 'test', i);
      expect(sample.label).toBe(rendered.label ?? -1);
      expect(sample.pixelBox).toEqual(rendered.box);
      if (rendered.box) expect(sample.box).toEqual(rendered.box.map((v) => v / 48));
      // PNG is lossless and the size matches, so the pixels come back exactly.
      expect(Array.from(sample.image)).toEqual(Array.from(toCHW(rendered.rgb, input)));
    });
  });

  it('keeps labels and boxes when the model input differs from the canvas', async () => {
    const source = { train: syntheticFashionMnist(60, 4) };
    const result = await exportFashionLoc(source, { out, count: 6, split: 'val', seed: 2, p: 1 });
    const input: InputSpec = { channels: 1, height: 28, width: 28, mean: [0.5], std: [0.5] };
    const { samples } = await loadAnnotatedDataset(result.annotations, FASHION_LABELS, input, { onWarning: () => {} });
    expect(samples).toHaveLength(6);
    samples.forEach((sample, i) => {
      const rendered = renderFashionLoc(source, { seed: 2, p: 1 }, 'val', i);
      expect(sample.image.length).toBe(28 * 28);
      expect([sample.width, sample.height]).toEqual([64, 64]);
      expect(sample.label).toBe(rendered.label);
      // Boxes are kept in the original image's pixels, so stretching to 28×28 does not round them.
      expect(sample.box).toEqual(rendered.box!.map((v) => v / 64));
    });
  });
});
