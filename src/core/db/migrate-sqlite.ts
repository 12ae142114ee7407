// Schema migrations on SQLite, run synchronously on the raw node:sqlite handle before Kysely gets it. The version
// lives in `PRAGMA user_version` (and schema_migrations, for people reading the file). Several processes may open a
// fresh file at once (the server and the `smoothcast import` CLI): every step runs in its own BEGIN IMMEDIATE
// transaction and reads the version again under the write lock, so each is applied exactly once.
import type { DatabaseSync } from 'node:sqlite';
import { SmoothcastError } from '../errors.ts';
import { type Migration, sqliteStep } from './migrations.ts';

export function sqliteUserVersion(raw: DatabaseSync): number {
  const row = raw.prepare('PRAGMA user_version').get() as { user_version?: number | bigint } | undefined;
  return Number(row?.user_version ?? 0);
}

export function refuseNewerSqlite(raw: DatabaseSync, path: string, known: number): void {
  const version = sqliteUserVersion(raw);
  if (version > known) throw schemaTooNew(path, version, known);
}

export function schemaTooNew(where: string, version: number, known: number): SmoothcastError {
  return new SmoothcastError(
    'DB_SCHEMA_TOO_NEW',
    `database ${where} has schema version ${version}, newer than this smoothcast knows (${known}): ` +
      'it was written by a newer release; upgrade smoothcast or point it at another database',
  );
}

export function migrateSqlite(
  raw: DatabaseSync,
  path: string,
  migrations: readonly Migration[],
  now: () => number,
): void {
  for (;;) {
    // A rebuild step needs foreign keys off, which SQLite only allows outside a transaction: peek at the next step
    // here; the version is read again under the lock below (another process may have applied it meanwhile).
    const peek = migrations[sqliteUserVersion(raw)];
    const rebuild = peek !== undefined && typeof sqliteStep(peek) === 'object';
    if (rebuild) raw.exec('PRAGMA foreign_keys = OFF');
    try {
      if (!applyNext(raw, path, migrations, now)) return;
    } finally {
      if (rebuild) raw.exec('PRAGMA foreign_keys = ON');
    }
  }
}

function applyNext(raw: DatabaseSync, path: string, migrations: readonly Migration[], now: () => number): boolean {
  raw.exec('BEGIN IMMEDIATE');
  try {
    const version = sqliteUserVersion(raw);
    if (version > migrations.length) throw schemaTooNew(path, version, migrations.length);
    if (version >= migrations.length) {
      raw.exec('COMMIT');
      return false;
    }
    raw.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const step = sqliteStep(migrations[version]!);
    if (typeof step === 'string') raw.exec(step);
    else if (typeof step === 'function') step(raw);
    else {
      raw.exec(step.rebuild);
      const broken = raw.prepare('PRAGMA foreign_key_check').all();
      if (broken.length > 0) {
        throw new SmoothcastError(
          'INTERNAL',
          `migration ${version + 1} broke foreign keys: ${JSON.stringify(broken[0])}`,
        );
      }
    }
    raw.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version + 1, now());
    raw.exec(`PRAGMA user_version = ${version + 1}`);
    raw.exec('COMMIT');
    return true;
  } catch (err) {
    if (raw.isTransaction) raw.exec('ROLLBACK');
    throw err;
  }
}
