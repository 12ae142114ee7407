// The generated reference docs must match the code they describe.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configurationDoc, errorsDoc } from '../scripts/gen-docs.ts';

test('docs/configuration.md and docs/errors.md are up to date (npm run docs:config)', () => {
  assert.equal(readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8'), configurationDoc());
  assert.equal(readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8'), errorsDoc());
});
