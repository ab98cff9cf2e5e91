/**
 * Image preprocessing for the model input: decode with sharp, orient, convert colour, stretch to the
 * input size, normalise to C·H·W floats. Boxes map between normalised model coordinates and original
 * pixels by pure scaling, because resizing stretches (no letterboxing).
 *
 * Colour: alpha is flattened onto white; grey becomes RGB for 3-channel inputs; CMYK and 16-bit
 * images are converted to 8-bit sRGB; 1-channel inputs get the image's luminance. Animated images
 * use their first frame.
 */
import sharp from 'sharp';
import type { InputSpec } from '../model/spec';

export type ImageErrorCode = 'bad_image' | 'too_large' | 'unsupported';

export class ImageError extends Error {
  constructor(
    readonly code: ImageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ImageError';
  }
}

export interface ImageLimits {
  /** Largest width × height accepted, checked before decoding; default DEFAULT_MAX_PIXELS. */
  maxPixels?: number;
}

export interface PreparedImage {
  /** channels × height × width of the model input, normalised (v/255 - mean[c]) / std[c]. */
  data: Float32Array;
  /** Original size, after EXIF orientation. */
  width: number;
  height: number;
}

export interface ImageSize {
  width: number;
  height: number;
}

export type Box = [x1: number, y1: number, x2: number, y2: number];

export const DEFAULT_MAX_PIXELS = 40_000_000;
export const SUPPORTED_FORMATS: readonly string[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'];
const FLATTEN_BACKGROUND = '#ffffff';

/** Decodes, orients, converts and resizes `bytes` to the model input, normalised C·H·W. */
export async function prepareImage(bytes: Buffer | Uint8Array, input: InputSpec, limits: ImageLimits = {}): Promise<PreparedImage> {
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) throw new ImageError('bad_image', 'empty image: no bytes were given');
  const options: sharp.SharpOptions = { limitInputPixels: maxPixels, failOn: 'truncated' };
  // Header only: the pixel limit is checked against it below, with a clearer message than sharp's.
  const metadata = await sharp(bytes, { ...options, limitInputPixels: false }).metadata().catch((error: unknown) => {
    throw decodeError(error);
  });
  checkMetadata(metadata, maxPixels);
  const oriented = metadata.autoOrient ?? { width: metadata.width, height: metadata.height };
  let pipeline = sharp(bytes, options).rotate();
  if (metadata.hasAlpha) pipeline = pipeline.flatten({ background: FLATTEN_BACKGROUND });
  pipeline = pipeline
    .toColourspace(input.channels === 1 ? 'b-w' : 'srgb')
    .resize(input.width, input.height, { fit: 'fill' });
  const { data, info } = await pipeline
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true })
    .catch((error: unknown) => {
      throw decodeError(error);
    });
  if (info.channels !== input.channels || info.width !== input.width || info.height !== input.height) {
    throw new ImageError(
      'unsupported',
      `image decoded to ${info.width}×${info.height}×${info.channels}, expected ${input.width}×${input.height}×${input.channels}`,
    );
  }
  return { data: normalise(data, input.channels, input), width: oriented.width, height: oriented.height };
}

function checkMetadata(metadata: sharp.Metadata, maxPixels: number): void {
  if (!metadata.format || !SUPPORTED_FORMATS.includes(metadata.format)) {
    throw new ImageError('unsupported', `unsupported image format '${metadata.format}'; accepted: JPEG, PNG, WebP, GIF, TIFF, AVIF`);
  }
  if (metadata.format === 'heif' && metadata.compression !== 'av1') {
    throw new ImageError('unsupported', `unsupported HEIF compression '${metadata.compression}'; only AVIF (AV1) is accepted`);
  }
  if (!metadata.width || !metadata.height) {
    throw new ImageError('bad_image', `image has zero size (${metadata.width ?? 0}×${metadata.height ?? 0})`);
  }
  if (metadata.width * metadata.height > maxPixels) {
    throw new ImageError(
      'too_large',
      `image is ${metadata.width}×${metadata.height} = ${metadata.width * metadata.height} pixels, over the limit of ${maxPixels}`,
    );
  }
}

function decodeError(error: unknown): ImageError {
  const message = error instanceof Error ? error.message : String(error);
  if (/unsupported image format/i.test(message)) return new ImageError('bad_image', 'not an image: the bytes are in no recognised image format');
  if (/pixel limit/i.test(message)) return new ImageError('too_large', `image has too many pixels: ${message}`);
  return new ImageError('bad_image', `cannot decode image (truncated or corrupt): ${firstLine(message)}`);
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '')?.trim() ?? text;
}

/**
 * Already-decoded pixels (rows × columns × pixelChannels, at the input's size) to normalised C·H·W.
 * RGB pixels for a 1-channel input become luminance (Rec. 601 weights).
 */
export function toCHW(pixels: Uint8Array, input: InputSpec, pixelChannels: 1 | 3 = 3): Float32Array {
  const expected = input.width * input.height * pixelChannels;
  if (pixels.length !== expected) {
    throw new Error(`toCHW: got ${pixels.length} bytes, expected ${input.width}×${input.height}×${pixelChannels} = ${expected}`);
  }
  return normalise(pixels, pixelChannels, input);
}

/** The one normalisation routine: HWC bytes → C·H·W floats (v/255 - mean[c]) / std[c]. */
function normalise(pixels: Uint8Array, pixelChannels: number, input: InputSpec): Float32Array {
  const plane = input.width * input.height;
  const out = new Float32Array(plane * input.channels);
  if (pixelChannels === input.channels) {
    for (let c = 0; c < input.channels; c++) {
      const scale = 1 / (255 * input.std[c]);
      const offset = input.mean[c] / input.std[c];
      const base = c * plane;
      for (let i = 0, j = c; i < plane; i++, j += pixelChannels) out[base + i] = pixels[j] * scale - offset;
    }
  } else if (pixelChannels === 3 && input.channels === 1) {
    const scale = 1 / (255 * input.std[0]);
    const offset = input.mean[0] / input.std[0];
    for (let i = 0, j = 0; i < plane; i++, j += 3) {
      out[i] = (0.299 * pixels[j] + 0.587 * pixels[j + 1] + 0.114 * pixels[j + 2]) * scale - offset;
    }
  } else {
    for (let c = 0; c < input.channels; c++) {
      const scale = 1 / (255 * input.std[c]);
      const offset = input.mean[c] / input.std[c];
      const base = c * plane;
      for (let i = 0; i < plane; i++) out[base + i] = pixels[i] * scale - offset;
    }
  }
  return out;
}

/** Normalised corners (0..1 of the model input) to original-image pixels, clamped to the image. */
export function boxToPixels(box: readonly number[], size: ImageSize): Box {
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  return [clamp(box[0]) * size.width, clamp(box[1]) * size.height, clamp(box[2]) * size.width, clamp(box[3]) * size.height];
}

/** Original-image pixel corners to normalised 0..1 corners (no clamping). */
export function boxToNormalised(box: readonly number[], size: ImageSize): Box {
  return [box[0] / size.width, box[1] / size.height, box[2] / size.width, box[3] / size.height];
}
