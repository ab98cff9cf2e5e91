import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CUDA_PROVIDER_PACKAGES, onnxruntimeVersion } from '../../runtime/cuda';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const BIN = path.join(ROOT, 'bin', 'trident.js');

function trident(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('trident doctor, setup cuda and --device from the command line', () => {
  let tmp: string;
  beforeAll(() => (tmp = mkdtempSync(path.join(os.tmpdir(), 'trident-setup-cli-'))));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('doctor --json prints the report as JSON', async () => {
    const { code, stdout } = await trident(['doctor', '--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as { onnxruntime: { version: string }; providers: { name: string; usable: boolean }[] };
    expect(report.onnxruntime.version).toBe(onnxruntimeVersion());
    expect(report.providers.map((p) => p.name)).toEqual(['cpu', 'cuda']);
    expect(report.providers[0].usable).toBe(true);
  });

  it('setup cuda --from refuses a tarball that is not the pinned package', async () => {
    const fake = path.join(tmp, 'fake.tgz');
    writeFileSync(fake, 'not the provider');
    const { code, stderr } = await trident(['setup', 'cuda', '--from', fake]);
    expect(code).toBe(1);
    const pkg = CUDA_PROVIDER_PACKAGES.find((p) => p.ort === onnxruntimeVersion());
    if (pkg) expect(stderr).toContain(`trident: ${fake} is not ${pkg.name}@${pkg.version}: its sha512 integrity is sha512-`);
    else expect(stderr).toContain(`trident: onnxruntime-node ${onnxruntimeVersion()} is installed, and the npm registry has no CUDA provider built for it`);
  });

  it('an unknown --device is refused with the valid names', async () => {
    const { code, stderr } = await trident(['predict', path.join(ROOT, 'models', 'fashionloc', '3'), path.join(tmp, 'none.png'), '--device', 'gpu']);
    expect(code).toBe(1);
    expect(stderr).toContain('trident: unknown device "gpu"; valid: cpu, cuda, auto');
  });
});
