#!/usr/bin/env node
const { spawn } = require('node:child_process');
const { SERVER_NODE_FLAGS } = require('../dist/serve/node-flags.js');

const args = process.argv.slice(2);
const missing = args[0] === 'serve' ? SERVER_NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag)) : [];
if (missing.length === 0) {
  require('../dist/cli/index.js');
} else {
  // The server's V8 flags can only be given at start-up (see dist/serve/node-flags.js): start again with them.
  const child = spawn(process.execPath, [...process.execArgv, ...missing, __filename, ...args], { stdio: 'inherit' });
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'];
  const forward = (signal) => child.kill(signal);
  for (const signal of signals) process.on(signal, forward);
  child.once('exit', (code, signal) => {
    for (const s of signals) process.off(s, forward);
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
}
