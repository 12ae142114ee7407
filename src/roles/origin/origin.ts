// The origin: HLS and DASH manifests built from the rendition indexes, and virtual segments cut from the single
// CMAF file of each rendition by one positioned read. It keeps no state two origins could disagree about: everything
// comes from the catalog and the files; the index cache only saves work.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { PlaybackAud } from '../../core/auth/playback-tokens.ts';
import { SmoothcastError } from '../../core/errors.ts';
import type { MediaReader } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { addTfxd } from '../../media/bmff/piff.ts';
import { mapRange } from '../../media/bmff/single-file.ts';
import { writeMpd } from '../../media/manifest/dash.ts';
import { writeMediaPlaylist, writeMultivariantPlaylist, writeTextPlaylist } from '../../media/manifest/hls.ts';
import { writeSmoothManifest } from '../../media/manifest/smooth.ts';
import type { ManifestRendition, Presentation, TextRendition, UrlScheme } from '../../media/types.ts';
import { BufferPool } from '../http/buffer-pool.ts';
import { sendBytes } from '../http/send-bytes.ts';
import { type AccessPolicy, type Grant, type PlaybackAccess, queryParam } from './access.ts';
import { type Cmcd, hasCmcd, parseCmcdRequest } from './cmcd.ts';
import type { OnTheFly } from './encryption.ts';
import { IndexCache, type RenditionIndex } from './index-cache.ts';
import { LIVE_REV, LiveOrigin } from './live-origin.ts';
import { ReadyRevision } from './ready-revision.ts';
import { TextTracks } from './text-tracks.ts';
import {
  ASSET_ID,
  byteRangeUrls,
  CAPTION_ID,
  manifestUrls,
  RENDITION_ID,
  REV,
  singleFileUrl,
  singleTextUrls,
  withEncryption,
  withQuery,
} from './urls.ts';

/** What the origin needs to know of an asset (each consumer declares its own narrow view). */
export interface PlaybackState {
  id: string;
  status: 'queued' | 'processing' | 'ready' | 'failed' | 'live';
  playable: boolean;
  rev: string | null;
  segmentDuration: number;
  renditions: readonly {
    id: string;
    type: 'video' | 'audio';
    /** Planned bits/s (live manifests announce it while the event grows). */
    bitrate?: number;
    frameRate?: number | null;
    language?: string | null;
    label?: string | null;
    roles?: readonly string[];
    default?: boolean;
  }[];
  /** Text tracks of the asset (published with the complete presentation). */
  text: readonly TextRendition[];
  /** Seconds at which the source's t = 0 is presented in this rev (text cues are shifted by it). */
  presentationOffset: number;
  /** A live event (its rev starts with `rl-`): set while live and after, for its archive. */
  live?: { startMs: number; dvrWindowSeconds: number; latency: 'low' | 'standard' } | null;
  /** Who may play it and how it is encrypted (absent: public, clear, no limit). */
  access?: AccessPolicy;
}

export interface OriginCatalog {
  playbackState(assetId: string): Promise<PlaybackState | null>;
}

export interface OriginOptions {
  catalog: OriginCatalog;
  reader: MediaReader;
  /** Told of every index cache lookup (metrics). */
  onIndexLookup?: (hit: boolean) => void;
  indexCacheEntries: number;
  manifestMaxAge: number;
  corsOrigin: string;
  /** Progressive downloads: bit-rate throttling (off unless given). */
  throttle?: { burstSeconds: number; rateFactor: number } | undefined;
  /** Bytes of segment read buffers kept for reuse; 0 allocates per request. */
  bufferPoolBytes?: number;
  /** Signed playback and viewer sessions (absent: everything public and unlimited). */
  access?: PlaybackAccess;
  /** Encryption on the fly (absent: assets are served clear). */
  encryption?: OnTheFly;
  /** Absolute base of the licence URLs in MPDs (server.publicUrl; empty: the request's own origin). */
  publicUrl?: string;
  /** Told of the CMCD (CTA-5004) of every playback request answered (absent: CMCD is not read). */
  qoe?: { observe(assetId: string, c: Cmcd, at: number): void };
}

const PUBLIC_ACCESS: AccessPolicy = {
  policy: 'public',
  encryption: 'none',
  maxViewers: null,
  subjects: [],
  limitKey: '',
};
/** How long the origin trusts what it read of an asset's access (a change made elsewhere applies within it). */
const ACCESS_TTL_MS = 2000;
const PERSONAL = 'private, no-store';
const PRIVATE_IMMUTABLE = 'private, max-age=31536000, immutable';

const IMMUTABLE = 'public, max-age=31536000, immutable';
/** Smooth Streaming fragments (with their tfxd) kept in memory, bytes. */
const SMOOTH_CACHE_BYTES = 64 * 2 ** 20;

export class Origin {
  readonly cache: IndexCache;
  readonly text: TextTracks;
  readonly live: LiveOrigin;
  private readonly opts: OriginOptions;
  private readonly pool: BufferPool | undefined;

  constructor(opts: OriginOptions) {
    this.opts = opts;
    this.pool = opts.bufferPoolBytes
      ? new BufferPool({ maxIdleBytes: opts.bufferPoolBytes, maxBuffer: 16 << 20 })
      : undefined;
    this.cache = new IndexCache(opts.reader, {
      maxEntries: opts.indexCacheEntries,
      ...(opts.onIndexLookup ? { onLookup: opts.onIndexLookup } : {}),
    });
    this.text = new TextTracks(opts.reader, { maxEntries: opts.indexCacheEntries });
    this.live = new LiveOrigin(opts.reader, { pool: this.pool });
  }

  /** Drops what is cached of an asset (after delete or re-encode). */
  evict(assetId: string): void {
    this.accessCache.delete(assetId);
    this.opts.encryption?.evict(assetId);
    this.cache.evictPrefix(`${keys.assetPrefix(assetId)}/`);
    this.text.evict(assetId);
    this.live.feeds.evict(assetId);
    for (const k of this.revisions.keys()) if (k.startsWith(`${assetId}/`)) this.revisions.delete(k);
  }

  register(app: FastifyInstance): void {
    const cors = (reply: FastifyReply) => {
      reply.header('access-control-allow-origin', this.opts.corsOrigin);
      reply.header('access-control-expose-headers', 'content-length, content-range, etag, accept-ranges');
    };
    app.options('/v/*', (_req, reply) => {
      cors(reply);
      reply.header('access-control-allow-methods', 'GET, HEAD, POST, OPTIONS');
      // Players on other origins preflight the CMCD headers they send (CTA-5004 §2.1).
      reply.header(
        'access-control-allow-headers',
        'range, if-none-match, if-range, content-type, cmcd-request, cmcd-object, cmcd-status, cmcd-session',
      );
      reply.header('access-control-max-age', '86400');
      return reply.code(204).send();
    });
    app.addHook('onRequest', async (req, reply) => {
      if (req.url.startsWith('/v/')) cors(reply);
    });
    // Viewing quality: the CMCD of every playback GET answered in full (the asset existed, the player did not
    // abort the download), counted in memory.
    const qoe = this.opts.qoe;
    if (qoe) {
      app.addHook('onResponse', async (req, reply) => {
        if (req.method !== 'GET' || !req.url.startsWith('/v/') || reply.statusCode >= 400) return;
        if (!reply.raw.writableFinished) return;
        if (!hasCmcd(req.headers, req.url)) return;
        const c = parseCmcdRequest(req.headers, req.url);
        if (c) qoe.observe(/^\/v\/([^/?]*)/.exec(req.url)![1]!, c, Math.round(Date.now() - reply.elapsedTime));
      });
    }

    // The UTCTiming source of the live MPDs (urn:mpeg:dash:utc:http-iso:2014).
    app.get('/v/time', async (_req, reply) => {
      reply.header('cache-control', 'no-store');
      reply.header('content-type', 'text/plain; charset=utf-8');
      return new Date().toISOString();
    });

    app.get<{ Params: { id: string } }>('/v/:id/master.m3u8', async (req, reply) => {
      const live = await this.liveState(req.params.id);
      if (live) {
        const g = await this.enter(req, live);
        return this.live.multivariant(req as never, reply, live, g);
      }
      const { state, p } = await this.presentation(req.params.id);
      const g = await this.enter(req, state);
      const text = writeMultivariantPlaylist(p, this.urls(manifestUrls(state.rev ?? ''), g));
      return this.sendManifest(reply, text, 'application/vnd.apple.mpegurl', p.complete, g);
    });

    // Keys: the HLS AES-128 key of a revision, and a W3C ClearKey licence (cenc/cbcs), gated by aud "key".
    app.get<{ Params: { id: string; rev: string } }>('/v/:id/:rev/key.bin', async (req, reply) => {
      const { id, rev, state } = await this.encrypted(req.params.id, req.params.rev);
      await this.opts.access?.verify(req, state.access!, 'key');
      reply.header('cache-control', PERSONAL);
      reply.header('content-type', 'application/octet-stream');
      return reply.send((await this.opts.encryption!.key(id, rev)).key);
    });
    // The CDM's licence message comes as the body, with whatever Content-Type the player sets (hls.js and Shaka
    // set none): read as text whatever it says, 16 KiB at most.
    app.register(async (scope) => {
      scope.removeAllContentTypeParsers();
      scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 16384 }, (_req, body, done) => done(null, body));
      scope.post<{ Params: { id: string; rev: string } }>('/v/:id/:rev/clearkey', async (req, reply) => {
        const { id, rev, state } = await this.encrypted(req.params.id, req.params.rev);
        await this.opts.access?.verify(req, state.access!, 'key');
        const body = typeof req.body === 'string' ? safeJson(req.body) : req.body;
        reply.header('cache-control', PERSONAL);
        return this.opts.encryption!.clearKeyLicense(id, rev, body);
      });
    });

    app.get<{ Params: { id: string } }>('/v/:id/manifest.mpd', async (req, reply) => {
      const live = await this.liveState(req.params.id);
      if (live) {
        const g = await this.enter(req, live);
        return this.live.mpd(req as never, reply, live, g);
      }
      const { state, p } = await this.presentation(req.params.id);
      if (!p.complete) {
        throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'the DASH manifest is published when encoding completes');
      }
      const g = await this.enter(req, state);
      const rev = state.rev ?? '';
      const enc = state.access?.encryption ?? 'none';
      const text = writeMpd(p, this.urls(manifestUrls(rev), g, enc), await this.protection(req, state, rev, g));
      return this.sendManifest(reply, text, 'application/dash+xml', true, g);
    });

    // Byte-range addressing of the same files (complete assets): HLS EXT-X-BYTERANGE and DASH SegmentBase.
    app.get<{ Params: { id: string } }>('/v/:id/byterange.m3u8', async (req, reply) => {
      const { rev, ready, state } = await this.ready(req.params.id);
      clearOnly(state.access?.encryption);
      const g = await this.enter(req, state);
      const text = writeMultivariantPlaylist({ ...ready.p, text: state.text }, this.urls(byteRangeUrls(rev), g));
      return this.sendManifest(reply, text, 'application/vnd.apple.mpegurl', true, g);
    });

    app.get<{ Params: { id: string } }>('/v/:id/ondemand.mpd', async (req, reply) => {
      const { rev, ready, state } = await this.ready(req.params.id);
      clearOnly(state.access?.encryption);
      const g = await this.enter(req, state);
      const text = writeMpd({ ...ready.p, text: state.text }, this.urls(manifestUrls(rev), g), {
        segmentBase: { uri: (r) => `${singleFileUrl(rev, r)}${g.segmentQuery}`, layout: (r) => ready.layout(r) },
      });
      return this.sendManifest(reply, text, 'application/dash+xml', true, g);
    });

    app.get<{ Params: { id: string } }>('/v/:id/poster.jpg', async (req, reply) => {
      const id = checkId(req.params.id);
      const personal = await this.gateBytes(req, id, 'thumbnail');
      const key = keys.poster(id);
      const st = await this.opts.reader.stat(key);
      if (!st) throw new SmoothcastError('NOT_FOUND', 'no poster for this asset (yet)');
      return sendBytes(req, reply, {
        size: st.size,
        etag: `"${id}.poster.${st.size}.${Math.floor(st.mtimeMs)}"`,
        contentType: 'image/jpeg',
        cacheControl: personal ? PERSONAL : `public, max-age=${this.opts.manifestMaxAge}`,
        read: (o, n, into) => this.opts.reader.read(key, o, n, into),
      });
    });

    app.get<{ Params: { id: string; rev: string; file: string } }>('/v/:id/:rev/:file', async (req, reply) => {
      const caption = /^(c[a-z2-7]{12})(\.vtt|\.m3u8|-br\.m3u8)$/.exec(req.params.file);
      if (caption) return this.textFile(req, reply, caption[1]!, caption[2]!);
      const ism = /^(r[0-9a-z-]{1,40})\.ism$/.exec(req.params.rev);
      if (ism && req.params.file === 'Manifest') {
        const live = await this.liveState(req.params.id, ism[1]);
        if (live) {
          clearOnly(live.access?.encryption);
          const g = await this.enter(req, live);
          return this.live.smoothManifest(req as never, reply, live, g);
        }
        const { ready, state } = await this.ready(req.params.id, ism[1]);
        clearOnly(state.access?.encryption);
        const g = await this.enter(req, state);
        const text = writeSmoothManifest(ready.p, ready.smoothBitrates, g.segmentQuery);
        return this.sendManifest(reply, text, 'text/xml; charset=utf-8', true, g);
      }
      const single = /^([va][0-9]{1,2})\.mp4$/.exec(req.params.file);
      if (single) return this.singleFile(req, reply, single[1]!);
      const download = /^download-(v[0-9]{1,2}\.mp4|a[0-9]{1,2}\.m4a)$/.exec(req.params.file);
      if (download) return this.download(req, reply, download[1]!.slice(0, -4));
      if (/^thumbs(\.vtt|-\d{3}\.jpg)$/.test(req.params.file)) return this.thumbnailFile(req, reply);
      const br = /^([va][0-9]{1,2})-br\.m3u8$/.exec(req.params.file);
      if (br) {
        const { rev, ready, state } = await this.ready(req.params.id, req.params.rev);
        clearOnly(state.access?.encryption);
        const g = await this.enter(req, state);
        const r = ready.rendition(br[1]!);
        // The playlist sits next to the single file: its URI is just the file name.
        const text = writeMediaPlaylist(r, ready.p, manifestUrls(rev), {
          byteRange: { uri: `${r.id}.mp4${g.segmentQuery}`, layout: ready.layout(r) },
        });
        return this.sendManifest(reply, text, 'application/vnd.apple.mpegurl', true, g);
      }
      const m = /^([va][0-9]{1,2})\.m3u8$/.exec(req.params.file);
      if (!m) throw new SmoothcastError('NOT_FOUND', 'no such playlist');
      const live = await this.liveState(req.params.id, req.params.rev);
      if (live) {
        const g = await this.enter(req, live);
        return this.live.mediaPlaylist(req as never, reply, live, m[1]!, g);
      }
      const { state, p } = await this.presentation(req.params.id, req.params.rev);
      const r = p.renditions.find((x) => x.id === m[1]);
      if (!r) throw new SmoothcastError('NOT_FOUND', `no rendition ${m[1]}`);
      const g = await this.enter(req, state);
      const rev = state.rev ?? '';
      const enc = state.access?.encryption ?? 'none';
      const text = writeMediaPlaylist(r, p, this.urls(manifestUrls(rev), g, enc), {
        targetDuration: state.segmentDuration,
        ...(enc !== 'none' && this.opts.encryption
          ? { keyLine: await this.opts.encryption.hlsKeyLine(enc, state.id, rev, `key.bin${g.manifestQuery}`) }
          : {}),
      });
      return this.sendManifest(reply, text, 'application/vnd.apple.mpegurl', p.complete, g);
    });

    app.get<{ Params: { id: string; rev: string; rid: string; seg: string } }>(
      '/v/:id/:rev/:rid/:seg',
      async (req, reply) => {
        const ism = /^(r[0-9a-z-]{1,40})\.ism$/.exec(req.params.rev);
        if (ism && LIVE_REV.test(ism[1]!)) return this.liveSmoothFragment(req, reply, ism[1]!);
        if (ism) return this.smoothFragment(req, reply, ism[1]!);
        if (CAPTION_ID.test(req.params.rid)) return this.textSegment(req, reply);
        if (LIVE_REV.test(req.params.rev)) {
          const { id, rev, rid, seg } = req.params;
          if (!RENDITION_ID.test(rid)) throw new SmoothcastError('NOT_FOUND', 'no such rendition');
          // An archive's feed never changes: like a VOD segment from a final index, no catalog query.
          const known = this.live.feeds.peek(checkId(id), rev);
          await this.gateBytes(req, id, 'manifest');
          const feed = known?.ended ? known : await this.live.feed(await this.eventState(id, rev), rev);
          return this.live.bytes(req as never, reply, feed, rid, seg);
        }
        return this.segment(req, reply);
      },
    );
  }

  /** What was read of an asset's access lately (a catalog query at most every ACCESS_TTL_MS per asset). */
  private readonly accessCache = new Map<string, { a: AccessPolicy; at: number }>();

  private async accessOf(id: string): Promise<AccessPolicy> {
    if (!this.opts.access && !this.opts.encryption) return PUBLIC_ACCESS;
    const hit = this.accessCache.get(id);
    const now = Date.now();
    if (hit && now - hit.at < ACCESS_TTL_MS) return hit.a;
    const a = (await this.opts.catalog.playbackState(id))?.access ?? PUBLIC_ACCESS;
    if (this.accessCache.size > 100_000) this.accessCache.clear();
    this.accessCache.set(id, { a, at: now });
    return a;
  }

  /** A manifest request: token checked, session admitted; what its URLs must carry. */
  private async enter(req: FastifyRequest, state: PlaybackState): Promise<Grant> {
    const a = state.access ?? PUBLIC_ACCESS;
    this.accessCache.set(state.id, { a, at: Date.now() });
    if (!this.opts.access)
      return { token: undefined, sid: undefined, manifestQuery: '', segmentQuery: '', personal: false };
    return this.opts.access.enter(req, a);
  }

  /**
   * Media bytes: a signed asset's token (aud `aud`) where its bytes need one, the viewer session kept alive.
   * `clear`: bytes that are never encrypted (text, single files, downloads) always need the token when signed.
   * Returns whether the response is for this viewer only (not for shared caches).
   */
  private async gateBytes(
    req: FastifyRequest,
    id: string,
    aud: PlaybackAud,
    known?: AccessPolicy,
    clear = false,
  ): Promise<boolean> {
    if (!this.opts.access) return false;
    const a = known ?? (await this.accessOf(id));
    if (a.policy === 'public' && a.maxViewers === null && !queryParam(req, 'sid')) return false;
    return this.opts.access.bytes(req, a, aud, clear);
  }

  /** The URL scheme of a manifest written for a grant (token / session in the query where needed). */
  private urls(u: UrlScheme, g: Grant, enc: AccessPolicy['encryption'] = 'none'): UrlScheme {
    return withQuery(enc === 'none' ? u : withEncryption(u, enc), g.manifestQuery, g.segmentQuery);
  }

  /** The MPD options of an encrypted asset: ContentProtection with ClearKey (and DRM-ready systems). */
  private async protection(
    req: FastifyRequest,
    state: PlaybackState,
    rev: string,
    g: Grant,
  ): Promise<{ contentProtection?: string[] }> {
    const enc = state.access?.encryption ?? 'none';
    if ((enc !== 'cenc' && enc !== 'cbcs') || !this.opts.encryption) return {};
    // Absolute: Shaka and dash.js use a Laurl as written, not resolved against the MPD's URL.
    const base = this.opts.publicUrl || `${req.protocol}://${req.host}`;
    const laurl = `${base}/v/${state.id}/${rev}/clearkey${g.manifestQuery}`;
    return { contentProtection: await this.opts.encryption.contentProtection(enc, state.id, rev, laurl) };
  }

  /** An encrypted asset's current revision (keys are given only for it). */
  private async encrypted(rawId: string, rev: string) {
    const id = checkId(rawId);
    if (!REV.test(rev)) throw new SmoothcastError('NOT_FOUND', 'no such revision');
    const state = await this.opts.catalog.playbackState(id);
    if (!state || state.rev !== rev || !state.playable) throw new SmoothcastError('KEY_NOT_FOUND', 'no such key');
    if (!this.opts.encryption || (state.access?.encryption ?? 'none') === 'none') {
      throw new SmoothcastError('KEY_NOT_FOUND', 'this asset is not encrypted');
    }
    return { id, rev, state: { ...state, access: state.access! } };
  }

  /** Segment hot path: a cached final index answers with no catalog query and one positioned read. */
  private async segment(
    req: FastifyRequest<{ Params: { id: string; rev: string; rid: string; seg: string } }>,
    reply: FastifyReply,
  ) {
    const { id, rev, rid, seg } = req.params;
    checkId(id);
    if (!REV.test(rev) || !RENDITION_ID.test(rid)) throw new SmoothcastError('NOT_FOUND', 'no such rendition');
    const m = SEGMENT_FILE.exec(seg);
    if (!m) throw new SmoothcastError('NOT_FOUND', 'no such segment');
    const key = keys.rendition(id, rev, rid);
    const n = m[2] === undefined ? -1 : Number(m[2]);
    const a = await this.accessOf(id);
    // The URL names the encryption (`3.cenc.m4s`), so one URL always holds the same bytes: a clear URL of an
    // encrypted asset (or the other way round) is not served, and caches never mix the two.
    if (encryptionOfFile(m[3]) !== a.encryption) {
      throw new SmoothcastError(
        'NOT_FOUND',
        `this media is served ${a.encryption === 'none' ? 'clear' : a.encryption}`,
      );
    }
    const personal = await this.gateBytes(req, id, 'manifest', a);
    let ix: RenditionIndex | undefined = this.cache.peek(key);
    if (!ix?.track || n >= ix.segments.length) {
      const state = await this.opts.catalog.playbackState(id);
      if (!state || state.rev !== rev || !state.renditions.some((r) => r.id === rid)) {
        throw new SmoothcastError('NOT_FOUND', 'no such rendition');
      }
      ix = await this.cache.get(key, state.status === 'ready');
    }
    const track = ix.track;
    if (!track) throw new SmoothcastError('NOT_FOUND', 'rendition not written yet');
    const audio = track.kind === 'audio';
    const cacheControl = personal ? PRIVATE_IMMUTABLE : IMMUTABLE;
    const enc = a.encryption;
    const otf = this.opts.encryption;
    if (enc !== 'none' && otf) {
      // Encrypted on the fly from the clear bytes: the same bytes for every viewer, so one ETag and shared caches.
      const clearInit = () => this.opts.reader.read(key, 0, track.initSize);
      let body: Buffer;
      if (n < 0) body = await otf.init(enc, id, rev, rid, clearInit);
      else {
        const s = ix.segments[n];
        if (!s) throw new SmoothcastError('NOT_FOUND', `segment ${n} does not exist (yet)`);
        body = await otf.segment(enc, id, rev, rid, n, () => this.opts.reader.read(key, s.offset, s.size), clearInit);
      }
      return sendBytes(req, reply, {
        size: body.length,
        etag: `"${rev}.${rid}.${n < 0 ? 'init' : n}.${enc}.${body.length}"`,
        contentType: audio ? 'audio/mp4' : 'video/mp4',
        cacheControl,
        read: async (o, len) => body.subarray(o, o + len),
      });
    }
    if (n < 0) {
      return sendBytes(req, reply, {
        size: track.initSize,
        etag: `"${rev}.${rid}.init.${track.initSize}"`,
        contentType: audio ? 'audio/mp4' : 'video/mp4',
        cacheControl,
        read: (o, len, into) => this.opts.reader.read(key, o, len, into),
      });
    }
    const s = ix.segments[n];
    if (!s) throw new SmoothcastError('NOT_FOUND', `segment ${n} does not exist (yet)`);
    return sendBytes(req, reply, {
      size: s.size,
      etag: `"${rev}.${rid}.${n}.${s.offset}.${s.size}"`,
      contentType: audio ? 'audio/mp4' : 'video/mp4',
      cacheControl,
      read: (o, len, into) => this.opts.reader.read(key, s.offset + o, len, into),
      ...(this.pool ? { pool: this.pool } : {}),
    });
  }

  /** A text track's playlist, or its whole WebVTT file (presentation timeline). */
  private async textFile(
    req: FastifyRequest<{ Params: { id: string; rev: string; file: string } }>,
    reply: FastifyReply,
    cid: string,
    kind: string,
  ) {
    const { id, rev, ready, state } = await this.ready(req.params.id, req.params.rev);
    const t = state.text.find((x) => x.id === cid);
    if (!t) throw new SmoothcastError('CAPTION_NOT_FOUND', `no text track ${cid}`);
    const g = await this.enter(req, state);
    if (kind !== '.vtt') {
      const p = { ...ready.p, text: state.text };
      const single = kind === '-br.m3u8';
      const text = writeTextPlaylist(t, p, this.urls(single ? singleTextUrls(rev) : manifestUrls(rev), g), {
        segmentDuration: state.segmentDuration,
        single,
      });
      return this.sendManifest(reply, text, 'application/vnd.apple.mpegurl', true, g);
    }
    const track = await this.text.get(id, rev, cid, state.presentationOffset);
    return sendBytes(req, reply, {
      size: track.whole.length,
      etag: `"${rev}.${cid}.${track.whole.length}"`,
      contentType: 'text/vtt; charset=utf-8',
      cacheControl: g.personal ? PRIVATE_IMMUTABLE : IMMUTABLE,
      read: async (o, n) => track.whole.subarray(o, o + n),
    });
  }

  /** Segment n of a text track: the cues overlapping its window, with X-TIMESTAMP-MAP (RFC 8216bis §3.1.4). */
  private async textSegment(
    req: FastifyRequest<{ Params: { id: string; rev: string; rid: string; seg: string } }>,
    reply: FastifyReply,
  ) {
    const m = /^(\d{1,6})\.vtt$/.exec(req.params.seg);
    if (!m) throw new SmoothcastError('NOT_FOUND', 'no such text segment');
    const { id, rev, rid } = req.params;
    const personal = await this.gateBytes(req, checkId(id), 'manifest', undefined, true);
    const body = await this.text.segment(checkId(id), rev, rid, Number(m[1]), () => this.ready(id, rev));
    return sendBytes(req, reply, {
      size: body.length,
      etag: `"${rev}.${rid}.${m[1]}.${body.length}"`,
      contentType: 'text/vtt; charset=utf-8',
      cacheControl: personal ? PRIVATE_IMMUTABLE : IMMUTABLE,
      read: async (o, n) => body.subarray(o, o + n),
    });
  }

  /** Ready revisions by `${id}/${rev}` (bounded, LRU). */
  private readonly revisions = new Map<string, ReadyRevision>();

  /**
   * The ready revision of an asset for a manifest: the catalog is asked each time (a deleted or re-encoded asset
   * stops being described at once); what is derived from the revision is built once.
   */
  private async ready(
    rawId: string,
    rev?: string,
  ): Promise<{ id: string; rev: string; ready: ReadyRevision; state: PlaybackState }> {
    const id = checkId(rawId);
    if (rev !== undefined && !REV.test(rev)) throw new SmoothcastError('NOT_FOUND', 'no such revision');
    const state = await this.opts.catalog.playbackState(id);
    if (!state) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${id}`);
    if (state.status !== 'ready' || !state.rev) {
      throw new SmoothcastError('ASSET_NOT_PLAYABLE', `asset ${id} is ${state.status}; this is published when ready`);
    }
    if (rev !== undefined && rev !== state.rev) throw new SmoothcastError('NOT_FOUND', 'no such revision');
    const key = `${id}/${state.rev}`;
    let ready = this.revisions.get(key);
    if (ready) {
      this.revisions.delete(key);
    } else {
      ready = new ReadyRevision(
        LIVE_REV.test(state.rev)
          ? await this.live.presentation(state, state.rev)
          : await readPresentation(this.cache, id, state.rev, state),
      );
      if (this.revisions.size >= this.opts.indexCacheEntries)
        this.revisions.delete(this.revisions.keys().next().value!);
    }
    this.revisions.set(key, ready);
    return { id, rev: state.rev, ready, state };
  }

  /**
   * The ready revision for a byte response: from memory when known (no catalog query — as for segments, bytes of
   * a deleted asset then end in 404 at the read), else as for a manifest.
   */
  private async readyBytes(rawId: string, rev: string): Promise<{ id: string; rev: string; ready: ReadyRevision }> {
    const known = this.revisions.get(`${rawId}/${rev}`);
    return known ? { id: rawId, rev, ready: known } : this.ready(rawId, rev);
  }

  /** The asset when it is a live event still live (and `rev`, when given, is its rev); else null. */
  private async liveState(rawId: string, rev?: string): Promise<PlaybackState | null> {
    const id = checkId(rawId);
    const state = await this.opts.catalog.playbackState(id);
    if (state?.status !== 'live') return null;
    if (!state.playable || !state.rev) {
      throw new SmoothcastError('ASSET_NOT_PLAYABLE', `live asset ${id} has no media yet`);
    }
    if (rev !== undefined && rev !== state.rev) throw new SmoothcastError('NOT_FOUND', 'no such revision');
    return state;
  }

  /** A live event or its archive by rev (segments, parts, fragments). */
  private async eventState(rawId: string, rev: string): Promise<PlaybackState> {
    const id = checkId(rawId);
    const state = await this.opts.catalog.playbackState(id);
    if (!state || state.rev !== rev || (state.status !== 'live' && state.status !== 'ready')) {
      throw new SmoothcastError('NOT_FOUND', 'no such revision');
    }
    return state;
  }

  private async liveSmoothFragment(
    req: FastifyRequest<{ Params: { id: string; rev: string; rid: string; seg: string } }>,
    reply: FastifyReply,
    rev: string,
  ) {
    const q = /^QualityLevels\((\d{1,10})\)$/.exec(req.params.rid);
    // FragmentInfo: the fragment's moof alone ([MS-SSTR] §2.2.7: what a client asks to learn of later fragments).
    const f = /^(Fragments|FragmentInfo)\((video|audio(?:_a\d{1,2})?)=(\d{1,20})\)$/.exec(req.params.seg);
    if (!q || !f) throw new SmoothcastError('NOT_FOUND', 'not a Smooth Streaming fragment URL');
    const state = await this.eventState(req.params.id, rev);
    const info = f[1] === 'FragmentInfo';
    return this.live.smoothFragment(req as never, reply, state, rev, f[2]!, Number(q[1]), Number(f[3]), info);
  }

  /** Fragments with a tfxd added, recently served ones kept (bounded); never stored as files. */
  private readonly smoothCache = new Map<string, Buffer>();
  private smoothCacheBytes = 0;

  /** `QualityLevels({bitrate})/Fragments({type}={time})`: the fragment at that time, with its tfxd. */
  private async smoothFragment(
    req: FastifyRequest<{ Params: { id: string; rev: string; rid: string; seg: string } }>,
    reply: FastifyReply,
    rev: string,
  ) {
    const q = /^QualityLevels\((\d{1,10})\)$/.exec(req.params.rid);
    const f = /^Fragments\((video|audio(?:_a\d{1,2})?)=(\d{1,20})\)$/.exec(req.params.seg);
    if (!q || !f) throw new SmoothcastError('NOT_FOUND', 'not a Smooth Streaming fragment URL');
    const access = await this.accessOf(checkId(req.params.id));
    clearOnly(access.encryption);
    const personal = await this.gateBytes(req, req.params.id, 'manifest', access, true);
    const { ready } = await this.readyBytes(req.params.id, rev);
    const { r, n } = ready.smoothFragment(f[1]!, Number(q[1]), Number(f[2]));
    const s = r.segments[n]!;
    const cacheKey = `${req.params.id}/${rev}/${r.id}/${n}`;
    let body = this.smoothCache.get(cacheKey);
    if (body) {
      this.smoothCache.delete(cacheKey);
      this.smoothCache.set(cacheKey, body);
    } else {
      const raw = await this.opts.reader.read(keys.rendition(req.params.id, rev, r.id), s.offset, s.size);
      if (raw.length !== s.size) throw new SmoothcastError('NOT_FOUND', 'fragment shorter than its index says');
      body = Buffer.from(addTfxd(raw, s.start, s.duration));
      this.smoothCache.set(cacheKey, body);
      this.smoothCacheBytes += body.length;
      for (const [k, v] of this.smoothCache) {
        if (this.smoothCacheBytes <= SMOOTH_CACHE_BYTES) break;
        this.smoothCache.delete(k);
        this.smoothCacheBytes -= v.length;
      }
    }
    const bytes = body;
    return sendBytes(req, reply, {
      size: bytes.length,
      etag: `"${rev}.${r.id}.${n}.piff.${bytes.length}"`,
      contentType: r.track.kind === 'audio' ? 'audio/mp4' : 'video/mp4',
      cacheControl: personal ? PRIVATE_IMMUTABLE : IMMUTABLE,
      read: async (o, len) => bytes.subarray(o, o + len),
    });
  }

  /** The thumbnail track or one of its sprite sheets (immutable: both belong to one encode revision). */
  private async thumbnailFile(
    req: FastifyRequest<{ Params: { id: string; rev: string; file: string } }>,
    reply: FastifyReply,
  ) {
    const personal = await this.gateBytes(req, checkId(req.params.id), 'thumbnail');
    const { id, rev, ready } = await this.readyBytes(req.params.id, req.params.rev);
    const file = req.params.file;
    const key = keys.thumbnails(id, rev, file);
    const size = await ready.size(this.opts.reader, key);
    return sendBytes(req, reply, {
      size,
      etag: `"${rev}.${file}.${size}"`,
      contentType: file.endsWith('.vtt') ? 'text/vtt; charset=utf-8' : 'image/jpeg',
      cacheControl: personal ? PRIVATE_IMMUTABLE : IMMUTABLE,
      read: (o, n) => this.opts.reader.read(key, o, n),
    });
  }

  /** A progressive download: a plain MP4 with Range support, throttled when configured. */
  private async download(
    req: FastifyRequest<{ Params: { id: string; rev: string; file: string } }>,
    reply: FastifyReply,
    rid: string,
  ) {
    const access = await this.accessOf(checkId(req.params.id));
    clearOnly(access.encryption);
    const personal = await this.gateBytes(req, req.params.id, 'download', access, true);
    const { id, rev, ready } = await this.readyBytes(req.params.id, req.params.rev);
    const key = keys.download(id, rev, rid);
    const size = await ready.size(this.opts.reader, key);
    const t = this.opts.throttle;
    const bytesPerSecondOfMedia = ready.p.duration > 0 ? size / ready.p.duration : 0;
    return sendBytes(req, reply, {
      size,
      etag: `"${rev}.${rid}.download.${size}"`,
      contentType: rid.startsWith('a') ? 'audio/mp4' : 'video/mp4',
      cacheControl: personal ? PRIVATE_IMMUTABLE : IMMUTABLE,
      ...(this.pool ? { pool: this.pool } : {}),
      ...(t && bytesPerSecondOfMedia > 0
        ? {
            pace: {
              burstBytes: t.burstSeconds * bytesPerSecondOfMedia,
              bytesPerSecond: t.rateFactor * bytesPerSecondOfMedia,
            },
          }
        : {}),
      read: (o, n, into) => this.opts.reader.read(key, o, n, into),
    });
  }

  /** GET/HEAD of a rendition's single file: ranges inside the fragments are one positioned read of the stored file. */
  private async singleFile(
    req: FastifyRequest<{ Params: { id: string; rev: string; file: string } }>,
    reply: FastifyReply,
    rid: string,
  ) {
    const access = await this.accessOf(checkId(req.params.id));
    clearOnly(access.encryption);
    const personal = await this.gateBytes(req, req.params.id, 'manifest', access, true);
    const { id, rev, ready } = await this.readyBytes(req.params.id, req.params.rev);
    const r = ready.rendition(rid);
    const layout = ready.layout(r);
    const key = keys.rendition(id, rev, rid);
    return sendBytes(req, reply, {
      size: layout.size,
      etag: `"${rev}.${rid}.single.${layout.size}"`,
      contentType: r.track.kind === 'audio' ? 'audio/mp4' : 'video/mp4',
      cacheControl: personal ? PRIVATE_IMMUTABLE : IMMUTABLE,
      ...(this.pool ? { pool: this.pool } : {}),
      read: async (offset, length, into) => {
        const parts = mapRange(layout, offset, length);
        const only = parts[0];
        if (parts.length === 1 && only?.from === 'stored')
          return this.opts.reader.read(key, only.offset, only.length, into);
        const out = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
        let at = 0;
        for (const part of parts) {
          if (part.from === 'sidx') {
            out.set(layout.sidx.subarray(part.start, part.end), at);
            at += part.end - part.start;
          } else {
            const got = await this.opts.reader.read(key, part.offset, part.length, out.subarray(at));
            at += got.length;
            if (got.length < part.length) break;
          }
        }
        return out.subarray(0, at);
      },
    });
  }

  private async presentation(rawId: string, rev?: string): Promise<{ state: PlaybackState; p: Presentation }> {
    const id = checkId(rawId);
    const state = await this.opts.catalog.playbackState(id);
    if (!state) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${id}`);
    if (!state.playable || !state.rev) {
      throw new SmoothcastError('ASSET_NOT_PLAYABLE', `asset ${id} is ${state.status} and not playable yet`);
    }
    if (rev !== undefined && rev !== state.rev) throw new SmoothcastError('NOT_FOUND', 'no such revision');
    // A live event's archive: segments grouped from its parts (the same numbers as while it was live).
    if (LIVE_REV.test(state.rev)) return { state, p: await this.live.presentation(state, state.rev) };
    return { state, p: await readPresentation(this.cache, id, state.rev, state) };
  }

  private sendManifest(reply: FastifyReply, text: string, type: string, complete: boolean, g?: Grant) {
    // A growing playlist may change every segment: cache it for about half a segment (DESIGN.md). One written for
    // a viewer (with their token or session in its URLs) must never be served to another: private, no-store.
    reply.header(
      'cache-control',
      g?.personal ? PERSONAL : complete ? `public, max-age=${this.opts.manifestMaxAge}` : 'public, max-age=1',
    );
    reply.header('content-type', type);
    return reply.send(text);
  }
}

/** Paths that serve the clear stored bytes (single files, byte-range manifests, downloads, Smooth) are refused
 * for an encrypted asset: its media leaves the origin only encrypted. */
function clearOnly(enc: AccessPolicy['encryption'] = 'none'): void {
  if (enc !== 'none') {
    throw new SmoothcastError(
      'ENCRYPTION_UNSUPPORTED',
      `this asset is encrypted (${enc}): it plays through its HLS (master.m3u8) and DASH (manifest.mpd) manifests only`,
    );
  }
}

/** `init.mp4`, `3.m4s`; encrypted: `init.cenc.mp4`, `3.aes.m4s`, `3.cbcs.m4s`… */
const SEGMENT_FILE = /^(?:(init)|(\d{1,9}))(?:\.(aes|cenc|cbcs))?\.(?:mp4|m4s)$/;

function encryptionOfFile(tag: string | undefined): AccessPolicy['encryption'] {
  return tag === undefined ? 'none' : tag === 'aes' ? 'aes-128' : (tag as 'cenc' | 'cbcs');
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    throw new SmoothcastError('BAD_REQUEST', 'the licence request is not JSON');
  }
}

function checkId(id: string): string {
  if (!ASSET_ID.test(id)) throw new SmoothcastError('INVALID_ID', `invalid asset id ${JSON.stringify(id)}`);
  return id;
}

/**
 * The presentation of an asset's revision from its rendition files (through the index cache): complete when the
 * asset is ready. Shared by the origin and `smoothcast export`.
 */
export async function readPresentation(
  cache: IndexCache,
  id: string,
  rev: string,
  state: Pick<PlaybackState, 'status' | 'renditions'> & Partial<Pick<PlaybackState, 'text'>>,
): Promise<Presentation> {
  const complete = state.status === 'ready';
  const renditions: ManifestRendition[] = [];
  let duration = 0;
  for (const r of state.renditions) {
    const ix = await cache.get(keys.rendition(id, rev, r.id), complete);
    const summary = ix.summary();
    if (!ix.track || !summary) {
      throw new SmoothcastError('ASSET_NOT_PLAYABLE', `rendition ${r.id} has no segment yet`);
    }
    duration = Math.max(duration, summary.duration);
    renditions.push({
      id: r.id,
      track: ix.track,
      segments: ix.segments,
      peakBitrate: summary.peakBitrate,
      averageBitrate: summary.averageBitrate,
      ...(summary.frameRate === undefined ? {} : { frameRate: summary.frameRate }),
      ...(ix.track.width === undefined ? {} : { width: ix.track.width, height: ix.track.height }),
      ...(r.type === 'audio'
        ? {
            language: r.language ?? 'und',
            ...(r.label ? { label: r.label } : {}),
            roles: r.roles ?? [],
            default: r.default ?? false,
          }
        : {}),
    });
  }
  return { complete, renditions, duration, text: complete ? (state.text ?? []) : [] };
}
