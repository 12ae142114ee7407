import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { SmoothcastError } from '../errors.ts';
import { MIGRATIONS, type Migration, openDatabase } from './database.ts';

const dir = mkdtempSync(join(tmpdir(), 'smoothcast-db-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const freshPath = () => join(dir, `t${++n}.sqlite`);

function pragma(raw: DatabaseSync, name: string): unknown {
  return Object.values(raw.prepare(`PRAGMA ${name}`).get() ?? {})[0];
}

test('a fresh database gets every migration once, WAL and the connection settings', () => {
  const db = openDatabase(freshPath(), { busyTimeoutMs: 4321, now: () => 77 });
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
    db.close();
  }
});

test('reopening keeps the data and applies nothing twice; a new step is applied once', () => {
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
  let db = openDatabase(path, { migrations: v1 });
  db.raw.exec('INSERT INTO a VALUES (1)');
  db.close();
  db = openDatabase(path, { migrations: v1 });
  assert.equal(db.schemaVersion, 1);
  db.close();
  db = openDatabase(path, { migrations: v2 });
  assert.equal(db.schemaVersion, 2);
  db.close();
  db = openDatabase(path, { migrations: v2 });
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
    db.close();
  }
});

test('a database from a newer release is refused and left untouched', () => {
  const path = freshPath();
  openDatabase(path, { migrations: ['CREATE TABLE a (x)', 'CREATE TABLE b (y)'] }).close();
  assert.throws(
    () => openDatabase(path, { migrations: ['CREATE TABLE a (x)'] }),
    (err: unknown) =>
      err instanceof SmoothcastError &&
      err.code === 'DB_SCHEMA_TOO_NEW' &&
      /schema version 2, newer than this smoothcast knows \(1\)/.test(err.message),
  );
  const db = openDatabase(path, { migrations: ['CREATE TABLE a (x)', 'CREATE TABLE b (y)'] });
  assert.equal(db.schemaVersion, 2);
  db.close();
});

test('a failing step rolls back entirely and leaves the previous version', () => {
  const path = freshPath();
  const good = 'CREATE TABLE a (x)';
  assert.throws(() => openDatabase(path, { migrations: [good, 'CREATE TABLE half (z); THIS IS NOT SQL'] }));
  const db = openDatabase(path, { migrations: [good] });
  try {
    assert.equal(db.schemaVersion, 1);
    const half = db.raw.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'half'").get();
    assert.equal(half?.n, 0);
  } finally {
    db.close();
  }
});

test('write() commits, rolls back on throw, and nests as a savepoint', () => {
  const db = openDatabase(freshPath(), { migrations: ['CREATE TABLE t (v INTEGER)'] });
  try {
    const values = () =>
      db.raw
        .prepare('SELECT v FROM t ORDER BY v')
        .all()
        .map((r) => r.v);
    db.write(() => db.raw.exec('INSERT INTO t VALUES (1)'));
    assert.throws(() =>
      db.write(() => {
        db.raw.exec('INSERT INTO t VALUES (2)');
        throw new Error('boom');
      }),
    );
    assert.deepEqual(values(), [1]);
    db.write(() => {
      db.raw.exec('INSERT INTO t VALUES (3)');
      assert.throws(() =>
        db.write(() => {
          db.raw.exec('INSERT INTO t VALUES (4)');
          throw new Error('inner');
        }),
      );
    });
    assert.deepEqual(values(), [1, 3]);
    assert.equal(db.raw.isTransaction, false);
  } finally {
    db.close();
  }
});

test('foreign keys cascade from assets to renditions and jobs', () => {
  const db = openDatabase(freshPath());
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
    db.close();
  }
});

test('migration 5 rebuilds assets (status live) with foreign keys off: renditions, captions and jobs survive', () => {
  const path = freshPath();
  let db = openDatabase(path, { migrations: MIGRATIONS.slice(0, 4) });
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
  db.close();
  db = openDatabase(path);
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
    db.close();
  }
});
