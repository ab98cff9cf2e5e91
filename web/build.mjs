// Bundles the web app (web/src, plus the pure modules it shares from src/) into dist/web/.
// `node web/build.mjs` once; `--watch` rebuilds on change.
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const out = path.join(root, 'dist', 'web');
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const ortVersion = JSON.parse(readFileSync(path.join(root, 'node_modules', 'onnxruntime-web', 'package.json'), 'utf8')).version;

mkdirSync(out, { recursive: true });
for (const file of ['index.html', 'app.css', 'icon.svg']) copyFileSync(path.join(root, 'web', file), path.join(out, file));

const options = {
  entryPoints: { app: path.join(root, 'web', 'src', 'main.ts'), bench: path.join(root, 'web', 'src', 'bench.ts') },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  // onnxruntime-web is loaded at run time from /ort/ (served from node_modules), not bundled.
  external: ['/ort/*'],
  define: { __TRIDENT_VERSION__: JSON.stringify(version), __ORT_VERSION__: JSON.stringify(ortVersion) },
  logLevel: 'warning',
};

if (process.argv.includes('--watch')) {
  const context = await esbuild.context(options);
  await context.watch();
  console.log(`watching web/ → ${path.relative(root, out)}`);
} else {
  await esbuild.build(options);
}
