// The SQLite handle every repository shares: opening (pragmas), schema migrations, transactions, row readers.
// Several processes open the same file (the server, the `smoothcast import` CLI), so: WAL (readers never block the
// writer), a busy timeout (a writer waits for the other's transaction instead of failing at once), and every
// read-then-write transaction starts with BEGIN IMMEDIATE — a DEFERRED transaction that later upgrades to a writer
// gets SQLITE_BUSY at once in WAL mode, whatever the busy timeout (https://sqlite.org/lang_transaction.html).
import { DatabaseSync, type SQLOutputValue } from 'node:sqlite';
import { SmoothcastError } from '../errors.ts';

/**
 * One schema step: SQL text, or a function for steps SQL alone cannot express (data rewrites), or a table rebuild
 * (`rebuild`: SQLite cannot change a CHECK constraint in place, so the step runs with foreign keys off — the
 * documented procedure of https://sqlite.org/lang_altertable.html#otheralter — and foreign_key_check must pass
 * before it commits).
 */
export type Migration = string | ((raw: DatabaseSync) => void) | { rebuild: string };

/**
 * The schema, in order; the index + 1 is the version recorded in `PRAGMA user_version` and schema_migrations.
 * Released steps never change: a change is a new step at the end. Written to run on PostgreSQL with few edits
 * (no SQLite-only types; ms timestamps as integers; JSON as text).
 */
export const MIGRATIONS: readonly Migration[] = [
  `CREATE TABLE assets (
     id TEXT PRIMARY KEY,
     title TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed')),
     playable INTEGER NOT NULL DEFAULT 0 CHECK (playable IN (0, 1)),
     progress TEXT,
     error_code TEXT,
     error_message TEXT,
     duration REAL,
     source TEXT,
     source_path TEXT NOT NULL,
     source_name TEXT NOT NULL,
     rev TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     ready_at INTEGER
   );
   CREATE INDEX assets_created ON assets (created_at DESC);
   CREATE TABLE renditions (
     asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
     id TEXT NOT NULL,
     type TEXT NOT NULL CHECK (type IN ('video', 'audio')),
     width INTEGER,
     height INTEGER,
     bitrate INTEGER NOT NULL,
     codecs TEXT,
     frame_rate REAL,
     average_bitrate INTEGER,
     peak_bitrate INTEGER,
     PRIMARY KEY (asset_id, id)
   );
   CREATE TABLE jobs (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     type TEXT NOT NULL,
     asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
     payload TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
     attempts INTEGER NOT NULL DEFAULT 0,
     max_attempts INTEGER NOT NULL DEFAULT 3,
     run_after INTEGER NOT NULL,
     lease_owner TEXT,
     lease_expires_at INTEGER,
     last_error_code TEXT,
     last_error_message TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX jobs_runnable ON jobs (state, run_after);
   CREATE INDEX jobs_asset ON jobs (asset_id);
   -- At most one queued/running job of a type per asset: a second encode of the same asset is a caller bug.
   CREATE UNIQUE INDEX jobs_one_active ON jobs (asset_id, type) WHERE state IN ('queued', 'running');`,
  // 2: which asset a finished tus upload became (the client asks by upload id; an asset exists only for a
  // completed upload).
  `CREATE TABLE uploads (
     id TEXT PRIMARY KEY,
     asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX uploads_asset ON uploads (asset_id);`,
  // 3: inputs as people have them: several audio languages (language, label, roles, default per rendition),
  // audio-only media, notes about what was left out, and text tracks (captions/subtitles) per asset. A caption's
  // cues are stored in the source's own timeline; presentation_offset (seconds at which the source's t = 0 is
  // presented in the renditions of the current encode) places them on the frames.
  `ALTER TABLE renditions ADD COLUMN language TEXT;
   ALTER TABLE renditions ADD COLUMN label TEXT;
   ALTER TABLE renditions ADD COLUMN roles TEXT;
   ALTER TABLE renditions ADD COLUMN is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1));
   ALTER TABLE assets ADD COLUMN media_type TEXT CHECK (media_type IN ('video', 'audio'));
   ALTER TABLE assets ADD COLUMN notes TEXT;
   ALTER TABLE assets ADD COLUMN presentation_offset REAL;
   CREATE TABLE captions (
     asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
     id TEXT NOT NULL,
     language TEXT NOT NULL,
     label TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('subtitles', 'captions')),
     origin TEXT NOT NULL CHECK (origin IN ('embedded', 'sidecar')),
     is_default INTEGER NOT NULL DEFAULT 0 CHECK (is_default IN (0, 1)),
     forced INTEGER NOT NULL DEFAULT 0 CHECK (forced IN (0, 1)),
     cues INTEGER NOT NULL,
     size INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     PRIMARY KEY (asset_id, id)
   );`,
  // 4: live streams (publishing points). `state` is the JSON of the state machine in src/media/live/state.ts (one
  // table of legal transitions); the stream key authenticates ingest; the current event is an asset.
  `CREATE TABLE live_streams (
     id TEXT PRIMARY KEY,
     title TEXT NOT NULL,
     state TEXT NOT NULL,
     stream_key TEXT NOT NULL UNIQUE,
     dvr_window_seconds INTEGER NOT NULL CHECK (dvr_window_seconds >= 0),
     archive INTEGER NOT NULL CHECK (archive IN (0, 1)),
     latency TEXT NOT NULL CHECK (latency IN ('low', 'standard')),
     reconnect_window_seconds INTEGER NOT NULL CHECK (reconnect_window_seconds >= 0),
     current_asset_id TEXT REFERENCES assets (id) ON DELETE SET NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE INDEX live_streams_created ON live_streams (created_at DESC);`,
  // 5: live events are assets: status 'live' while the event runs (the CHECK needs a table rebuild), the stream it
  // belongs to and the wall clock of its media time 0 (EXT-X-PROGRAM-DATE-TIME, availabilityStartTime). Live
  // streams get their SRT listener port and passphrase, a per-stream transcode switch (null: the global default),
  // and push targets.
  {
    rebuild: `CREATE TABLE assets_new (
     id TEXT PRIMARY KEY,
     title TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'ready', 'failed', 'live')),
     playable INTEGER NOT NULL DEFAULT 0 CHECK (playable IN (0, 1)),
     progress TEXT,
     error_code TEXT,
     error_message TEXT,
     duration REAL,
     source TEXT,
     source_path TEXT NOT NULL,
     source_name TEXT NOT NULL,
     rev TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     ready_at INTEGER,
     media_type TEXT CHECK (media_type IN ('video', 'audio')),
     notes TEXT,
     presentation_offset REAL,
     live_stream_id TEXT,
     live_start_ms INTEGER
   );
   INSERT INTO assets_new (id, title, status, playable, progress, error_code, error_message, duration, source,
     source_path, source_name, rev, created_at, updated_at, ready_at, media_type, notes, presentation_offset)
   SELECT id, title, status, playable, progress, error_code, error_message, duration, source, source_path,
     source_name, rev, created_at, updated_at, ready_at, media_type, notes, presentation_offset FROM assets;
   DROP TABLE assets;
   ALTER TABLE assets_new RENAME TO assets;
   CREATE INDEX assets_created ON assets (created_at DESC);
   CREATE INDEX assets_live ON assets (live_stream_id) WHERE live_stream_id IS NOT NULL;
   ALTER TABLE live_streams ADD COLUMN srt_port INTEGER;
   ALTER TABLE live_streams ADD COLUMN srt_passphrase TEXT;
   ALTER TABLE live_streams ADD COLUMN transcode INTEGER CHECK (transcode IN (0, 1));
   CREATE UNIQUE INDEX live_streams_srt_port ON live_streams (srt_port) WHERE srt_port IS NOT NULL;
   CREATE TABLE live_targets (
     id TEXT PRIMARY KEY,
     stream_id TEXT NOT NULL REFERENCES live_streams (id) ON DELETE CASCADE,
     url TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX live_targets_stream ON live_targets (stream_id);`,
  },
  // 6: security. Accounts (roles), login sessions and API tokens (stored only as SHA-256 of the secret), playback
  // signing keys (public key; the server's own private key only wrapped by the master key), one-time direct
  // uploads, webhooks (secret wrapped) and their deliveries, the audit log; per asset and live stream the playback
  // policy, encryption, viewer limit and owner; an asset's content key, wrapped.
  `CREATE TABLE users (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL UNIQUE COLLATE NOCASE,
     role TEXT NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
     password_hash TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE login_sessions (
     id_hash TEXT PRIMARY KEY,
     user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
     csrf TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     expires_at INTEGER NOT NULL,
     last_seen_at INTEGER NOT NULL
   );
   CREATE INDEX login_sessions_user ON login_sessions (user_id);
   CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     scopes TEXT NOT NULL,
     user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
     created_at INTEGER NOT NULL,
     expires_at INTEGER,
     last_used_at INTEGER,
     revoked_at INTEGER
   );
   CREATE TABLE signing_keys (
     id TEXT PRIMARY KEY,
     kind TEXT NOT NULL CHECK (kind IN ('server', 'customer')),
     alg TEXT NOT NULL,
     public_jwk TEXT NOT NULL,
     private_wrapped TEXT,
     created_at INTEGER NOT NULL,
     revoked_at INTEGER
   );
   CREATE TABLE direct_uploads (
     id TEXT PRIMARY KEY,
     token_hash TEXT NOT NULL UNIQUE,
     max_size INTEGER NOT NULL,
     cors_origin TEXT,
     policy TEXT NOT NULL DEFAULT 'public' CHECK (policy IN ('public', 'signed')),
     expires_at INTEGER NOT NULL,
     used_at INTEGER,
     upload_id TEXT,
     created_by TEXT,
     created_at INTEGER NOT NULL
   );
   CREATE TABLE webhooks (
     id TEXT PRIMARY KEY,
     url TEXT NOT NULL,
     events TEXT NOT NULL,
     secret_wrapped TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     disabled_at INTEGER
   );
   CREATE TABLE webhook_deliveries (
     id TEXT PRIMARY KEY,
     webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
     event TEXT NOT NULL,
     payload TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt_at INTEGER,
     last_status INTEGER,
     last_error TEXT,
     created_at INTEGER NOT NULL,
     delivered_at INTEGER
   );
   CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
   CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, created_at DESC);
   CREATE TABLE audit_log (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     target TEXT,
     detail TEXT
   );
   ALTER TABLE assets ADD COLUMN playback_policy TEXT NOT NULL DEFAULT 'public' CHECK (playback_policy IN ('public', 'signed'));
   ALTER TABLE assets ADD COLUMN encryption TEXT NOT NULL DEFAULT 'none' CHECK (encryption IN ('none', 'aes-128', 'cbcs', 'cenc'));
   ALTER TABLE assets ADD COLUMN max_viewers INTEGER CHECK (max_viewers IS NULL OR max_viewers >= 1);
   ALTER TABLE assets ADD COLUMN owner_id TEXT;
   ALTER TABLE assets ADD COLUMN content_key TEXT;
   ALTER TABLE live_streams ADD COLUMN playback_policy TEXT NOT NULL DEFAULT 'public' CHECK (playback_policy IN ('public', 'signed'));
   ALTER TABLE live_streams ADD COLUMN max_viewers INTEGER CHECK (max_viewers IS NULL OR max_viewers >= 1);`,
];

export type Row = Record<string, SQLOutputValue>;

export interface OpenOptions {
  /** How long a writer waits for another connection's write transaction before failing (ms). */
  busyTimeoutMs?: number;
  /** Migration list (tests only; defaults to MIGRATIONS). */
  migrations?: readonly Migration[];
  /** Clock for the schema_migrations record (ms). */
  now?: () => number;
}

export interface Db {
  /** The node:sqlite handle, for repositories to prepare statements on. */
  readonly raw: DatabaseSync;
  readonly path: string;
  /** The schema version after migrations (= number of migration steps applied). */
  readonly schemaVersion: number;
  /**
   * Runs fn inside BEGIN IMMEDIATE … COMMIT (rolled back when fn throws). A nested call runs inside a savepoint of
   * the outer transaction. fn must be synchronous: node:sqlite is, and an await inside would leave the lock held.
   */
  write<T>(fn: () => T): T;
  close(): void;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 10_000;

/** Opens (creating if missing) the database at `path` and brings its schema up to date. */
export function openDatabase(path: string, options: OpenOptions = {}): Db {
  const migrations = options.migrations ?? MIGRATIONS;
  const now = options.now ?? Date.now;
  const raw = new DatabaseSync(path, {
    enableForeignKeyConstraints: true,
    timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
  });
  try {
    // Per-connection settings. busy_timeout first: switching to WAL takes a lock another process may hold.
    raw.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS)}`);
    raw.exec('PRAGMA foreign_keys = ON');
    refuseNewer(raw, path, migrations.length);
    raw.exec('PRAGMA journal_mode = WAL');
    // NORMAL is durable in WAL mode except for the last transactions before a power loss (never corrupts).
    raw.exec('PRAGMA synchronous = NORMAL');
    const db = new SqliteDb(raw, path);
    migrate(db, path, migrations, now);
    db.schemaVersion = userVersion(raw);
    return db;
  } catch (err) {
    raw.close();
    throw err;
  }
}

class SqliteDb implements Db {
  readonly raw: DatabaseSync;
  readonly path: string;
  schemaVersion = 0;
  #savepoint = 0;

  constructor(raw: DatabaseSync, path: string) {
    this.raw = raw;
    this.path = path;
  }

  write<T>(fn: () => T): T {
    if (this.raw.isTransaction) {
      const name = `sp${++this.#savepoint}`;
      this.raw.exec(`SAVEPOINT ${name}`);
      try {
        const result = fn();
        this.raw.exec(`RELEASE ${name}`);
        return result;
      } catch (err) {
        this.raw.exec(`ROLLBACK TO ${name}`);
        this.raw.exec(`RELEASE ${name}`);
        throw err;
      } finally {
        this.#savepoint--;
      }
    }
    this.raw.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.raw.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.raw.isTransaction) this.raw.exec('ROLLBACK');
      throw err;
    }
  }

  close(): void {
    if (this.raw.isOpen) this.raw.close();
  }
}

function userVersion(raw: DatabaseSync): number {
  return int(raw.prepare('PRAGMA user_version').get() ?? {}, 'user_version');
}

function refuseNewer(raw: DatabaseSync, path: string, known: number): void {
  const version = userVersion(raw);
  if (version > known) {
    throw new SmoothcastError(
      'DB_SCHEMA_TOO_NEW',
      `database ${path} has schema version ${version}, newer than this smoothcast knows (${known}): ` +
        'it was written by a newer release; upgrade smoothcast or point it at another data folder',
    );
  }
}

/**
 * Applies each pending step once, each in its own IMMEDIATE transaction: the version is read again under the write
 * lock, so two processes opening a fresh file at once apply every step exactly once.
 */
function migrate(db: SqliteDb, path: string, migrations: readonly Migration[], now: () => number): void {
  const { raw } = db;
  for (;;) {
    // A rebuild step needs foreign keys off, which SQLite only allows outside a transaction: peek at the next step
    // here; the version is read again under the lock below (another process may have applied it meanwhile).
    const peek = migrations[userVersion(raw)];
    const rebuild = typeof peek === 'object';
    if (rebuild) raw.exec('PRAGMA foreign_keys = OFF');
    try {
      if (!applyNext(db, path, migrations, now)) return;
    } finally {
      if (rebuild) raw.exec('PRAGMA foreign_keys = ON');
    }
  }
}

function applyNext(db: SqliteDb, path: string, migrations: readonly Migration[], now: () => number): boolean {
  const { raw } = db;
  return db.write(() => {
    const version = userVersion(raw);
    if (version > migrations.length) refuseNewer(raw, path, migrations.length);
    if (version >= migrations.length) return false;
    raw.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const step = migrations[version]!;
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
    return true;
  });
}

// Row readers: repositories turn rows into domain objects through these, so a schema drift fails loudly.

function column(row: Row, col: string): SQLOutputValue {
  if (!Object.hasOwn(row, col)) throw new SmoothcastError('INTERNAL', `database row has no column ${col}`);
  return row[col] as SQLOutputValue;
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

/** node:sqlite reports constraint violations as errors whose errcode has SQLITE_CONSTRAINT (19) in the low byte. */
export function isConstraintError(err: unknown): boolean {
  return err instanceof Error && 'errcode' in err && typeof err.errcode === 'number' && (err.errcode & 0xff) === 19;
}
