import { existsSync } from 'node:fs';
import path from 'node:path';
import { GraphBuilder } from '../onnx/builder';
import { encodeModel } from '../onnx/serialize';
import { createSession, parseDevice } from './session';

const cudaInstalled = existsSync(
  path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'),
);

function model(): Uint8Array {
  const b = new GraphBuilder();
  b.output(b.op('Relu', [b.input('x', 'float32', [2])]), 'y');
  return encodeModel(b.model());
}

describe('execution provider choice', () => {
  it('parses device names and refuses others', () => {
    expect(parseDevice('auto')).toBe('auto');
    expect(() => parseDevice('gpu')).toThrow(/unknown device "gpu"; use cpu, cuda or auto/);
  });

  it('uses the CPU by default', async () => {
    const { session, provider } = await createSession(model());
    expect(provider).toBe('cpu');
    await session.release();
  });

  (cudaInstalled ? describe.skip : describe)('[where the CUDA provider is not installed]', () => {
    it('fails clearly when cuda is demanded', async () => {
      await expect(createSession(model(), { device: 'cuda' })).rejects.toThrow(/CUDA execution provider is not available.*ONNXRUNTIME_NODE_INSTALL=cuda12/s);
    });

    it('falls back to the CPU under auto, saying so', async () => {
      const lines: string[] = [];
      const { session, provider } = await createSession(model(), { device: 'auto', log: (l) => lines.push(l) });
      expect(provider).toBe('cpu');
      expect(lines.join('\n')).toMatch(/CUDA execution provider unavailable .*falling back to CPU/);
      await session.release();
    });
  });
});
