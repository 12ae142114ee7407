#!/usr/bin/env node
// Entry point of the `smoothcast` command. smoothcast runs on Node.js 24 (type stripping, node:sqlite); when an
// older Node starts this file (the machines ship Node 20), re-run it under the Node 24 that `npm install` put into
// node_modules (the registry's `node` package).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major >= 24) {
  await import('../src/cli/main.ts');
} else {
  const local = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(local)) {
    console.error(
      `smoothcast needs Node.js 24 (this is ${process.version}); run \`npm install\` in the repository first.`,
    );
    process.exit(1);
  }
  const child = spawn(local, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
