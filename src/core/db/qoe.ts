// Viewing quality per playback session, from the CMCD (CTA-5004) players send with their requests: each origin
// process aggregates in memory (src/roles/origin/qoe.ts) and adds what it saw to one row per (asset, session id),
// so any number of origins can record the same session. Sums are additive, first_at the earliest, last_at the
// latest, startup the first one recorded.
import { sql } from 'kysely';
import { type Db, int, num, numOrNull } from './database.ts';
import { greatest } from './dialect.ts';

/** What one process saw of a session since it last flushed (times in ms since the epoch; bit rates in kbps). */
export interface QoeDelta {
  assetId: string;
  sessionId: string;
  firstAt: number;
  lastAt: number;
  /** From the session's first request to its first request after startup; null when not (yet) known. */
  startupMs: number | null;
  /** Requests flagged with buffer starvation (`bs`). */
  stalls: number;
  /** Σ duration of the video objects requested, ms. */
  videoMs: number;
  /** Σ bitrate × duration over the same objects, kbps·ms (= bits). */
  bitrateMs: number;
  /** Highest top bitrate (`tb`) the player announced for video, kbps (0: none). */
  topBitrate: number;
  requests: number;
}

export interface QoeSummary {
  sessions: number;
  /** Sessions with at least one stall. */
  stalledSessions: number;
  stalls: number;
  /** stalledSessions / sessions (0 when there is no session). */
  stallRatio: number;
  /** null when no session has a startup figure. */
  medianStartupMs: number | null;
  /** Time-weighted encoded bitrate of the video played, bits/s (null when no video was played). */
  averageBitrate: number | null;
  /** Σ duration of the video objects requested, s. */
  watchedSeconds: number;
}

export interface QoeRepository {
  /** Adds a batch of deltas (one transaction); rows of assets that no longer exist are skipped. */
  record(batch: readonly QoeDelta[]): Promise<void>;
  summary(assetId: string): Promise<QoeSummary>;
  /** Deletes sessions last seen before `before` (ms); resolves to how many. */
  prune(before: number): Promise<number>;
}

/** Sessions kept after their last request. */
export const QOE_RETENTION_MS = 30 * 24 * 3600_000;

/** Rows per INSERT (10 parameters each: well under SQLite's and PostgreSQL's parameter limits). */
const ROWS_PER_STATEMENT = 200;
/** Stored sums stop here: every value stays an exact double, and adding two never overflows a BIGINT. */
const CAP = Number.MAX_SAFE_INTEGER;

/** Two deltas of one session as one. */
export function mergeDeltas(a: QoeDelta, b: QoeDelta): QoeDelta {
  return {
    assetId: a.assetId,
    sessionId: a.sessionId,
    firstAt: Math.min(a.firstAt, b.firstAt),
    lastAt: Math.max(a.lastAt, b.lastAt),
    startupMs: a.startupMs ?? b.startupMs,
    stalls: capped(a.stalls + b.stalls),
    videoMs: capped(a.videoMs + b.videoMs),
    bitrateMs: capped(a.bitrateMs + b.bitrateMs),
    topBitrate: Math.max(a.topBitrate, b.topBitrate),
    requests: capped(a.requests + b.requests),
  };
}

const capped = (n: number) => Math.min(CAP, Math.max(0, Math.round(n)));

export class SqliteQoeRepository implements QoeRepository {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  async record(batch: readonly QoeDelta[]): Promise<void> {
    if (batch.length === 0) return;
    // One row per session in a statement: PostgreSQL refuses an upsert that touches a row twice.
    const bySession = new Map<string, QoeDelta>();
    for (const d of batch) {
      const k = `${d.assetId}/${d.sessionId}`;
      const had = bySession.get(k);
      bySession.set(k, had ? mergeDeltas(had, d) : d);
    }
    const rows = [...bySession.values()];
    await this.#db.write(async () => {
      // The asset may have been deleted since the requests: its sessions went with it (ON DELETE CASCADE).
      const ids = [...new Set(rows.map((r) => r.assetId))];
      const existing = new Set<string>();
      for (let i = 0; i < ids.length; i += 500) {
        const chunk = ids.slice(i, i + 500);
        const found = await this.#db.all(sql`SELECT id FROM assets WHERE id IN (${sql.join(chunk)})`);
        for (const r of found) existing.add(String(r.id));
      }
      const live = rows.filter((r) => existing.has(r.assetId));
      for (let i = 0; i < live.length; i += ROWS_PER_STATEMENT) {
        await this.#upsert(live.slice(i, i + ROWS_PER_STATEMENT));
      }
    });
  }

  async #upsert(rows: readonly QoeDelta[]): Promise<void> {
    const values = rows.map(
      (r) =>
        sql`(${r.assetId}, ${r.sessionId}, ${Math.round(r.firstAt)}, ${Math.round(r.lastAt)},
             ${r.startupMs === null ? null : capped(r.startupMs)}, ${capped(r.stalls)}, ${capped(r.videoMs)},
             ${capped(r.bitrateMs)}, ${capped(r.topBitrate)}, ${capped(r.requests)})`,
    );
    const sum = (col: string) => {
      const total = sql`qoe_sessions.${sql.raw(col)} + excluded.${sql.raw(col)}`;
      return sql`CASE WHEN ${total} > ${sql.lit(CAP)} THEN ${sql.lit(CAP)} ELSE ${total} END`;
    };
    const d = this.#db.dialect;
    await this.#db.run(
      sql`INSERT INTO qoe_sessions (asset_id, session_id, first_at, last_at, startup_ms, stalls, video_ms, bitrate_ms,
            top_bitrate, requests)
          VALUES ${sql.join(values)}
          ON CONFLICT (asset_id, session_id) DO UPDATE SET
            first_at = CASE WHEN excluded.first_at < qoe_sessions.first_at THEN excluded.first_at
                            ELSE qoe_sessions.first_at END,
            last_at = ${greatest(d, sql`qoe_sessions.last_at`, sql`excluded.last_at`)},
            startup_ms = COALESCE(qoe_sessions.startup_ms, excluded.startup_ms),
            stalls = ${sum('stalls')},
            video_ms = ${sum('video_ms')},
            bitrate_ms = ${sum('bitrate_ms')},
            top_bitrate = ${greatest(d, sql`qoe_sessions.top_bitrate`, sql`excluded.top_bitrate`)},
            requests = ${sum('requests')}`,
    );
  }

  summary(assetId: string): Promise<QoeSummary> {
    return this.#db.read(async () => {
      const row = (await this.#db.get(
        sql`SELECT COUNT(*) AS sessions,
                   COALESCE(SUM(CASE WHEN stalls > 0 THEN 1 ELSE 0 END), 0) AS stalled,
                   COALESCE(SUM(stalls), 0) AS stalls,
                   COALESCE(SUM(video_ms), 0) AS video_ms,
                   COALESCE(SUM(bitrate_ms), 0) AS bitrate_ms,
                   COUNT(startup_ms) AS with_startup
            FROM qoe_sessions WHERE asset_id = ${assetId}`,
      ))!;
      const sessions = int(row, 'sessions');
      const stalled = num(row, 'stalled');
      const videoMs = num(row, 'video_ms');
      const withStartup = int(row, 'with_startup');
      let medianStartupMs: number | null = null;
      if (withStartup > 0) {
        // The middle one (or the two middle ones) by the (asset_id, startup_ms) index: no sort of every session.
        const middle = await this.#db.all(
          sql`SELECT startup_ms FROM qoe_sessions WHERE asset_id = ${assetId} AND startup_ms IS NOT NULL
              ORDER BY startup_ms LIMIT ${withStartup % 2 === 0 ? 2 : 1} OFFSET ${Math.floor((withStartup - 1) / 2)}`,
        );
        const v = middle.map((r) => numOrNull(r, 'startup_ms') ?? 0);
        medianStartupMs = v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
      }
      return {
        sessions,
        stalledSessions: stalled,
        stalls: num(row, 'stalls'),
        stallRatio: sessions === 0 ? 0 : stalled / sessions,
        medianStartupMs,
        // kbps·ms / ms = kbps; × 1000 = bits/s.
        averageBitrate: videoMs > 0 ? Math.round((num(row, 'bitrate_ms') / videoMs) * 1000) : null,
        watchedSeconds: videoMs / 1000,
      };
    });
  }

  prune(before: number): Promise<number> {
    return this.#db.run(sql`DELETE FROM qoe_sessions WHERE last_at < ${Math.floor(before)}`);
  }
}
