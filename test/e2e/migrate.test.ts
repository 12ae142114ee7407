// `smoothcast migrate`: applies the schema to the configured database; `--check` reports without changing it; a
// server started with database.migrate=false refuses a schema that is not current, on SQLite and on PostgreSQL.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MIGRATIONS, openDatabase } from '../../src/core/db/database.ts';
import { cli } from '../helpers/platform.ts';
import { sharedPostgres } from '../helpers/services/databases.ts';

const dir = mkdtempSync(join(tmpdir(), 'sc-migrate-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('migrate --check reports pending steps, migrate applies them, --check then passes (SQLite)', async () => {
  const data = join(dir, 'sqlite');
  const before = await cli(['migrate', '--check', '--json', '--data', data]);
  assert.equal(before.code, 1, before.stdout + before.stderr);
  assert.match(before.stdout, /run `smoothcast migrate`/);
  const done = await cli(['migrate', '--json', '--data', data]);
  assert.equal(done.code, 0, done.stderr);
  assert.equal(JSON.parse(done.stdout).version, MIGRATIONS.length);
  const check = await cli(['migrate', '--check', '--json', '--data', data]);
  assert.equal(check.code, 0, check.stderr);
  assert.equal(JSON.parse(check.stdout).current, true);
});

test('migrate on PostgreSQL; a server with database.migrate=false refuses an old schema', async () => {
  const pg = await sharedPostgres();
  const url = await pg.createDatabase();
  // An old schema: the first five steps only.
  const old = await openDatabase(url, { migrations: MIGRATIONS.slice(0, 5) });
  await old.close();
  const env = { SMOOTHCAST_DATABASE_URL: url, SMOOTHCAST_DATABASE_MIGRATE: 'false' };
  const refused = await cliWith(env, ['serve', '--port', '0', '--host', '127.0.0.1', '--data', join(dir, 'pg')]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stdout + refused.stderr, /DB_SCHEMA_OLD|run `smoothcast migrate`/);
  const done = await cliWith({ SMOOTHCAST_DATABASE_URL: url }, ['migrate', '--json', '--data', join(dir, 'pg')]);
  assert.equal(done.code, 0, done.stderr);
  assert.equal(JSON.parse(done.stdout).version, MIGRATIONS.length);
  const db = await openDatabase(url, { migrate: false });
  assert.equal(db.schemaVersion, MIGRATIONS.length);
  await db.close();
});

async function cliWith(env: Record<string, string>, args: string[]) {
  const saved: Record<string, string | undefined> = {};
  // cli() drops SMOOTHCAST_* from the environment it passes on; these go through SMOOTHCAST_CONFIG instead.
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    file,
    JSON.stringify({
      database: {
        url: env.SMOOTHCAST_DATABASE_URL,
        ...(env.SMOOTHCAST_DATABASE_MIGRATE ? { migrate: env.SMOOTHCAST_DATABASE_MIGRATE === 'true' } : {}),
      },
    }),
  );
  saved.SMOOTHCAST_CONFIG = process.env.SMOOTHCAST_CONFIG;
  process.env.SMOOTHCAST_CONFIG = file;
  try {
    return await cli(args, { timeoutMs: 60_000 });
  } finally {
    if (saved.SMOOTHCAST_CONFIG === undefined) delete process.env.SMOOTHCAST_CONFIG;
    else process.env.SMOOTHCAST_CONFIG = saved.SMOOTHCAST_CONFIG;
  }
}
