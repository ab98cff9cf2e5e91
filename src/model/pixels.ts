/** Pixels to the model input: HWC bytes → normalised C·H·W floats. Pure (no Node API): the web app shares it. */
import type { InputSpec } from './spec';

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
export function normalise(pixels: Uint8Array, pixelChannels: number, input: InputSpec): Float32Array {
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
