import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { FILES } from '../../artifacts/export';
import { writeFileAtomic } from '../../artifacts/files';
import { IO } from '../../artifacts/graphs';
import { readManifest } from '../../artifacts/manifest';
import { boxToPixels, prepareImage } from '../../data/image';
import { decodeHeads } from '../../runtime/predictor';
import { createSession, parseDevice } from '../../runtime/session';
import { deviceHelp } from '../../runtime/execution-providers';
import type { HostFeeds } from '../../runtime/worker-protocol';
import { parseNumber } from '../format';

export interface PredictLine {
  image: string;
  class: { label: string; score: number; top_k: { label: string; score: number }[] };
  object: { present: boolean; score: number };
  box: { x1: number; y1: number; x2: number; y2: number };
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function drawPrediction(image: Buffer, p: PredictLine, out: string): Promise<void> {
  const { data: upright, info } = await sharp(image).rotate().toBuffer({ resolveWithObject: true });
  const { width, height } = info;
  const stroke = Math.max(2, Math.round(Math.min(width, height) / 100));
  const font = Math.max(10, Math.round(Math.min(width, height) / 16));
  const colour = p.object.present ? '#00e676' : '#ff5252';
  const label = `${p.class.label} ${(p.class.score * 100).toFixed(0)}% · object ${(p.object.score * 100).toFixed(0)}%`;
  const { x1, y1, x2, y2 } = p.box;
  const svg = `<svg width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">
<rect x="${x1}" y="${y1}" width="${Math.max(1, x2 - x1)}" height="${Math.max(1, y2 - y1)}" fill="none" stroke="${colour}" stroke-width="${stroke}"/>
<text x="${Math.max(0, x1)}" y="${Math.max(font, y1 - stroke)}" font-family="sans-serif" font-size="${font}" fill="${colour}" stroke="black" stroke-width="0.5">${escapeXml(label)}</text>
</svg>`;
  await writeFileAtomic(out, await sharp(upright).composite([{ input: Buffer.from(svg), top: 0, left: 0 }]).png().toBuffer());
}

export function register(program: Command): void {
  program
    .command('predict')
    .description('class, objectness and box for images, with the box in the original pixels')
    .argument('<model>', 'model folder (with manifest.json and infer.onnx)')
    .argument('<images...>', 'image files (JPEG, PNG, WebP, GIF, TIFF, AVIF)')
    .option('--top-k <k>', 'how many classes to list', '3')
    .option('--threshold <p>', 'objectness probability above which an object is present', '0.5')
    .option('--draw <out.png>', 'draw box and label; with several images, -N is added before the extension')
    .option('--device <name>', deviceHelp(), 'cpu')
    .option('--json', 'print JSON lines')
    .action(async (model: string, images: string[], opts) => {
      const manifest = await readManifest(model, { verify: true });
      const topK = parseNumber(opts.topK, '--top-k', { integer: true, min: 1 });
      const threshold = parseNumber(opts.threshold, '--threshold', { min: 0, max: 1 });
      const { session } = await createSession(path.join(model, FILES.infer), { device: parseDevice(opts.device) });
      const { channels, height, width } = manifest.input;
      for (const [i, file] of images.entries()) {
        const bytes = await fs.readFile(file).catch(() => {
          throw new Error(`cannot read image ${file}`);
        });
        const prepared = await prepareImage(bytes, manifest.spec.input).catch((e: Error) => {
          throw new Error(`${file}: ${e.message}`);
        });
        const out = await session.run({ [IO.image]: new ort.Tensor('float32', prepared.data, [1, channels, height, width]) });
        const outputs: HostFeeds = {};
        for (const [name, t] of Object.entries(out)) outputs[name] = { dtype: 'float32', dims: [...t.dims], data: t.data as Float32Array };
        const heads = decodeHeads(outputs, 0, manifest.labels, { topK, objectThreshold: threshold });
        const [x1, y1, x2, y2] = boxToPixels([heads.box.x1, heads.box.y1, heads.box.x2, heads.box.y2], prepared);
        const p: PredictLine = {
          image: file,
          class: { label: heads.class.label, score: heads.class.score, top_k: heads.class.topK.map(({ label, score }) => ({ label, score })) },
          object: heads.object,
          box: { x1, y1, x2, y2 },
        };
        if (opts.json) process.stdout.write(`${JSON.stringify(p)}\n`);
        else {
          process.stdout.write(`${file} (${prepared.width}×${prepared.height})\n`);
          process.stdout.write(`  class   ${p.class.label} ${(p.class.score * 100).toFixed(1)}%  [${p.class.top_k.map((c) => `${c.label} ${(c.score * 100).toFixed(1)}%`).join(', ')}]\n`);
          process.stdout.write(`  object  ${p.object.present ? 'present' : 'absent'} (${(p.object.score * 100).toFixed(1)}%)\n`);
          process.stdout.write(`  box     x1 ${x1.toFixed(1)}  y1 ${y1.toFixed(1)}  x2 ${x2.toFixed(1)}  y2 ${y2.toFixed(1)} px\n`);
        }
        if (opts.draw) {
          const target = images.length > 1 ? opts.draw.replace(/(\.[^.]*)?$/, `-${i + 1}$1`) : opts.draw;
          await drawPrediction(bytes, p, target);
          if (!opts.json) process.stdout.write(`  drawn   ${target}\n`);
        }
      }
      await session.release();
    });
}
