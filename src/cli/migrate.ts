// `smoothcast migrate [--check]`: brings the configured database's schema up to date, once, before the servers of a
// deployment start (they run with database.migrate false and refuse a schema that is not current). Safe to run
// from several places at once: each step is applied exactly once (migrate-postgres.ts, migrate-sqlite.ts).
import { mkdirSync } from 'node:fs';
import type { Config } from '../core/config.ts';
import { openDatabase } from '../core/db/database.ts';
import { MIGRATIONS } from '../core/db/migrations.ts';
import { SmoothcastError } from '../core/errors.ts';
import { databaseTarget } from '../roles/server.ts';
import type { Cli } from './main.ts';

export async function migrateCommand(config: Config, cli: Cli): Promise<number> {
  if (!config.database.url) mkdirSync(config.storage.dataDir, { recursive: true });
  const target = databaseTarget(config);
  if (cli.values.check) {
    try {
      const db = await openDatabase(target, { migrate: false, poolSize: 1 });
      await db.close();
      report(cli, { version: MIGRATIONS.length, pending: 0, current: true });
      return 0;
    } catch (err) {
      if (err instanceof SmoothcastError && err.code === 'DB_SCHEMA_OLD') {
        report(cli, { version: null, pending: null, current: false, message: err.message });
        return 1;
      }
      throw err;
    }
  }
  const db = await openDatabase(target, { poolSize: 1 });
  try {
    report(cli, { version: db.schemaVersion, pending: 0, current: true, database: db.location });
  } finally {
    await db.close();
  }
  return 0;
}

function report(cli: Cli, r: Record<string, unknown>): void {
  if (cli.values.json) process.stdout.write(`${JSON.stringify(r)}\n`);
  else if (r.current) process.stdout.write(`schema is current (version ${r.version})\n`);
  else process.stdout.write(`${r.message}\n`);
}
