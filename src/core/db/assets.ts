// The asset catalog: one row per uploaded video, its renditions, and its processing state.
// Life cycle: queued → processing → ready | failed; ready | failed → queued again only through requeue().
// processing → processing is allowed: a job retaken after a worker died starts over with a fresh rev.
// A live event is created `live` (createLive) and becomes `ready` at the stream's shutdown: its files are the VOD.

import { type RawBuilder, sql } from 'kysely';
import { type ErrorCode, isErrorCode, SmoothcastError } from '../errors.ts';
import { randomBase32 } from '../ids.ts';
import { type Db, int, isConstraintError, jsonOrNull, num, numOrNull, type Row, text, textOrNull } from './database.ts';
import { greatest, insertionOrder } from './dialect.ts';

export type AssetStatus = 'queued' | 'processing' | 'ready' | 'failed' | 'live';
export type RenditionType = 'video' | 'audio';

export interface Progress {
  /** 0–100. */
  percent: number;
  /** Encode speed as a multiple of real time (ffmpeg's `speed=`), null when not known yet. */
  speed: number | null;
  etaSeconds: number | null;
}

/** The probe summary of the source file: a JSON object whose shape the probe module owns. */
export type SourceSummary = Readonly<Record<string, unknown>>;

export interface Rendition {
  /** 'v0', 'v1', …, 'a0': the letter matches the type. */
  id: string;
  type: RenditionType;
  width: number | null;
  height: number | null;
  /** Planned target bitrate, bits/s. */
  bitrate: number;
  /** RFC 6381 codec string; null until the first fragment is written. */
  codecs: string | null;
  frameRate: number | null;
  /** Measured over the finished file (bits/s); null until ready. */
  averageBitrate: number | null;
  peakBitrate: number | null;
  /** Audio: BCP 47 language ('und' when the source does not say), a label, DASH roles, the default track. */
  language: string | null;
  label: string | null;
  roles: string[];
  default: boolean;
}

/** 'audio' for audio-only media (music, podcasts): every rendition is audio. */
export type MediaType = 'video' | 'audio';

export interface Asset {
  id: string;
  title: string;
  status: AssetStatus;
  /** True once every rendition has its codecs (first fragments written): the origin may serve it. */
  playable: boolean;
  progress: Progress | null;
  error: { code: ErrorCode; message: string } | null;
  /** Seconds; null until known. */
  duration: number | null;
  source: SourceSummary | null;
  /** Path of the source file relative to the storage root. */
  sourcePath: string;
  /** The file name as uploaded. */
  sourceName: string;
  /** Output revision folder name; null until encoding starts. */
  rev: string | null;
  /** null until probed. */
  mediaType: MediaType | null;
  /** What the encode left out or changed, for the owner (e.g. an image subtitle track skipped). */
  notes: string[];
  /** Seconds at which the source's t = 0 is presented in the current rev's renditions (captions are shifted by it). */
  presentationOffset: number | null;
  renditions: Rendition[];
  /** The live stream whose event this asset is (null for uploads and imports). */
  liveStreamId: string | null;
  /** Live events: the wall clock (ms) of media time 0 (EXT-X-PROGRAM-DATE-TIME, availabilityStartTime). */
  liveStartMs: number | null;
  /**
   * The node (its advertised URL) holding the current rev's files on its own disk while they are written —
   * an encode before its upload to the bucket, a live event — or null when they are in storage
   * (src/core/storage/held.ts).
   */
  holder: string | null;
  /** Who may play it: anyone, or only holders of a playback token. */
  playbackPolicy: PlaybackPolicy;
  /** Encryption applied on the fly when it is served (the stored files stay clear). */
  encryption: Encryption;
  /** Concurrent playback sessions allowed; null: no limit. */
  maxViewers: number | null;
  /** The user who created it (null: the CLI, a token without a user, or before accounts existed). */
  ownerId: string | null;
  /** Its content key, wrapped by the master key (src/core/content-keys.ts); null until first needed. */
  contentKey: string | null;
  createdAt: number;
  /** ms; strictly increases with every change, so pollers (SSE) can compare it. */
  updatedAt: number;
  readyAt: number | null;
}

export type PlaybackPolicy = 'public' | 'signed';
export type Encryption = 'none' | 'aes-128' | 'cbcs' | 'cenc';
export const PLAYBACK_POLICIES: readonly PlaybackPolicy[] = ['public', 'signed'];
export const ENCRYPTIONS: readonly Encryption[] = ['none', 'aes-128', 'cbcs', 'cenc'];

/** What PATCH /api/assets/:id may change. */
export interface AssetSettings {
  title?: string;
  playbackPolicy?: PlaybackPolicy;
  encryption?: Encryption;
  maxViewers?: number | null;
}

/** Who owns a new asset and how it is played (defaults: public, clear, no viewer limit). */
export interface NewAssetAccess {
  ownerId?: string | null;
  playbackPolicy?: PlaybackPolicy;
  encryption?: Encryption;
  maxViewers?: number | null;
}

export interface PlannedRendition {
  id: string;
  type: RenditionType;
  width?: number | null;
  height?: number | null;
  bitrate: number;
  frameRate?: number | null;
  language?: string | null;
  label?: string | null;
  roles?: readonly string[];
  default?: boolean;
}

export interface ProcessingInput {
  source: SourceSummary;
  duration: number | null;
  rev: string;
  renditions: readonly PlannedRendition[];
  mediaType?: MediaType;
  notes?: readonly string[];
  presentationOffset?: number;
}

export interface FinalRendition {
  id: string;
  codecs: string;
  averageBitrate: number;
  peakBitrate: number;
  frameRate?: number | null;
  width?: number | null;
  height?: number | null;
}

export interface ReadyInput {
  duration: number;
  renditions: readonly FinalRendition[];
  notes?: readonly string[];
}

export interface LiveAssetInput {
  id: string;
  title: string;
  liveStreamId: string;
  liveStartMs: number;
  rev: string;
  renditions: readonly PlannedRendition[];
  source: SourceSummary;
  access?: NewAssetAccess;
}

export interface AssetRepository {
  create(input: { id: string; title: string; sourcePath: string; sourceName: string } & NewAssetAccess): Promise<Asset>;
  get(id: string): Promise<Asset | null>;
  /** Title, playback policy, encryption, viewer limit (any status). */
  updateSettings(id: string, settings: AssetSettings): Promise<Asset>;
  /** Stores the wrapped content key unless one is there already; returns the one stored. */
  setContentKeyOnce(id: string, wrapped: string): Promise<string>;
  /** Newest first. */
  list(options: { limit: number; offset?: number }): Promise<Asset[]>;
  count(): Promise<number>;
  /** queued | processing → processing: records the probe result and the plan; replaces the renditions. */
  setProcessing(id: string, input: ProcessingInput): Promise<Asset>;
  setProgress(id: string, progress: Progress): Promise<Asset>;
  /** processing: sets the codecs of renditions (by id); playable once every rendition has them. */
  setPlayable(id: string, codecs: Readonly<Record<string, string>>): Promise<Asset>;
  /** processing → ready with the measured figures of every rendition (and notes, when given, replacing them). */
  setReady(id: string, input: ReadyInput): Promise<Asset>;
  /** queued | processing → failed. */
  setFailed(id: string, error: { code: ErrorCode; message: string }): Promise<Asset>;
  /** ready | failed → queued (a re-encode); the previous rev stays served until setProcessing replaces it. */
  requeue(id: string): Promise<Asset>;
  /**
   * processing → queued after a transient failure that will be retried: that attempt's files are gone, so the
   * asset is not playable until the retry publishes again.
   */
  setRetrying(id: string): Promise<Asset>;
  /** A new live event: status live with its planned renditions and the wall clock of its media time 0. */
  createLive(input: LiveAssetInput): Promise<Asset>;
  /** live: adds renditions (an HTTP push announces its tracks as they arrive); existing ids are left as they are. */
  addLiveRenditions(id: string, renditions: readonly PlannedRendition[]): Promise<Asset>;
  /** live: the bits/s a rendition announces (an HTTP push's tracks, measured from their first fragment). */
  setLiveBitrates(id: string, bitrates: Readonly<Record<string, number>>): Promise<Asset>;
  /** Deletes the asset, its renditions and its jobs; false when it did not exist. */
  delete(id: string): Promise<boolean>;
  /** Records which node holds the asset's files now (null: they are in storage). */
  setHolder(id: string, holder: string | null): Promise<void>;
}

const ID_PATTERN = /^[a-z0-9]{8,32}$/;
const RENDITION_ID = /^([va])(0|[1-9][0-9]{0,3})$/;

/** A new random asset id: 16 base32 characters (80 bits). */
export function newAssetId(): string {
  return randomBase32(16);
}

export function isValidAssetId(id: unknown): id is string {
  return typeof id === 'string' && ID_PATTERN.test(id);
}

type Action = 'setProcessing' | 'setProgress' | 'setPlayable' | 'setReady' | 'setFailed' | 'requeue' | 'setRetrying';

/** The states each change may start from (the compiler checks every action is listed). */
const ALLOWED_FROM: { [A in Action]: readonly AssetStatus[] } = {
  setProcessing: ['queued', 'processing'],
  setProgress: ['processing'],
  setPlayable: ['processing', 'live'],
  setReady: ['processing', 'live'],
  setFailed: ['queued', 'processing', 'live'],
  requeue: ['queued', 'ready', 'failed'],
  setRetrying: ['processing'],
};

/** A change the asset's current status does not allow (e.g. ready → processing without a requeue). */
export class IllegalTransitionError extends SmoothcastError {
  readonly assetId: string;
  readonly from: AssetStatus;
  readonly action: string;

  constructor(assetId: string, from: AssetStatus, action: string) {
    super('ASSET_STATE_CONFLICT', `asset ${assetId} is ${from}: ${action} is not allowed from that status`);
    this.name = 'IllegalTransitionError';
    this.assetId = assetId;
    this.from = from;
    this.action = action;
  }
}

export class SqliteAssetRepository implements AssetRepository {
  readonly #db: Db;
  readonly #now: () => number;

  constructor(db: Db, options: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
  }

  async create(
    input: { id: string; title: string; sourcePath: string; sourceName: string } & NewAssetAccess,
  ): Promise<Asset> {
    if (!isValidAssetId(input.id)) throw new SmoothcastError('INVALID_ID', `invalid asset id: ${String(input.id)}`);
    for (const key of ['title', 'sourcePath', 'sourceName'] as const) {
      if (typeof input[key] !== 'string') throw new SmoothcastError('BAD_REQUEST', `asset ${key} must be a string`);
    }
    const a = checkAccess(input);
    const now = this.#now();
    let inserted: number;
    try {
      // ON CONFLICT DO NOTHING rather than only catching the violation: on PostgreSQL a failed statement aborts the
      // transaction it runs in, and create() is called inside the caller's write() (ingest).
      inserted = await this.#db.run(
        sql`INSERT INTO assets (id, title, status, source_path, source_name, owner_id, playback_policy, encryption,
              max_viewers, created_at, updated_at)
            VALUES (${input.id}, ${input.title}, 'queued', ${input.sourcePath}, ${input.sourceName}, ${a.ownerId},
              ${a.playbackPolicy}, ${a.encryption}, ${a.maxViewers}, ${now}, ${now})
            ON CONFLICT (id) DO NOTHING`,
      );
    } catch (err) {
      if (isConstraintError(err)) throw new SmoothcastError('INVALID_ID', `asset ${input.id} already exists`);
      throw err;
    }
    if (inserted !== 1) throw new SmoothcastError('INVALID_ID', `asset ${input.id} already exists`);
    return this.#mustGet(input.id);
  }

  async get(id: string): Promise<Asset | null> {
    if (!isValidAssetId(id)) return null;
    // One snapshot: a re-encode replaces the renditions in one transaction, and the row must match them.
    return this.#db.read(async () => {
      const row = await this.#db.get(sql`SELECT * FROM assets WHERE id = ${id}`);
      if (row === undefined) return null;
      const renditions = await this.#db.all(sql`SELECT * FROM renditions WHERE asset_id = ${id}`);
      return toAsset(row, renditions);
    });
  }

  async list(options: { limit: number; offset?: number }): Promise<Asset[]> {
    const limit = nonNegativeInt(options.limit, 'limit');
    const offset = nonNegativeInt(options.offset ?? 0, 'offset');
    const order = insertionOrder(this.#db.dialect);
    // One snapshot for the page and its renditions.
    return this.#db.read(async () => {
      const rows = await this.#db.all(
        sql`SELECT * FROM assets ORDER BY created_at DESC, ${order} DESC LIMIT ${limit} OFFSET ${offset}`,
      );
      // `IN ()` is not valid SQL: an empty page needs no renditions query.
      if (rows.length === 0) return [];
      const ids = rows.map((r) => text(r, 'id'));
      const byAsset = new Map<string, Row[]>();
      for (const r of await this.#db.all(sql`SELECT * FROM renditions WHERE asset_id IN (${sql.join(ids)})`)) {
        const list = byAsset.get(text(r, 'asset_id')) ?? [];
        list.push(r);
        byAsset.set(text(r, 'asset_id'), list);
      }
      return rows.map((r) => toAsset(r, byAsset.get(text(r, 'id')) ?? []));
    });
  }

  async count(): Promise<number> {
    return int((await this.#db.get(sql`SELECT count(*) AS n FROM assets`)) ?? {}, 'n');
  }

  async setProcessing(id: string, input: ProcessingInput): Promise<Asset> {
    if (typeof input.rev !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(input.rev) || input.rev.startsWith('.')) {
      throw new SmoothcastError('BAD_REQUEST', `invalid output revision name: ${String(input.rev)}`);
    }
    if (input.duration !== null) finiteNonNegative(input.duration, 'duration');
    const planned = validatePlan(input.renditions);
    const notes = (input.notes ?? []).map((n) => String(n).slice(0, 500)).slice(0, 50);
    if (input.presentationOffset !== undefined) finiteNonNegative(input.presentationOffset, 'presentationOffset');
    const mediaType = input.mediaType ?? (planned.some((r) => r.type === 'video') ? 'video' : 'audio');
    return this.#transition(id, 'setProcessing', async () => {
      const progress: Progress = { percent: 0, speed: null, etaSeconds: null };
      const sets = sql`progress = ${JSON.stringify(progress)}, playable = 0, error_code = NULL, error_message = NULL,
        source = ${JSON.stringify(input.source)}, duration = ${input.duration}, rev = ${input.rev}, ready_at = NULL,
        media_type = ${mediaType}, notes = ${JSON.stringify(notes)},
        presentation_offset = ${input.presentationOffset ?? null}`;
      await this.#update(id, 'processing', sets);
      await this.#db.run(sql`DELETE FROM renditions WHERE asset_id = ${id}`);
      await this.#insertRenditions(id, planned);
    });
  }

  async setProgress(id: string, progress: Progress): Promise<Asset> {
    const p: Progress = {
      percent: Math.min(100, finiteNonNegative(progress.percent, 'percent')),
      speed: progress.speed === null ? null : finiteNonNegative(progress.speed, 'speed'),
      etaSeconds: progress.etaSeconds === null ? null : finiteNonNegative(progress.etaSeconds, 'etaSeconds'),
    };
    return this.#transition(id, 'setProgress', () =>
      this.#update(id, 'processing', sql`progress = ${JSON.stringify(p)}`),
    );
  }

  async setPlayable(id: string, codecs: Readonly<Record<string, string>>): Promise<Asset> {
    return this.#transition(id, 'setPlayable', async (asset) => {
      for (const [renditionId, codec] of Object.entries(codecs)) {
        if (typeof codec !== 'string' || codec === '') {
          throw new SmoothcastError('BAD_REQUEST', `rendition ${renditionId}: codecs must be a non-empty string`);
        }
        const changed = await this.#db.run(
          sql`UPDATE renditions SET codecs = ${codec} WHERE asset_id = ${id} AND id = ${renditionId}`,
        );
        if (changed !== 1) throw new SmoothcastError('BAD_REQUEST', `asset ${id} has no rendition ${renditionId}`);
      }
      const missing = await this.#db.get(
        sql`SELECT count(*) AS n FROM renditions WHERE asset_id = ${id} AND codecs IS NULL`,
      );
      const playable = int(missing ?? {}, 'n') === 0 ? 1 : 0;
      await this.#update(id, asset.status, sql`playable = ${playable}`);
    });
  }

  async setReady(id: string, input: ReadyInput): Promise<Asset> {
    finiteNonNegative(input.duration, 'duration');
    return this.#transition(id, 'setReady', async (asset) => {
      const planned = new Set(asset.renditions.map((r) => r.id));
      const given = new Set(input.renditions.map((r) => r.id));
      if (planned.size === 0 || given.size !== input.renditions.length || planned.size !== given.size) {
        throw new SmoothcastError('BAD_REQUEST', `asset ${id}: final figures must cover each rendition exactly once`);
      }
      for (const r of input.renditions) {
        if (!planned.has(r.id)) throw new SmoothcastError('BAD_REQUEST', `asset ${id} has no rendition ${r.id}`);
        if (typeof r.codecs !== 'string' || r.codecs === '') {
          throw new SmoothcastError('BAD_REQUEST', `rendition ${r.id}: codecs must be a non-empty string`);
        }
        const avg = finiteNonNegative(r.averageBitrate, 'averageBitrate');
        const peak = finiteNonNegative(r.peakBitrate, 'peakBitrate');
        const fps = r.frameRate == null ? null : finiteNonNegative(r.frameRate, 'frameRate');
        const w = r.width == null ? null : positiveInt(r.width, 'width');
        const h = r.height == null ? null : positiveInt(r.height, 'height');
        await this.#db.run(
          sql`UPDATE renditions SET codecs = ${r.codecs}, average_bitrate = ${Math.round(avg)},
                peak_bitrate = ${Math.round(peak)}, frame_rate = coalesce(${fps}, frame_rate),
                width = coalesce(${w}, width), height = coalesce(${h}, height)
              WHERE asset_id = ${id} AND id = ${r.id}`,
        );
      }
      const notes = input.notes ? JSON.stringify(input.notes.map((n) => String(n).slice(0, 500)).slice(0, 50)) : null;
      const sets = sql`playable = 1, progress = NULL, duration = ${input.duration}, ready_at = ${this.#now()},
        notes = coalesce(${notes}, notes)`;
      await this.#update(id, 'ready', sets);
    });
  }

  async setFailed(id: string, error: { code: ErrorCode; message: string }): Promise<Asset> {
    const code = isErrorCode(error.code) ? error.code : 'INTERNAL';
    const message = typeof error.message === 'string' ? error.message : String(error.message);
    return this.#transition(id, 'setFailed', () =>
      this.#update(id, 'failed', sql`playable = 0, progress = NULL, error_code = ${code}, error_message = ${message}`),
    );
  }

  async requeue(id: string): Promise<Asset> {
    return this.#transition(id, 'requeue', () =>
      this.#update(id, 'queued', sql`progress = NULL, error_code = NULL, error_message = NULL`),
    );
  }

  async setRetrying(id: string): Promise<Asset> {
    return this.#transition(id, 'setRetrying', () => this.#update(id, 'queued', sql`progress = NULL, playable = 0`));
  }

  async createLive(input: LiveAssetInput): Promise<Asset> {
    if (!isValidAssetId(input.id)) throw new SmoothcastError('INVALID_ID', `invalid asset id: ${String(input.id)}`);
    if (!/^rl-[0-9a-z-]{1,37}$/.test(input.rev))
      throw new SmoothcastError('BAD_REQUEST', `invalid live rev ${input.rev}`);
    // An HTTP push announces its tracks as they arrive: a live asset may start with none.
    const planned = input.renditions.length === 0 ? [] : validatePlan(input.renditions);
    const now = this.#now();
    const mediaType = planned.some((r) => r.type === 'video') ? 'video' : 'audio';
    const access = checkAccess(input.access ?? {});
    const liveStartMs = Math.round(finiteNonNegative(input.liveStartMs, 'liveStartMs'));
    await this.#db.write(async () => {
      await this.#db.run(
        sql`INSERT INTO assets (id, title, status, source_path, source_name, rev, source, media_type, notes,
              presentation_offset, live_stream_id, live_start_ms, owner_id, playback_policy, encryption, max_viewers,
              created_at, updated_at)
            VALUES (${input.id}, ${input.title}, 'live', '', 'live', ${input.rev}, ${JSON.stringify(input.source)},
              ${mediaType}, '[]', 0, ${input.liveStreamId}, ${liveStartMs}, ${access.ownerId},
              ${access.playbackPolicy}, ${access.encryption}, ${access.maxViewers}, ${now}, ${now})`,
      );
      await this.#insertRenditions(input.id, planned);
    });
    return this.#mustGet(input.id);
  }

  async addLiveRenditions(id: string, renditions: readonly PlannedRendition[]): Promise<Asset> {
    const planned = validatePlan(renditions);
    return this.#db.write(async () => {
      const current = await this.#mustGet(id);
      if (current.status !== 'live') throw new IllegalTransitionError(id, current.status, 'addLiveRenditions');
      const have = new Set(current.renditions.map((r) => r.id));
      await this.#insertRenditions(
        id,
        planned.filter((r) => !have.has(r.id)),
      );
      await this.#update(id, 'live', sql`playable = playable`);
      return this.#mustGet(id);
    });
  }

  async setLiveBitrates(id: string, bitrates: Readonly<Record<string, number>>): Promise<Asset> {
    return this.#db.write(async () => {
      const current = await this.#mustGet(id);
      if (current.status !== 'live') throw new IllegalTransitionError(id, current.status, 'setLiveBitrates');
      for (const [rid, bps] of Object.entries(bitrates)) {
        const bitrate = positiveInt(Math.round(bps), 'bitrate');
        await this.#db.run(sql`UPDATE renditions SET bitrate = ${bitrate} WHERE asset_id = ${id} AND id = ${rid}`);
      }
      await this.#update(id, 'live', sql`playable = playable`);
      return this.#mustGet(id);
    });
  }

  async #insertRenditions(id: string, planned: readonly PlannedRendition[]): Promise<void> {
    for (const r of planned) {
      await this.#db.run(
        sql`INSERT INTO renditions (asset_id, id, type, width, height, bitrate, frame_rate, language, label, roles,
              is_default)
            VALUES (${id}, ${r.id}, ${r.type}, ${r.width ?? null}, ${r.height ?? null}, ${r.bitrate},
              ${r.frameRate ?? null}, ${r.language ?? null}, ${r.label ?? null}, ${JSON.stringify(r.roles ?? [])},
              ${r.default ? 1 : 0})`,
      );
    }
  }

  async setHolder(id: string, holder: string | null): Promise<void> {
    if (holder !== null && !/^https?:\/\/[^\s/]+$/.test(holder)) {
      throw new SmoothcastError('BAD_REQUEST', `invalid holder URL ${JSON.stringify(holder)}`);
    }
    await this.#db.run(sql`UPDATE assets SET holder = ${holder} WHERE id = ${id}`);
  }

  async delete(id: string): Promise<boolean> {
    if (!isValidAssetId(id)) return false;
    return (await this.#db.run(sql`DELETE FROM assets WHERE id = ${id}`)) === 1;
  }

  /** Runs change() in a write transaction after checking the current status allows `action`; returns the result. */
  async #transition(id: string, action: Action, change: (current: Asset) => Promise<void>): Promise<Asset> {
    const after = await this.#db.write(async () => {
      const current = await this.get(id);
      if (current === null) throw new SmoothcastError('ASSET_NOT_FOUND', `asset ${id} not found`);
      if (!ALLOWED_FROM[action].includes(current.status)) throw new IllegalTransitionError(id, current.status, action);
      await change(current);
      return this.#mustGet(id);
    });
    // Outside write(): on PostgreSQL its callback may run more than once; the listener must hear of it once.
    if (action === 'setReady' || action === 'setFailed') {
      try {
        await this.onSettled?.(after);
      } catch {
        // a listener's failure is not the catalog's
      }
    }
    return after;
  }

  /**
   * Called (after the commit) when an asset becomes ready or failed in this process: webhooks. A returned promise
   * is awaited (its rejection ignored), so the change resolves once the listener has recorded what it needs.
   */
  onSettled: ((a: Asset) => unknown) | undefined;

  async updateSettings(id: string, settings: AssetSettings): Promise<Asset> {
    const sets: RawBuilder<unknown>[] = [];
    if (settings.title !== undefined) {
      if (typeof settings.title !== 'string' || !settings.title.trim() || settings.title.length > 500) {
        throw new SmoothcastError('BAD_REQUEST', 'title must be a string of 1–500 characters');
      }
      sets.push(sql`title = ${settings.title.trim()}`);
    }
    const a = checkAccess(settings);
    if (settings.playbackPolicy !== undefined) sets.push(sql`playback_policy = ${a.playbackPolicy}`);
    if (settings.encryption !== undefined) sets.push(sql`encryption = ${a.encryption}`);
    if (settings.maxViewers !== undefined) sets.push(sql`max_viewers = ${a.maxViewers}`);
    return this.#db.write(async () => {
      const current = await this.#mustGet(id);
      if (sets.length > 0) await this.#update(id, current.status, sql.join(sets, sql`, `));
      return this.#mustGet(id);
    });
  }

  async setContentKeyOnce(id: string, wrapped: string): Promise<string> {
    return this.#db.write(async () => {
      const current = await this.#mustGet(id);
      if (current.contentKey !== null) return current.contentKey;
      await this.#db.run(sql`UPDATE assets SET content_key = ${wrapped} WHERE id = ${id}`);
      return wrapped;
    });
  }

  /** Sets status and columns; updated_at becomes max(now, previous + 1) so it strictly increases. */
  async #update(id: string, status: AssetStatus, sets: RawBuilder<unknown>): Promise<void> {
    const updatedAt = greatest(this.#db.dialect, this.#now(), sql`updated_at + 1`);
    await this.#db.run(sql`UPDATE assets SET status = ${status}, ${sets}, updated_at = ${updatedAt} WHERE id = ${id}`);
  }

  async #mustGet(id: string): Promise<Asset> {
    const asset = await this.get(id);
    if (asset === null) throw new SmoothcastError('ASSET_NOT_FOUND', `asset ${id} not found`);
    return asset;
  }
}

/** Validated access settings with their defaults. */
function checkAccess(a: NewAssetAccess): Required<NewAssetAccess> {
  const policy = a.playbackPolicy ?? 'public';
  if (!PLAYBACK_POLICIES.includes(policy)) {
    throw new SmoothcastError('BAD_REQUEST', 'playbackPolicy is "public" or "signed"');
  }
  const encryption = a.encryption ?? 'none';
  if (!ENCRYPTIONS.includes(encryption)) {
    throw new SmoothcastError('BAD_REQUEST', 'encryption is one of "none", "aes-128", "cbcs", "cenc"');
  }
  const maxViewers = a.maxViewers ?? null;
  if (maxViewers !== null && (!Number.isInteger(maxViewers) || maxViewers < 1 || maxViewers > 10_000_000)) {
    throw new SmoothcastError('BAD_REQUEST', 'maxViewers is a whole number ≥ 1, or null for no limit');
  }
  return { ownerId: a.ownerId ?? null, playbackPolicy: policy, encryption, maxViewers };
}

function toAsset(row: Row, renditionRows: readonly Row[]): Asset {
  const code = textOrNull(row, 'error_code');
  const renditions = renditionRows.map(toRendition).sort(renditionOrder);
  return {
    id: text(row, 'id'),
    title: text(row, 'title'),
    status: text(row, 'status') as AssetStatus,
    playable: int(row, 'playable') === 1,
    progress: jsonOrNull(row, 'progress') as Progress | null,
    error: code === null ? null : { code: isErrorCode(code) ? code : 'INTERNAL', message: text(row, 'error_message') },
    duration: numOrNull(row, 'duration'),
    source: jsonOrNull(row, 'source') as SourceSummary | null,
    sourcePath: text(row, 'source_path'),
    sourceName: text(row, 'source_name'),
    rev: textOrNull(row, 'rev'),
    mediaType: textOrNull(row, 'media_type') as MediaType | null,
    notes: (jsonOrNull(row, 'notes') as string[] | null) ?? [],
    presentationOffset: numOrNull(row, 'presentation_offset'),
    renditions,
    liveStreamId: textOrNull(row, 'live_stream_id'),
    liveStartMs: numOrNull(row, 'live_start_ms'),
    holder: textOrNull(row, 'holder'),
    playbackPolicy: text(row, 'playback_policy') as PlaybackPolicy,
    encryption: text(row, 'encryption') as Encryption,
    maxViewers: numOrNull(row, 'max_viewers'),
    ownerId: textOrNull(row, 'owner_id'),
    contentKey: textOrNull(row, 'content_key'),
    createdAt: int(row, 'created_at'),
    updatedAt: int(row, 'updated_at'),
    readyAt: numOrNull(row, 'ready_at'),
  };
}

function toRendition(row: Row): Rendition {
  return {
    id: text(row, 'id'),
    type: text(row, 'type') as RenditionType,
    width: numOrNull(row, 'width'),
    height: numOrNull(row, 'height'),
    bitrate: num(row, 'bitrate'),
    codecs: textOrNull(row, 'codecs'),
    frameRate: numOrNull(row, 'frame_rate'),
    averageBitrate: numOrNull(row, 'average_bitrate'),
    peakBitrate: numOrNull(row, 'peak_bitrate'),
    language: textOrNull(row, 'language'),
    label: textOrNull(row, 'label'),
    roles: (jsonOrNull(row, 'roles') as string[] | null) ?? [],
    default: int(row, 'is_default') === 1,
  };
}

/** Video before audio, then by number: v0, v1, …, v10, a0. */
function renditionOrder(a: Rendition, b: Rendition): number {
  if (a.type !== b.type) return a.type === 'video' ? -1 : 1;
  return Number(a.id.slice(1)) - Number(b.id.slice(1));
}

function validatePlan(renditions: readonly PlannedRendition[]): PlannedRendition[] {
  if (!Array.isArray(renditions) || renditions.length === 0) {
    throw new SmoothcastError('BAD_REQUEST', 'a processing plan needs at least one rendition');
  }
  const seen = new Set<string>();
  return renditions.map((r) => {
    const m = RENDITION_ID.exec(String(r.id));
    if (m === null || (m[1] === 'v') !== (r.type === 'video') || (r.type !== 'video' && r.type !== 'audio')) {
      throw new SmoothcastError('BAD_REQUEST', `invalid rendition id/type: ${String(r.id)}/${String(r.type)}`);
    }
    if (seen.has(r.id)) throw new SmoothcastError('BAD_REQUEST', `duplicate rendition id ${r.id}`);
    seen.add(r.id);
    return {
      id: r.id,
      type: r.type,
      width: r.width == null ? null : positiveInt(r.width, 'width'),
      height: r.height == null ? null : positiveInt(r.height, 'height'),
      bitrate: positiveInt(r.bitrate, 'bitrate'),
      frameRate: r.frameRate == null ? null : finiteNonNegative(r.frameRate, 'frameRate'),
      language: r.language == null ? null : String(r.language).slice(0, 64),
      label: r.label == null ? null : String(r.label).slice(0, 200),
      roles: Array.isArray(r.roles) ? r.roles.map(String).slice(0, 8) : [],
      default: r.default === true,
    };
  });
}

function finiteNonNegative(v: number, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new SmoothcastError('BAD_REQUEST', `${name} must be a finite number ≥ 0, got ${String(v)}`);
  }
  return v;
}

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new SmoothcastError('BAD_REQUEST', `${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

function nonNegativeInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new SmoothcastError('BAD_REQUEST', `${name} must be an integer ≥ 0, got ${String(v)}`);
  }
  return v;
}
