/**
 * The user's training data, read in the browser and never sent anywhere: images plus
 * annotations.jsonl (picked or dropped together, or as one .zip), checked line by line as the
 * server checks them (src/data/annotation-line.ts), and turned into samples for the model.
 */
import { unzipSync } from 'fflate';
import { normaliseAnnotatedBox, parseAnnotationLine } from '../../src/data/annotation-line';
import type { Sample } from '../../src/data/batch';
import type { InputSpec } from '../../src/model/spec';
import { decodeImage, inputTensor } from './images';

export const MAX_SAMPLES = 5000;
const IMAGE_TYPES: Record<string, string> = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif', avif: 'image/avif' };

export interface LoadedData {
  name: string;
  samples: Sample[];
  withObject: number;
}

/** Files by path: a picked folder keeps relative paths, single files have their names. */
async function filesOf(picked: File[]): Promise<{ files: Map<string, Blob>; name: string }> {
  const files = new Map<string, Blob>();
  let name = picked.length === 1 ? picked[0].name : `${picked.length} files`;
  for (const file of picked) {
    if (/\.zip$/i.test(file.name)) {
      let entries: Record<string, Uint8Array>;
      try {
        entries = unzipSync(new Uint8Array(await file.arrayBuffer()));
      } catch (e) {
        throw new Error(`${file.name}: not a readable zip file (${(e as Error).message})`);
      }
      for (const [entry, bytes] of Object.entries(entries)) {
        if (entry.endsWith('/')) continue;
        const ext = entry.split('.').pop()!.toLowerCase();
        files.set(entry, new Blob([bytes as BlobPart], { type: IMAGE_TYPES[ext] ?? '' }));
      }
      name = file.name;
    } else {
      files.set(file.webkitRelativePath || file.name, file);
    }
  }
  return { files, name };
}

export async function loadUserData(picked: File[], labels: readonly string[], input: InputSpec, onProgress?: (done: number, total: number) => void): Promise<LoadedData> {
  const { files, name } = await filesOf(picked);
  const jsonlPaths = [...files.keys()].filter((p) => p.endsWith('.jsonl'));
  const jsonlPath = jsonlPaths.find((p) => p.split('/').pop() === 'annotations.jsonl') ?? (jsonlPaths.length === 1 ? jsonlPaths[0] : undefined);
  if (!jsonlPath) throw new Error('no annotations.jsonl among the files: pick it together with the images (or a .zip holding both)');
  const root = jsonlPath.includes('/') ? jsonlPath.slice(0, jsonlPath.lastIndexOf('/') + 1) : '';
  const text = await files.get(jsonlPath)!.text();
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const parsed = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const fail = (problem: string): never => {
      throw new Error(`annotations.jsonl:${i + 1}: ${problem}`);
    };
    parsed.push({ line: i + 1, fail, ...parseAnnotationLine(lines[i], labels, fail) });
  }
  if (parsed.length === 0) throw new Error('annotations.jsonl has no annotation lines');
  if (parsed.length > MAX_SAMPLES) throw new Error(`annotations.jsonl has ${parsed.length} lines; the browser trains on at most ${MAX_SAMPLES}`);
  const byBaseName = new Map<string, Blob | null>();
  for (const [p, blob] of files) {
    const base = p.split('/').pop()!;
    byBaseName.set(base, byBaseName.has(base) ? null : blob);
  }
  const samples: Sample[] = [];
  let withObject = 0;
  for (const entry of parsed) {
    const blob = files.get(root + entry.file) ?? files.get(entry.file) ?? byBaseName.get(entry.file.split('/').pop()!);
    if (!blob) entry.fail(`file "${entry.file}" is not among the files given`);
    let image;
    try {
      image = await decodeImage(blob!);
    } catch {
      return entry.fail(`"${entry.file}" is not an image this browser can decode`);
    }
    const present = entry.box !== null && entry.label !== null;
    const box = present ? normaliseAnnotatedBox(entry.box!, image, entry.file, entry.fail) : ([0, 0, 0, 0] as [number, number, number, number]);
    samples.push({ image: inputTensor(image, input), label: present ? entry.label! : -1, objectness: present ? 1 : 0, box });
    image.bitmap.close();
    if (present) withObject++;
    onProgress?.(samples.length, parsed.length);
  }
  return { name, samples, withObject };
}
