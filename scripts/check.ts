// Static checks run by `npm test` before the tests: the type checker and the linter/formatter.
import { spawnSync } from 'node:child_process';

for (const [name, args] of [
  ['tsc', ['-p', '.']],
  ['tsc', ['-p', 'web']],
  ['tsc', ['-p', 'test/browser']],
  ['biome', ['check', '.']],
] as const) {
  const r = spawnSync(`node_modules/.bin/${name}`, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(
      `${name} failed (exit ${r.status ?? r.signal}); fix the errors above (\`npm run format\` fixes formatting).`,
    );
    process.exit(1);
  }
}
