// node:sqlite under Kysely. Kysely's own SqliteDialect is written for better-sqlite3 and hands its one connection
// to every caller at once; node:sqlite has one synchronous handle per database too, so this driver serializes
// access with a mutex: a transaction (Db.write pins the connection for its whole callback) never sees another
// caller's statement in the middle of it. Prepared statements are cached by SQL text — repository queries are
// template literals, so the text per call site is constant and the cache stays small.
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';

const MAX_CACHED_STATEMENTS = 256;

class Mutex {
  #tail: Promise<void> = Promise.resolve();

  lock(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => {
      release = r;
    });
    const ready = this.#tail.then(() => release);
    this.#tail = this.#tail.then(() => next);
    return ready;
  }
}

class NodeSqliteConnection implements DatabaseConnection {
  readonly #raw: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();

  constructor(raw: DatabaseSync) {
    this.#raw = raw;
  }

  #prepare(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (stmt) {
      // Refresh its place: the map's order is the LRU order.
      this.#statements.delete(sql);
    } else {
      stmt = this.#raw.prepare(sql);
      if (this.#statements.size >= MAX_CACHED_STATEMENTS) {
        this.#statements.delete(this.#statements.keys().next().value as string);
      }
    }
    this.#statements.set(sql, stmt);
    return stmt;
  }

  async executeQuery<R>(compiled: CompiledQuery): Promise<QueryResult<R>> {
    const params = compiled.parameters as never[];
    // Transaction control and multi-statement text bypass the statement cache.
    if (/^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b/i.test(compiled.sql) && params.length === 0) {
      this.#raw.exec(compiled.sql);
      return { rows: [] };
    }
    const stmt = this.#prepare(compiled.sql);
    if (stmt.columns().length > 0) return { rows: stmt.all(...params) as R[] };
    const { changes, lastInsertRowid } = stmt.run(...params);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  // biome-ignore lint/correctness/useYield: streaming is not used; Kysely's interface requires the method.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported on node:sqlite');
  }
}

class NodeSqliteDriver implements Driver {
  readonly #raw: DatabaseSync;
  readonly #connection: NodeSqliteConnection;
  readonly #mutex = new Mutex();
  readonly #releases = new WeakMap<DatabaseConnection, () => void>();

  constructor(raw: DatabaseSync) {
    this.#raw = raw;
    this.#connection = new NodeSqliteConnection(raw);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const release = await this.#mutex.lock();
    this.#releases.set(this.#connection, release);
    return this.#connection;
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const release = this.#releases.get(connection);
    this.#releases.delete(connection);
    release?.();
  }

  // Db.write issues its own BEGIN (see dialect.ts BEGIN_WRITE); these serve Kysely's transaction() if used.
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('BEGIN IMMEDIATE'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('COMMIT'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('ROLLBACK'));
  }

  async destroy(): Promise<void> {
    if (this.#raw.isOpen) this.#raw.close();
  }
}

/** A Kysely dialect over an already opened (and migrated) node:sqlite handle. */
export class NodeSqliteDialect implements Dialect {
  readonly #raw: DatabaseSync;

  constructor(raw: DatabaseSync) {
    this.#raw = raw;
  }

  createDriver(): Driver {
    return new NodeSqliteDriver(this.#raw);
  }

  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }

  createAdapter() {
    return new SqliteAdapter();
  }

  // biome-ignore lint/suspicious/noExplicitAny: Kysely's introspector is generic over any schema.
  createIntrospector(db: Kysely<any>) {
    return new SqliteIntrospector(db);
  }
}
