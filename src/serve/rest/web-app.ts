/**
 * The web app's static side, as an express Router for the REST app:
 *
 *   GET /             the app's page (dist/web/index.html)
 *   GET /app/FILE     the app's bundle, styles and icons (dist/web/, built by web/build.mjs)
 *   GET /ort/FILE     onnxruntime-web's module and wasm files, from node_modules
 *
 * Every answer carries the headers of a cross-origin-isolated page (COOP same-origin, COEP
 * require-corp), which the browser needs before it gives ONNX Runtime threads, and a content
 * security policy that lets the page reach its own server and nothing else.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import express, { type Response } from 'express';

export const WEB_DIR = path.join(__dirname, '..', '..', 'web');

const ORT_FILE = /^(ort\.(wasm|webgpu)\.min\.mjs|ort-wasm-simd-threaded(\.(jsep|asyncify|jspi))?\.(mjs|wasm))$/;

export const ISOLATION_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Content-Type-Options': 'nosniff',
});

const PAGE_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self' blob:",
  "img-src 'self' blob: data:",
  "style-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.map': 'application/json',
});

export interface WebAppOptions {
  /** The built app (default dist/web). */
  webDir?: string;
}

/** onnxruntime-web's dist folder (its "node" entry lies there). */
export function ortWebDir(): string {
  return path.dirname(require.resolve('onnxruntime-web'));
}

export function createWebAppRouter(options: WebAppOptions = {}): express.Router {
  const webDir = options.webDir ?? WEB_DIR;
  const router = express.Router();
  const built = existsSync(path.join(webDir, 'index.html')) ? new Set(readdirSync(webDir)) : undefined;
  let ortDir: string | undefined;

  const send = (res: Response, file: string, cache: string) => {
    const type = TYPES[path.extname(file)] ?? 'application/octet-stream';
    res.set({ ...ISOLATION_HEADERS, 'Content-Type': type, 'Cache-Control': cache });
    res.sendFile(file, { dotfiles: 'deny', lastModified: true }, (error) => {
      if (error && !res.headersSent) res.status(404).json({ error: 'not found' });
    });
  };

  router.get('/', (_req, res) => {
    if (!built) {
      res.status(503).type('text/plain').send('The web app is not built: run `npm run build` (it bundles web/ into dist/web).\n');
      return;
    }
    res.set('Content-Security-Policy', PAGE_POLICY);
    send(res, path.join(webDir, 'index.html'), 'no-cache');
  });

  router.get('/app/:file', (req, res, next) => {
    const file = String(req.params.file);
    if (!built?.has(file) || file === 'index.html') return next();
    send(res, path.join(webDir, file), 'no-cache');
  });

  router.get('/ort/:file', (req, res, next) => {
    const file = String(req.params.file);
    if (!ORT_FILE.test(file)) return next();
    ortDir ??= ortWebDir();
    // The files change only with the onnxruntime-web version, which names them in the page's import.
    send(res, path.join(ortDir, file), 'public, max-age=86400');
  });

  return router;
}
