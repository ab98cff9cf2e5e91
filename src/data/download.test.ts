import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { downloadFashionMnist } from './download';
import { FASHION_MNIST_FILES, FASHION_MNIST_REPO_DIR, loadFashionMnistSplit } from './idx';

const IMAGES = FASHION_MNIST_FILES.test.images;
const LABELS = FASHION_MNIST_FILES.test.labels;
const TEST_FILES = [IMAGES, LABELS];
const committed = (name: string) => readFileSync(path.join(FASHION_MNIST_REPO_DIR, `${name}.gz`));

/** Served as a body that announces 70 MiB and never ends. */
const HUGE = 'huge';

/** A real HTTP mirror on loopback serving `files` (URL path → bytes); every request is logged. */
async function startMirror(files: Record<string, Uint8Array | typeof HUGE>): Promise<{ url: string; requests: string[]; server: Server }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url!);
    const body = files[req.url!];
    if (body === HUGE) {
      res.writeHead(200, { 'content-length': 70 * 1024 * 1024 }).write('x');
      return;
    }
    if (!body) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/fashion/`, requests, server };
}

let tmp: string;
let out: string;
const servers: Server[] = [];
beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'trident-download-'));
  out = path.join(tmp, 'out');
});
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise((resolve) => s.close(resolve));
    }),
  );
  rmSync(tmp, { recursive: true, force: true });
});

async function mirror(files: Record<string, Uint8Array | typeof HUGE>) {
  const m = await startMirror(files);
  servers.push(m.server);
  return m;
}

describe('downloadFashionMnist', () => {
  it('fetches the missing files over HTTP, checks them, and leaves present ones alone', async () => {
    const m = await mirror({ [`/fashion/${IMAGES}.gz`]: committed(IMAGES), [`/fashion/${LABELS}.gz`]: committed(LABELS) });
    const lines: string[] = [];
    const first = await downloadFashionMnist({ out, mirrors: [m.url], files: TEST_FILES, onProgress: (l) => lines.push(l) });
    expect(first.map((f) => [f.name, f.status, f.from])).toEqual([
      [IMAGES, 'downloaded', `${m.url}${IMAGES}.gz`],
      [LABELS, 'downloaded', `${m.url}${LABELS}.gz`],
    ]);
    for (const name of TEST_FILES) expect(readFileSync(path.join(out, `${name}.gz`)).equals(committed(name))).toBe(true);
    expect(readdirSync(out).sort()).toEqual(TEST_FILES.map((n) => `${n}.gz`).sort());
    expect(lines).toEqual([
      `${path.join(out, `${IMAGES}.gz`)}: downloaded from ${m.url}${IMAGES}.gz, checked`,
      `${path.join(out, `${LABELS}.gz`)}: downloaded from ${m.url}${LABELS}.gz, checked`,
    ]);
    expect((await loadFashionMnistSplit('test', out)).count).toBe(10000);

    m.requests.length = 0;
    const again = await downloadFashionMnist({ out, mirrors: [m.url], files: TEST_FILES });
    expect(again.map((f) => f.status)).toEqual(['present', 'present']);
    expect(m.requests).toEqual([]);
  });

  it('refuses a short or corrupted file, tries the next mirror, and writes nothing unchecked', async () => {
    const images = committed(IMAGES);
    const content = gunzipSync(committed(LABELS));
    content[100] ^= 1;
    const bad = await mirror({
      [`/fashion/${IMAGES}.gz`]: images.subarray(0, images.length - 1000),
      [`/fashion/${LABELS}.gz`]: gzipSync(content),
    });
    await expect(downloadFashionMnist({ out, mirrors: [bad.url], files: TEST_FILES })).rejects.toThrow(
      new RegExp(
        `Fashion-MNIST download incomplete \\(nothing unchecked was written\\):\\n` +
          `  ${IMAGES}: no mirror had the official file:\\n    ${bad.url}${IMAGES}.gz: refused: bad gzip data \\(unexpected end of file\\)\\n` +
          `  ${LABELS}: no mirror had the official file:\\n    ${bad.url}${LABELS}.gz: refused: content sha256 [0-9a-f]{64} \\(10008 bytes\\) is not the official 0402a96d`,
      ),
    );
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);

    const good = await mirror({ [`/fashion/${IMAGES}.gz`]: images, [`/fashion/${LABELS}.gz`]: committed(LABELS) });
    const files = await downloadFashionMnist({ out, mirrors: [bad.url, good.url], files: TEST_FILES });
    expect(files.map((f) => f.from)).toEqual([`${good.url}${IMAGES}.gz`, `${good.url}${LABELS}.gz`]);
    expect(readdirSync(out).sort()).toEqual(TEST_FILES.map((n) => `${n}.gz`).sort());
  });

  it('names why a mirror failed: a host that refuses, a body too large to be the file', async () => {
    // The huge mirror holds its port first, so that the closed one cannot be handed the same port.
    const huge = await mirror({ [`/fashion/${LABELS}.gz`]: HUGE });
    const closed = await mirror({});
    const refusing = closed.url;
    await new Promise((resolve) => closed.server.close(resolve));
    const error = await downloadFashionMnist({ out, mirrors: [refusing, huge.url], files: [LABELS] }).catch((e: Error) => e.message);
    expect(error).toContain(`${LABELS}: no mirror had the official file:\n    ${refusing}${LABELS}.gz: fetch failed (ECONNREFUSED)\n`);
    expect(error).toContain(`    ${huge.url}${LABELS}.gz: ${70 * 1024 * 1024} bytes is more than the ${64 * 1024 * 1024} a Fashion-MNIST file can be\n`);
    expect(error).toContain('(--mirror DIR takes a local copy instead, e.g. /usr/share/datasets/fashion-mnist');
    expect(existsSync(out)).toBe(false);
  });

  it('settles what it can and names what it could not (a mirror without the training split)', async () => {
    const m = await mirror({ [`/fashion/${IMAGES}.gz`]: committed(IMAGES), [`/fashion/${LABELS}.gz`]: committed(LABELS) });
    const error = await downloadFashionMnist({ out, mirrors: [m.url] }).catch((e: Error) => e.message);
    expect(error).toContain(`train-images-idx3-ubyte: no mirror had the official file:\n    ${m.url}train-images-idx3-ubyte.gz: HTTP 404; ${m.url}train-images-idx3-ubyte: HTTP 404`);
    expect(error).toContain('train-labels-idx1-ubyte: no mirror had the official file');
    expect(readdirSync(out).sort()).toEqual(TEST_FILES.map((n) => `${n}.gz`).sort());
  });

  it('takes plain or gzip files from a local folder, and replaces a wrong copy in the way', async () => {
    const local = path.join(tmp, 'local');
    mkdirSync(local);
    writeFileSync(path.join(local, IMAGES), gunzipSync(committed(IMAGES)));
    writeFileSync(path.join(local, `${LABELS}.gz`), committed(LABELS));
    mkdirSync(out);
    writeFileSync(path.join(out, `${IMAGES}.gz`), gzipSync(Buffer.from('not the images')));
    const files = await downloadFashionMnist({ out, mirrors: [local], files: TEST_FILES });
    expect(files.map((f) => [f.status, f.file])).toEqual([
      ['replaced', path.join(out, IMAGES)],
      ['downloaded', path.join(out, `${LABELS}.gz`)],
    ]);
    expect(readdirSync(out).sort()).toEqual([IMAGES, `${LABELS}.gz`].sort());
    expect((await loadFashionMnistSplit('test', out)).count).toBe(10000);
  });

  it('refuses a mirror that is neither a URL nor a folder, and names that are not Fashion-MNIST files', async () => {
    await expect(downloadFashionMnist({ out, mirrors: [path.join(tmp, 'nowhere')] })).rejects.toThrow(`mirror ${path.join(tmp, 'nowhere')}: not an http(s) URL and not a folder`);
    await expect(downloadFashionMnist({ out, mirrors: [tmp], files: ['passwd'] })).rejects.toThrow('not Fashion-MNIST files: passwd');
    expect(existsSync(out)).toBe(false);
  });
});
