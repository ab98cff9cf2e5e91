/**
 * User data: a folder of images and a JSONL file with one line per image:
 *   {"file": "relative/path.png", "label": "Coat" | 3, "box": [x1, y1, x2, y2] | null}
 * `file` is relative to the data folder (by default the JSONL file's folder) and may not leave it.
 * `box` is in pixels of the image as displayed (after EXIF orientation), x2/y2 exclusive, with
 * 0 ≤ x1 < x2 ≤ width and 0 ≤ y1 < y2 ≤ height. A null or absent box means "no object": the
 * sample gets objectness 0 and its label, optional there, is checked but not used.
 * Blank lines are ignored; other JSON fields are ignored.
 */
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { InputSpec } from '../model/spec';
import { normaliseAnnotatedBox, parseAnnotationLine } from './annotation-line';
import type { NormalisedBox, Sample } from './dataset';
import { TridentError } from '../base/errors';
import { prepareImage, type Box } from './image';

export const ANNOTATIONS_FILE = 'annotations.jsonl';

/** An annotation file, or a data folder holding annotations.jsonl → the annotation file; `option` names the flag in errors. */
export function annotationsFileOf(fileOrFolder: string, option = '--data'): string {
  let stat;
  try {
    stat = statSync(fileOrFolder);
  } catch {
    throw new Error(`${option}: ${fileOrFolder} does not exist (give an annotations .jsonl file or the folder that holds ${ANNOTATIONS_FILE})`);
  }
  return stat.isDirectory() ? path.join(fileOrFolder, ANNOTATIONS_FILE) : fileOrFolder;
}

export interface AnnotatedSample extends Sample {
  file: string;
  /** 1-based line number in the JSONL file. */
  line: number;
  /** Original size after EXIF orientation. */
  width: number;
  height: number;
  pixelBox: Box | null;
}

export interface AnnotationReport {
  jsonl: string;
  /** Non-blank lines read. */
  lines: number;
  loaded: number;
  skipped: number;
  withObject: number;
  withoutObject: number;
  /** One message per skipped line, plus notes such as labels given without a box. */
  warnings: string[];
}

export interface LoadAnnotationOptions {
  /** Skip bad lines with a warning each instead of failing on the first. */
  skipBad?: boolean;
  maxPixels?: number;
  /** Folder the `file` paths are relative to; default the JSONL file's folder. */
  root?: string;
  /** Images decoded at once; default min(4, available cores). */
  concurrency?: number;
  /** Receives every warning as it happens; default writes it to stderr. */
  onWarning?: (message: string) => void;
}

/** A bad annotation line: the file, the line and what is wrong with it. */
export class AnnotationError extends TridentError {
  constructor(
    readonly jsonl: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super('invalid_argument', `${jsonl}:${line}: ${problem}`);
  }
}

interface ParsedLine {
  line: number;
  file: string;
  fullPath: string;
  label: number | null;
  box: Box | null;
}

/** Reads and decodes an annotated dataset; throws AnnotationError on the first bad line unless skipBad. */
export async function loadAnnotatedDataset(
  jsonlPath: string,
  labels: readonly string[],
  input: InputSpec,
  opts: LoadAnnotationOptions = {},
): Promise<{ samples: AnnotatedSample[]; report: AnnotationReport }> {
  const onWarning = opts.onWarning ?? ((message: string) => process.stderr.write(`warning: ${message}\n`));
  const root = path.resolve(opts.root ?? path.dirname(jsonlPath));
  let text: string;
  try {
    text = await readFile(jsonlPath, 'utf8');
  } catch (error) {
    throw new Error(`${jsonlPath}: cannot read annotations: ${(error as Error).message}`);
  }
  const report: AnnotationReport = { jsonl: jsonlPath, lines: 0, loaded: 0, skipped: 0, withObject: 0, withoutObject: 0, warnings: [] };
  const { entries, lines, labelWithoutBox } = parseLines(text, labels, root, jsonlPath, opts.skipBad ?? false);
  report.lines = lines;

  const concurrency = opts.concurrency ?? Math.max(1, Math.min(4, os.availableParallelism()));
  const decoded = await mapLimited(
    entries,
    concurrency,
    async (entry) => {
      if (entry instanceof AnnotationError) return entry;
      try {
        return await decodeLine(entry, input, opts.maxPixels, jsonlPath);
      } catch (error) {
        if (error instanceof AnnotationError) return error;
        throw error;
      }
    },
    (result) => result instanceof AnnotationError && !opts.skipBad,
  );

  const samples: AnnotatedSample[] = [];
  for (const result of decoded) {
    if (result === undefined) continue;
    if (result instanceof AnnotationError) {
      if (!opts.skipBad) throw result;
      report.skipped++;
      const message = `skipped ${result.message}`;
      report.warnings.push(message);
      onWarning(message);
      continue;
    }
    samples.push(result);
    if (result.objectness === 1) report.withObject++;
    else report.withoutObject++;
  }
  report.loaded = samples.length;
  if (labelWithoutBox > 0) {
    const note = `${jsonlPath}: ${labelWithoutBox} line(s) give a label but no box; they count as "no object" and their label is not used`;
    report.warnings.push(note);
    onWarning(note);
  }
  return { samples, report };
}

/**
 * Parses every non-blank line. Problems found before decoding fail fast; with skipBad they stay in
 * place as errors, so that they are reported in line order with the decoding ones.
 */
function parseLines(text: string, labels: readonly string[], root: string, jsonl: string, skipBad: boolean) {
  const entries: (ParsedLine | AnnotationError)[] = [];
  let lines = 0;
  let labelWithoutBox = 0;
  text
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((raw, i) => {
      if (raw.trim() === '') return;
      lines++;
      try {
        const line = parseLine(raw, i + 1, labels, root, jsonl);
        if (line.box === null && line.label !== null) labelWithoutBox++;
        entries.push(line);
      } catch (error) {
        if (!(error instanceof AnnotationError) || !skipBad) throw error;
        entries.push(error);
      }
    });
  return { entries, lines, labelWithoutBox };
}

function parseLine(raw: string, line: number, labels: readonly string[], root: string, jsonl: string): ParsedLine {
  const fail = (problem: string): never => {
    throw new AnnotationError(jsonl, line, problem);
  };
  const { file, label, box } = parseAnnotationLine(raw, labels, fail);
  return { line, file, fullPath: resolveInside(root, file, fail), label, box };
}

function resolveInside(root: string, file: string, fail: (problem: string) => never): string {
  if (file.includes('\0')) fail('file path contains a NUL byte');
  if (path.isAbsolute(file) || path.win32.isAbsolute(file)) fail(`file "${file}" is an absolute path; paths must be relative to the data folder`);
  const full = path.resolve(root, file);
  const relative = path.relative(root, full);
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) fail(`file "${file}" is outside the data folder ${root}`);
  return full;
}

async function decodeLine(line: ParsedLine, input: InputSpec, maxPixels: number | undefined, jsonl: string): Promise<AnnotatedSample> {
  const fail = (problem: string): never => {
    throw new AnnotationError(jsonl, line.line, problem);
  };
  let bytes: Buffer;
  try {
    bytes = await readFile(line.fullPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return fail(code === 'ENOENT' ? `file "${line.file}" does not exist` : `cannot read "${line.file}": ${(error as Error).message}`);
  }
  let prepared;
  try {
    prepared = await prepareImage(bytes, input, { maxPixels });
  } catch (error) {
    if (error instanceof TridentError) return fail(`"${line.file}": ${error.message}`);
    throw error;
  }
  const { width, height } = prepared;
  let box: NormalisedBox = [0, 0, 0, 0];
  if (line.box) {
    box = normaliseAnnotatedBox(line.box, { width, height }, line.file, fail);
  }
  return {
    image: prepared.data,
    label: line.box && line.label !== null ? line.label : -1,
    objectness: line.box ? 1 : 0,
    box,
    file: line.file,
    line: line.line,
    width,
    height,
    pixelBox: line.box,
  };
}

/**
 * Maps with at most `limit` calls in flight, keeping order. Once `stop(result)` is true, no new
 * calls start; items never started stay undefined.
 */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>, stop: (result: R) => boolean): Promise<(R | undefined)[]> {
  const results: (R | undefined)[] = new Array(items.length);
  let next = 0;
  let stopped = false;
  const worker = async () => {
    while (!stopped && next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
      if (stop(results[i] as R)) stopped = true;
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
