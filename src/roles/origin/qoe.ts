// Per-session viewing quality from CMCD (CTA-5004), aggregated in memory on the request path (one Map update, no
// database query) and added to the catalog every few seconds as additive deltas (src/core/db/qoe.ts), so that any
// number of origins can serve — and record — the same session.
//
// Startup: from the session's first request (the manifest, usually) to its first object request without `su`
// after one with it (`su`: the object is needed urgently, CTA-5004 §3.3). Manifests neither start nor end it: Shaka
// sets `su` on a manifest only before the player has any state, and live players fetch manifests throughout. A
// session whose first object request has no `su` joined here mid-way (another origin, a restart): no figure.
// Stalls: requests carrying `bs` (buffer starvation since the previous request). Bitrate: over video objects only
// (ot v or av; a player that fetches audio separately sends ot=a for it), weighted by their duration `d`.
import { isValidAssetId } from '../../core/db/assets.ts';
import { mergeDeltas, QOE_RETENTION_MS, type QoeDelta, type QoeRepository } from '../../core/db/qoe.ts';
import type { Cmcd } from './cmcd.ts';

/** A CMCD session id as stored: ≤ 64 characters (CTA-5004 §3.3 `sid`) of a conservative set (UUIDs fit). */
export const CMCD_SID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Bounds of one object's figures (beyond them a request is counted, its bitrate and duration are not). */
const MAX_BR_KBPS = 1_000_000;
const MAX_D_MS = 600_000;
/** Pruning of old sessions runs from a flush at most this often. */
const PRUNE_EVERY_MS = 3600_000;

export interface QoeRecorderOptions {
  store: Pick<QoeRepository, 'record' | 'prune'>;
  /** How often what was aggregated is written (ms). */
  flushMs?: number;
  /** Sessions held in memory; over it the oldest is dropped (its unwritten figures lost, counted in `dropped`). */
  maxSessions?: number;
  /** A session not seen for this long is forgotten after its figures are written (ms). */
  idleMs?: number;
  now?: () => number;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
}

interface Session {
  assetId: string;
  sid: string;
  /** First request seen here: where startup is measured from. */
  startedAt: number;
  phase: 'before' | 'startup' | 'done';
  lastSeen: number;
  /** What was seen since the last flush (null: nothing). */
  pending: QoeDelta | null;
}

export class QoeRecorder {
  readonly #o: Required<Omit<QoeRecorderOptions, 'log'>> & Pick<QoeRecorderOptions, 'log'>;
  readonly #sessions = new Map<string, Session>();
  #timer: NodeJS.Timeout | null = null;
  #chain: Promise<void> = Promise.resolve();
  #lastPrune = Number.NEGATIVE_INFINITY;
  #closed = false;
  /** Sessions dropped because memory was full (their unwritten figures lost). */
  dropped = 0;
  /** Flushes the database refused (their figures are kept for the next one). */
  failedFlushes = 0;

  constructor(o: QoeRecorderOptions) {
    this.#o = {
      flushMs: 5000,
      maxSessions: 50_000,
      idleMs: 10 * 60_000,
      now: Date.now,
      ...o,
    };
  }

  /** Sessions in memory. */
  get size(): number {
    return this.#sessions.size;
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => void this.flush(), this.#o.flushMs);
    this.#timer.unref();
  }

  /** One request's CMCD (the hot path: validation, one Map lookup, a few additions). */
  observe(assetId: string, c: Cmcd, at = this.#o.now()): void {
    const sid = c.sid;
    if (this.#closed || sid === undefined || !CMCD_SID.test(sid) || !isValidAssetId(assetId)) return;
    const key = `${assetId}/${sid}`;
    let s = this.#sessions.get(key);
    if (!s) {
      if (this.#sessions.size >= this.#o.maxSessions) this.#dropOldest();
      s = { assetId, sid, startedAt: at, phase: 'before', lastSeen: at, pending: null };
      this.#sessions.set(key, s);
    }
    s.lastSeen = Math.max(s.lastSeen, at);
    s.pending ??= {
      assetId,
      sessionId: sid,
      firstAt: at,
      lastAt: at,
      startupMs: null,
      stalls: 0,
      videoMs: 0,
      bitrateMs: 0,
      topBitrate: 0,
      requests: 0,
    };
    const p = s.pending;
    p.requests++;
    if (at < p.firstAt) p.firstAt = at;
    if (at > p.lastAt) p.lastAt = at;
    if (c.ot !== 'm') {
      if (s.phase === 'before') s.phase = c.su ? 'startup' : 'done';
      else if (s.phase === 'startup' && !c.su) {
        s.phase = 'done';
        p.startupMs = Math.max(0, at - s.startedAt);
      }
    }
    if (c.bs) p.stalls++;
    if (c.ot === 'v' || c.ot === 'av') {
      if (c.br !== undefined && c.d !== undefined && c.br <= MAX_BR_KBPS && c.d <= MAX_D_MS) {
        p.videoMs += c.d;
        p.bitrateMs += c.br * c.d;
      }
      if (c.tb !== undefined && c.tb <= MAX_BR_KBPS && c.tb > p.topBitrate) p.topBitrate = c.tb;
    }
  }

  #dropOldest(): void {
    // A Map iterates in insertion order: the first key is the session that arrived first.
    const first = this.#sessions.keys().next();
    if (first.done) return;
    this.#sessions.delete(first.value);
    this.dropped++;
  }

  /** Writes what was aggregated (flushes run one at a time; a failed one keeps its figures for the next). */
  flush(): Promise<void> {
    this.#chain = this.#chain.then(() => this.#flushOnce());
    return this.#chain;
  }

  async #flushOnce(): Promise<void> {
    const now = this.#o.now();
    const batch: QoeDelta[] = [];
    for (const [key, s] of this.#sessions) {
      if (s.pending) {
        batch.push(s.pending);
        s.pending = null;
      } else if (now - s.lastSeen > this.#o.idleMs) {
        this.#sessions.delete(key);
      }
    }
    if (batch.length > 0) {
      try {
        await this.#o.store.record(batch);
      } catch (err) {
        this.failedFlushes++;
        this.#o.log?.('qoe flush failed', { sessions: batch.length, error: String(err) });
        this.#restore(batch);
      }
    }
    if (now - this.#lastPrune >= PRUNE_EVERY_MS) {
      this.#lastPrune = now;
      try {
        await this.#o.store.prune(now - QOE_RETENTION_MS);
      } catch (err) {
        this.#o.log?.('qoe prune failed', { error: String(err) });
      }
    }
  }

  /** Puts a batch the database refused back in front of what arrived since. */
  #restore(batch: readonly QoeDelta[]): void {
    for (const d of batch) {
      const s = this.#sessions.get(`${d.assetId}/${d.sessionId}`);
      if (!s) continue;
      s.pending = s.pending ? mergeDeltas(d, s.pending) : d;
    }
  }

  /** Stops the timer and writes what is left. */
  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#closed = true;
    await this.flush();
  }
}
