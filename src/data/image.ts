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
import { TridentError } from '../base/errors';
import { normalise } from '../model/pixels';
import type { InputSpec } from '../model/spec';

export { toCHW } from '../model/pixels';

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

export { boxToNormalised, boxToPixels, type Box, type ImageSize } from '../model/predictions';

export const DEFAULT_MAX_PIXELS = 40_000_000;
export const SUPPORTED_FORMATS: readonly string[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif'];
const FLATTEN_BACKGROUND = '#ffffff';

/** Decodes, orients, converts and resizes `bytes` to the model input, normalised C·H·W. */
export async function prepareImage(bytes: Buffer | Uint8Array, input: InputSpec, limits: ImageLimits = {}): Promise<PreparedImage> {
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (bytes.length === 0) throw new TridentError('invalid_argument', 'empty image: no bytes were given');
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
    throw new TridentError(
      'unsupported_media_type',
      `image decoded to ${info.width}×${info.height}×${info.channels}, expected ${input.width}×${input.height}×${input.channels}`,
    );
  }
  return { data: normalise(data, input.channels, input), width: oriented.width, height: oriented.height };
}

function checkMetadata(metadata: sharp.Metadata, maxPixels: number): void {
  if (!metadata.format || !SUPPORTED_FORMATS.includes(metadata.format)) {
    throw new TridentError('unsupported_media_type', `unsupported image format '${metadata.format}'; accepted: JPEG, PNG, WebP, GIF, TIFF, AVIF`);
  }
  if (metadata.format === 'heif' && metadata.compression !== 'av1') {
    throw new TridentError('unsupported_media_type', `unsupported HEIF compression '${metadata.compression}'; only AVIF (AV1) is accepted`);
  }
  if (!metadata.width || !metadata.height) {
    throw new TridentError('invalid_argument', `image has zero size (${metadata.width ?? 0}×${metadata.height ?? 0})`);
  }
  if (metadata.width * metadata.height > maxPixels) {
    throw new TridentError(
      'payload_too_large',
      `image is ${metadata.width}×${metadata.height} = ${metadata.width * metadata.height} pixels, over the limit of ${maxPixels}`,
    );
  }
}

function decodeError(error: unknown): TridentError {
  const message = error instanceof Error ? error.message : String(error);
  if (/unsupported image format/i.test(message)) return new TridentError('invalid_argument', 'not an image: the bytes are in no recognised image format');
  if (/pixel limit/i.test(message)) return new TridentError('payload_too_large', `image has too many pixels: ${message}`);
  return new TridentError('invalid_argument', `cannot decode image (truncated or corrupt): ${firstLine(message)}`);
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim() !== '')?.trim() ?? text;
}
