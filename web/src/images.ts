/** Images in the browser: decoded, flattened onto white, stretched to the model input, drawn with their box. */
import type { InputSpec } from '../../src/model/spec';
import { toCHW } from '../../src/model/pixels';

export interface DecodedImage {
  bitmap: ImageBitmap;
  /** Size after EXIF orientation. */
  width: number;
  height: number;
}

export async function decodeImage(blob: Blob): Promise<DecodedImage> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch {
    throw new Error(`${(blob as File).name ?? 'image'}: not an image this browser can decode`);
  }
  return { bitmap, width: bitmap.width, height: bitmap.height };
}

/** RGB bytes (H·W·3) of the image stretched to the input size, as the server's preprocessing does. */
export function inputPixels(image: DecodedImage, input: Pick<InputSpec, 'width' | 'height'>): Uint8Array {
  const canvas = new OffscreenCanvas(input.width, input.height);
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.fillStyle = '#ffffff';
  context.fillRect(0, 0, input.width, input.height);
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = 'high';
  context.drawImage(image.bitmap, 0, 0, input.width, input.height);
  const rgba = context.getImageData(0, 0, input.width, input.height).data;
  const rgb = new Uint8Array(input.width * input.height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = rgba[j];
    rgb[i + 1] = rgba[j + 1];
    rgb[i + 2] = rgba[j + 2];
  }
  return rgb;
}

/** The normalised C·H·W tensor of the model input. */
export function inputTensor(image: DecodedImage, input: InputSpec): Float32Array {
  return toCHW(inputPixels(image, input), input);
}

/** Draws the image at its own size (scaled up when small), with a box in original pixels. */
export function drawWithBox(image: DecodedImage, box: [number, number, number, number] | undefined, label?: string): HTMLCanvasElement {
  const scale = Math.max(1, Math.floor(256 / Math.max(image.width, image.height)));
  const canvas = document.createElement('canvas');
  canvas.width = image.width * scale;
  canvas.height = image.height * scale;
  const context = canvas.getContext('2d')!;
  context.imageSmoothingEnabled = scale === 1;
  context.drawImage(image.bitmap, 0, 0, canvas.width, canvas.height);
  if (box) {
    const [x1, y1, x2, y2] = box.map((v) => v * scale);
    context.lineWidth = Math.max(2, canvas.width / 128);
    context.strokeStyle = '#f0a500';
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    if (label) {
      context.font = `${Math.max(12, Math.round(canvas.width / 18))}px system-ui, sans-serif`;
      const width = context.measureText(label).width + 8;
      const top = Math.max(0, y1 - Math.max(16, canvas.width / 14));
      context.fillStyle = '#f0a500';
      context.fillRect(x1, top, width, Math.max(16, canvas.width / 14));
      context.fillStyle = '#000';
      context.fillText(label, x1 + 4, top + Math.max(12, canvas.width / 18));
    }
  }
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', label ? `image with a box around the ${label}` : 'image');
  return canvas;
}
