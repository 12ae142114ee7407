// Live delivery from an event's growing CMAF files, through the same URL layout as VOD (urls.ts): LL-HLS media
// playlists with blocking reload (RFC 8216bis §6.2.5), parts and segments as closed byte ranges of the files, the
// dynamic DASH MPD and the Smooth live manifest; Smooth fragments merge a segment's parts into one moof and carry
// tfxd and tfrf. A live event's rev starts with `rl-`; the same feed later gives the archive's VOD presentation, so
// segment n has the same URL and bytes live and after the event (caches keep what they hold).
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SmoothcastError } from '../../core/errors.ts';
import type { MediaReader } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { summarizeIndex } from '../../media/bmff/index.ts';
import { mergeFragments } from '../../media/bmff/merge.ts';
import { addTfrf, addTfxd } from '../../media/bmff/piff.ts';
import { asSegment, type LiveSegment, type LiveTimeline } from '../../media/live/parts.ts';
import { type LiveManifestRendition, latencyTargets, writeLiveMpd } from '../../media/manifest/dash-live.ts';
import { writeMultivariantPlaylist } from '../../media/manifest/hls.ts';
import {
  blockingDecision,
  parseBlockingRequest,
  type RenditionReport,
  renditionReport,
  writeLivePlaylist,
} from '../../media/manifest/llhls.ts';
import { smoothAudioNames, smoothBitrates } from '../../media/manifest/smooth.ts';
import { writeLiveSmoothManifest } from '../../media/manifest/smooth-live.ts';
import type { ManifestRendition, Presentation } from '../../media/types.ts';
import type { BufferPool } from '../http/buffer-pool.ts';
import { sendBytes } from '../http/send-bytes.ts';
import type { Grant } from './access.ts';
import { type LiveFeed, LiveFeeds } from './live-feed.ts';
import type { PlaybackState } from './origin.ts';
import { manifestUrls, withQuery } from './urls.ts';

export const LIVE_REV = /^rl-[0-9a-z-]{1,37}$/;

const IMMUTABLE = 'public, max-age=31536000, immutable';
/** The live ladder's segment and part durations (live-args.ts): floors for TARGETDURATION and PART-TARGET. */
const SEGMENT_SECONDS = 2;
/** How long a blocked request (playlist, preload-hinted part, next segment) is held at most. */
const HOLD_MS = 3 * SEGMENT_SECONDS * 1000;

export type LiveInfo = NonNullable<PlaybackState['live']>;

type Req = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, string> }>;

export class LiveOrigin {
  readonly feeds: LiveFeeds;
  readonly #reader: MediaReader;
  readonly #pool: BufferPool | undefined;
  /** Viewers: client addresses seen per event in the last VIEWER_WINDOW_MS. */
  readonly #seen = new Map<string, Map<string, number>>();

  constructor(reader: MediaReader, opts: { pool?: BufferPool | undefined; maxFeeds?: number } = {}) {
    this.#reader = reader;
    this.#pool = opts.pool;
    this.feeds = new LiveFeeds(reader, { maxFeeds: opts.maxFeeds ?? 64 });
  }

  /** Distinct clients that fetched this event's live media in the last 15 s. */
  viewers(assetId: string): number {
    const m = this.#seen.get(assetId);
    if (!m) return 0;
    const from = Date.now() - 15_000;
    for (const [ip, at] of m) if (at < from) m.delete(ip);
    return m.size;
  }

  #saw(assetId: string, ip: string): void {
    let m = this.#seen.get(assetId);
    if (!m) {
      m = new Map();
      this.#seen.set(assetId, m);
      if (this.#seen.size > 10_000) this.#seen.delete(this.#seen.keys().next().value!);
    }
    if (m.size < 100_000 || m.has(ip)) m.set(ip, Date.now());
  }

  /** The feed of an event's revision, brought up to date (cheap when the live role keeps poking it). */
  async feed(state: PlaybackState, rev: string): Promise<LiveFeed> {
    const feed = this.feeds.get(state.id, rev);
    feed.sync(state.renditions);
    if (state.status !== 'live') await feed.end();
    else if (performance.now() - feed.refreshedAt > 100) await feed.refresh();
    return feed;
  }

  /** The ended feeds' archive presentations: built once (they never change), like a VOD ReadyRevision. */
  readonly #archives = new WeakMap<LiveFeed, Presentation>();

  /**
   * The presentation of an event. While live it carries no segment list (the live writers take the timelines, and
   * its bitrates are the planned ones), so building it costs nothing per segment; once the event is over it is the
   * archive's, segments grouped from the parts and measured, built once.
   */
  async presentation(state: PlaybackState, rev: string): Promise<Presentation> {
    return (await this.#view(state, rev)).p;
  }

  async #view(state: PlaybackState, rev: string): Promise<{ feed: LiveFeed; p: Presentation }> {
    const feed = await this.feed(state, rev);
    const complete = feed.ended;
    const known = complete ? this.#archives.get(feed) : undefined;
    if (known) return { feed, p: known };
    const renditions: ManifestRendition[] = [];
    let duration = 0;
    for (const r of state.renditions) {
      const track = feed.track(r.id);
      const t = feed.timeline(r.id);
      if (!track || !t) continue;
      const segments = complete ? t.segments.filter((s) => s.complete).map(asSegment) : [];
      const summary = segments.length > 0 ? summarizeIndex(track, segments) : undefined;
      if (summary) duration = Math.max(duration, summary.duration);
      const planned = Math.max(r.bitrate ?? 0, 1);
      const frameRate = summary?.frameRate ?? r.frameRate ?? undefined;
      renditions.push({
        id: r.id,
        track,
        segments,
        peakBitrate: summary ? Math.max(summary.peakBitrate, 1) : planned,
        averageBitrate: summary ? Math.max(summary.averageBitrate, 1) : planned,
        ...(frameRate ? { frameRate } : {}),
        ...(track.width === undefined ? {} : { width: track.width, height: track.height }),
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
    if (renditions.length === 0) {
      throw new SmoothcastError('ASSET_NOT_PLAYABLE', `live asset ${state.id} has no media yet`);
    }
    const p: Presentation = { complete, renditions, duration, text: complete ? state.text : [] };
    if (complete) this.#archives.set(feed, p);
    return { feed, p };
  }

  /** The renditions that have a complete segment, with their timelines, for the live MPD and Smooth manifest. */
  async #listed(state: PlaybackState) {
    const { feed, p } = await this.#view(state, state.rev!);
    const timelines = new Map<string, LiveTimeline>();
    const renditions: LiveManifestRendition[] = [];
    for (const r of p.renditions) {
      const t = feed.timeline(r.id);
      if (!t?.segments.some((s) => s.complete)) continue;
      timelines.set(r.id, t);
      const { segments: _, ...rest } = r;
      renditions.push(rest);
    }
    return { p, timelines, renditions };
  }

  async multivariant(req: Req, reply: FastifyReply, state: PlaybackState, g?: Grant): Promise<string> {
    this.#saw(state.id, req.ip);
    const p = await this.presentation(state, state.rev!);
    liveHeaders(reply, g);
    reply.header('content-type', 'application/vnd.apple.mpegurl');
    return writeMultivariantPlaylist(
      p,
      withQuery(manifestUrls(state.rev!), g?.manifestQuery ?? '', g?.segmentQuery ?? ''),
    );
  }

  async mediaPlaylist(req: Req, reply: FastifyReply, state: PlaybackState, rid: string, g?: Grant): Promise<string> {
    const live = mustLive(state);
    this.#saw(state.id, req.ip);
    const directives = parseBlockingRequest(req.query);
    const feed = await this.feed(state, state.rev!);
    const t = feed.timeline(rid);
    const track = feed.track(rid);
    if (!t || !track) throw new SmoothcastError('ASSET_NOT_PLAYABLE', `rendition ${rid} has no media yet`);
    let decision = blockingDecision(directives, t);
    if (decision === 'bad-request') {
      throw new SmoothcastError('BAD_REQUEST', 'the playlist asked for is more than two segments ahead (§6.2.5.2)');
    }
    if (decision === 'wait') {
      await feed.waitUntil(() => blockingDecision(directives, t) !== 'wait', HOLD_MS);
      decision = blockingDecision(directives, t);
      if (decision === 'wait') {
        throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'the part asked for did not arrive in time (the publisher?)');
      }
    }
    const reports: RenditionReport[] = [];
    for (const other of feed.ids()) {
      if (other === rid) continue;
      const ot = feed.timeline(other);
      const rr = ot ? renditionReport(`${other}.m3u8`, ot) : undefined;
      if (rr) reports.push(rr);
    }
    const text = writeLivePlaylist({ id: rid, track }, t, liveUrls(rid, g?.segmentQuery ?? ''), {
      dvrSeconds: live.dvrWindowSeconds,
      ingestStartWallClockMs: live.startMs,
      targetDuration: SEGMENT_SECONDS,
      ...(directives.skip ? { skip: true } : {}),
      renditionReports: reports,
    });
    // About half a part is what a playlist lives; a blocking request's answer holds for its msn (edge caches may
    // collapse the many identical ones).
    reply.header(
      'cache-control',
      g?.personal
        ? 'private, no-store'
        : t.ended
          ? 'public, max-age=10'
          : directives.msn !== undefined
            ? 'public, max-age=6'
            : 'public, max-age=0',
    );
    reply.header('content-type', 'application/vnd.apple.mpegurl');
    return text;
  }

  async mpd(req: Req, reply: FastifyReply, state: PlaybackState, g?: Grant): Promise<string> {
    const live = mustLive(state);
    this.#saw(state.id, req.ip);
    const { timelines, renditions } = await this.#listed(state);
    if (renditions.length === 0) throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'no complete segment yet');
    const proto = (req.headers['x-forwarded-proto'] as string | undefined) ?? req.protocol;
    const urls = withQuery(manifestUrls(state.rev!), g?.manifestQuery ?? '', g?.segmentQuery ?? '');
    const text = writeLiveMpd(renditions, timelines, urls, {
      dvrSeconds: live.dvrWindowSeconds,
      ingestStartWallClockMs: live.startMs,
      nowMs: Date.now(),
      utcTimingUrl: `${proto}://${req.headers.host ?? 'localhost'}/v/time`,
      latency: latencyTargets(live.latency, SEGMENT_SECONDS),
    });
    liveHeaders(reply, g);
    reply.header('content-type', 'application/dash+xml');
    return text;
  }

  async smoothManifest(req: Req, reply: FastifyReply, state: PlaybackState, g?: Grant): Promise<string> {
    const live = mustLive(state);
    this.#saw(state.id, req.ip);
    const { p, timelines, renditions } = await this.#listed(state);
    const text = writeLiveSmoothManifest(renditions, timelines, liveSmoothBitrates(p), {
      dvrSeconds: live.dvrWindowSeconds,
      lookaheadCount: 1,
      ...(g?.segmentQuery ? { query: g.segmentQuery } : {}),
    });
    liveHeaders(reply, g);
    reply.header('content-type', 'text/xml; charset=utf-8');
    return text;
  }

  /**
   * `{rid}/init.mp4`, `{rid}/{msn}.m4s` (a whole segment) or `{rid}/{msn}.{part}.m4s` (one LL-HLS part): one
   * positioned read of the bytes the feed's timeline names.
   */
  async bytes(req: Req, reply: FastifyReply, feed: LiveFeed, rid: string, seg: string) {
    const m = /^(?:(init)\.mp4|(\d{1,9})\.m4s|(\d{1,9})\.(\d{1,3})\.m4s)$/.exec(seg);
    if (!m) throw new SmoothcastError('NOT_FOUND', 'no such segment');
    if (!feed.ids().includes(rid)) throw new SmoothcastError('NOT_FOUND', 'no such rendition');
    if (!feed.ended) this.#saw(feed.assetId, req.ip);
    const rev = feed.rev;
    const key = keys.rendition(feed.assetId, rev, rid);
    const contentType = () => (feed.track(rid)?.kind === 'audio' ? 'audio/mp4' : 'video/mp4');
    if (m[1]) {
      const track = feed.track(rid);
      if (!track) throw new SmoothcastError('NOT_FOUND', 'rendition not written yet');
      return sendBytes(req, reply, {
        size: track.initSize,
        etag: `"${rev}.${rid}.init.${track.initSize}"`,
        contentType: contentType(),
        cacheControl: IMMUTABLE,
        read: (o, len, into) => this.#reader.read(key, o, len, into),
      });
    }
    const msn = Number(m[2] ?? m[3]);
    const partIndex = m[4] === undefined ? undefined : Number(m[4]);
    const find = (): { offset: number; size: number } | undefined => {
      const t = feed.timeline(rid);
      const segs = t?.segments;
      if (!segs || segs.length === 0) return undefined;
      const s = segs[msn - segs[0]!.msn];
      if (!s || s.msn !== msn) return undefined;
      if (partIndex === undefined) return s.complete ? s : undefined;
      return s.parts[partIndex];
    };
    // Written already past it: a part or segment that will never exist (a preload hint that guessed wrong).
    const passed = (): boolean => {
      const lp = feed.timeline(rid)?.lastPart();
      if (!lp) return false;
      return partIndex === undefined ? lp.msn > msn : lp.msn > msn || (lp.msn === msn && lp.index >= partIndex);
    };
    let range = find();
    if (!range && !feed.ended && this.#soon(feed.timeline(rid), msn, partIndex)) {
      // A preload hint (the next part) or the segment being written: answered the moment it is complete, and with
      // 404 the moment the media has gone past it.
      await feed.waitUntil(() => find() !== undefined || passed(), HOLD_MS);
      range = find();
    }
    if (!range)
      throw new SmoothcastError(
        'NOT_FOUND',
        `segment ${msn}${partIndex === undefined ? '' : `.${partIndex}`} does not exist (yet)`,
      );
    const r = range;
    return sendBytes(req, reply, {
      size: r.size,
      etag: `"${rev}.${rid}.${seg}.${r.offset}.${r.size}"`,
      contentType: contentType(),
      cacheControl: IMMUTABLE,
      read: (o, len, into) => this.#reader.read(key, r.offset + o, len, into),
      ...(this.#pool ? { pool: this.#pool } : {}),
    });
  }

  /** Whether a missing segment/part is the next one to come (worth holding the request for). */
  #soon(t: LiveTimeline | undefined, msn: number, part: number | undefined): boolean {
    if (!t) return msn === 0 && (part ?? 0) <= 1;
    const last = t.lastPart();
    if (!last) return msn === 0;
    if (part === undefined) return msn <= last.msn + 1;
    if (msn === last.msn) return part <= last.index + 2;
    return msn === last.msn + 1 && part <= 1;
  }

  /** A Smooth fragment of a live event or its archive: the segment's parts merged into one moof, with tfxd and tfrf. */
  async smoothFragment(
    req: Req,
    reply: FastifyReply,
    state: PlaybackState,
    rev: string,
    kind: string,
    bitrate: number,
    time: number,
    infoOnly = false,
  ) {
    if (state.status === 'live') this.#saw(state.id, req.ip);
    const { feed, p } = await this.#view(state, rev);
    const bitrates = liveSmoothBitrates(p);
    const names = smoothAudioNames(p.renditions.filter((x) => x.track.kind === 'audio'));
    const want = kind === 'video' ? 'video' : 'audio';
    const r = p.renditions.find(
      (x) => x.track.kind === want && bitrates.get(x.id) === bitrate && (want === 'video' || names.get(x.id) === kind),
    );
    if (!r) throw new SmoothcastError('NOT_FOUND', `no ${want} quality level ${bitrate}`);
    const t = feed.timeline(r.id)!;
    const at = (): number => {
      const i = lowerBoundStart(t.segments, time);
      const s = t.segments[i];
      return s && s.start === time && s.complete ? i : -1;
    };
    let i = at();
    // The fragment a tfrf announced (the one being written): answered the moment it is complete.
    const last = t.segments.at(-1);
    if (i < 0 && !feed.ended && last && time >= last.start && time <= last.start + 2 * last.duration + 1) {
      await feed.waitUntil(() => at() >= 0 || (t.segments.at(-1)?.start ?? 0) > time, HOLD_MS);
      i = at();
    }
    const segs = t.segments;
    const s = segs[i];
    if (!s) throw new SmoothcastError('NOT_FOUND', `no ${want} fragment at ${time}`);
    const key = keys.rendition(state.id, rev, r.id);
    const parts: Uint8Array[] = [];
    for (const part of s.parts) {
      const b = await this.#reader.read(key, part.offset, part.size);
      if (b.length !== part.size) throw new SmoothcastError('NOT_FOUND', 'fragment shorter than its index says');
      parts.push(b);
    }
    let body = addTfxd(mergeFragments(parts, r.track), s.start, s.duration);
    const next = segs[i + 1];
    if (state.status === 'live' || next) {
      // tfrf: the next fragment. Known when it is complete; else where it will start, a nominal segment long (the
      // grid is fixed, so a client that asks for it gets it as soon as it is complete).
      const nominal = Math.round(SEGMENT_SECONDS * r.track.timescale);
      const entry = next?.complete
        ? { time: next.start, duration: next.duration }
        : { time: s.start + s.duration, duration: nominal };
      body = addTfrf(body, [entry]);
    }
    const bytes = infoOnly ? Buffer.from(body.subarray(0, moofEnd(body))) : Buffer.from(body);
    return sendBytes(req, reply, {
      size: bytes.length,
      etag: `"${rev}.${r.id}.${s.msn}.${infoOnly ? 'info' : 'piff'}.${bytes.length}"`,
      contentType: want === 'audio' ? 'audio/mp4' : 'video/mp4',
      // The tfrf of the last fragment changes when the next one completes: not immutable while live.
      cacheControl: state.status === 'live' && !next?.complete ? 'public, max-age=1' : IMMUTABLE,
      read: async (o, len) => bytes.subarray(o, o + len),
    });
  }
}

/** What the live manifests need to know of an event. */
function mustLive(state: PlaybackState): LiveInfo {
  if (!state.live) throw new SmoothcastError('NOT_FOUND', 'not a live event');
  return state.live;
}

function liveHeaders(reply: FastifyReply, g?: Grant): void {
  reply.header('cache-control', g?.personal ? 'private, no-store' : 'public, max-age=1');
}

/** Part and segment URLs relative to the media playlist (`/v/{id}/{rev}/{rid}.m3u8`). */
function liveUrls(rid: string, q = '') {
  return {
    init: () => `${rid}/init.mp4${q}`,
    segment: (msn: number) => `${rid}/${msn}.m4s${q}`,
    part: (msn: number, index: number) => `${rid}/${msn}.${index}.m4s${q}`,
  };
}

/** QualityLevels bitrates of a live event: from the planned bitrates, so they do not move while it grows. */
function liveSmoothBitrates(p: Presentation): Map<string, number> {
  const out = new Map<string, number>();
  for (const kind of ['video', 'audio'] as const) {
    for (const [id, b] of smoothBitrates(p.renditions.filter((r) => r.track.kind === kind))) out.set(id, b);
  }
  return out;
}

/** The end of the moof at the start of a merged fragment (FragmentInfo answers the moof alone). */
function moofEnd(b: Uint8Array): number {
  const size = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0);
  if (String.fromCharCode(...b.subarray(4, 8)) !== 'moof' || size > b.length) {
    throw new SmoothcastError('INTERNAL', 'a merged fragment that does not start with its moof');
  }
  return size;
}

function lowerBoundStart(segs: readonly LiveSegment[], time: number): number {
  let lo = 0;
  let hi = segs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (segs[mid]!.start < time) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
