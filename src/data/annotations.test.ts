import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import type { InputSpec } from '../model/spec';
import { AnnotationError, loadAnnotatedDataset } from './annotations';

const input: InputSpec = { channels: 3, height: 8, width: 8, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const labels = ['Cat', 'Dog', 'Coat'];

describe('loadAnnotatedDataset', () => {
  let root: string;
  let data: string;
  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'trident-annotations-'));
    data = path.join(root, 'data');
    mkdirSync(path.join(data, 'img'), { recursive: true });
    const png = (w: number, h: number) => sharp({ create: { width: w, height: h, channels: 3, background: '#336699' } }).png().toBuffer();
    writeFileSync(path.join(data, 'img', 'a.png'), await png(40, 20));
    writeFileSync(path.join(data, 'img', 'b.png'), await png(10, 10));
    writeFileSync(path.join(data, 'img', 'broken.png'), Buffer.from('not a png at all'));
    writeFileSync(path.join(root, 'outside.png'), await png(10, 10));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function jsonl(name: string, lines: (object | string)[]): string {
    const file = path.join(data, name);
    writeFileSync(file, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
    return file;
  }

  it('loads labels by name or index, pixel boxes as normalised corners, and box null as no object', async () => {
    const file = jsonl('good.jsonl', [
      { file: 'img/a.png', label: 'Coat', box: [4, 2, 24, 20] },
      '',
      { file: 'img/b.png', label: 1, box: [0, 0, 10, 10], note: 'extra fields are ignored' },
      { file: 'img/b.png', box: null },
      { file: 'img/a.png' },
    ]);
    const warnings: string[] = [];
    const { samples, report } = await loadAnnotatedDataset(file, labels, input, { onWarning: (m) => warnings.push(m) });
    expect(samples.map((s) => [s.line, s.label, s.objectness])).toEqual([
      [1, 2, 1],
      [3, 1, 1],
      [4, -1, 0],
      [5, -1, 0],
    ]);
    expect(samples[0].box).toEqual([0.1, 0.1, 0.6, 1]);
    expect(samples[0].pixelBox).toEqual([4, 2, 24, 20]);
    expect([samples[0].width, samples[0].height]).toEqual([40, 20]);
    expect(samples[2].box).toEqual([0, 0, 0, 0]);
    expect(samples[0].image.length).toBe(3 * 8 * 8);
    expect(report).toMatchObject({ lines: 4, loaded: 4, skipped: 0, withObject: 2, withoutObject: 2 });
    expect(warnings).toEqual([]);
  });

  it('notes labels given without a box, which count as no object', async () => {
    const file = jsonl('label-no-box.jsonl', [{ file: 'img/b.png', label: 'Dog' }, { file: 'img/b.png', label: 'Cat', box: null }]);
    const warnings: string[] = [];
    const { samples, report } = await loadAnnotatedDataset(file, labels, input, { onWarning: (m) => warnings.push(m) });
    expect(samples.map((s) => s.objectness)).toEqual([0, 0]);
    expect(warnings).toEqual([expect.stringMatching(/2 line\(s\) give a label but no box/)]);
    expect(report.warnings).toEqual(warnings);
  });

  const badLines: [string, object | string, RegExp][] = [
    ['invalid JSON', '{"file": "img/a.png", ', /invalid JSON/],
    ['a non-object line', '[1, 2]', /expected a JSON object/],
    ['a missing file field', { label: 'Cat', box: null }, /field 'file'/],
    ['a box of the wrong shape', { file: 'img/a.png', label: 'Cat', box: [1, 2, 3] }, /field 'box'/],
    ['an unknown label name', { file: 'img/a.png', label: 'Horse', box: [0, 0, 5, 5] }, /unknown label "Horse" \(known: "Cat", "Dog", "Coat"\)/],
    ['a label index out of range', { file: 'img/a.png', label: 3, box: [0, 0, 5, 5] }, /label index 3 is out of range 0\.\.2/],
    ['a box without a label', { file: 'img/a.png', box: [0, 0, 5, 5] }, /a box is given but no label/],
    ['a box outside the image', { file: 'img/a.png', label: 0, box: [30, 0, 41, 10] }, /box \[30, 0, 41, 10\] is outside the 40×20 image "img\/a.png"/],
    ['a negative box corner', { file: 'img/a.png', label: 0, box: [-1, 0, 10, 10] }, /is outside the 40×20 image/],
    ['an inverted box', { file: 'img/a.png', label: 0, box: [10, 0, 10, 10] }, /box \[10, 0, 10, 10\] is empty or inverted/],
    ['an undecodable image', { file: 'img/broken.png', label: 0, box: null }, /"img\/broken.png": not an image/],
    ['a missing file', { file: 'img/nope.png', label: 0, box: null }, /file "img\/nope.png" does not exist/],
    ['a path escaping the folder', { file: '../outside.png', label: 0, box: null }, /file "..\/outside.png" is outside the data folder/],
    ['an absolute path', { file: '/etc/passwd', label: 0, box: null }, /file "\/etc\/passwd" is an absolute path/],
  ];

  it.each(badLines)('fails on %s, naming the file and line', async (_case, line, message) => {
    const file = jsonl('bad.jsonl', [{ file: 'img/b.png', label: 'Cat', box: [1, 1, 9, 9] }, line, { file: 'img/b.png', box: null }]);
    const error = await loadAnnotatedDataset(file, labels, input).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AnnotationError);
    expect((error as AnnotationError).line).toBe(2);
    expect((error as AnnotationError).message).toContain(`${file}:2: `);
    expect((error as AnnotationError).message).toMatch(message);
  });

  it('with skipBad, warns once per bad line, counts them and keeps the good ones', async () => {
    const file = jsonl('mixed.jsonl', [
      { file: 'img/b.png', label: 'Cat', box: [1, 1, 9, 9] },
      ...badLines.map(([, line]) => line),
      { file: 'img/a.png', label: 'Dog', box: [0, 0, 40, 20] },
    ]);
    const warnings: string[] = [];
    const { samples, report } = await loadAnnotatedDataset(file, labels, input, { skipBad: true, onWarning: (m) => warnings.push(m) });
    expect(samples.map((s) => s.line)).toEqual([1, badLines.length + 2]);
    expect(report).toMatchObject({ lines: badLines.length + 2, loaded: 2, skipped: badLines.length });
    const skips = warnings.filter((w) => w.startsWith('skipped '));
    expect(skips).toHaveLength(badLines.length);
    badLines.forEach(([, , message], i) => {
      expect(skips[i]).toContain(`${file}:${i + 2}: `);
      expect(skips[i]).toMatch(message);
    });
    expect(report.warnings).toEqual(warnings);
  });

  it('reports the first bad line in file order even when images decode concurrently', async () => {
    const file = jsonl('order.jsonl', [
      ...Array.from({ length: 6 }, () => ({ file: 'img/a.png', label: 0, box: null })),
      { file: 'img/nope.png', label: 0, box: null },
      { file: 'img/broken.png', label: 0, box: null },
    ]);
    await expect(loadAnnotatedDataset(file, labels, input, { concurrency: 4 })).rejects.toThrow(`${file}:7: file "img/nope.png" does not exist`);
  });

  it('fails clearly when the annotation file cannot be read', async () => {
    await expect(loadAnnotatedDataset(path.join(data, 'missing.jsonl'), labels, input)).rejects.toThrow(/missing.jsonl: cannot read annotations/);
  });
});
