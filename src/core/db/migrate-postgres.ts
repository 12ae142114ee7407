// Schema migrations on PostgreSQL. Every step runs in its own transaction (PostgreSQL's DDL is transactional: a
// failing step leaves the previous version intact) under a transaction-scoped advisory lock, so any number of
// processes starting at once against a fresh database apply each step exactly once; the version is the highest row
// of schema_migrations.
import { type Kysely, sql } from 'kysely';
import { schemaTooNew } from './migrate-sqlite.ts';
import { type Migration, postgresStep } from './migrations.ts';

/** An arbitrary constant naming smoothcast's migration lock among the database's advisory locks. */
const MIGRATION_LOCK = 7_272_011;

// biome-ignore lint/suspicious/noExplicitAny: the schema is not typed at this level.
export async function postgresVersion(k: Kysely<any>): Promise<number> {
  const exists = await sql<{ t: string | null }>`SELECT to_regclass('schema_migrations')::text AS t`.execute(k);
  if (!exists.rows[0]?.t) return 0;
  const r = await sql<{ v: number | null }>`SELECT max(version) AS v FROM schema_migrations`.execute(k);
  return Number(r.rows[0]?.v ?? 0);
}

export async function migratePostgres(
  // biome-ignore lint/suspicious/noExplicitAny: the schema is not typed at this level.
  k: Kysely<any>,
  where: string,
  migrations: readonly Migration[],
  now: () => number,
  opts: { apply: boolean },
): Promise<number> {
  for (;;) {
    const done = await k.connection().execute(async (conn) => {
      await sql`BEGIN`.execute(conn);
      try {
        await sql`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`.execute(conn);
        await sql`CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`.execute(
          conn,
        );
        const version = await postgresVersion(conn);
        if (version > migrations.length) throw schemaTooNew(where, version, migrations.length);
        if (version >= migrations.length || !opts.apply) {
          await sql`COMMIT`.execute(conn);
          return version;
        }
        // Multi-statement text goes through the simple query protocol (no parameters).
        await sql.raw(postgresStep(migrations[version]!, version + 1)).execute(conn);
        await sql`INSERT INTO schema_migrations (version, applied_at) VALUES (${version + 1}, ${now()})`.execute(conn);
        await sql`COMMIT`.execute(conn);
        return null;
      } catch (err) {
        await sql`ROLLBACK`.execute(conn).catch(() => {});
        throw err;
      }
    });
    if (done !== null) return done;
  }
}
