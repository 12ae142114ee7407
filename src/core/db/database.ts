// The catalog database every repository shares, on SQLite (embedded default: one file in the data folder) or
// PostgreSQL (`database.url`), behind one interface. Repositories write their SQL once with Kysely's `sql` tag
// (compiled to `?` or `$1` placeholders per engine) or its query builder; what differs between the engines lives in
// dialect.ts and migrations.ts.
//
// Transactions: write(fn) pins one connection for fn's whole run and carries it in an AsyncLocalStorage, so every
// all/get/run inside fn — however deep in the call stack — runs on it; a nested write() is a savepoint. fn must do
// only database work (no waiting on anything else: on SQLite the one connection is held). On SQLite a write begins
// IMMEDIATE (one writer at a time across processes); on PostgreSQL it is SERIALIZABLE and retried on serialization
// failures, so read-check-write code written for SQLite's guarantees stays correct on either.
// On PostgreSQL a failed statement aborts the whole transaction (25P02 for everything after it): code that catches
// a statement's error and carries on inside a transaction must run that statement in a nested write() (a savepoint).
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as delay } from 'node:timers/promises';
import { type Compilable, type CompiledQuery, Kysely, PostgresDialect, type RawBuilder, sql } from 'kysely';
import pg from 'pg';
import { SmoothcastError } from '../errors.ts';
import { BEGIN_WRITE, type DialectName, isConnectionError, isRetryableTransactionError, redactUrl } from './dialect.ts';
import { migratePostgres } from './migrate-postgres.ts';
import { migrateSqlite, refuseNewerSqlite, sqliteUserVersion } from './migrate-sqlite.ts';
import { MIGRATIONS, type Migration } from './migrations.ts';
import { NodeSqliteDialect } from './sqlite-driver.ts';

export { isConstraintError, isUniqueViolation } from './dialect.ts';
export { MIGRATIONS, type Migration } from './migrations.ts';

export type Row = Record<string, unknown>;
// biome-ignore lint/suspicious/noExplicitAny: repositories query with `sql` and builders over an untyped schema.
export type AnyKysely = Kysely<any>;
/** A query: `sql\`…\`` or a Kysely builder. */
export type Query = RawBuilder<unknown> | Compilable<unknown>;

export interface OpenOptions {
  /** SQLite: how long a writer waits for another connection's write transaction before failing (ms). */
  busyTimeoutMs?: number;
  /** Migration list (tests only; defaults to MIGRATIONS). */
  migrations?: readonly Migration[];
  /** Clock for the schema_migrations record (ms). */
  now?: () => number;
  /** PostgreSQL: connections in the pool. */
  poolSize?: number;
  /**
   * false: do not apply pending migrations — refuse to start unless the schema is exactly current (servers run
   * against a database `smoothcast migrate` keeps; default true: apply them, as the embedded default always has).
   */
  migrate?: boolean;
}

export interface Db {
  readonly dialect: DialectName;
  /** The file path, or the URL with its password hidden. */
  readonly location: string;
  /** The schema version after migrations (= number of migration steps applied). */
  readonly schemaVersion: number;
  /** The Kysely instance, for building queries (run them through all/get/run so transactions apply). */
  readonly kysely: AnyKysely;
  /** The node:sqlite handle (SQLite only: tests and SQLite maintenance; throws on PostgreSQL). */
  readonly raw: DatabaseSync;
  all(q: Query): Promise<Row[]>;
  get(q: Query): Promise<Row | undefined>;
  /** Runs a statement; resolves to the number of rows it changed. */
  run(q: Query): Promise<number>;
  /**
   * Runs fn in a transaction (rolled back when it throws); nested calls are savepoints. On PostgreSQL fn may run
   * more than once (a serialization failure retries it): it must not have effects outside the database.
   * `isolation: 'read committed'` (PostgreSQL) for code that takes its own row locks, e.g. the queue's claim.
   */
  write<T>(fn: () => Promise<T>, opts?: { isolation?: 'serializable' | 'read committed' }): Promise<T>;
  /**
   * Runs fn's reads against one consistent snapshot without taking the writer's lock (SQLite: a deferred
   * transaction; PostgreSQL: REPEATABLE READ READ ONLY). Inside a write() it simply joins it.
   */
  read<T>(fn: () => Promise<T>): Promise<T>;
  /** Wakes listen()ers of the channel (after the current transaction commits, if inside one). */
  notify(channel: string, payload?: string): Promise<void>;
  /**
   * Calls fn for each notify on the channel — from any process on PostgreSQL (LISTEN/NOTIFY), from this process on
   * SQLite (other processes there are found by polling). Resolves to an unsubscribe function.
   */
  listen(channel: string, fn: (payload: string) => void): Promise<() => void>;
  /** Throws when the database cannot answer (for /readyz). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;
const MAX_TRANSACTION_ATTEMPTS = 12;
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

interface TxContext {
  conn: AnyKysely;
  savepoints: number;
  closed: boolean;
  /** notify() calls made inside the transaction, delivered once it commits (SQLite). */
  afterCommit: (() => void)[];
}

/** Opens the database at `target` — a file path (SQLite, created if missing) or a postgres:// URL — and brings its
 * schema up to date (or, with `migrate: false`, checks that it is). */
export async function openDatabase(target: string, options: OpenOptions = {}): Promise<Db> {
  return /^postgres(ql)?:\/\//.test(target) ? openPostgres(target, options) : openSqlite(target, options);
}

function openSqlite(path: string, options: OpenOptions): Db {
  const migrations = options.migrations ?? MIGRATIONS;
  const busy = Math.trunc(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
  const raw = new DatabaseSync(path, { enableForeignKeyConstraints: true, timeout: busy });
  try {
    // Per-connection settings. busy_timeout first: switching to WAL takes a lock another process may hold.
    raw.exec(`PRAGMA busy_timeout = ${busy}`);
    raw.exec('PRAGMA foreign_keys = ON');
    refuseNewerSqlite(raw, path, migrations.length);
    raw.exec('PRAGMA journal_mode = WAL');
    // NORMAL is durable in WAL mode except for the last transactions before a power loss (never corrupts).
    raw.exec('PRAGMA synchronous = NORMAL');
    if (options.migrate === false) requireCurrent(sqliteUserVersion(raw), migrations.length, path);
    else migrateSqlite(raw, path, migrations, options.now ?? Date.now);
    const kysely: AnyKysely = new Kysely({ dialect: new NodeSqliteDialect(raw) });
    return new KyselyDb('sqlite', path, sqliteUserVersion(raw), kysely, raw, null);
  } catch (err) {
    raw.close();
    throw err;
  }
}

function requireCurrent(version: number, known: number, where: string): void {
  if (version < known) {
    throw new SmoothcastError(
      'DB_SCHEMA_OLD',
      `database ${where} has schema version ${version}; this smoothcast needs ${known}: run \`smoothcast migrate\``,
    );
  }
}

// int8 (counts, ms timestamps, sizes) and numeric arrive as strings from pg by default: every such value here fits
// a double exactly (timestamps and byte counts stay far below 2^53), so they are read as numbers like SQLite's.
const toNumber = (v: string) => Number(v);
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 || oid === 1700) return toNumber;
    return pg.types.getTypeParser(oid, format);
  },
};

async function openPostgres(url: string, options: OpenOptions): Promise<Db> {
  const location = redactUrl(url);
  const migrations = options.migrations ?? MIGRATIONS;
  const config: pg.PoolConfig = {
    connectionString: url,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'smoothcast',
    types: pgTypes,
  };
  const pool = new pg.Pool(config);
  // An idle client's error (the server restarted, the network dropped) is reported on the pool; without a listener
  // it would end the process. The next query gets a fresh connection; /readyz says the database is down meanwhile.
  pool.on('error', () => {});
  const kysely: AnyKysely = new Kysely({ dialect: new PostgresDialect({ pool }) });
  try {
    const version = await migratePostgres(kysely, location, migrations, options.now ?? Date.now, {
      apply: options.migrate !== false,
    }).catch((err: unknown) => {
      throw isConnectionError(err)
        ? new SmoothcastError('DB_UNAVAILABLE', `cannot reach the database ${location}: ${(err as Error).message}`, {
            cause: err,
          })
        : err;
    });
    if (options.migrate === false) requireCurrent(version, migrations.length, location);
    return new KyselyDb('postgres', location, version, kysely, null, new PgListener(config));
  } catch (err) {
    await kysely.destroy().catch(() => {});
    throw err;
  }
}

class KyselyDb implements Db {
  readonly dialect: DialectName;
  readonly location: string;
  readonly schemaVersion: number;
  readonly kysely: AnyKysely;
  readonly #raw: DatabaseSync | null;
  readonly #listener: PgListener | null;
  readonly #local = new EventEmitter();
  readonly #tx = new AsyncLocalStorage<TxContext>();

  constructor(
    dialect: DialectName,
    location: string,
    schemaVersion: number,
    kysely: AnyKysely,
    raw: DatabaseSync | null,
    listener: PgListener | null,
  ) {
    this.dialect = dialect;
    this.location = location;
    this.schemaVersion = schemaVersion;
    this.kysely = kysely;
    this.#raw = raw;
    this.#listener = listener;
    this.#local.setMaxListeners(0);
  }

  get raw(): DatabaseSync {
    if (!this.#raw) throw new SmoothcastError('INTERNAL', 'db.raw is SQLite only');
    return this.#raw;
  }

  #executor(): AnyKysely {
    const ctx = this.#tx.getStore();
    return ctx && !ctx.closed ? ctx.conn : this.kysely;
  }

  async #execute(q: Query) {
    const executor = this.#executor();
    const compiled: CompiledQuery =
      'compile' in q && q.compile.length === 1
        ? (q as RawBuilder<unknown>).compile(executor)
        : (q as Compilable<unknown>).compile();
    try {
      return await executor.executeQuery<Row>(compiled);
    } catch (err) {
      throw this.#unreachable(err);
    }
  }

  /** A lost connection as DB_UNAVAILABLE (a 503 the caller may retry); any other error as it is. */
  #unreachable(err: unknown): unknown {
    if (!isConnectionError(err)) return err;
    return new SmoothcastError(
      'DB_UNAVAILABLE',
      `the database ${this.location} is unreachable: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }

  async all(q: Query): Promise<Row[]> {
    return (await this.#execute(q)).rows;
  }

  async get(q: Query): Promise<Row | undefined> {
    return (await this.#execute(q)).rows[0];
  }

  async run(q: Query): Promise<number> {
    const r = await this.#execute(q);
    return Number(r.numAffectedRows ?? 0);
  }

  async write<T>(fn: () => Promise<T>, opts: { isolation?: 'serializable' | 'read committed' } = {}): Promise<T> {
    const outer = this.#tx.getStore();
    if (outer && !outer.closed) return this.#savepoint(outer, fn);
    const begin =
      this.dialect === 'postgres' && opts.isolation === 'read committed' ? 'BEGIN' : BEGIN_WRITE[this.dialect];
    return this.#transaction(begin, fn);
  }

  async read<T>(fn: () => Promise<T>): Promise<T> {
    const outer = this.#tx.getStore();
    if (outer && !outer.closed) return fn();
    return this.#transaction(
      this.dialect === 'postgres' ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY' : 'BEGIN',
      fn,
    );
  }

  async #transaction<T>(begin: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.kysely.connection().execute(async (conn) => {
          const ctx: TxContext = { conn, savepoints: 0, closed: false, afterCommit: [] };
          await sql.raw(begin).execute(conn);
          try {
            const result = await this.#tx.run(ctx, fn);
            await sql.raw('COMMIT').execute(conn);
            ctx.closed = true;
            for (const f of ctx.afterCommit) f();
            return result;
          } catch (err) {
            ctx.closed = true;
            await sql
              .raw('ROLLBACK')
              .execute(conn)
              .catch(() => {});
            throw err;
          }
        });
      } catch (err) {
        if (this.dialect === 'postgres' && isRetryableTransactionError(err)) {
          if (attempt < MAX_TRANSACTION_ATTEMPTS) {
            // Jittered exponential backoff (2 ms … ~1 s) so transactions that collided do not collide again in
            // lockstep.
            await delay(Math.random() * Math.min(1000, 2 ** attempt));
            continue;
          }
          throw new SmoothcastError('DB_BUSY', `the database stayed too contended to commit after ${attempt} tries`, {
            cause: err,
          });
        }
        throw this.#unreachable(err);
      }
    }
  }

  async #savepoint<T>(ctx: TxContext, fn: () => Promise<T>): Promise<T> {
    const name = `sp${++ctx.savepoints}`;
    await sql.raw(`SAVEPOINT ${name}`).execute(ctx.conn);
    try {
      const result = await fn();
      await sql.raw(`RELEASE SAVEPOINT ${name}`).execute(ctx.conn);
      return result;
    } catch (err) {
      await sql.raw(`ROLLBACK TO SAVEPOINT ${name}`).execute(ctx.conn);
      await sql.raw(`RELEASE SAVEPOINT ${name}`).execute(ctx.conn);
      throw err;
    } finally {
      ctx.savepoints--;
    }
  }

  async notify(channel: string, payload = ''): Promise<void> {
    if (!CHANNEL.test(channel)) throw new RangeError(`bad channel name ${channel}`);
    if (this.dialect === 'postgres') {
      // pg_notify inside a transaction is delivered at its commit, never on rollback.
      await this.run(sql`SELECT pg_notify(${channel}, ${payload})`);
      return;
    }
    const ctx = this.#tx.getStore();
    const emit = () => this.#local.emit(channel, payload);
    if (ctx && !ctx.closed) ctx.afterCommit.push(emit);
    else queueMicrotask(emit);
  }

  async listen(channel: string, fn: (payload: string) => void): Promise<() => void> {
    if (!CHANNEL.test(channel)) throw new RangeError(`bad channel name ${channel}`);
    if (this.#listener) return this.#listener.listen(channel, fn);
    this.#local.on(channel, fn);
    return () => {
      this.#local.off(channel, fn);
    };
  }

  async ping(): Promise<void> {
    await this.get(sql`SELECT 1 AS one`);
  }

  async close(): Promise<void> {
    this.#listener?.close();
    await this.kysely.destroy();
  }
}

/**
 * One dedicated connection for LISTEN (a pooled one would be handed to queries and lose its subscriptions),
 * reconnecting with backoff when the server goes away; listeners stay registered across reconnects. A notification
 * missed while disconnected is harmless to its users: they poll at a slow pace as well.
 */
class PgListener {
  readonly #config: pg.ClientConfig;
  readonly #channels = new Map<string, Set<(payload: string) => void>>();
  #client: pg.Client | null = null;
  #connecting: Promise<pg.Client> | null = null;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(config: pg.PoolConfig) {
    this.#config = {
      connectionString: config.connectionString,
      keepAlive: true,
      application_name: 'smoothcast-listen',
    };
  }

  async listen(channel: string, fn: (payload: string) => void): Promise<() => void> {
    let set = this.#channels.get(channel);
    if (!set) {
      set = new Set();
      this.#channels.set(channel, set);
      const client = await this.#connect().catch(() => null);
      await client?.query(`LISTEN ${channel}`).catch(() => {});
    }
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }

  #connect(): Promise<pg.Client> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= (async () => {
      const client = new pg.Client(this.#config);
      client.on('notification', (n) => {
        for (const fn of this.#channels.get(n.channel) ?? []) fn(n.payload ?? '');
      });
      const lost = () => {
        if (this.#client === client) this.#client = null;
        client.removeAllListeners('notification');
        client.end().catch(() => {});
        this.#reconnectSoon();
      };
      client.on('error', lost);
      client.on('end', lost);
      try {
        await client.connect();
        for (const channel of this.#channels.keys()) await client.query(`LISTEN ${channel}`);
      } catch (err) {
        client.removeAllListeners();
        client.end().catch(() => {});
        throw err;
      }
      if (this.#closed) {
        await client.end().catch(() => {});
        throw new Error('closed');
      }
      this.#client = client;
      return client;
    })().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  #reconnectSoon(delayMs = 500): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#connect().catch(() => this.#reconnectSoon(Math.min(delayMs * 2, 10_000)));
    }, delayMs);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    const client = this.#client;
    this.#client = null;
    if (client) {
      client.removeAllListeners();
      client.on('error', () => {});
      client.end().catch(() => {});
    }
  }
}

// Row readers: repositories turn rows into domain objects through these, so a schema drift fails loudly.

function column(row: Row, col: string): unknown {
  if (!Object.hasOwn(row, col)) throw new SmoothcastError('INTERNAL', `database row has no column ${col}`);
  return row[col];
}

export function text(row: Row, col: string): string {
  const v = column(row, col);
  if (typeof v !== 'string') throw new SmoothcastError('INTERNAL', `database column ${col} is not text`);
  return v;
}

export function textOrNull(row: Row, col: string): string | null {
  return column(row, col) === null ? null : text(row, col);
}

export function num(row: Row, col: string): number {
  const v = column(row, col);
  if (typeof v === 'bigint') return Number(v);
  if (typeof v !== 'number') throw new SmoothcastError('INTERNAL', `database column ${col} is not a number`);
  return v;
}

export function int(row: Row, col: string): number {
  const v = num(row, col);
  if (!Number.isSafeInteger(v)) throw new SmoothcastError('INTERNAL', `database column ${col} is not an integer`);
  return v;
}

export function numOrNull(row: Row, col: string): number | null {
  return column(row, col) === null ? null : num(row, col);
}

export function jsonOrNull(row: Row, col: string): unknown {
  const v = textOrNull(row, col);
  if (v === null) return null;
  try {
    return JSON.parse(v) as unknown;
  } catch (err) {
    throw new SmoothcastError('INTERNAL', `database column ${col} holds invalid JSON`, { cause: err });
  }
}
