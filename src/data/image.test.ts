import sharp from 'sharp';
import type { InputSpec } from '../model/spec';
import { TridentError } from '../base/errors';
import { boxToNormalised, boxToPixels, prepareImage, toCHW } from './image';

const rgbInput: InputSpec = { channels: 3, height: 8, width: 8, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
const greyInput: InputSpec = { channels: 1, height: 8, width: 8, mean: [0.5], std: [0.5] };
const norm = (v: number, c = 0, input = rgbInput) => (v / 255 - input.mean[c]) / input.std[c];
/** Pixel value back from a normalised channel value. */
const pixel = (data: Float32Array, c: number, y: number, x: number, input = rgbInput) =>
  (data[c * input.width * input.height + y * input.width + x] * input.std[c] + input.mean[c]) * 255;

function solid(width: number, height: number, rgb: [number, number, number]) {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
}

/** width×height RGB where pixels for which `first(x, y)` holds are red, the rest blue. */
function twoColour(width: number, height: number, first: (x: number, y: number) => boolean) {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw[(y * width + x) * 3 + (first(x, y) ? 0 : 2)] = 255;
  return sharp(raw, { raw: { width, height, channels: 3 } });
}

async function expectImageError(promise: Promise<unknown>, code: string, message: RegExp) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TridentError);
  expect((error as TridentError).code).toBe(code);
  expect((error as TridentError).message).toMatch(message);
}

describe('prepareImage', () => {
  it('normalises a PNG per channel and reports the original size', async () => {
    const png = await solid(40, 20, [10, 200, 30]).png().toBuffer();
    const { data, width, height } = await prepareImage(png, rgbInput);
    expect([width, height]).toEqual([40, 20]);
    expect(data.length).toBe(3 * 8 * 8);
    for (const [c, v] of [10, 200, 30].entries()) {
      for (let i = 0; i < 64; i++) expect(data[c * 64 + i]).toBeCloseTo(norm(v, c), 5);
    }
  });

  it('stretches to the input size, so horizontal halves stay halves', async () => {
    const png = await twoColour(40, 10, (x) => x < 20).png().toBuffer();
    const { data } = await prepareImage(png, rgbInput);
    for (let y = 0; y < 8; y++) {
      expect(pixel(data, 0, y, 0)).toBeCloseTo(255, 0);
      expect(pixel(data, 2, y, 0)).toBeCloseTo(0, 0);
      expect(pixel(data, 0, y, 7)).toBeCloseTo(0, 0);
      expect(pixel(data, 2, y, 7)).toBeCloseTo(255, 0);
    }
  });

  it('applies EXIF orientation: a 90° rotation swaps width and height and turns the content', async () => {
    // Stored 30×20 with the top half red; orientation 6 displays it rotated 90° clockwise (20×30, right half red).
    const jpeg = await twoColour(30, 20, (_x, y) => y < 10).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    const { data, width, height } = await prepareImage(jpeg, rgbInput);
    expect([width, height]).toEqual([20, 30]);
    expect(pixel(data, 0, 4, 7)).toBeGreaterThan(200);
    expect(pixel(data, 2, 4, 7)).toBeLessThan(60);
    expect(pixel(data, 0, 4, 0)).toBeLessThan(60);
    expect(pixel(data, 2, 4, 0)).toBeGreaterThan(200);
  });

  it('expands greyscale to three equal channels', async () => {
    const png = await solid(12, 9, [90, 90, 90]).toColourspace('b-w').png().toBuffer();
    expect((await sharp(png).metadata()).channels).toBe(1);
    const { data } = await prepareImage(png, rgbInput);
    for (let c = 0; c < 3; c++) expect(pixel(data, c, 3, 3)).toBeCloseTo(90, 0);
  });

  it('flattens transparency onto white', async () => {
    const png = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const { data } = await prepareImage(png, rgbInput);
    for (let c = 0; c < 3; c++) expect(pixel(data, c, 0, 0)).toBeCloseTo(255, 0);
    const half = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
    const blended = await prepareImage(half, rgbInput);
    expect(pixel(blended.data, 0, 0, 0)).toBeCloseTo(255, 0);
    expect(pixel(blended.data, 1, 0, 0)).toBeGreaterThan(120);
    expect(pixel(blended.data, 1, 0, 0)).toBeLessThan(135);
  });

  it('converts CMYK JPEG to RGB', async () => {
    const cmyk = await solid(10, 10, [220, 20, 20]).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe('cmyk');
    const { data } = await prepareImage(cmyk, rgbInput);
    expect(pixel(data, 0, 4, 4)).toBeGreaterThan(180);
    expect(pixel(data, 1, 4, 4)).toBeLessThan(60);
    expect(pixel(data, 2, 4, 4)).toBeLessThan(60);
  });

  it('reads 16-bit PNG', async () => {
    const raw = Buffer.alloc(6 * 4 * 2);
    for (let i = 0; i < 24; i++) raw.writeUInt16LE(32896, i * 2); // 32896 / 257 = 128
    const png = await sharp(raw, { raw: { width: 6, height: 4, channels: 1 } }).toColourspace('grey16').png().toBuffer();
    expect((await sharp(png).metadata()).depth).toBe('ushort');
    const { data } = await prepareImage(png, rgbInput);
    for (let c = 0; c < 3; c++) expect(pixel(data, c, 2, 2)).toBeCloseTo(128, 0);
  });

  it.each([
    ['WebP', (s: sharp.Sharp) => s.webp({ lossless: true })],
    ['GIF', (s: sharp.Sharp) => s.gif()],
    ['TIFF', (s: sharp.Sharp) => s.tiff()],
    ['AVIF', (s: sharp.Sharp) => s.avif({ lossless: true, effort: 0 })],
  ])('decodes %s', async (_format, encode) => {
    const bytes = await encode(solid(24, 16, [0, 0, 255])).toBuffer();
    const { data, width, height } = await prepareImage(bytes, rgbInput);
    expect([width, height]).toEqual([24, 16]);
    expect(pixel(data, 2, 4, 4)).toBeGreaterThan(240);
    expect(pixel(data, 0, 4, 4)).toBeLessThan(15);
  });

  it('gives one luminance channel for a 1-channel input', async () => {
    const png = await solid(8, 8, [255, 0, 0]).png().toBuffer();
    const { data } = await prepareImage(png, greyInput);
    expect(data.length).toBe(64);
    const luminance = pixel(data, 0, 0, 0, greyInput);
    expect(luminance).toBeGreaterThan(50);
    expect(luminance).toBeLessThan(140);
  });

  it('shares its normalisation with toCHW', async () => {
    const raw = Buffer.from(Array.from({ length: 8 * 8 * 3 }, (_, i) => (i * 37) % 256));
    const png = await sharp(raw, { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
    const { data } = await prepareImage(png, rgbInput);
    expect(Array.from(data)).toEqual(Array.from(toCHW(raw, rgbInput)));
    expect(() => toCHW(raw.subarray(1), rgbInput)).toThrow(/expected 8×8×3/);
  });

  describe('errors', () => {
    it('rejects empty bytes', () => expectImageError(prepareImage(Buffer.alloc(0), rgbInput), 'invalid_argument', /empty/));
    it('rejects bytes that are no image', () => expectImageError(prepareImage(Buffer.from('hello, not an image'), rgbInput), 'invalid_argument', /not an image/));
    it('rejects a truncated JPEG', async () => {
      const jpeg = await twoColour(64, 64, (x, y) => (x ^ y) % 3 === 0).jpeg().toBuffer();
      await expectImageError(prepareImage(jpeg.subarray(0, jpeg.length >> 1), rgbInput), 'invalid_argument', /truncated or corrupt/);
    });
    it('rejects a truncated PNG', async () => {
      const png = await twoColour(64, 64, (x, y) => (x ^ y) % 3 === 0).png().toBuffer();
      await expectImageError(prepareImage(png.subarray(0, png.length >> 1), rgbInput), 'invalid_argument', /truncated or corrupt/);
    });
    it('rejects an image over the pixel limit before decoding it', async () => {
      const png = await solid(100, 60, [1, 2, 3]).png().toBuffer();
      await expectImageError(prepareImage(png, rgbInput, { maxPixels: 5000 }), 'payload_too_large', /100×60 = 6000 pixels, over the limit of 5000/);
      await expect(prepareImage(png, rgbInput, { maxPixels: 6000 })).resolves.toMatchObject({ width: 100, height: 60 });
    });
    it('rejects formats outside the accepted list', async () => {
      const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
      await expectImageError(prepareImage(svg, rgbInput), 'unsupported_media_type', /unsupported image format 'svg'/);
    });
  });
});

describe('box mapping', () => {
  it('scales between normalised corners and pixels', () => {
    const size = { width: 200, height: 100 };
    expect(boxToPixels([0.1, 0.2, 0.5, 1], size)).toEqual([20, 20, 100, 100]);
    expect(boxToNormalised([20, 20, 100, 100], size)).toEqual([0.1, 0.2, 0.5, 1]);
  });

  it('clamps model boxes to the image', () => {
    expect(boxToPixels([-0.1, 0.5, 1.2, 0.75], { width: 10, height: 8 })).toEqual([0, 4, 10, 6]);
  });
});
