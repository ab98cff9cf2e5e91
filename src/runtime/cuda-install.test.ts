import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';
import { PROVIDER_FILES, type CudaProviderPackage } from './cuda';
import { SetupError, installCudaProvider } from './cuda-install';

const ORT = '9.8.7';
const NAME = 'trident-test-cuda-provider';
const FOLDER = 'package/Plugins/Linux/x64';

/** A provider package shaped like the real one: the three libraries under Plugins/Linux/x64. */
async function fakePackage(root: string, builtFor = ORT): Promise<{ tarball: string; pkg: CudaProviderPackage }> {
  const src = path.join(root, 'src');
  mkdirSync(path.join(src, FOLDER), { recursive: true });
  writeFileSync(path.join(src, 'package', 'package.json'), JSON.stringify({ name: NAME, version: '1.0.0' }));
  for (const file of PROVIDER_FILES) {
    writeFileSync(path.join(src, FOLDER, file), Buffer.concat([Buffer.from(`${file}\0`), Buffer.from(`\0${builtFor}\0`), Buffer.alloc(32, 7)]));
  }
  const tarball = path.join(root, `${NAME}-1.0.0.tgz`);
  await tar.c({ gzip: true, file: tarball, cwd: src }, ['package']);
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  return { tarball, pkg: { ort: ORT, name: NAME, version: '1.0.0', integrity, folder: FOLDER, cuda: '13', cudnn: '9' } };
}

describe('trident setup cuda', () => {
  let root: string;
  let dest: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'trident-setup-'));
    dest = path.join(root, 'binding');
    mkdirSync(dest);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('installs the provider files from a package tarball where onnxruntime-node loads them', async () => {
    const { tarball, pkg } = await fakePackage(root);
    const lines: string[] = [];
    const result = await installCudaProvider({ from: tarball, dest, ortVersion: ORT, packages: [pkg], log: (l) => lines.push(l) });
    expect(result).toEqual({ package: `${NAME}@1.0.0`, dest, files: [...PROVIDER_FILES], installed: true });
    for (const file of PROVIDER_FILES) expect(readFileSync(path.join(dest, file)).subarray(0, file.length).toString()).toBe(file);
    expect(lines.at(-1)).toBe(`installed ${PROVIDER_FILES.join(', ')} in ${dest}`);
    // Nothing of the work folder is left behind.
    expect(readdirSync(dest).sort()).toEqual([...PROVIDER_FILES].sort());

    // From the registry, a matching provider already there is kept; --force or --from installs again.
    const again = await installCudaProvider({ npm: ['false'], dest, ortVersion: ORT, packages: [pkg] });
    expect(again.installed).toBe(false);
    expect((await installCudaProvider({ from: tarball, dest, ortVersion: ORT, packages: [pkg] })).installed).toBe(true);
  });

  it('refuses a version pair that does not match, naming both versions', async () => {
    const { tarball, pkg } = await fakePackage(root);
    const attempt = installCudaProvider({ from: tarball, dest, ortVersion: '1.30.0', packages: [pkg] });
    await expect(attempt).rejects.toThrow(SetupError);
    await expect(attempt).rejects.toThrow(`onnxruntime-node 1.30.0 is installed, and the npm registry has no CUDA provider built for it (it has ${NAME}@1.0.0 for ONNX Runtime ${ORT})`);
    expect(PROVIDER_FILES.some((f) => existsSync(path.join(dest, f)))).toBe(false);
  });

  it('refuses a tarball whose integrity is not the pinned one', async () => {
    const { tarball, pkg } = await fakePackage(root);
    const pinned = { ...pkg, integrity: 'sha512-AAAA' };
    await expect(installCudaProvider({ from: tarball, dest, ortVersion: ORT, packages: [pinned] })).rejects.toThrow(/is not trident-test-cuda-provider@1\.0\.0: its sha512 integrity is sha512-.*, expected sha512-AAAA/);
  });

  it('refuses a provider binary that does not carry the installed ONNX Runtime version', async () => {
    const { tarball, pkg } = await fakePackage(root, '1.2.3');
    await expect(installCudaProvider({ from: tarball, dest, ortVersion: ORT, packages: [pkg] })).rejects.toThrow(/does not carry ONNX Runtime's version 9\.8\.7; refusing a mismatched pair/);
    expect(PROVIDER_FILES.some((f) => existsSync(path.join(dest, f)))).toBe(false);
  });

  it('fetches the package with npm from the registry it is given', async () => {
    const { tarball, pkg } = await fakePackage(root);
    const bytes = readFileSync(tarball);
    const requests: string[] = [];
    const server = http.createServer((req, res) => {
      requests.push(req.url!);
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      if (req.url === `/${NAME}`) {
        const version = { name: NAME, version: '1.0.0', dist: { tarball: `${base}/${NAME}/-/${NAME}-1.0.0.tgz`, integrity: pkg.integrity } };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ name: NAME, 'dist-tags': { latest: '1.0.0' }, versions: { '1.0.0': version } }));
      } else if (req.url === `/${NAME}/-/${NAME}-1.0.0.tgz`) {
        res.setHeader('content-type', 'application/octet-stream');
        res.end(bytes);
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const cache = path.join(root, 'npm-cache');
      const npm = process.env.npm_execpath?.endsWith('.js') ? [process.execPath, process.env.npm_execpath, '--cache', cache] : ['npm', '--cache', cache];
      const result = await installCudaProvider({ registry, npm, dest, ortVersion: ORT, packages: [pkg] });
      expect(result.installed).toBe(true);
      expect([...new Set(requests)]).toEqual([`/${NAME}`, `/${NAME}/-/${NAME}-1.0.0.tgz`]);
      for (const file of PROVIDER_FILES) expect(existsSync(path.join(dest, file))).toBe(true);

      const missing = { ...pkg, version: '2.0.0' };
      await expect(installCudaProvider({ registry, npm, dest, ortVersion: ORT, packages: [missing], force: true })).rejects.toThrow(
        new RegExp(`npm could not fetch ${NAME}@2\\.0\\.0 from the registry .*trident setup cuda --from ${NAME}-2\\.0\\.0\\.tgz`),
      );
    } finally {
      server.close();
    }
  }, 60_000);
});
