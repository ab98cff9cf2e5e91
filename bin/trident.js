#!/usr/bin/env node
// The `trident` command, however it is reached (node bin/trident.js, npx, npm exec, a global
// install, any symlink): it always runs the CLI's `main`, never guesses from process.argv.
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const entry = path.join(root, 'dist', 'cli', 'index.js');
if (!existsSync(entry)) {
  // `npm ci` compiles nothing (.npmrc runs no scripts); `npm start`, `npm test` and `npm run build` do.
  process.stderr.write(`trident: ${entry} is missing: the TypeScript sources are not compiled. Run \`npm run build\` in ${root}, then try again.\n`);
  process.exit(1);
}

const { SERVER_NODE_FLAGS } = require('../dist/serve/node-flags.js');
const args = process.argv.slice(2);
const missing = args[0] === 'serve' ? SERVER_NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag)) : [];
if (missing.length === 0) {
  require(entry).main(args);
} else {
  // The server's V8 flags can only be given at start-up (see dist/serve/node-flags.js): start again with them.
  const { spawn } = require('node:child_process');
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
