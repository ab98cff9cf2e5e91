/** The checkpoint format with a JavaScript SHA-256 (works on any origin, secure or not). */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { decodeCheckpointWith, encodeCheckpointWith, type Checkpoint, type CheckpointCodec } from '../../src/artifacts/checkpoint-codec';

export const WEB_CODEC: CheckpointCodec = {
  sha256: () => {
    const hash = sha256.create();
    return { update: (data) => void hash.update(data), hex: () => bytesToHex(hash.digest()) };
  },
  producer: `${__TRIDENT_VERSION__} (web app)`,
};

export const encodeCheckpoint = (ckpt: Checkpoint) => encodeCheckpointWith(WEB_CODEC, ckpt);
export const decodeCheckpoint = (bytes: Uint8Array, source?: string) => decodeCheckpointWith(WEB_CODEC, bytes, source);
export const sha256Hex = (bytes: Uint8Array) => bytesToHex(sha256(bytes));
