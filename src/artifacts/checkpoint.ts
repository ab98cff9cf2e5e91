/** Checkpoint files on disk: the format (checkpoint-codec.ts) with node:crypto's SHA-256, written atomically. */
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { decodeCheckpointWith, encodeCheckpointWith, type Checkpoint, type CheckpointCodec } from './checkpoint-codec';
import { writeFileAtomic, writeFileAtomicSync } from './files';
import { TRIDENT_VERSION } from './version';

export { CHECKPOINT_FORMAT, emptyOptimizerState, freshCheckpoint, specDifference, type Checkpoint, type OptimizerState } from './checkpoint-codec';

export const NODE_CODEC: CheckpointCodec = {
  sha256: () => {
    const hash = createHash('sha256');
    return { update: (data) => void hash.update(data), hex: () => hash.digest('hex') };
  },
  producer: TRIDENT_VERSION,
};

export function encodeCheckpoint(ckpt: Checkpoint): Uint8Array {
  return encodeCheckpointWith(NODE_CODEC, ckpt);
}

export function decodeCheckpoint(bytes: Uint8Array, source = 'checkpoint'): Checkpoint {
  return decodeCheckpointWith(NODE_CODEC, bytes, source);
}

export async function saveCheckpoint(file: string, ckpt: Checkpoint): Promise<void> {
  await writeFileAtomic(file, encodeCheckpoint(ckpt));
}

export function saveCheckpointSync(file: string, ckpt: Checkpoint): void {
  writeFileAtomicSync(file, encodeCheckpoint(ckpt));
}

export async function loadCheckpoint(file: string): Promise<Checkpoint> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch {
    throw new Error(`${file}: cannot read checkpoint`);
  }
  return decodeCheckpoint(bytes, file);
}

export function loadCheckpointSync(file: string): Checkpoint {
  return decodeCheckpoint(readFileSync(file), file);
}
