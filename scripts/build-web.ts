// Builds the web app (web/ → dist/web) with Vite when its sources, the Vite config or the lockfile changed since
// the last build; otherwise does nothing. Run by scripts/bootstrap.sh, so `npm start` and `npm test` serve the
// current pages.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const stampFile = join(root, 'dist', 'web', '.build-stamp');
const hash = createHash('sha256');
const walk = (dir: string) => {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else hash.update(p).update(readFileSync(p));
  }
};
walk(join(root, 'web'));
hash.update(readFileSync(join(root, 'package-lock.json')));
const stamp = hash.digest('hex');
if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp && !process.argv.includes('--force')) {
  process.exit(0);
}
console.error('smoothcast: building the web app (vite)...');
const r = spawnSync(
  join(root, 'node_modules', '.bin', 'vite'),
  ['build', '--config', join(root, 'web', 'vite.config.ts')],
  {
    stdio: 'inherit',
  },
);
if (r.status !== 0) {
  console.error('smoothcast: the web app build failed (see above)');
  process.exit(1);
}
writeFileSync(stampFile, stamp);
