// The schema, once for both engines. Steps are written in SQLite's spelling; translateDdl (dialect.ts) turns the
// types that mean something else in PostgreSQL; a step whose SQL cannot be shared names both variants.
import type { DatabaseSync } from 'node:sqlite';
import { SmoothcastError } from '../errors.ts';
import { translateDdl } from './dialect.ts';

/**
 * One schema step: SQL text, or a function for steps SQL alone cannot express (data rewrites), or a table rebuild
 * (`rebuild`: SQLite cannot change a CHECK constraint in place, so the step runs with foreign keys off — the
 * documented procedure of https://sqlite.org/lang_altertable.html#otheralter — and foreign_key_check must pass
 * before it commits).
 */
export type SqliteStep = string | ((raw: DatabaseSync) => void) | { rebuild: string };

/**
 * A step: text both engines run (PostgreSQL's after translateDdl), or — where the SQL cannot be shared — the
 * SQLite step and the PostgreSQL text side by side, so what differs is visible in one place.
 */
export type Migration = SqliteStep | { sqlite: SqliteStep; postgres: string };

/** The SQLite form of a step. */
export function sqliteStep(m: Migration): SqliteStep {
  return typeof m === 'object' && 'sqlite' in m ? m.sqlite : m;
}

/** The PostgreSQL text of a step (translated from the shared text when the step has one form). */
export function postgresStep(m: Migration, version: number): string {
  if (typeof m === 'object' && 'postgres' in m) return m.postgres;
  if (typeof m === 'string') return translateDdl(m, 'postgres');
  throw new SmoothcastError('INTERNAL', `migration ${version} has no PostgreSQL form`);
}

// Step 5 in two parts: SQLite rebuilds assets to change a CHECK constraint; the rest is shared.
const LIVE_ASSETS_SQLITE = `CREATE TABLE assets_new (
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
`;
const LIVE_STREAMS_5 = `   ALTER TABLE live_streams ADD COLUMN srt_port INTEGER;
   ALTER TABLE live_streams ADD COLUMN srt_passphrase TEXT;
   ALTER TABLE live_streams ADD COLUMN transcode INTEGER CHECK (transcode IN (0, 1));
   CREATE UNIQUE INDEX live_streams_srt_port ON live_streams (srt_port) WHERE srt_port IS NOT NULL;
   CREATE TABLE live_targets (
     id TEXT PRIMARY KEY,
     stream_id TEXT NOT NULL REFERENCES live_streams (id) ON DELETE CASCADE,
     url TEXT NOT NULL,
     created_at INTEGER NOT NULL
   );
   CREATE INDEX live_targets_stream ON live_targets (stream_id);`;

// Step 6's users table: COLLATE NOCASE makes names unique regardless of case in SQLite; PostgreSQL gets the same
// rule as an expression index (lookups compare lower() on both).
const SECURITY_6 = `CREATE TABLE users (
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
   ALTER TABLE live_streams ADD COLUMN max_viewers INTEGER CHECK (max_viewers IS NULL OR max_viewers >= 1);`;

const JOBS_UPLOADS_7 = `ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE upload_locks (
     id TEXT PRIMARY KEY,
     owner TEXT NOT NULL,
     expires_at INTEGER NOT NULL
   )`;

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
    sqlite: { rebuild: `${LIVE_ASSETS_SQLITE}${LIVE_STREAMS_5}` },
    // PostgreSQL changes a CHECK constraint in place (its default name is table_column_check).
    postgres: translateDdl(
      `ALTER TABLE assets DROP CONSTRAINT assets_status_check;
   ALTER TABLE assets ADD CONSTRAINT assets_status_check
     CHECK (status IN ('queued', 'processing', 'ready', 'failed', 'live'));
   ALTER TABLE assets ADD COLUMN live_stream_id TEXT;
   ALTER TABLE assets ADD COLUMN live_start_ms INTEGER;
   CREATE INDEX assets_live ON assets (live_stream_id) WHERE live_stream_id IS NOT NULL;
${LIVE_STREAMS_5}`,
      'postgres',
    ),
  },
  // 6: security. Accounts (roles), login sessions and API tokens (stored only as SHA-256 of the secret), playback
  // signing keys (public key; the server's own private key only wrapped by the master key), one-time direct
  // uploads, webhooks (secret wrapped) and their deliveries, the audit log; per asset and live stream the playback
  // policy, encryption, viewer limit and owner; an asset's content key, wrapped.
  {
    sqlite: SECURITY_6,
    postgres: `${translateDdl(SECURITY_6, 'postgres')};\n   CREATE UNIQUE INDEX users_name_ci ON users (lower(name))`,
  },
  // 7: scale-out. A job lease's fencing token (every claim increments it; heartbeat, completion and failure must
  // present the token of the current lease, so a worker whose lease expired and was retaken cannot write), and
  // upload locks shared by every upload process (a lease row per upload: one PATCH at a time across processes).
  // PostgreSQL has no rowid: the tables listed in insertion order get an identity column (dialect.ts insertionOrder).
  {
    sqlite: JOBS_UPLOADS_7,
    postgres: translateDdl(
      `${JOBS_UPLOADS_7};
   ALTER TABLE assets ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY;
   ALTER TABLE live_streams ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY;
   ALTER TABLE live_targets ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY;
   ALTER TABLE captions ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY;
   ALTER TABLE signing_keys ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY;
   ALTER TABLE webhooks ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY;
   ALTER TABLE webhook_deliveries ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY`,
      'postgres',
    ),
  },
  // 8: the node holding an asset's files on its own disk while they are written (an encode before its upload to
  // the bucket, a live event): origins read from it until the files are in storage (src/core/storage/held.ts).
  'ALTER TABLE assets ADD COLUMN holder TEXT',
  // 9: viewing quality per playback session, from the CMCD (CTA-5004) players send (src/core/db/qoe.ts): one row
  // per asset and CMCD session id, added to by every origin that served the session. Times in ms, bit rates in
  // kbps, bitrate_ms = Σ bitrate × duration of the video objects (video_ms = Σ duration). The primary key serves
  // the per-asset sums; (asset_id, startup_ms) finds the median startup without sorting; last_at serves pruning.
  `CREATE TABLE qoe_sessions (
     asset_id TEXT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
     session_id TEXT NOT NULL,
     first_at INTEGER NOT NULL,
     last_at INTEGER NOT NULL,
     startup_ms INTEGER,
     stalls INTEGER NOT NULL DEFAULT 0,
     video_ms INTEGER NOT NULL DEFAULT 0,
     bitrate_ms INTEGER NOT NULL DEFAULT 0,
     top_bitrate INTEGER NOT NULL DEFAULT 0,
     requests INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (asset_id, session_id)
   );
   CREATE INDEX qoe_sessions_startup ON qoe_sessions (asset_id, startup_ms);
   CREATE INDEX qoe_sessions_last ON qoe_sessions (last_at);`,
];
