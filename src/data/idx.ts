/** Reader for IDX files (the MNIST / Fashion-MNIST container), plain or gzip-compressed. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

const gunzipAsync = promisify(gunzip);

export interface IdxArray {
  dims: number[];
  /** Unsigned bytes, row-major. Only the unsigned-byte element type (0x08) is supported. */
  data: Uint8Array;
}

export interface FashionMnistSplit {
  /** count × 28 × 28 grey pixels, 0 = background, 255 = ink. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface FashionMnist {
  train: FashionMnistSplit;
  test: FashionMnistSplit;
}

export type FashionMnistSourceSplit = keyof FashionMnist;

export const FASHION_MNIST_SIDE = 28;
export const FASHION_MNIST_CLASSES = 10;
export const FASHION_MNIST_ENV = 'TRIDENT_FASHION_MNIST';

const UNSIGNED_BYTE = 0x08;
const HEADER_PREFIX = 4;

/** The four official files (base names; each may be stored plain or as `.gz`). */
export const FASHION_MNIST_FILES: Readonly<Record<FashionMnistSourceSplit, Readonly<{ images: string; labels: string }>>> = Object.freeze({
  train: Object.freeze({ images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' }),
  test: Object.freeze({ images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' }),
});

/**
 * sha256 of each official file's decompressed content. Only the content is compared: the gzip
 * bytes differ between copies (Debian's are not Zalando's, whose MD5s torchvision lists).
 */
export const FASHION_MNIST_SHA256: Readonly<Record<string, string>> = Object.freeze({
  'train-images-idx3-ubyte': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
  'train-labels-idx1-ubyte': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
  't10k-images-idx3-ubyte': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
  't10k-labels-idx1-ubyte': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
});

/** Parses IDX bytes (already decompressed); `name` only labels error messages. */
export function parseIdx(bytes: Uint8Array, name: string): IdxArray {
  if (bytes.length < HEADER_PREFIX) {
    throw new Error(`${name}: not an IDX file: only ${bytes.length} bytes, the header alone needs ${HEADER_PREFIX}`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new Error(`${name}: bad IDX magic number ${magic} (expected 00 00 <type> <dims>)`);
  }
  const type = bytes[2];
  if (type !== UNSIGNED_BYTE) {
    throw new Error(`${name}: unsupported IDX element type 0x${type.toString(16).padStart(2, '0')} (only unsigned byte 0x08 is supported)`);
  }
  const rank = bytes[3];
  if (rank === 0) throw new Error(`${name}: IDX header declares zero dimensions`);
  const headerLength = HEADER_PREFIX + 4 * rank;
  if (bytes.length < headerLength) {
    throw new Error(`${name}: truncated IDX header: ${rank} dimensions need ${headerLength} bytes, file has ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(view.getUint32(HEADER_PREFIX + 4 * i, false));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerLength;
  if (actual < expected) {
    throw new Error(`${name}: truncated IDX data: dimensions [${dims.join(', ')}] need ${expected} bytes, found ${actual}`);
  }
  if (actual > expected) {
    throw new Error(`${name}: IDX data has ${actual - expected} unexpected trailing bytes after [${dims.join(', ')}] elements`);
  }
  return { dims, data: bytes.subarray(headerLength) };
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Reads an IDX file; gzip is detected from the content, not the file name. */
export async function readIdxFile(file: string): Promise<IdxArray> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (error) {
    throw new Error(`${file}: cannot read: ${(error as Error).message}`);
  }
  if (isGzip(bytes)) {
    try {
      bytes = await gunzipAsync(bytes);
    } catch (error) {
      throw new Error(`${file}: bad gzip data: ${(error as Error).message}`);
    }
  }
  return parseIdx(bytes, file);
}

/** The repository root, from src/data or dist/data alike. */
function repoRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** The repository's copy: the test split is committed; `trident data download fashion-mnist` adds the training split. */
export const FASHION_MNIST_REPO_DIR = path.join(repoRoot(), 'data', 'fashion-mnist');
/** Debian/Ubuntu's `dataset-fashion-mnist` package. */
export const FASHION_MNIST_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist';
const FASHION_MNIST_DOWNLOAD_COMMAND = 'npx trident data download fashion-mnist';

const SPLIT_NAMES: Record<FashionMnistSourceSplit, string> = { train: 'training split', test: 'test split' };

function holdsSplit(dir: string, split: FashionMnistSourceSplit): boolean {
  return Object.values(FASHION_MNIST_FILES[split]).some((base) => idxFileIn(dir, base) !== undefined);
}

/** Where a split is looked for when neither --fashion-mnist nor $TRIDENT_FASHION_MNIST has it. */
const FASHION_MNIST_DEFAULT_DIRS: readonly string[] = Object.freeze([FASHION_MNIST_REPO_DIR, FASHION_MNIST_SYSTEM_DIR]);

/**
 * The folder that holds one split's files, looked up per split: the given dir (--fashion-mnist),
 * else $TRIDENT_FASHION_MNIST, else the repository's data/fashion-mnist, else Debian's
 * /usr/share/datasets/fashion-mnist. A named folder that does not exist is an error rather than
 * a reason to use another copy; one that lacks this split passes the lookup on. `defaults` is
 * for tests.
 */
export function findFashionMnistDir(split: FashionMnistSourceSplit, dir?: string, defaults = FASHION_MNIST_DEFAULT_DIRS): string {
  const named: [string, string][] = [];
  if (dir) named.push([path.resolve(dir), '--fashion-mnist']);
  const fromEnv = process.env[FASHION_MNIST_ENV];
  if (fromEnv) named.push([path.resolve(fromEnv), FASHION_MNIST_ENV]);
  for (const [folder, source] of named) {
    if (!existsSync(folder)) throw new Error(`${source} ${folder}: no such folder`);
  }
  const candidates = [...named.map(([folder]) => folder), ...defaults];
  const found = candidates.find((candidate) => holdsSplit(candidate, split));
  if (found) return found;
  const files = Object.values(FASHION_MNIST_FILES[split]).join(' and ');
  throw new Error(
    `Fashion-MNIST's ${SPLIT_NAMES[split]} (${files}, plain or .gz) is in none of ${candidates.join(', ')}. Get it with one of:\n` +
      `  ${FASHION_MNIST_DOWNLOAD_COMMAND}    (fetches it from Zalando's mirrors into ${FASHION_MNIST_REPO_DIR}, checked)\n` +
      `  sudo apt-get install dataset-fashion-mnist    (Debian/Ubuntu: ${FASHION_MNIST_SYSTEM_DIR})\n` +
      `or point --fashion-mnist DIR or ${FASHION_MNIST_ENV}=DIR at a folder that holds them.`,
  );
}

/** The copy of IDX file `base` in `dir`: `base`.gz, else `base`; undefined when neither exists. */
export function idxFileIn(dir: string, base: string): string | undefined {
  return [`${base}.gz`, base].map((name) => path.join(dir, name)).find((file) => existsSync(file));
}

function resolveIdxFile(dir: string, base: string): string {
  const found = idxFileIn(dir, base);
  if (found) return found;
  throw new Error(`${path.join(dir, base)}: missing (looked for ${base}.gz and ${base} in ${dir})`);
}

/** Loads one source split ('train': 60 000 items, 'test': 10 000) and checks the files agree. */
export async function loadFashionMnistSplit(split: FashionMnistSourceSplit, dir?: string): Promise<FashionMnistSplit> {
  const root = findFashionMnistDir(split, dir);
  const imagesFile = resolveIdxFile(root, FASHION_MNIST_FILES[split].images);
  const labelsFile = resolveIdxFile(root, FASHION_MNIST_FILES[split].labels);
  const [images, labels] = await Promise.all([readIdxFile(imagesFile), readIdxFile(labelsFile)]);
  const side = FASHION_MNIST_SIDE;
  if (images.dims.length !== 3 || images.dims[1] !== side || images.dims[2] !== side) {
    throw new Error(`${imagesFile}: wrong dimensions [${images.dims.join(', ')}], expected [count, ${side}, ${side}]`);
  }
  if (labels.dims.length !== 1) {
    throw new Error(`${labelsFile}: wrong dimensions [${labels.dims.join(', ')}], expected [count]`);
  }
  const count = images.dims[0];
  if (labels.dims[0] !== count) {
    throw new Error(`${labelsFile}: has ${labels.dims[0]} labels but ${imagesFile} has ${count} images`);
  }
  const bad = labels.data.findIndex((label) => label >= FASHION_MNIST_CLASSES);
  if (bad >= 0) {
    throw new Error(`${labelsFile}: label ${labels.data[bad]} at index ${bad} is out of range 0..${FASHION_MNIST_CLASSES - 1}`);
  }
  return { images: images.data, labels: labels.data, count };
}

/** Loads both source splits; see findFashionMnistDir for where each is looked up. */
export async function loadFashionMnist(dir?: string): Promise<FashionMnist> {
  const [train, test] = await Promise.all([loadFashionMnistSplit('train', dir), loadFashionMnistSplit('test', dir)]);
  return { train, test };
}

/** IDX bytes (uncompressed) for unsigned-byte data of the given dimensions. */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const expected = dims.reduce((a, b) => a * b, 1);
  if (data.length !== expected) throw new Error(`encodeIdx: [${dims.join(', ')}] needs ${expected} bytes, got ${data.length}`);
  const header = HEADER_PREFIX + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  out[2] = UNSIGNED_BYTE;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(HEADER_PREFIX + 4 * i, d, false));
  out.set(data, header);
  return out;
}
