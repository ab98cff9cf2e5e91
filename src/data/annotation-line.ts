/**
 * One line of an annotation file, checked without touching any file: the part of annotations.ts
 * that the web app shares. `fail` receives the problem and throws (each caller its own error type).
 */
import { z } from 'zod';
import type { Box, ImageSize } from '../model/predictions';

const LineSchema = z.object({
  file: z.string().min(1),
  label: z.union([z.string().min(1), z.number().int()]).nullable().optional(),
  box: z.tuple([z.number(), z.number(), z.number(), z.number()]).nullable().optional(),
});

export interface AnnotationLine {
  file: string;
  /** Class index; null when the line gives none. */
  label: number | null;
  box: Box | null;
}

export function parseAnnotationLine(raw: string, labels: readonly string[], fail: (problem: string) => never): AnnotationLine {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    return fail(`invalid JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('expected a JSON object per line');
  const result = LineSchema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    return fail(`field '${issue.path.join('.') || '(line)'}': ${issue.message}`);
  }
  const { file, label, box } = result.data;
  const labelIndex = label === undefined || label === null ? null : resolveLabel(label, labels, fail);
  if (box && labelIndex === null) fail('a box is given but no label');
  if (box && !box.every(Number.isFinite)) fail(`box [${box.join(', ')}] has non-finite values`);
  return { file, label: labelIndex, box: box ?? null };
}

/** A pixel box checked against its image → normalised corners. */
export function normaliseAnnotatedBox(box: Box, size: ImageSize, file: string, fail: (problem: string) => never): Box {
  const [x1, y1, x2, y2] = box;
  const { width, height } = size;
  if (!(x2 > x1 && y2 > y1)) fail(`box [${box.join(', ')}] is empty or inverted (needs x2 > x1 and y2 > y1)`);
  if (x1 < 0 || y1 < 0 || x2 > width || y2 > height) fail(`box [${box.join(', ')}] is outside the ${width}×${height} image "${file}"`);
  return [x1 / width, y1 / height, x2 / width, y2 / height];
}

function resolveLabel(label: string | number, labels: readonly string[], fail: (problem: string) => never): number {
  if (typeof label === 'number') {
    if (label < 0 || label >= labels.length) fail(`label index ${label} is out of range 0..${labels.length - 1}`);
    return label;
  }
  const index = labels.indexOf(label);
  if (index < 0) {
    const known = labels.length <= 20 ? labels.map((l) => `"${l}"`).join(', ') : `${labels.length} labels`;
    fail(`unknown label "${label}" (known: ${known})`);
  }
  return index;
}

