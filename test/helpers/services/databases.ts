// The catalog conformance harness: a suite written once runs on node:sqlite and on a real PostgreSQL (a throwaway
// cluster started on first use in this test process and stopped at its end). Each `fresh()` is an empty, migrated
// database of its own (a new file, or a new PostgreSQL database).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { type Db, type OpenOptions, openDatabase } from '../../../src/core/db/database.ts';
import { type Postgres, startPostgres } from './postgres.ts';

export type Engine = 'sqlite' | 'postgres';

export interface DbTarget {
  engine: Engine;
  /** A new, empty database's target (path or URL), not opened. */
  target(): Promise<string>;
  /** A new, empty, migrated database, closed when the test file ends. */
  fresh(options?: OpenOptions): Promise<Db>;
}

let pg: Promise<Postgres> | null = null;
/** The test process's PostgreSQL, started on first use. */
export function sharedPostgres(): Promise<Postgres> {
  pg ??= startPostgres();
  return pg;
}

const opened: Db[] = [];
let dir: string | null = null;
let n = 0;

// Registered when the test file imports this module (the root level): hooks registered later, from inside a test,
// would run when that one test ends.
after(async () => {
  await Promise.all(opened.splice(0).map((d) => d.close().catch(() => {})));
  await (await pg?.catch(() => null))?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs `suite` once per engine inside a describe named after it. */
export function forEachDatabase(name: string, suite: (t: DbTarget) => void): void {
  for (const engine of ['sqlite', 'postgres'] as const) {
    describe(`${name} [${engine}]`, () => {
      const t: DbTarget = {
        engine,
        async target() {
          if (engine === 'postgres') return (await sharedPostgres()).createDatabase();
          dir ??= mkdtempSync(join(tmpdir(), 'sc-db-'));
          return join(dir, `t${++n}.sqlite`);
        },
        async fresh(options) {
          const db = await openDatabase(await t.target(), options);
          opened.push(db);
          return db;
        },
      };
      suite(t);
    });
  }
}
