/**
 * Test helper: the system's headless Chromium, driven by playwright-core (which never downloads a
 * browser). Where none is installed the browser tests say so loudly with the install line and are
 * skipped; where CI is set they fail instead.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_INSTALL = 'apt-get install -y chromium';
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable'];

/** TRIDENT_CHROMIUM, else the first of the usual system paths that exists. */
export function findChromium(): string | undefined {
  const given = process.env.TRIDENT_CHROMIUM;
  if (given) return existsSync(given) ? given : undefined;
  return CANDIDATES.find((file) => existsSync(file));
}

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/** Headless Chromium with a fresh profile (playwright gives each launch its own temporary one). */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/**
 * `describe` for tests that need Chromium: runs them when it is installed; otherwise one test
 * fails under CI, and elsewhere they are skipped after a warning that names the install line.
 */
export function describeWithChromium(name: string, body: (executablePath: string) => void): void {
  const executable = findChromium();
  if (executable) return describe(name, () => body(executable));
  const message = `no Chromium found (looked at TRIDENT_CHROMIUM and ${CANDIDATES.join(', ')}); install it with: ${CHROMIUM_INSTALL}`;
  if (process.env.CI) {
    describe(name, () => it('needs Chromium', () => { throw new Error(`${message} (CI must run the browser tests)`); }));
    return;
  }
  process.stderr.write(`\n*** BROWSER TESTS SKIPPED: ${message} ***\n\n`);
  describe.skip(`${name} (SKIPPED: no Chromium; ${CHROMIUM_INSTALL})`, () => body(''));
}
