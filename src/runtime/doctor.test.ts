import { PROVIDER_FILES, onnxruntimeVersion } from './cuda';
import { doctor, formatDoctor } from './doctor';
import { PROVIDER_NAMES } from './execution-providers';

describe('trident doctor', () => {
  it('reports the ONNX Runtime version, every provider tried, the CUDA files and libraries, and the GPU', async () => {
    const report = await doctor();
    expect(report.onnxruntime.version).toBe(onnxruntimeVersion());
    expect(report.providers.map((p) => p.name)).toEqual(PROVIDER_NAMES);
    expect(report.providers[0]).toMatchObject({ name: 'cpu', usable: true, problems: [] });
    for (const p of report.providers) {
      // A provider that does not work says why.
      if (!p.usable) expect(p.problems.length + (p.error ? 1 : 0)).toBeGreaterThan(0);
    }
    expect(report.cuda.providerFiles.map((f) => f.file)).toEqual([...PROVIDER_FILES]);
    const cudaInstalled = report.cuda.providerFiles[0].present;
    expect(report.cuda.libraries.length > 0).toBe(cudaInstalled);
    expect(report.cuda.gpu.devices.length > 0 || typeof report.cuda.gpu.reason === 'string').toBe(true);

    const text = formatDoctor(report);
    expect(text.split('\n')[0]).toBe(`ONNX Runtime ${report.onnxruntime.version} (onnxruntime-node, ${report.onnxruntime.bindingDir})`);
    for (const p of report.providers) expect(text).toContain(`  ${p.name.padEnd(5)} ${p.usable ? 'usable' : 'NOT usable'}`);
    for (const l of report.cuda.libraries) expect(text).toMatch(new RegExp(`${l.path ? 'found  ' : 'MISSING'}  ${l.file.replace(/\./g, '\\.')}`));
    expect(text).toContain('\nGPU:\n');
  });
});
