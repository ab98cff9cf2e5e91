/** Test helper: `trident serve` as a real child process on loopback, with the ports it bound. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { SERVER_NODE_FLAGS } from '../node-flags';

export const BIN = path.join(__dirname, '..', '..', '..', 'bin', 'trident.js');

export interface ServeProcess {
  child: ChildProcess;
  httpPort: number;
  grpcPort: number;
  /** The exit code or signal once the process has ended. */
  exited?: string;
  /** Everything the process wrote, for failure reports. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts `trident serve --models ROOT` on free ports and resolves once it reports ready. */
export function startServeProcess(root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  const child = spawn(
    process.execPath,
    [...SERVER_NODE_FLAGS, BIN, 'serve', '--models', root, '--host', '127.0.0.1', '--http', '0', '--grpc', '0', '--threads', '1', ...args],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const server: Partial<ServeProcess> & { child: ChildProcess } = { child, output: () => log };
  child.once('exit', (code, signal) => (server.exited = signal ?? String(code)));
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      for (const line of log.split('\n')) {
        if (!line.includes('"msg":"ready"')) continue;
        const ready = JSON.parse(line) as { http: number; grpc: number };
        child.stdout!.off('data', onData);
        child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
        server.httpPort = ready.http;
        server.grpcPort = ready.grpc;
        server.stop = () => stopProcess(child);
        return resolve(server as ServeProcess);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    child.once('exit', (code, signal) => reject(new Error(`trident serve exited (${signal ?? code}) before it was ready:\n${log}`)));
  });
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
