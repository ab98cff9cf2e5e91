/**
 * `trident data download fashion-mnist`: fetches the Fashion-MNIST files a folder lacks from a
 * mirror (a URL or a local folder), checks each against the sha256 of its decompressed content,
 * and writes it atomically. A file that fails the check is never written.
 */
import { createHash } from 'node:crypto';
import { readFile, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { writeFileAtomic } from '../artifacts/files';
import { FASHION_MNIST_FILES, FASHION_MNIST_SHA256, FASHION_MNIST_SYSTEM_DIR, idxFileIn } from './idx';

const gunzipAsync = promisify(gunzip);

/** Zalando's own copies: the GitHub repository's data/fashion folder, then their S3 website. */
export const FASHION_MNIST_MIRRORS: readonly string[] = Object.freeze([
  'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/',
  'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
]);

/** The largest file is 47 MB decompressed (26 MB as gzip); anything far larger is not it. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;
const FETCH_TIMEOUT_MS = 15 * 60 * 1000;

export interface DownloadOptions {
  /** Folder the files are written to. */
  out: string;
  /** URLs (http/https) or local folders, tried in order for each file. */
  mirrors: readonly string[];
  /** Which of the official files to settle (base names); default all four. */
  files?: readonly string[];
  /** One line per file as it is settled. */
  onProgress?: (line: string) => void;
}

export interface DownloadedFile {
  /** Base name, e.g. train-images-idx3-ubyte. */
  name: string;
  /** The file in `out` (plain or .gz, as the mirror served it). */
  file: string;
  status: 'present' | 'downloaded' | 'replaced';
  /** The URL or local file it came from; absent when it was already present. */
  from?: string;
}

const isGzip = (bytes: Uint8Array) => bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;

/** Why `bytes` are not the official file `name`, or undefined when they are. */
async function mismatch(name: string, bytes: Uint8Array): Promise<string | undefined> {
  let content = bytes;
  if (isGzip(bytes)) {
    try {
      content = await gunzipAsync(bytes, { maxOutputLength: MAX_FILE_BYTES });
    } catch (e) {
      return `bad gzip data (${(e as Error).message})`;
    }
  }
  const sha256 = createHash('sha256').update(content).digest('hex');
  return sha256 === FASHION_MNIST_SHA256[name] ? undefined : `content sha256 ${sha256} (${content.length} bytes) is not the official ${FASHION_MNIST_SHA256[name]}`;
}

function isUrl(mirror: string): boolean {
  return /^https?:\/\//i.test(mirror);
}

/** Checks the mirrors before anything is fetched: a local one must be an existing folder. */
async function checkMirrors(mirrors: readonly string[]): Promise<void> {
  if (mirrors.length === 0) throw new Error('no mirror to download from');
  for (const mirror of mirrors) {
    if (isUrl(mirror)) continue;
    const info = await stat(mirror).catch(() => undefined);
    if (!info?.isDirectory()) throw new Error(`mirror ${mirror}: not an http(s) URL and not a folder`);
  }
}

/** An HTTP answer other than 200: the mirror is reachable but lacks this name. */
class HttpStatusError extends Error {}

async function fetchBytes(url: string): Promise<Uint8Array> {
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'follow' });
  } catch (e) {
    // fetch() says only "fetch failed"; the reason (DNS, refused, TLS, timeout) is its cause.
    const cause = (e as Error & { cause?: Error & { code?: string } }).cause;
    throw new Error(cause ? `${(e as Error).message} (${cause.code ?? cause.message})` : (e as Error).message);
  }
  if (!response.ok || !response.body) throw new HttpStatusError(`HTTP ${response.status}`);
  const declared = Number(response.headers.get('content-length'));
  if (declared > MAX_FILE_BYTES) {
    await response.body.cancel();
    throw new Error(`${declared} bytes is more than the ${MAX_FILE_BYTES} a Fashion-MNIST file can be`);
  }
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of response.body) {
    length += chunk.length;
    if (length > MAX_FILE_BYTES) throw new Error(`more than the ${MAX_FILE_BYTES} bytes a Fashion-MNIST file can be`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, length);
}

/** The file `name` from one mirror: `<name>.gz`, else plain `<name>`. */
async function fromMirror(mirror: string, name: string): Promise<{ bytes: Uint8Array; from: string }> {
  const failures: string[] = [];
  for (const candidate of [`${name}.gz`, name]) {
    const from = isUrl(mirror) ? new URL(candidate, mirror.endsWith('/') ? mirror : `${mirror}/`).href : path.join(mirror, candidate);
    try {
      return { bytes: isUrl(mirror) ? await fetchBytes(from) : await readFile(from), from };
    } catch (e) {
      failures.push(`${from}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
      // An unreachable host will not serve the other name either.
      if (isUrl(mirror) && !(e instanceof HttpStatusError)) break;
    }
  }
  throw new Error(failures.join('; '));
}

async function settle(name: string, options: DownloadOptions): Promise<DownloadedFile> {
  const present = idxFileIn(options.out, name);
  let replacing: string | undefined;
  if (present) {
    const problem = await mismatch(name, await readFile(present));
    if (!problem) return { name, file: present, status: 'present' };
    replacing = `${present}: ${problem}`;
    options.onProgress?.(`${present}: not the official file (${problem}); fetching it again`);
  }
  const failures: string[] = [];
  for (const mirror of options.mirrors) {
    let got: { bytes: Uint8Array; from: string };
    try {
      got = await fromMirror(mirror, name);
    } catch (e) {
      failures.push((e as Error).message);
      continue;
    }
    const problem = await mismatch(name, got.bytes);
    if (problem) {
      failures.push(`${got.from}: refused: ${problem}`);
      continue;
    }
    const file = path.join(options.out, isGzip(got.bytes) ? `${name}.gz` : name);
    await writeFileAtomic(file, got.bytes);
    // A bad copy under the other name would shadow or confuse the good one.
    if (present && present !== file) await rm(present, { force: true });
    return { name, file, status: replacing ? 'replaced' : 'downloaded', from: got.from };
  }
  throw new Error(`${name}: no mirror had the official file:\n    ${failures.join('\n    ')}`);
}

/**
 * Makes `out` hold the official files, fetching only those missing or wrong. Files are
 * settled one after another; if any cannot be had, the others are still written and the error
 * lists every mirror's answer for the ones that failed.
 */
export async function downloadFashionMnist(options: DownloadOptions): Promise<DownloadedFile[]> {
  await checkMirrors(options.mirrors);
  const names = options.files ?? Object.values(FASHION_MNIST_FILES).flatMap((split) => [split.images, split.labels]);
  const unknown = names.filter((name) => !(name in FASHION_MNIST_SHA256));
  if (unknown.length > 0) throw new Error(`not Fashion-MNIST files: ${unknown.join(', ')}`);
  const settled: DownloadedFile[] = [];
  const errors: string[] = [];
  for (const name of names) {
    try {
      const result = await settle(name, options);
      settled.push(result);
      options.onProgress?.(
        result.status === 'present' ? `${result.file}: already present, checked` : `${result.file}: ${result.status} from ${result.from}, checked`,
      );
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length > 0) {
    throw new Error(
      `Fashion-MNIST download incomplete (nothing unchecked was written):\n  ${errors.join('\n  ')}\n` +
        `(--mirror DIR takes a local copy instead, e.g. ${FASHION_MNIST_SYSTEM_DIR} from \`apt-get install dataset-fashion-mnist\`)`,
    );
  }
  return settled;
}
