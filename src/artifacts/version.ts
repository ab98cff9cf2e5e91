import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

function packageVersion(): string {
  try {
    return JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
  } catch {
    return '0.0.0';
  }
}

export const TRIDENT_VERSION = packageVersion();
export const ORT_VERSION = ort.env.versions.node ?? 'unknown';
