/** Images in REST predict requests: a raw image body, multipart form files, or base64 strings in JSON. */
import { TridentError, invalid } from '../../base/errors';
import busboy from 'busboy';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';

export interface ImageUpload {
  images: Buffer[];
  /** True when the request held exactly one image in a single-image form (raw body or JSON `image`). */
  single: boolean;
  topK?: number;
  objectThreshold?: number;
}

const JsonImages = z
  .object({
    image: z.string().optional(),
    images: z.array(z.string()).optional(),
    top_k: z.number().int().positive().optional(),
    object_threshold: z.number().min(0).max(1).optional(),
  })
  .refine((b) => (b.image === undefined) !== (b.images === undefined), { message: 'give either "image" or "images"' });

const BASE64 = /^[A-Za-z0-9+/\-_\s]*={0,2}\s*$/;

export async function readImages(headers: IncomingHttpHeaders, body: Buffer, maxImages: number): Promise<ImageUpload> {
  const type = (headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type.startsWith('image/') || type === 'application/octet-stream') {
    if (body.length === 0) throw invalid('empty request body: expected image bytes');
    return { images: [body], single: true };
  }
  if (type === 'application/json') return fromJson(body);
  if (type === 'multipart/form-data') return fromMultipart(headers, body, maxImages);
  throw new TridentError(
    'unsupported_media_type',
    `unsupported Content-Type "${type || '(none)'}"; send an image (image/jpeg, image/png, image/webp, …), multipart/form-data, or application/json with base64 images`,
  );
}

function fromJson(body: Buffer): ImageUpload {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw invalid(`malformed JSON in the request body: ${(e as Error).message}`);
  }
  const parsed = JsonImages.safeParse(json);
  if (!parsed.success) {
    throw invalid(`invalid predict request: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ')}`);
  }
  const strings = parsed.data.images ?? [parsed.data.image!];
  const images = strings.map((s, i) => decodeBase64(s, parsed.data.images ? `images[${i}]` : 'image'));
  return { images, single: parsed.data.image !== undefined, topK: parsed.data.top_k, objectThreshold: parsed.data.object_threshold };
}

function decodeBase64(value: string, field: string): Buffer {
  const payload = value.startsWith('data:') ? value.slice(value.indexOf(',') + 1) : value;
  if (!BASE64.test(payload)) throw invalid(`"${field}" is not base64`);
  const bytes = Buffer.from(payload, 'base64');
  if (bytes.length === 0) throw invalid(`"${field}" is empty`);
  return bytes;
}

function fromMultipart(headers: IncomingHttpHeaders, body: Buffer, maxImages: number): Promise<ImageUpload> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({ headers, limits: { files: maxImages, fields: 16 } });
    } catch (e) {
      return reject(invalid(`malformed multipart request: ${(e as Error).message}`));
    }
    const images: Buffer[] = [];
    const fields: Record<string, string> = {};
    let failure: TridentError | undefined;
    parser.on('file', (_name, stream) => {
      const chunks: Buffer[] = [];
      const index = images.length;
      images.push(Buffer.alloc(0));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', () => {});
      stream.on('end', () => (images[index] = Buffer.concat(chunks)));
    });
    parser.on('field', (name, value) => (fields[name] = value));
    parser.on('filesLimit', () => (failure = new TridentError('payload_too_large', `more than ${maxImages} images in one request`)));
    parser.on('error', (e: Error) => reject(invalid(`malformed multipart request: ${e.message}`)));
    parser.on('close', () => {
      if (failure) return reject(failure);
      if (images.length === 0) return reject(invalid('the multipart request holds no file parts; send each image as a file'));
      const empty = images.findIndex((b) => b.length === 0);
      if (empty >= 0) return reject(invalid(`image ${empty + 1} in the multipart request is empty`));
      resolve({ images, single: false, ...numericFields(fields) });
    });
    parser.end(body);
  });
}

function numericFields(fields: Record<string, string>): { topK?: number; objectThreshold?: number } {
  return {
    topK: fields.top_k === undefined ? undefined : Number(fields.top_k),
    objectThreshold: fields.object_threshold === undefined ? undefined : Number(fields.object_threshold),
  };
}
