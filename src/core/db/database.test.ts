import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { sql } from 'kysely';
import { forEachDatabase, sharedPostgres } from '../../../test/helpers/services/databases.ts';
import { SmoothcastError } from '../errors.ts';
import { MIGRATIONS, type Migration, openDatabase } from './database.ts';

const dir = mkdtempSync(join(tmpdir(), 'smoothcast-db-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `t${++n}.sqlite`);

function pragma(raw: DatabaseSync, name: string): unknown {
  return Object.values(raw.prepare(`PRAGMA ${name}`).get() ?? {})[0];
}

test('a fresh database gets every migration once, WAL and the connection settings', async () => {
  const db = await openDatabase(freshPath(), { busyTimeoutMs: 4321, now: () => 77 });
  try {
    assert.equal(db.schemaVersion, MIGRATIONS.length);
    assert.equal(pragma(db.raw, 'user_version'), MIGRATIONS.length);
    assert.equal(pragma(db.raw, 'journal_mode'), 'wal');
    assert.equal(pragma(db.raw, 'foreign_keys'), 1);
    assert.equal(pragma(db.raw, 'synchronous'), 1); // NORMAL
    assert.equal(pragma(db.raw, 'busy_timeout'), 4321);
    const rows = db.raw.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all();
    assert.deepEqual(
      rows.map((r) => ({ ...r })),
      MIGRATIONS.map((_, i) => ({ version: i + 1, applied_at: 77 })),
    );
  } finally {
    await db.close();
  }
});

test('reopening keeps the data and applies nothing twice; a new step is applied once', async () => {
  const path = freshPath();
  // Steps without IF NOT EXISTS: running one twice would throw.
  const v1: Migration[] = ['CREATE TABLE a (x INTEGER)'];
  let fnRuns = 0;
  const v2: Migration[] = [
    ...v1,
    (raw) => {
      fnRuns++;
      raw.exec('CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (7)');
    },
  ];
  let db = await openDatabase(path, { migrations: v1 });
  db.raw.exec('INSERT INTO a VALUES (1)');
  await db.close();
  db = await openDatabase(path, { migrations: v1 });
  assert.equal(db.schemaVersion, 1);
  await db.close();
  db = await openDatabase(path, { migrations: v2 });
  assert.equal(db.schemaVersion, 2);
  await db.close();
  db = await openDatabase(path, { migrations: v2 });
  try {
    assert.equal(fnRuns, 1);
    assert.deepEqual({ ...db.raw.prepare('SELECT x FROM a').get() }, { x: 1 });
    assert.deepEqual({ ...db.raw.prepare('SELECT y FROM b').get() }, { y: 7 });
    const versions = db.raw.prepare('SELECT version FROM schema_migrations ORDER BY version').all();
    assert.deepEqual(
      versions.map((r) => r.version),
      [1, 2],
    );
  } finally {
    await db.close();
  }
});

test('a database from a newer release is refused and left untouched', async () => {
  const path = freshPath();
  await (await openDatabase(path, { migrations: ['CREATE TABLE a (x)', 'CREATE TABLE b (y)'] })).close();
  await assert.rejects(
    openDatabase(path, { migrations: ['CREATE TABLE a (x)'] }),
    (err: unknown) =>
      err instanceof SmoothcastError &&
      err.code === 'DB_SCHEMA_TOO_NEW' &&
      /schema version 2, newer than this smoothcast knows \(1\)/.test(err.message),
  );
  const db = await openDatabase(path, { migrations: ['CREATE TABLE a (x)', 'CREATE TABLE b (y)'] });
  assert.equal(db.schemaVersion, 2);
  await db.close();
});

test('a failing step rolls back entirely and leaves the previous version', async () => {
  const path = freshPath();
  const good = 'CREATE TABLE a (x)';
  await assert.rejects(openDatabase(path, { migrations: [good, 'CREATE TABLE half (z); THIS IS NOT SQL'] }));
  const db = await openDatabase(path, { migrations: [good] });
  try {
    assert.equal(db.schemaVersion, 1);
    const half = db.raw.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'half'").get();
    assert.equal(half?.n, 0);
  } finally {
    await db.close();
  }
});

test('foreign keys cascade from assets to renditions and jobs', async () => {
  const db = await openDatabase(freshPath());
  try {
    db.raw.exec(`INSERT INTO assets (id, title, status, source_path, source_name, created_at, updated_at)
                 VALUES ('abcdefgh', 't', 'queued', 'p', 'n', 1, 1)`);
    db.raw.exec(`INSERT INTO renditions (asset_id, id, type, bitrate) VALUES ('abcdefgh', 'v0', 'video', 1000)`);
    db.raw.exec(`INSERT INTO jobs (type, asset_id, payload, state, run_after, created_at, updated_at)
                 VALUES ('encode', 'abcdefgh', '{}', 'queued', 0, 1, 1)`);
    assert.throws(() =>
      db.raw.exec(`INSERT INTO renditions (asset_id, id, type, bitrate) VALUES ('missing1', 'v0', 'video', 1)`),
    );
    db.raw.exec(`DELETE FROM assets WHERE id = 'abcdefgh'`);
    for (const table of ['renditions', 'jobs']) {
      assert.equal(db.raw.prepare(`SELECT count(*) AS n FROM ${table}`).get()?.n, 0, table);
    }
  } finally {
    await db.close();
  }
});

test('migration 5 rebuilds assets (status live) with foreign keys off: renditions, captions and jobs survive', async () => {
  const path = freshPath();
  let db = await openDatabase(path, { migrations: MIGRATIONS.slice(0, 4) });
  db.raw.exec(`INSERT INTO assets (id, title, status, source_path, source_name, created_at, updated_at, media_type)
      VALUES ('aaaaaaaaaaaaaaaa', 't', 'ready', 's', 'n', 1, 1, 'video');
    INSERT INTO renditions (asset_id, id, type, bitrate) VALUES ('aaaaaaaaaaaaaaaa', 'v0', 'video', 1000);
    INSERT INTO captions (asset_id, id, language, label, kind, origin, cues, size, created_at)
      VALUES ('aaaaaaaaaaaaaaaa', 'caaaaaaaaaaaa', 'en', 'English', 'subtitles', 'sidecar', 1, 10, 1);
    INSERT INTO jobs (type, asset_id, payload, state, run_after, created_at, updated_at)
      VALUES ('encode', 'aaaaaaaaaaaaaaaa', '{}', 'done', 0, 1, 1);`);
  assert.throws(() =>
    db.raw.exec(`INSERT INTO assets (id, title, status, source_path, source_name, created_at, updated_at)
      VALUES ('bbbbbbbbbbbbbbbb', 't', 'live', 's', 'n', 1, 1)`),
  );
  await db.close();
  db = await openDatabase(path);
  try {
    assert.equal(db.schemaVersion, MIGRATIONS.length);
    assert.equal(pragma(db.raw, 'foreign_keys'), 1);
    for (const table of ['renditions', 'captions', 'jobs']) {
      assert.equal(Object.values(db.raw.prepare(`SELECT count(*) FROM ${table}`).get() ?? {})[0], 1, table);
    }
    const a = db.raw.prepare("SELECT media_type, live_stream_id FROM assets WHERE id = 'aaaaaaaaaaaaaaaa'").get();
    assert.deepEqual({ ...a }, { media_type: 'video', live_stream_id: null });
    db.raw.exec(`INSERT INTO assets (id, title, status, source_path, source_name, created_at, updated_at)
      VALUES ('bbbbbbbbbbbbbbbb', 't', 'live', 's', 'n', 1, 1)`);
    // The foreign keys point at the new table: deleting an asset still cascades.
    db.raw.exec("DELETE FROM assets WHERE id = 'aaaaaaaaaaaaaaaa'");
    assert.equal(Object.values(db.raw.prepare('SELECT count(*) FROM renditions').get() ?? {})[0], 0);
  } finally {
    await db.close();
  }
});

forEachDatabase('database', (t) => {
  test('write() commits, rolls back on throw, and nests as a savepoint', async () => {
    const db = await t.fresh({ migrations: ['CREATE TABLE t (v INTEGER)'] });
    const values = async () => (await db.all(sql`SELECT v FROM t ORDER BY v`)).map((r) => r.v);
    await db.write(async () => {
      await db.run(sql`INSERT INTO t VALUES (${1})`);
    });
    await assert.rejects(
      db.write(async () => {
        await db.run(sql`INSERT INTO t VALUES (${2})`);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.deepEqual(await values(), [1]);
    await db.write(async () => {
      await db.run(sql`INSERT INTO t VALUES (${3})`);
      await assert.rejects(
        db.write(async () => {
          await db.run(sql`INSERT INTO t VALUES (${4})`);
          throw new Error('inner');
        }),
      );
      // Inside the transaction its own writes are visible; the savepoint's are gone.
      assert.deepEqual(await values(), [1, 3]);
    });
    assert.deepEqual(await values(), [1, 3]);
  });

  test('concurrent read-modify-write transactions never lose an update', async () => {
    const db = await t.fresh({ migrations: ['CREATE TABLE c (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)'] });
    await db.run(sql`INSERT INTO c (id, n) VALUES (1, 0)`);
    await Promise.all(
      Array.from({ length: 40 }, () =>
        db.write(async () => {
          const row = await db.get(sql`SELECT n FROM c WHERE id = 1`);
          await db.run(sql`UPDATE c SET n = ${Number(row?.n) + 1} WHERE id = 1`);
        }),
      ),
    );
    assert.equal((await db.get(sql`SELECT n FROM c WHERE id = 1`))?.n, 40);
  });

  test('a newer schema is refused; migrate: false refuses an old one; migrations apply once under a race', async () => {
    const target = await t.target();
    const v2 = ['CREATE TABLE a (x INTEGER)', 'CREATE TABLE b (y INTEGER)'];
    // Five openers at once on a fresh database: each step applied exactly once.
    const dbs = await Promise.all(Array.from({ length: 5 }, () => openDatabase(target, { migrations: v2 })));
    const versions = await dbs[0]!.all(sql`SELECT version FROM schema_migrations ORDER BY version`);
    assert.deepEqual(
      versions.map((r) => Number(r.version)),
      [1, 2],
    );
    await Promise.all(dbs.map((d) => d.close()));
    await assert.rejects(openDatabase(target, { migrations: v2.slice(0, 1) }), { code: 'DB_SCHEMA_TOO_NEW' });
    await assert.rejects(openDatabase(target, { migrations: [...v2, 'CREATE TABLE c (z INTEGER)'], migrate: false }), {
      code: 'DB_SCHEMA_OLD',
    });
    const db = await openDatabase(target, { migrations: v2, migrate: false });
    assert.equal(db.schemaVersion, 2);
    await db.close();
  });

  test('a failing step rolls back entirely', async () => {
    const target = await t.target();
    await assert.rejects(
      openDatabase(target, { migrations: ['CREATE TABLE a (x INTEGER)', 'CREATE TABLE half (z INTEGER); NOT SQL'] }),
    );
    const db = await openDatabase(target, { migrations: ['CREATE TABLE a (x INTEGER)'] });
    assert.equal(db.schemaVersion, 1);
    await assert.rejects(db.all(sql`SELECT * FROM half`));
    await db.close();
  });

  test('the full schema migrates and cascades deletes', async () => {
    const db = await t.fresh();
    assert.equal(db.schemaVersion, MIGRATIONS.length);
    await db.run(sql`INSERT INTO assets (id, title, status, source_path, source_name, created_at, updated_at)
                     VALUES ('abcdefgh', 't', 'live', 'p', 'n', ${Date.now()}, ${Date.now()})`);
    await db.run(sql`INSERT INTO renditions (asset_id, id, type, bitrate) VALUES ('abcdefgh', 'v0', 'video', 1000)`);
    await db.run(sql`DELETE FROM assets WHERE id = 'abcdefgh'`);
    assert.equal((await db.get(sql`SELECT count(*) AS n FROM renditions`))?.n, 0);
    // Case-insensitive unique user names on both engines.
    await db.run(
      sql`INSERT INTO users (id, name, role, password_hash, created_at, updated_at) VALUES ('u1', 'Ada', 'admin', 'x', 1, 1)`,
    );
    await assert.rejects(
      db.run(
        sql`INSERT INTO users (id, name, role, password_hash, created_at, updated_at) VALUES ('u2', 'ADA', 'admin', 'x', 1, 1)`,
      ),
    );
  });
});

test('PostgreSQL going away: queries fail with DB_UNAVAILABLE, and work again once it is back', async () => {
  const pg = await sharedPostgres();
  const db = await openDatabase(await pg.createDatabase());
  try {
    await db.ping();
    await pg.kill();
    await assert.rejects(db.ping(), { code: 'DB_UNAVAILABLE' });
    await pg.restart();
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        await db.ping();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await db.close();
  }
});
