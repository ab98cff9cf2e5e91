import { GraphBuilder } from '../onnx/builder';
import { encodeModel } from '../onnx/serialize';
import { cudaPreflight, cudaProblems } from './cuda';
import { ProviderUnavailableError } from './execution-providers';
import { createSession } from './session';

function model(): Uint8Array {
  const b = new GraphBuilder();
  b.output(b.op('Relu', [b.input('x', 'float32', [2])]), 'y');
  return encodeModel(b.model());
}

function invalidModel(): Uint8Array {
  return Uint8Array.of(1, 2, 3);
}

describe('execution provider choice', () => {
  it('uses the CPU by default', async () => {
    const { session, provider } = await createSession(model());
    expect(provider).toBe('cpu');
    await session.release();
  });

  it('passes a model error through instead of blaming the provider', async () => {
    await expect(createSession(invalidModel(), { device: 'cpu' })).rejects.toThrow(/protobuf parsing failed/);
  });

  // Whatever this machine lacks for CUDA (the provider, a library, a GPU), --device cuda names the
  // first missing piece and its fix; where nothing is missing the session must open on CUDA.
  it('fails --device cuda with the missing piece and the command that fixes it, or opens on CUDA', async () => {
    const problems = cudaPreflight().length ? cudaPreflight() : cudaProblems();
    const attempt = createSession(model(), { device: 'cuda' });
    if (problems.length === 0) {
      const { session, provider } = await attempt;
      expect(provider).toBe('cuda');
      await session.release();
      return;
    }
    const error = (await attempt.then(
      () => undefined,
      (e: unknown) => e,
    )) as ProviderUnavailableError;
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect(error.provider).toBe('cuda');
    expect(error.message).toContain(`missing ${problems[0].missing}. Fix: ${problems[0].fix}`);
    expect(error.message).toMatch(/Or use --device cpu\|auto$/);
  });

  it('falls back under auto, saying what was missing', async () => {
    const lines: string[] = [];
    const { session, provider } = await createSession(model(), { device: 'auto', log: (l) => lines.push(l) });
    if (provider === 'cpu') expect(lines.join('\n')).toMatch(/the CUDA execution provider is not available: missing .*; trying cpu$/);
    else expect(lines).toEqual([]);
    await session.release();
  });
});
