import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from './config.ts';

const isInvalid = (pattern: RegExp) => (err: unknown) => {
  const e = err as { code?: string; message?: string };
  return e.code === 'CONFIG_INVALID' && pattern.test(e.message ?? '');
};

test('defaults serve on 8080 with SQLite and ./data, one encode at a time', () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.server.port, 8080);
  assert.equal(c.worker.concurrency, 1);
  assert.equal(c.encode.segmentDuration, 2);
  assert.ok(c.storage.dataDir.endsWith('/data'));
  assert.ok(Object.isFrozen(c.server));
});

test('file < environment < overrides, with types coerced from text', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'sc-cfg-')), 'c.json');
  writeFileSync(file, JSON.stringify({ server: { port: 9000 }, worker: { concurrency: 2 } }));
  const c = loadConfig({
    file,
    env: { SMOOTHCAST_WORKER_CONCURRENCY: '3', SMOOTHCAST_WORKER_ENABLED: 'false', SMOOTHCAST_ENCODE_PRESET: 'fast' },
    overrides: { server: { port: '0' } },
  });
  assert.equal(c.server.port, 0);
  assert.equal(c.worker.concurrency, 3);
  assert.equal(c.worker.enabled, false);
  assert.equal(c.encode.preset, 'fast');
});

test('unknown keys and variables, bad types and out-of-range values stop the start, naming the key', () => {
  assert.throws(
    () => loadConfig({ env: { SMOOTHCAST_WORKER_CONCURENCY: '2' } }),
    isInvalid(/SMOOTHCAST_WORKER_CONCURENCY/),
  );
  assert.throws(
    () => loadConfig({ env: {}, overrides: { server: { port: 70000 } } }),
    isInvalid(/server\.port.*70000/),
  );
  assert.throws(() => loadConfig({ env: {}, overrides: { encode: { preset: 'turbo' } } }), isInvalid(/encode\.preset/));
  assert.throws(
    () => loadConfig({ env: {}, overrides: { server: { publicUrl: 'ftp://x' } } }),
    isInvalid(/server\.publicUrl/),
  );
  const file = join(mkdtempSync(join(tmpdir(), 'sc-cfg-')), 'c.json');
  writeFileSync(file, JSON.stringify({ origin: { indexCacheEntries: 1.5 } }));
  assert.throws(() => loadConfig({ file, env: {} }), isInvalid(/origin\.indexCacheEntries.*whole number/));
  writeFileSync(file, JSON.stringify({ nonsense: {} }));
  assert.throws(() => loadConfig({ file, env: {} }), isInvalid(/unknown section "nonsense"/));
  writeFileSync(file, '{ not json');
  assert.throws(() => loadConfig({ file, env: {} }), isInvalid(/not valid JSON/));
  assert.throws(() => loadConfig({ file: '/nonexistent.json', env: {} }), isInvalid(/nonexistent\.json/));
});
