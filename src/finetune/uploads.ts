/**
 * Files of an upload, written inside one job's uploads folder under size and count limits. Names
 * come from clients: they are reduced to plain relative paths that cannot leave the folder.
 */
import { TridentError } from '../base/errors';
import { createWriteStream, promises as fs } from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { UploadLimits } from './config';

const MAX_NAME_LENGTH = 255;
const MAX_SEGMENT_LENGTH = 128;
const MAX_DEPTH = 8;
// Letters and digits of any script, space and a few punctuation marks; nothing a shell, URL or
// Windows path treats specially.
const SEGMENT = /^[\p{L}\p{N}_][\p{L}\p{N} ._+\-()@,=~]*$/u;

/** The client's file name as a relative path with "/" separators; refuses anything that could escape or hide. */
export function safeUploadPath(name: string): string {
  const refuse = (why: string): never => {
    throw new TridentError('invalid_argument', `upload file name ${JSON.stringify(name.slice(0, MAX_NAME_LENGTH))} ${why}`);
  };
  if (name.length === 0) refuse('is empty');
  if (name.length > MAX_NAME_LENGTH) refuse(`is longer than ${MAX_NAME_LENGTH} characters`);
  const segments = name.split(/[\\/]+/).filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) refuse('names no file');
  if (segments.includes('..')) refuse('leaves the upload folder');
  if (/^[\\/]/.test(name) || /^[A-Za-z]:/.test(name)) refuse('is an absolute path');
  if (segments.length > MAX_DEPTH) refuse(`is nested deeper than ${MAX_DEPTH} folders`);
  for (const segment of segments) {
    if (segment.length > MAX_SEGMENT_LENGTH) refuse(`has a part longer than ${MAX_SEGMENT_LENGTH} characters`);
    if (!SEGMENT.test(segment)) refuse('may only use letters, digits, spaces and . _ + - ( ) @ , = ~, and no part may start with ".", "-" or a space');
  }
  return segments.join('/');
}

/** Resolves a safe relative path inside `dir`, checking once more that it stays there. */
function inside(dir: string, relative: string): string {
  const full = path.resolve(dir, relative);
  const back = path.relative(dir, full);
  if (back === '' || back.startsWith('..') || path.isAbsolute(back)) {
    throw new TridentError('invalid_argument', `upload file name "${relative}" leaves the upload folder`);
  }
  return full;
}

export class UploadFolder {
  private totalBytes = 0;
  private readonly names = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly limits: UploadLimits,
  ) {}

  get bytes(): number {
    return this.totalBytes;
  }

  get files(): readonly string[] {
    return [...this.names];
  }

  has(relative: string): boolean {
    return this.names.has(relative);
  }

  /** Writes one file from memory; returns its safe relative path. */
  async writeBuffer(name: string, data: Uint8Array): Promise<string> {
    const { relative, full } = await this.claim(name);
    this.count(relative, data.length, data.length);
    await fs.writeFile(full, data, { flag: 'wx' });
    return relative;
  }

  /** Streams one file to disk, stopping with `too_large` as soon as a limit is passed. */
  async writeStream(name: string, source: Readable): Promise<string> {
    const { relative, full } = await this.claim(name);
    let fileBytes = 0;
    const meter = new Transform({
      transform: (chunk: Buffer, _encoding, callback) => {
        fileBytes += chunk.length;
        try {
          this.count(relative, fileBytes, chunk.length);
          callback(null, chunk);
        } catch (e) {
          callback(e as Error);
        }
      },
    });
    await pipeline(source, meter, createWriteStream(full, { flags: 'wx' }));
    return relative;
  }

  private async claim(name: string): Promise<{ relative: string; full: string }> {
    const relative = safeUploadPath(name);
    if (this.names.has(relative)) throw new TridentError('invalid_argument', `the upload holds "${relative}" twice`);
    if (this.names.size >= this.limits.maxFiles) throw new TridentError('payload_too_large', `more than ${this.limits.maxFiles} files in one upload`);
    this.names.add(relative);
    const full = inside(this.dir, relative);
    await fs.mkdir(path.dirname(full), { recursive: true });
    return { relative, full };
  }

  private count(relative: string, fileBytes: number, added: number): void {
    if (fileBytes > this.limits.maxFileBytes) {
      throw new TridentError('payload_too_large', `upload file "${relative}" is larger than the limit of ${this.limits.maxFileBytes} bytes`);
    }
    this.totalBytes += added;
    if (this.totalBytes > this.limits.maxUploadBytes) {
      throw new TridentError('payload_too_large', `the upload is larger than the limit of ${this.limits.maxUploadBytes} bytes`);
    }
  }
}
