// The asset catalog: one row per uploaded video, its renditions, and its processing state.
// Life cycle: queued → processing → ready | failed; ready | failed → queued again only through requeue().
// processing → processing is allowed: a job retaken after a worker died starts over with a fresh rev.
// A live event is created `live` (createLive) and becomes `ready` at the stream's shutdown: its files are the VOD.

import { type ErrorCode, isErrorCode, SmoothcastError } from '../errors.ts';
import { randomBase32 } from '../ids.ts';
import { type Db, int, isConstraintError, jsonOrNull, num, numOrNull, type Row, text, textOrNull } from './database.ts';

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
  create(input: { id: string; title: string; sourcePath: string; sourceName: string } & NewAssetAccess): Asset;
  get(id: string): Asset | null;
  /** Title, playback policy, encryption, viewer limit (any status). */
  updateSettings(id: string, settings: AssetSettings): Asset;
  /** Stores the wrapped content key unless one is there already; returns the one stored. */
  setContentKeyOnce(id: string, wrapped: string): string;
  /** Newest first. */
  list(options: { limit: number; offset?: number }): Asset[];
  count(): number;
  /** queued | processing → processing: records the probe result and the plan; replaces the renditions. */
  setProcessing(id: string, input: ProcessingInput): Asset;
  setProgress(id: string, progress: Progress): Asset;
  /** processing: sets the codecs of renditions (by id); playable once every rendition has them. */
  setPlayable(id: string, codecs: Readonly<Record<string, string>>): Asset;
  /** processing → ready with the measured figures of every rendition (and notes, when given, replacing them). */
  setReady(id: string, input: ReadyInput): Asset;
  /** queued | processing → failed. */
  setFailed(id: string, error: { code: ErrorCode; message: string }): Asset;
  /** ready | failed → queued (a re-encode); the previous rev stays served until setProcessing replaces it. */
  requeue(id: string): Asset;
  /**
   * processing → queued after a transient failure that will be retried: that attempt's files are gone, so the
   * asset is not playable until the retry publishes again.
   */
  setRetrying(id: string): Asset;
  /** A new live event: status live with its planned renditions and the wall clock of its media time 0. */
  createLive(input: LiveAssetInput): Asset;
  /** live: adds renditions (an HTTP push announces its tracks as they arrive); existing ids are left as they are. */
  addLiveRenditions(id: string, renditions: readonly PlannedRendition[]): Asset;
  /** live: the bits/s a rendition announces (an HTTP push's tracks, measured from their first fragment). */
  setLiveBitrates(id: string, bitrates: Readonly<Record<string, number>>): Asset;
  /** Deletes the asset, its renditions and its jobs; false when it did not exist. */
  delete(id: string): boolean;
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

  create(input: { id: string; title: string; sourcePath: string; sourceName: string } & NewAssetAccess): Asset {
    if (!isValidAssetId(input.id)) throw new SmoothcastError('INVALID_ID', `invalid asset id: ${String(input.id)}`);
    for (const key of ['title', 'sourcePath', 'sourceName'] as const) {
      if (typeof input[key] !== 'string') throw new SmoothcastError('BAD_REQUEST', `asset ${key} must be a string`);
    }
    const a = checkAccess(input);
    const now = this.#now();
    try {
      this.#db.raw
        .prepare(
          `INSERT INTO assets (id, title, status, source_path, source_name, owner_id, playback_policy, encryption,
             max_viewers, created_at, updated_at)
           VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          input.id,
          input.title,
          input.sourcePath,
          input.sourceName,
          a.ownerId,
          a.playbackPolicy,
          a.encryption,
          a.maxViewers,
          now,
          now,
        );
    } catch (err) {
      if (isConstraintError(err)) throw new SmoothcastError('INVALID_ID', `asset ${input.id} already exists`);
      throw err;
    }
    return this.#mustGet(input.id);
  }

  get(id: string): Asset | null {
    if (!isValidAssetId(id)) return null;
    const row = this.#db.raw.prepare('SELECT * FROM assets WHERE id = ?').get(id);
    if (row === undefined) return null;
    const renditions = this.#db.raw.prepare('SELECT * FROM renditions WHERE asset_id = ?').all(id);
    return toAsset(row, renditions);
  }

  list(options: { limit: number; offset?: number }): Asset[] {
    const limit = nonNegativeInt(options.limit, 'limit');
    const offset = nonNegativeInt(options.offset ?? 0, 'offset');
    const { raw } = this.#db;
    // One read transaction so the page and its renditions come from the same snapshot.
    const own = !raw.isTransaction;
    if (own) raw.exec('BEGIN');
    try {
      const rows = raw
        .prepare('SELECT * FROM assets ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?')
        .all(limit, offset);
      const byAsset = new Map<string, Row[]>();
      if (rows.length > 0) {
        const ids = JSON.stringify(rows.map((r) => text(r, 'id')));
        for (const r of raw
          .prepare('SELECT * FROM renditions WHERE asset_id IN (SELECT value FROM json_each(?))')
          .all(ids)) {
          const list = byAsset.get(text(r, 'asset_id')) ?? [];
          list.push(r);
          byAsset.set(text(r, 'asset_id'), list);
        }
      }
      return rows.map((r) => toAsset(r, byAsset.get(text(r, 'id')) ?? []));
    } finally {
      if (own) raw.exec('COMMIT');
    }
  }

  count(): number {
    return int(this.#db.raw.prepare('SELECT count(*) AS n FROM assets').get() ?? {}, 'n');
  }

  setProcessing(id: string, input: ProcessingInput): Asset {
    if (typeof input.rev !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(input.rev) || input.rev.startsWith('.')) {
      throw new SmoothcastError('BAD_REQUEST', `invalid output revision name: ${String(input.rev)}`);
    }
    if (input.duration !== null) finiteNonNegative(input.duration, 'duration');
    const planned = validatePlan(input.renditions);
    const notes = (input.notes ?? []).map((n) => String(n).slice(0, 500)).slice(0, 50);
    if (input.presentationOffset !== undefined) finiteNonNegative(input.presentationOffset, 'presentationOffset');
    const mediaType = input.mediaType ?? (planned.some((r) => r.type === 'video') ? 'video' : 'audio');
    return this.#transition(id, 'setProcessing', () => {
      const sets = `progress = ?, playable = 0, error_code = NULL, error_message = NULL, source = ?, duration = ?,
        rev = ?, ready_at = NULL, media_type = ?, notes = ?, presentation_offset = ?`;
      const progress: Progress = { percent: 0, speed: null, etaSeconds: null };
      const params = [
        JSON.stringify(progress),
        JSON.stringify(input.source),
        input.duration,
        input.rev,
        mediaType,
        JSON.stringify(notes),
        input.presentationOffset ?? null,
      ];
      this.#update(id, 'processing', sets, params);
      this.#db.raw.prepare('DELETE FROM renditions WHERE asset_id = ?').run(id);
      this.#insertRenditions(id, planned);
    });
  }

  setProgress(id: string, progress: Progress): Asset {
    const p: Progress = {
      percent: Math.min(100, finiteNonNegative(progress.percent, 'percent')),
      speed: progress.speed === null ? null : finiteNonNegative(progress.speed, 'speed'),
      etaSeconds: progress.etaSeconds === null ? null : finiteNonNegative(progress.etaSeconds, 'etaSeconds'),
    };
    return this.#transition(id, 'setProgress', () =>
      this.#update(id, 'processing', 'progress = ?', [JSON.stringify(p)]),
    );
  }

  setPlayable(id: string, codecs: Readonly<Record<string, string>>): Asset {
    return this.#transition(id, 'setPlayable', (asset) => {
      const raw = this.#db.raw;
      const update = raw.prepare('UPDATE renditions SET codecs = ? WHERE asset_id = ? AND id = ?');
      for (const [renditionId, codec] of Object.entries(codecs)) {
        if (typeof codec !== 'string' || codec === '') {
          throw new SmoothcastError('BAD_REQUEST', `rendition ${renditionId}: codecs must be a non-empty string`);
        }
        if (update.run(codec, id, renditionId).changes !== 1) {
          throw new SmoothcastError('BAD_REQUEST', `asset ${id} has no rendition ${renditionId}`);
        }
      }
      const missing = raw.prepare('SELECT count(*) AS n FROM renditions WHERE asset_id = ? AND codecs IS NULL').get(id);
      const playable = int(missing ?? {}, 'n') === 0 ? 1 : 0;
      this.#update(id, asset.status, 'playable = ?', [playable]);
    });
  }

  setReady(id: string, input: ReadyInput): Asset {
    finiteNonNegative(input.duration, 'duration');
    return this.#transition(id, 'setReady', (asset) => {
      const planned = new Set(asset.renditions.map((r) => r.id));
      const given = new Set(input.renditions.map((r) => r.id));
      if (planned.size === 0 || given.size !== input.renditions.length || planned.size !== given.size) {
        throw new SmoothcastError('BAD_REQUEST', `asset ${id}: final figures must cover each rendition exactly once`);
      }
      const update = this.#db.raw.prepare(
        `UPDATE renditions SET codecs = ?, average_bitrate = ?, peak_bitrate = ?,
           frame_rate = coalesce(?, frame_rate), width = coalesce(?, width), height = coalesce(?, height)
         WHERE asset_id = ? AND id = ?`,
      );
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
        update.run(r.codecs, Math.round(avg), Math.round(peak), fps, w, h, id, r.id);
      }
      const notes = input.notes ? JSON.stringify(input.notes.map((n) => String(n).slice(0, 500)).slice(0, 50)) : null;
      const sets = 'playable = 1, progress = NULL, duration = ?, ready_at = ?, notes = coalesce(?, notes)';
      this.#update(id, 'ready', sets, [input.duration, this.#now(), notes]);
    });
  }

  setFailed(id: string, error: { code: ErrorCode; message: string }): Asset {
    const code = isErrorCode(error.code) ? error.code : 'INTERNAL';
    const message = typeof error.message === 'string' ? error.message : String(error.message);
    return this.#transition(id, 'setFailed', () =>
      this.#update(id, 'failed', 'playable = 0, progress = NULL, error_code = ?, error_message = ?', [code, message]),
    );
  }

  requeue(id: string): Asset {
    return this.#transition(id, 'requeue', () =>
      this.#update(id, 'queued', 'progress = NULL, error_code = NULL, error_message = NULL', []),
    );
  }

  setRetrying(id: string): Asset {
    return this.#transition(id, 'setRetrying', () => this.#update(id, 'queued', 'progress = NULL, playable = 0', []));
  }

  createLive(input: LiveAssetInput): Asset {
    if (!isValidAssetId(input.id)) throw new SmoothcastError('INVALID_ID', `invalid asset id: ${String(input.id)}`);
    if (!/^rl-[0-9a-z-]{1,37}$/.test(input.rev))
      throw new SmoothcastError('BAD_REQUEST', `invalid live rev ${input.rev}`);
    // An HTTP push announces its tracks as they arrive: a live asset may start with none.
    const planned = input.renditions.length === 0 ? [] : validatePlan(input.renditions);
    const now = this.#now();
    const mediaType = planned.some((r) => r.type === 'video') ? 'video' : 'audio';
    const access = checkAccess(input.access ?? {});
    this.#db.write(() => {
      this.#db.raw
        .prepare(
          `INSERT INTO assets (id, title, status, source_path, source_name, rev, source, media_type, notes,
             presentation_offset, live_stream_id, live_start_ms, owner_id, playback_policy, encryption, max_viewers,
             created_at, updated_at)
           VALUES (?, ?, 'live', '', 'live', ?, ?, ?, '[]', 0, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          input.id,
          input.title,
          input.rev,
          JSON.stringify(input.source),
          mediaType,
          input.liveStreamId,
          Math.round(finiteNonNegative(input.liveStartMs, 'liveStartMs')),
          access.ownerId,
          access.playbackPolicy,
          access.encryption,
          access.maxViewers,
          now,
          now,
        );
      this.#insertRenditions(input.id, planned);
    });
    return this.#mustGet(input.id);
  }

  addLiveRenditions(id: string, renditions: readonly PlannedRendition[]): Asset {
    const planned = validatePlan(renditions);
    return this.#db.write(() => {
      const current = this.#mustGet(id);
      if (current.status !== 'live') throw new IllegalTransitionError(id, current.status, 'addLiveRenditions');
      const have = new Set(current.renditions.map((r) => r.id));
      this.#insertRenditions(
        id,
        planned.filter((r) => !have.has(r.id)),
      );
      this.#update(id, 'live', 'playable = playable', []);
      return this.#mustGet(id);
    });
  }

  setLiveBitrates(id: string, bitrates: Readonly<Record<string, number>>): Asset {
    return this.#db.write(() => {
      const current = this.#mustGet(id);
      if (current.status !== 'live') throw new IllegalTransitionError(id, current.status, 'setLiveBitrates');
      const update = this.#db.raw.prepare('UPDATE renditions SET bitrate = ? WHERE asset_id = ? AND id = ?');
      for (const [rid, bps] of Object.entries(bitrates)) update.run(positiveInt(Math.round(bps), 'bitrate'), id, rid);
      this.#update(id, 'live', 'playable = playable', []);
      return this.#mustGet(id);
    });
  }

  #insertRenditions(id: string, planned: readonly PlannedRendition[]): void {
    const insert = this.#db.raw.prepare(
      `INSERT INTO renditions (asset_id, id, type, width, height, bitrate, frame_rate, language, label, roles,
         is_default) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const r of planned) {
      insert.run(
        id,
        r.id,
        r.type,
        r.width ?? null,
        r.height ?? null,
        r.bitrate,
        r.frameRate ?? null,
        r.language ?? null,
        r.label ?? null,
        JSON.stringify(r.roles ?? []),
        r.default ? 1 : 0,
      );
    }
  }

  delete(id: string): boolean {
    if (!isValidAssetId(id)) return false;
    return this.#db.raw.prepare('DELETE FROM assets WHERE id = ?').run(id).changes === 1;
  }

  /** Runs change() under the write lock after checking the current status allows `action`; returns the result. */
  #transition(id: string, action: Action, change: (current: Asset) => void): Asset {
    const after = this.#db.write(() => {
      const current = this.get(id);
      if (current === null) throw new SmoothcastError('ASSET_NOT_FOUND', `asset ${id} not found`);
      if (!ALLOWED_FROM[action].includes(current.status)) throw new IllegalTransitionError(id, current.status, action);
      change(current);
      return this.#mustGet(id);
    });
    if (action === 'setReady' || action === 'setFailed') {
      try {
        this.onSettled?.(after);
      } catch {
        // a listener's failure is not the catalog's
      }
    }
    return after;
  }

  /** Called (after the commit) when an asset becomes ready or failed in this process: webhooks. */
  onSettled: ((a: Asset) => void) | undefined;

  /** Sets status and columns; updated_at becomes max(now, previous + 1) so it strictly increases. */
  updateSettings(id: string, settings: AssetSettings): Asset {
    const sets: string[] = [];
    const params: (string | number | null)[] = [];
    if (settings.title !== undefined) {
      if (typeof settings.title !== 'string' || !settings.title.trim() || settings.title.length > 500) {
        throw new SmoothcastError('BAD_REQUEST', 'title must be a string of 1–500 characters');
      }
      sets.push('title = ?');
      params.push(settings.title.trim());
    }
    const a = checkAccess(settings);
    const set = (column: string, v: string | number | null) => {
      sets.push(`${column} = ?`);
      params.push(v);
    };
    if (settings.playbackPolicy !== undefined) set('playback_policy', a.playbackPolicy);
    if (settings.encryption !== undefined) set('encryption', a.encryption);
    if (settings.maxViewers !== undefined) set('max_viewers', a.maxViewers);
    return this.#db.write(() => {
      const current = this.#mustGet(id);
      if (sets.length > 0) this.#update(id, current.status, sets.join(', '), params);
      return this.#mustGet(id);
    });
  }

  setContentKeyOnce(id: string, wrapped: string): string {
    return this.#db.write(() => {
      const current = this.#mustGet(id);
      if (current.contentKey !== null) return current.contentKey;
      this.#db.raw.prepare('UPDATE assets SET content_key = ? WHERE id = ?').run(wrapped, id);
      return wrapped;
    });
  }

  #update(id: string, status: AssetStatus, sets: string, params: (string | number | null)[]): void {
    this.#db.raw
      .prepare(`UPDATE assets SET status = ?, ${sets}, updated_at = max(?, updated_at + 1) WHERE id = ?`)
      .run(status, ...params, this.#now(), id);
  }

  #mustGet(id: string): Asset {
    const asset = this.get(id);
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
