// Who may play what, at the origin: signed playback (a JWT in the `token` query parameter, verified with public keys
// only) and viewer sessions (limits per asset or live stream, and per client address).
//
// How a token reaches every request a player makes from the manifest URL alone: manifests of a signed asset are
// written per request with the token in the query of every URL they hold that needs it (media playlists, text
// tracks, keys and licences; segments too when the asset is clear). Encrypted signed assets keep token-free
// segment URLs: their bytes are the same for every viewer and cacheable by anyone, only the key is gated.
//
// A playback session starts at a manifest request (its id is the token's `sid`, else a new random one) and lives
// while the player fetches: when limits apply, every URL in the manifests carries `sid`, and each request with it
// keeps the session alive; one idle for security.playbackSessionIdleSeconds frees its slot.
import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { PlaybackAud, PlaybackClaims, PlaybackVerifier } from '../../core/auth/playback-tokens.ts';
import { SmoothcastError } from '../../core/errors.ts';

export interface AccessPolicy {
  policy: 'public' | 'signed';
  encryption: 'none' | 'aes-128' | 'cbcs' | 'cenc';
  maxViewers: number | null;
  /** Token subjects that open this asset: its id, and its live stream's for a live event. */
  subjects: readonly string[];
  /** What viewer sessions are counted against: the live stream of an event, else the asset. */
  limitKey: string;
}

/** What a gated request was granted: the query to put on the URLs of the manifest it gets. */
export interface Grant {
  token: string | undefined;
  sid: string | undefined;
  /** `?…` for playlists, text tracks, keys and licences ('' when nothing is needed). */
  manifestQuery: string;
  /** `?…` for init and media segments ('' when they are shared by every viewer). */
  segmentQuery: string;
  /** Whether the manifest is for this viewer only (Cache-Control: private, no-store). */
  personal: boolean;
}

const SID = /^[A-Za-z0-9._~:-]{1,128}$/;

interface Session {
  key: string;
  ip: string;
  lastSeen: number;
}

export class Sessions {
  private readonly byId = new Map<string, Session>();
  private readonly idleMs: number;
  private readonly now: () => number;
  private lastSweep = 0;

  constructor(o: { idleSeconds: number; now?: () => number }) {
    this.idleMs = o.idleSeconds * 1000;
    this.now = o.now ?? Date.now;
  }

  /**
   * Admits (or keeps alive) session `sid` of `key` for `ip`: over `maxViewers` sessions of the key, or
   * `maxPerIp` sessions of the address (0: none), a new session is refused with 429.
   */
  admit(key: string, sid: string, ip: string, maxViewers: number | null, maxPerIp: number): void {
    const now = this.now();
    const s = this.byId.get(sid);
    if (s && s.key === key && now - s.lastSeen <= this.idleMs) {
      s.lastSeen = now;
      return;
    }
    this.sweep(true);
    if (maxViewers !== null && this.count(key) >= maxViewers) {
      throw new SmoothcastError(
        'VIEWER_LIMIT_REACHED',
        `this video allows ${maxViewers} viewer${maxViewers === 1 ? '' : 's'} at a time: try again in a minute`,
      );
    }
    if (maxPerIp > 0) {
      let n = 0;
      for (const x of this.byId.values()) if (x.ip === ip) n++;
      if (n >= maxPerIp) {
        throw new SmoothcastError('SESSION_LIMIT_REACHED', `this address holds ${n} playback sessions already`);
      }
    }
    this.byId.set(sid, { key, ip, lastSeen: now });
  }

  /** Sessions of `key` alive now. */
  count(key: string): number {
    this.sweep(false);
    let n = 0;
    for (const s of this.byId.values()) if (s.key === key) n++;
    return n;
  }

  private sweep(force: boolean): void {
    const now = this.now();
    if (!force && now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    for (const [id, s] of this.byId) if (now - s.lastSeen > this.idleMs) this.byId.delete(id);
  }
}

export class PlaybackAccess {
  readonly sessions: Sessions;
  private readonly verifier: PlaybackVerifier | null;
  private readonly maxPerIp: number;

  constructor(o: { verifier: PlaybackVerifier | null; sessions: Sessions; maxSessionsPerIp: number }) {
    this.verifier = o.verifier;
    this.sessions = o.sessions;
    this.maxPerIp = o.maxSessionsPerIp;
  }

  private limited(a: AccessPolicy): boolean {
    return a.maxViewers !== null || this.maxPerIp > 0;
  }

  /** The token's claims when the asset is signed (403 otherwise); null for public assets. */
  async verify(req: FastifyRequest, a: AccessPolicy, aud: PlaybackAud): Promise<PlaybackClaims | null> {
    if (a.policy !== 'signed') return null;
    if (!this.verifier) throw new SmoothcastError('PLAYBACK_TOKEN_INVALID', 'this server cannot verify tokens');
    const token = queryParam(req, 'token');
    const ip = req.ip;
    let last: unknown;
    for (const sub of a.subjects) {
      try {
        return await this.verifier.verify(token, { sub, aud, ip });
      } catch (err) {
        if ((err as SmoothcastError).code !== 'PLAYBACK_TOKEN_WRONG_ASSET') throw err;
        last = err;
      }
    }
    throw last;
  }

  /**
   * A manifest (or the first request of a session): checks the token, admits the viewer, and says what the
   * manifest's URLs must carry.
   */
  async enter(req: FastifyRequest, a: AccessPolicy, aud: PlaybackAud = 'manifest'): Promise<Grant> {
    const claims = await this.verify(req, a, aud);
    const token = claims ? queryParam(req, 'token') : undefined;
    let sid: string | undefined;
    if (this.limited(a)) {
      const asked = queryParam(req, 'sid');
      sid = claims?.sid ?? (asked && SID.test(asked) ? asked : randomBytes(12).toString('base64url'));
      this.sessions.admit(a.limitKey, sid, req.ip, a.maxViewers, this.maxPerIp);
    }
    const q = (parts: [string, string | undefined][]) => {
      const s = parts
        .filter((p): p is [string, string] => p[1] !== undefined)
        .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
        .join('&');
      return s ? `?${s}` : '';
    };
    const segmentsNeedToken = a.policy === 'signed' && a.encryption === 'none';
    return {
      token,
      sid,
      manifestQuery: q([
        ['token', token],
        ['sid', sid],
      ]),
      segmentQuery: q([
        ['token', segmentsNeedToken ? token : undefined],
        ['sid', sid],
      ]),
      personal: token !== undefined || sid !== undefined,
    };
  }

  /**
   * A segment (or any media bytes): a clear signed asset's need the token; a session-tracked one's `sid` keeps its
   * session alive (a session that expired meanwhile is admitted again, or refused when the slots are taken).
   */
  /**
   * `clearBytes`: bytes never encrypted (text, single files, downloads), which need the token even when the asset
   * is encrypted. Returns whether the response is for this viewer only (not for shared caches).
   */
  async bytes(req: FastifyRequest, a: AccessPolicy, aud: PlaybackAud, clearBytes = false): Promise<boolean> {
    const gated = a.policy === 'signed' && (a.encryption === 'none' || clearBytes || aud !== 'manifest');
    if (gated) await this.verify(req, a, aud);
    const sid = queryParam(req, 'sid');
    if (this.limited(a) && sid && SID.test(sid)) {
      this.sessions.admit(a.limitKey, sid, req.ip, a.maxViewers, this.maxPerIp);
    }
    return gated || sid !== undefined;
  }
}

export function queryParam(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' && v.length > 0 && v.length <= 4096 ? v : undefined;
}
