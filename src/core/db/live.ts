// Live streams (publishing points): one row each, its state machine's state as JSON, the stream key that
// authenticates ingest, and the asset of its current event. Every change of state goes through `transition`, which
// applies the one table of legal transitions (src/media/live/state.ts) in one write transaction (SQLite's write lock;
// PostgreSQL SERIALIZABLE, retried on conflict), so two processes (an API call and the ingest) can never both move
// the same stream from the same state.
import { type RawBuilder, sql } from 'kysely';
import {
  initialState,
  type LiveAction,
  type LiveState,
  type LiveStateName,
  transition,
} from '../../media/live/state.ts';
import { SmoothcastError } from '../errors.ts';
import { randomBase32 } from '../ids.ts';
import { type Db, int, type Row, text, textOrNull } from './database.ts';
import { greatest, insertionOrder } from './dialect.ts';

export type LiveLatency = 'low' | 'standard';

export interface LiveStream {
  id: string;
  title: string;
  state: LiveState;
  streamKey: string;
  /** Seconds of the event the live manifests list; 0 = the whole event. */
  dvrWindowSeconds: number;
  /** Keep the event as a VOD asset after shutdown. */
  archive: boolean;
  latency: LiveLatency;
  /** How long a publisher that drops may take to come back and continue the same event. */
  reconnectWindowSeconds: number;
  currentAssetId: string | null;
  /** Its SRT listener's UDP port (from live.srtPorts), null when none was free at creation. */
  srtPort: number | null;
  /** The SRT passphrase (AES-128): 24 base32 characters; rotated with the stream key. */
  srtPassphrase: string;
  /** Transcode RTMP/SRT input into the ladder; null: the server's live.transcode. */
  transcode: boolean | null;
  /** Who may watch its events (they inherit it when they start). */
  playbackPolicy: 'public' | 'signed';
  /** Concurrent viewers allowed; null: no limit. */
  maxViewers: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface LiveTarget {
  id: string;
  streamId: string;
  url: string;
  createdAt: number;
}

export interface NewLiveStream {
  title: string;
  dvrWindowSeconds?: number;
  archive?: boolean;
  latency?: LiveLatency;
  reconnectWindowSeconds?: number;
  transcode?: boolean | null;
  playbackPolicy?: 'public' | 'signed';
  maxViewers?: number | null;
}

export interface LiveRepository {
  /** `srtPorts`: the range to take the lowest free port from. */
  create(input: NewLiveStream, options?: { srtPorts?: readonly [number, number] }): Promise<LiveStream>;
  get(id: string): Promise<LiveStream | null>;
  /** The stream a publisher's key names (ingest authentication); null for an unknown key. */
  byKey(streamKey: string): Promise<LiveStream | null>;
  /** Newest first. */
  list(options: { limit: number; offset?: number }): Promise<LiveStream[]>;
  count(): Promise<number>;
  /** Applies `action` to the current state (LIVE_STATE_CONFLICT when the table forbids it). */
  transition(id: string, action: LiveAction, nowMs?: number): Promise<LiveStream>;
  /** A new key; the old one stops working at once (a publisher already connected keeps its session). */
  rotateKey(id: string): Promise<LiveStream>;
  /** Title, playback policy, viewer limit. */
  updateSettings(
    id: string,
    s: { title?: string; playbackPolicy?: 'public' | 'signed'; maxViewers?: number | null },
  ): Promise<LiveStream>;
  setCurrentAsset(id: string, assetId: string | null): Promise<LiveStream>;
  /** False when it did not exist. A stream with a publisher (starting/started/reconnecting) cannot be deleted. */
  delete(id: string): Promise<boolean>;
  addTarget(streamId: string, url: string): Promise<LiveTarget>;
  targets(streamId: string): Promise<LiveTarget[]>;
  /** False when the stream has no such target. */
  removeTarget(streamId: string, targetId: string): Promise<boolean>;
}

export const TARGET_ID = /^t[a-z2-7]{11}$/;
/** At most this many push targets per stream. */
export const MAX_TARGETS = 8;

export const LIVE_ID = /^l[a-z2-7]{15}$/;
/** 'l' + 15 base32 characters (75 bits): ids are public (they are in playback URLs), keys are secret. */
export function newLiveId(): string {
  return randomBase32(15, 'l');
}

/** 32 base32 characters: 160 random bits. Only URL-safe characters, so it can sit in an RTMP or SRT URL as is. */
export function newStreamKey(): string {
  return randomBase32(32);
}

export const LIVE_DEFAULTS = {
  dvrWindowSeconds: 7200,
  archive: true,
  latency: 'low' as LiveLatency,
  reconnectWindowSeconds: 30,
};

/** Bounds of the settings (the API answers BAD_REQUEST outside them). */
export const LIVE_LIMITS = {
  titleLength: 200,
  dvrWindowSeconds: 7 * 24 * 3600,
  reconnectWindowSeconds: 3600,
};

function intIn(v: unknown, name: string, max: number): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) > max) {
    throw new SmoothcastError('BAD_REQUEST', `${name} must be an integer from 0 to ${max}`);
  }
  return v as number;
}

/** Validates and completes creation input (defaults as in LIVE_DEFAULTS). */
export function liveSettings(input: NewLiveStream): Required<NewLiveStream> {
  if (input.transcode !== undefined && input.transcode !== null && typeof input.transcode !== 'boolean') {
    throw new SmoothcastError('BAD_REQUEST', 'transcode must be true, false or null');
  }
  if (typeof input.title !== 'string' || input.title.trim() === '' || input.title.length > LIVE_LIMITS.titleLength) {
    throw new SmoothcastError('BAD_REQUEST', `title must be a non-empty string of at most ${LIVE_LIMITS.titleLength}`);
  }
  const latency = input.latency ?? LIVE_DEFAULTS.latency;
  if (latency !== 'low' && latency !== 'standard') {
    throw new SmoothcastError('BAD_REQUEST', 'latency must be "low" or "standard"');
  }
  if (input.archive !== undefined && typeof input.archive !== 'boolean') {
    throw new SmoothcastError('BAD_REQUEST', 'archive must be true or false');
  }
  return {
    title: input.title.trim(),
    dvrWindowSeconds: intIn(
      input.dvrWindowSeconds ?? LIVE_DEFAULTS.dvrWindowSeconds,
      'dvrWindowSeconds',
      LIVE_LIMITS.dvrWindowSeconds,
    ),
    archive: input.archive ?? LIVE_DEFAULTS.archive,
    latency,
    reconnectWindowSeconds: intIn(
      input.reconnectWindowSeconds ?? LIVE_DEFAULTS.reconnectWindowSeconds,
      'reconnectWindowSeconds',
      LIVE_LIMITS.reconnectWindowSeconds,
    ),
    transcode: input.transcode ?? null,
    playbackPolicy: checkPolicy(input.playbackPolicy ?? 'public'),
    maxViewers: checkMaxViewers(input.maxViewers ?? null),
  };
}

function checkPolicy(p: unknown): 'public' | 'signed' {
  if (p !== 'public' && p !== 'signed')
    throw new SmoothcastError('BAD_REQUEST', 'playbackPolicy is "public" or "signed"');
  return p;
}

function checkMaxViewers(n: unknown): number | null {
  if (n === null) return null;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 10_000_000) {
    throw new SmoothcastError('BAD_REQUEST', 'maxViewers is a whole number ≥ 1, or null for no limit');
  }
  return n;
}

/** States with a publisher connected or expected back: such a stream is not deleted under it. */
const BUSY: readonly LiveStateName[] = ['starting', 'started', 'reconnecting'];

export class SqliteLiveRepository implements LiveRepository {
  readonly #db: Db;
  readonly #now: () => number;

  constructor(db: Db, options: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
  }

  async create(input: NewLiveStream, options: { srtPorts?: readonly [number, number] } = {}): Promise<LiveStream> {
    const s = liveSettings(input);
    const id = newLiveId();
    const now = this.#now();
    // Random values are drawn before the transaction: on PostgreSQL its callback may run more than once.
    const streamKey = newStreamKey();
    const srtPassphrase = newStreamKey().slice(0, 24);
    await this.#db.write(async () => {
      const srtPort = options.srtPorts ? await this.#freeSrtPort(options.srtPorts) : null;
      await this.#db.run(
        sql`INSERT INTO live_streams (id, title, state, stream_key, dvr_window_seconds, archive, latency,
              reconnect_window_seconds, srt_port, srt_passphrase, transcode, playback_policy, max_viewers, created_at,
              updated_at)
            VALUES (${id}, ${s.title}, ${JSON.stringify(initialState(now))}, ${streamKey}, ${s.dvrWindowSeconds},
              ${s.archive ? 1 : 0}, ${s.latency}, ${s.reconnectWindowSeconds}, ${srtPort}, ${srtPassphrase},
              ${s.transcode === null ? null : s.transcode ? 1 : 0}, ${s.playbackPolicy}, ${s.maxViewers}, ${now},
              ${now})`,
      );
    });
    return this.#mustGet(id);
  }

  /** The lowest port of the range no stream holds (inside the write transaction). */
  async #freeSrtPort([from, to]: readonly [number, number]): Promise<number | null> {
    const rows = await this.#db.all(sql`SELECT srt_port FROM live_streams WHERE srt_port BETWEEN ${from} AND ${to}`);
    const used = new Set(rows.map((r) => int(r, 'srt_port')));
    for (let p = from; p <= to; p++) if (!used.has(p)) return p;
    return null;
  }

  addTarget(streamId: string, url: string): Promise<LiveTarget> {
    const id = randomBase32(11, 't');
    return this.#db.write(async () => {
      await this.#mustGet(streamId);
      if ((await this.targets(streamId)).length >= MAX_TARGETS) {
        throw new SmoothcastError('BAD_REQUEST', `a live stream has at most ${MAX_TARGETS} push targets`);
      }
      await this.#db.run(
        sql`INSERT INTO live_targets (id, stream_id, url, created_at) VALUES (${id}, ${streamId}, ${url}, ${this.#now()})`,
      );
      await this.#set(streamId, []);
      return (await this.targets(streamId)).find((t) => t.id === id)!;
    });
  }

  async targets(streamId: string): Promise<LiveTarget[]> {
    const order = insertionOrder(this.#db.dialect);
    const rows = await this.#db.all(
      sql`SELECT * FROM live_targets WHERE stream_id = ${streamId} ORDER BY created_at, ${order}`,
    );
    return rows.map((r) => ({
      id: text(r, 'id'),
      streamId: text(r, 'stream_id'),
      url: text(r, 'url'),
      createdAt: int(r, 'created_at'),
    }));
  }

  async removeTarget(streamId: string, targetId: string): Promise<boolean> {
    if (!TARGET_ID.test(targetId)) return false;
    return this.#db.write(async () => {
      const gone =
        (await this.#db.run(sql`DELETE FROM live_targets WHERE id = ${targetId} AND stream_id = ${streamId}`)) === 1;
      if (gone) await this.#set(streamId, []);
      return gone;
    });
  }

  async get(id: string): Promise<LiveStream | null> {
    if (!LIVE_ID.test(id)) return null;
    const row = await this.#db.get(sql`SELECT * FROM live_streams WHERE id = ${id}`);
    return row === undefined ? null : toLive(row);
  }

  async byKey(streamKey: string): Promise<LiveStream | null> {
    if (typeof streamKey !== 'string' || !/^[a-z2-7]{32}$/.test(streamKey)) return null;
    const row = await this.#db.get(sql`SELECT * FROM live_streams WHERE stream_key = ${streamKey}`);
    return row === undefined ? null : toLive(row);
  }

  async list(options: { limit: number; offset?: number }): Promise<LiveStream[]> {
    const order = insertionOrder(this.#db.dialect);
    const rows = await this.#db.all(
      sql`SELECT * FROM live_streams ORDER BY created_at DESC, ${order} DESC
          LIMIT ${options.limit} OFFSET ${options.offset ?? 0}`,
    );
    return rows.map(toLive);
  }

  async count(): Promise<number> {
    return int((await this.#db.get(sql`SELECT count(*) AS n FROM live_streams`)) ?? {}, 'n');
  }

  async transition(id: string, action: LiveAction, nowMs = this.#now()): Promise<LiveStream> {
    const { from, after } = await this.#db.write(async () => {
      const cur = await this.#mustGet(id);
      const next = transition(cur.state, action, nowMs, { reconnectWindowMs: cur.reconnectWindowSeconds * 1000 });
      await this.#set(id, [sql`state = ${JSON.stringify(next)}`]);
      return { from: cur.state.name as string, after: await this.#mustGet(id) };
    });
    if (after.state.name !== from) {
      try {
        this.onStateChanged?.(after, from);
      } catch {
        // a listener's failure is not the catalog's
      }
    }
    return after;
  }

  /** Called (after the commit) when a stream's state changes in this process: webhooks. */
  onStateChanged: ((s: LiveStream, from: string) => void) | undefined;

  rotateKey(id: string): Promise<LiveStream> {
    const streamKey = newStreamKey();
    const srtPassphrase = newStreamKey().slice(0, 24);
    return this.#db.write(async () => {
      await this.#mustGet(id);
      await this.#set(id, [sql`stream_key = ${streamKey}`, sql`srt_passphrase = ${srtPassphrase}`]);
      return this.#mustGet(id);
    });
  }

  setCurrentAsset(id: string, assetId: string | null): Promise<LiveStream> {
    return this.#db.write(async () => {
      await this.#mustGet(id);
      await this.#set(id, [sql`current_asset_id = ${assetId}`]);
      return this.#mustGet(id);
    });
  }

  delete(id: string): Promise<boolean> {
    return this.#db.write(async () => {
      const cur = await this.get(id);
      if (!cur) return false;
      if (BUSY.includes(cur.state.name)) {
        throw new SmoothcastError(
          'LIVE_STATE_CONFLICT',
          `live stream ${id} is ${cur.state.name}: stop or shut it down before deleting it`,
        );
      }
      return (await this.#db.run(sql`DELETE FROM live_streams WHERE id = ${id}`)) === 1;
    });
  }

  /** updated_at becomes max(now, previous + 1) so it strictly increases (SSE followers compare it). */
  async updateSettings(
    id: string,
    u: { title?: string; playbackPolicy?: 'public' | 'signed'; maxViewers?: number | null },
  ): Promise<LiveStream> {
    const sets: RawBuilder<unknown>[] = [];
    if (u.title !== undefined) {
      if (typeof u.title !== 'string' || !u.title.trim() || u.title.length > LIVE_LIMITS.titleLength) {
        throw new SmoothcastError(
          'BAD_REQUEST',
          `title must be a non-empty string of at most ${LIVE_LIMITS.titleLength}`,
        );
      }
      sets.push(sql`title = ${u.title.trim()}`);
    }
    if (u.playbackPolicy !== undefined) sets.push(sql`playback_policy = ${checkPolicy(u.playbackPolicy)}`);
    if (u.maxViewers !== undefined) sets.push(sql`max_viewers = ${checkMaxViewers(u.maxViewers)}`);
    return this.#db.write(async () => {
      await this.#mustGet(id);
      if (sets.length) await this.#set(id, sets);
      return this.#mustGet(id);
    });
  }

  /** Applies `sets` (none: only the bump) and moves updated_at to max(now, previous + 1). */
  async #set(id: string, sets: readonly RawBuilder<unknown>[]): Promise<void> {
    const bump = sql`updated_at = ${greatest(this.#db.dialect, this.#now(), sql`updated_at + 1`)}`;
    await this.#db.run(sql`UPDATE live_streams SET ${sql.join([...sets, bump])} WHERE id = ${id}`);
  }

  async #mustGet(id: string): Promise<LiveStream> {
    const s = await this.get(id);
    if (!s) throw new SmoothcastError('LIVE_NOT_FOUND', `no live stream ${id}`);
    return s;
  }
}

function toLive(row: Row): LiveStream {
  return {
    id: text(row, 'id'),
    title: text(row, 'title'),
    state: JSON.parse(text(row, 'state')) as LiveState,
    streamKey: text(row, 'stream_key'),
    dvrWindowSeconds: int(row, 'dvr_window_seconds'),
    archive: int(row, 'archive') === 1,
    latency: text(row, 'latency') as LiveLatency,
    reconnectWindowSeconds: int(row, 'reconnect_window_seconds'),
    currentAssetId: textOrNull(row, 'current_asset_id'),
    srtPort: row.srt_port === null ? null : int(row, 'srt_port'),
    srtPassphrase: text(row, 'srt_passphrase'),
    transcode: row.transcode === null ? null : int(row, 'transcode') === 1,
    playbackPolicy: text(row, 'playback_policy') as 'public' | 'signed',
    maxViewers: row.max_viewers === null ? null : int(row, 'max_viewers'),
    createdAt: int(row, 'created_at'),
    updatedAt: int(row, 'updated_at'),
  };
}
