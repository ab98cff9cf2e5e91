import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  FASHION_MNIST_ENV,
  FASHION_MNIST_FILES,
  FASHION_MNIST_REPO_DIR,
  FASHION_MNIST_SHA256,
  encodeIdx,
  findFashionMnistDir,
  loadFashionMnist,
  loadFashionMnistSplit,
  parseIdx,
  readIdxFile,
} from './idx';

describe('IDX reader', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'trident-idx-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const images = (count: number) => encodeIdx([count, 28, 28], Uint8Array.from({ length: count * 784 }, (_, i) => i % 251));
  const labels = (values: number[]) => encodeIdx([values.length], Uint8Array.from(values));

  function writeSplit(prefix: 'train' | 't10k', imageBytes: Uint8Array, labelBytes: Uint8Array, gzip = true) {
    const suffix = gzip ? '.gz' : '';
    writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte${suffix}`), gzip ? gzipSync(imageBytes) : imageBytes);
    writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte${suffix}`), gzip ? gzipSync(labelBytes) : labelBytes);
  }

  it('parses dims and data of a valid buffer', () => {
    const parsed = parseIdx(encodeIdx([2, 3], Uint8Array.from([1, 2, 3, 4, 5, 6])), 'x');
    expect(parsed.dims).toEqual([2, 3]);
    expect(Array.from(parsed.data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('reads gzip and plain files alike', async () => {
    const bytes = encodeIdx([4], Uint8Array.from([9, 8, 7, 6]));
    writeFileSync(path.join(dir, 'plain'), bytes);
    writeFileSync(path.join(dir, 'packed.gz'), gzipSync(bytes));
    for (const name of ['plain', 'packed.gz']) {
      const parsed = await readIdxFile(path.join(dir, name));
      expect(Array.from(parsed.data)).toEqual([9, 8, 7, 6]);
    }
  });

  it.each([
    ['bad magic', Uint8Array.from([1, 2, 8, 1, 0, 0, 0, 1, 5]), /bad IDX magic number 01 02 08 01/],
    ['unsupported element type', Uint8Array.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 5, 5, 5, 5]), /unsupported IDX element type 0x0d/],
    ['truncated header', Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1]), /truncated IDX header/],
    ['truncated data', encodeIdx([10, 28, 28], new Uint8Array(7840)).subarray(0, 1000), /truncated IDX data: dimensions \[10, 28, 28\] need 7840 bytes, found 984/],
    ['trailing bytes', Uint8Array.from([...encodeIdx([2], Uint8Array.from([1, 2])), 0, 0]), /2 unexpected trailing bytes/],
    ['tiny file', Uint8Array.from([0, 0]), /not an IDX file/],
  ])('rejects %s, naming the file', async (_case, bytes, message) => {
    const file = path.join(dir, 'broken-idx');
    writeFileSync(file, bytes);
    await expect(readIdxFile(file)).rejects.toThrow(message);
    await expect(readIdxFile(file)).rejects.toThrow(file);
  });

  it('rejects corrupt gzip, naming the file', async () => {
    const file = path.join(dir, 'bad.gz');
    const packed = gzipSync(encodeIdx([100], new Uint8Array(100)));
    writeFileSync(file, packed.subarray(0, packed.length - 12));
    await expect(readIdxFile(file)).rejects.toThrow(new RegExp(`${file}: bad gzip data`));
  });

  it('loads both Fashion-MNIST splits from a folder', async () => {
    writeSplit('train', images(3), labels([0, 9, 4]));
    writeSplit('t10k', images(2), labels([1, 2]), false);
    const data = await loadFashionMnist(dir);
    expect(data.train.count).toBe(3);
    expect(Array.from(data.train.labels)).toEqual([0, 9, 4]);
    expect(data.train.images.length).toBe(3 * 784);
    expect(data.train.images[785]).toBe(785 % 251);
    expect(data.test.count).toBe(2);
  });

  it('checks that the files of a split agree', async () => {
    writeSplit('t10k', images(3), labels([1, 2]));
    await expect(loadFashionMnistSplit('test', dir)).rejects.toThrow(/t10k-labels-idx1-ubyte.gz: has 2 labels but .*t10k-images-idx3-ubyte.gz has 3 images/);
    writeSplit('t10k', encodeIdx([2, 28, 27], new Uint8Array(2 * 28 * 27)), labels([1, 2]));
    await expect(loadFashionMnistSplit('test', dir)).rejects.toThrow(/t10k-images-idx3-ubyte.gz: wrong dimensions \[2, 28, 27\]/);
    writeSplit('t10k', images(2), labels([1, 12]));
    await expect(loadFashionMnistSplit('test', dir)).rejects.toThrow(/label 12 at index 1 is out of range/);
  });

  it('names the missing file', async () => {
    writeFileSync(path.join(dir, 't10k-images-idx3-ubyte.gz'), gzipSync(images(1)));
    await expect(loadFashionMnistSplit('test', dir)).rejects.toThrow(/t10k-labels-idx1-ubyte: missing/);
  });

  describe('where a split is found', () => {
    const saved = process.env[FASHION_MNIST_ENV];
    afterEach(() => {
      if (saved === undefined) delete process.env[FASHION_MNIST_ENV];
      else process.env[FASHION_MNIST_ENV] = saved;
    });
    const folder = (name: string, prefixes: ('train' | 't10k')[]) => {
      const d = path.join(dir, name);
      mkdirSync(d);
      for (const prefix of prefixes) for (const kind of ['images-idx3', 'labels-idx1']) writeFileSync(path.join(d, `${prefix}-${kind}-ubyte`), '');
      return d;
    };

    it('looks per split in --fashion-mnist, then $TRIDENT_FASHION_MNIST, then the defaults in order', () => {
      const flag = folder('flag', ['train']);
      const env = folder('env', ['train', 't10k']);
      const first = folder('first', ['t10k']);
      const second = folder('second', ['train', 't10k']);
      delete process.env[FASHION_MNIST_ENV];
      expect(findFashionMnistDir('train', flag, [first, second])).toBe(flag);
      expect(findFashionMnistDir('test', flag, [first, second])).toBe(first);
      expect(findFashionMnistDir('train', undefined, [first, second])).toBe(second);
      process.env[FASHION_MNIST_ENV] = env;
      expect(findFashionMnistDir('train', flag, [first, second])).toBe(flag);
      expect(findFashionMnistDir('test', flag, [first, second])).toBe(env);
      expect(findFashionMnistDir('test', undefined, [first, second])).toBe(env);
    });

    it('refuses a named folder that does not exist instead of using another copy', () => {
      const good = folder('good', ['train', 't10k']);
      delete process.env[FASHION_MNIST_ENV];
      expect(() => findFashionMnistDir('test', path.join(dir, 'nope'), [good])).toThrow(`--fashion-mnist ${path.join(dir, 'nope')}: no such folder`);
      process.env[FASHION_MNIST_ENV] = path.join(dir, 'gone');
      expect(() => findFashionMnistDir('test', undefined, [good])).toThrow(`${FASHION_MNIST_ENV} ${path.join(dir, 'gone')}: no such folder`);
    });

    it('says how to get a missing training split: the download command, the apt package, the flag and the variable', () => {
      const testOnly = folder('test-only', ['t10k']);
      delete process.env[FASHION_MNIST_ENV];
      expect(findFashionMnistDir('test', undefined, [testOnly])).toBe(testOnly);
      const message = (() => {
        try {
          findFashionMnistDir('train', undefined, [testOnly]);
        } catch (e) {
          return (e as Error).message;
        }
        throw new Error('no error');
      })();
      expect(message).toContain(`Fashion-MNIST's training split (train-images-idx3-ubyte and train-labels-idx1-ubyte, plain or .gz) is in none of ${testOnly}.`);
      expect(message).toContain('npx trident data download fashion-mnist');
      expect(message).toContain('apt-get install dataset-fashion-mnist');
      expect(message).toContain(`--fashion-mnist DIR or ${FASHION_MNIST_ENV}=DIR`);
    });
  });

  it('the repository carries the official test split, byte for byte', async () => {
    for (const name of Object.values(FASHION_MNIST_FILES.test)) {
      const content = gunzipSync(readFileSync(path.join(FASHION_MNIST_REPO_DIR, `${name}.gz`)));
      expect([name, createHash('sha256').update(content).digest('hex')]).toEqual([name, FASHION_MNIST_SHA256[name]]);
    }
    const saved = process.env[FASHION_MNIST_ENV];
    delete process.env[FASHION_MNIST_ENV];
    try {
      expect(findFashionMnistDir('test')).toBe(FASHION_MNIST_REPO_DIR);
    } finally {
      if (saved !== undefined) process.env[FASHION_MNIST_ENV] = saved;
    }
    const test = await loadFashionMnistSplit('test', FASHION_MNIST_REPO_DIR);
    expect(test.count).toBe(10000);
    expect(test.images.length).toBe(10000 * 784);
    const perClass = new Array(10).fill(0);
    for (const label of test.labels) perClass[label]++;
    expect(perClass).toEqual(new Array(10).fill(1000));
  });
});
