import { AUTO_ORDER, DEVICE_NAMES, EXECUTION_PROVIDERS, PROVIDER_NAMES, ProviderUnavailableError, deviceHelp, parseDevice, parseProvider } from './execution-providers';
import { PROVIDER_CHECKS } from './provider-checks';

describe('the execution provider table', () => {
  it('derives the device names from its keys, plus auto', () => {
    expect(PROVIDER_NAMES).toEqual(Object.keys(EXECUTION_PROVIDERS));
    expect(DEVICE_NAMES).toEqual([...Object.keys(EXECUTION_PROVIDERS), 'auto']);
    expect(Object.isFrozen(EXECUTION_PROVIDERS)).toBe(true);
    for (const name of PROVIDER_NAMES) expect(Object.isFrozen(EXECUTION_PROVIDERS[name])).toBe(true);
  });

  it('tries providers under auto by priority, ending with the CPU', () => {
    expect(AUTO_ORDER).toEqual(['cuda', 'cpu']);
  });

  it('parses every name it lists and refuses others, listing the valid ones', () => {
    for (const name of DEVICE_NAMES) expect(parseDevice(name)).toBe(name);
    expect(() => parseDevice('gpu')).toThrow('unknown device "gpu"; valid: cpu, cuda, auto');
    expect(() => parseDevice('CUDA')).toThrow(/valid: cpu, cuda, auto/);
    for (const name of PROVIDER_NAMES) expect(parseProvider(name)).toBe(name);
    expect(() => parseProvider('auto')).toThrow('unknown execution provider "auto"; valid: cpu, cuda');
  });

  it('documents every choice in the --device help', () => {
    const help = deviceHelp();
    for (const name of PROVIDER_NAMES) expect(help).toContain(`${name} (${EXECUTION_PROVIDERS[name].doc})`);
    expect(help).toMatch(/; auto \(the first that works of cuda, cpu\)$/);
  });

  it('has checks for every provider, and none that can fail for the CPU', () => {
    expect(Object.keys(PROVIDER_CHECKS)).toEqual(PROVIDER_NAMES);
    expect(PROVIDER_CHECKS.cpu.preflight()).toEqual([]);
    expect(PROVIDER_CHECKS.cpu.diagnose()).toEqual([]);
  });

  it('words an unavailable provider with what is missing, its fix, and the other choices', () => {
    const e = new ProviderUnavailableError('cuda', [
      { missing: 'libcudnn.so.9', fix: 'pip install nvidia-cudnn-cu13' },
      { missing: 'a visible NVIDIA GPU', fix: 'run on a GPU machine' },
    ], 'Failed to load library');
    expect(e.message).toBe(
      'the CUDA execution provider is not available: missing libcudnn.so.9. Fix: pip install nvidia-cudnn-cu13. ' +
        '1 more missing; `trident doctor` lists everything. ONNX Runtime said: Failed to load library. Or use --device cpu|auto',
    );
  });
});
