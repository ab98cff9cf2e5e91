import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { makeRepository } from '../runtime/testing/repository';
import { startTestServer, tinyTensor } from './testing/harness';

const REPO_ROOT = path.join(__dirname, '..', '..');

const inferBody = () =>
  JSON.stringify({ inputs: [{ name: 'image', shape: [1, 3, 16, 16], datatype: 'FP32', data: Array.from(tinyTensor(1, 0)) }] });

describe('graceful shutdown', () => {
  it('flips readiness, stops accepting and finishes in-flight work before releasing the models', async () => {
    const s = await startTestServer({ maxQueueDelayMs: 300 }, [{ name: 'tiny', versions: [1] }]);
    const inflight = fetch(`${s.url}/v2/models/tiny/infer`, { method: 'POST', body: inferBody() });
    // Drain once the request is in the server's hands (a connection still sending it would be idle, and closed).
    while (s.server.service.inflightCount === 0) await new Promise((r) => setTimeout(r, 5));
    const drained = s.server.drain(5000);
    expect(s.server.service.ready()).toBe(false);
    await expect(fetch(`${s.url}/v2/health/live`)).rejects.toThrow();
    const response = await inflight;
    expect(response.status).toBe(200);
    expect(await drained).toEqual({ drained: true });
  });

  it('drains on SIGTERM in the real CLI process and exits 0', async () => {
    const root = await makeRepository([{ name: 'tiny', versions: [1] }]);
    // Uses the CLI program once `serve` is registered there, else registers the command itself.
    const script = `
      const { Command } = require('commander');
      const index = ${JSON.stringify(path.join(REPO_ROOT, 'dist/cli/index.js'))};
      const program = require('fs').existsSync(index) ? require(index).buildProgram() : new Command('trident');
      if (!program.commands.some((c) => c.name() === 'serve')) require(${JSON.stringify(path.join(REPO_ROOT, 'dist/cli/commands/serve.js'))}).register(program);
      program.parseAsync(['node', 'trident', ...process.argv.slice(1)]);`;
    expect(existsSync(path.join(REPO_ROOT, 'dist/cli/commands/serve.js'))).toBe(true);
    const child = spawn(
      process.execPath,
      ['-e', script, 'serve', '--models', root, '--host', '127.0.0.1', '--http', '0', '--grpc', '0', '--threads', '1', '--max-queue-delay', '400', '--no-auth'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: Record<string, unknown>[] = [];
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const ready = new Promise<{ http: number }>((resolve, reject) => {
      let buffer = '';
      child.stdout.on('data', (c: Buffer) => {
        buffer += c.toString();
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = JSON.parse(buffer.slice(0, newline));
          buffer = buffer.slice(newline + 1);
          lines.push(line);
          if (line.msg === 'ready') resolve(line as { http: number });
        }
      });
      void exited.then((code) => reject(new Error(`server exited with ${code} before it was ready: ${stderr}`)));
    });
    const { http } = await ready;
    const inflight = fetch(`http://127.0.0.1:${http}/v2/models/tiny/infer`, { method: 'POST', body: inferBody() });
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    const response = await inflight;
    expect(response.status).toBe(200);
    expect(await exited).toBe(0);
    const messages = lines.map((l) => l.msg);
    expect(messages).toEqual(expect.arrayContaining(['shutting down', 'draining', 'drained; stopped']));
    expect(lines.find((l) => l.msg === 'draining')).toMatchObject({ inflight: 1 });
  });
});
