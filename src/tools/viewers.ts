// Virtual viewers: a load generator that plays HLS the way a player does, so the origin sees player-shaped
// traffic (manifest, media playlist, init, then segments at real-time pace), not a flood of identical requests.
//
// Each viewer, started at an even offset within `startSpreadSeconds`:
//   1. fetches the multivariant playlist (a media playlist URL is played as it is) and picks a variant: `top`
//      (highest BANDWIDTH), `bottom`, `random`, or `all-rungs` (viewer i takes rung i mod n, so every rung is
//      exercised); with the variant's default audio rendition (AUDIO group) played beside it as a second track;
//   2. per track: the media playlist, the init segment (EXT-X-MAP, again when it changes), then segments;
//   3. VOD: after a startup burst of `startupSegments` (2: a player filling its buffer), segment k is requested
//      once the media duration of segments 0…k−startupSegments has played since the first segment arrived; a
//      segment that arrives after its playout time is a stall (the play clock then waits for it, as a player
//      rebuffering). At the end of the playlist it loops to the start while time remains;
//   4. live (no EXT-X-ENDLIST): starts with the newest `startupSegments` segments, then reloads the playlist every
//      target duration (half of it when nothing changed, RFC 8216 §6.3.4) — or every half PART-TARGET for LL-HLS
//      playlists — and fetches each new complete segment as it appears. Plain polling: no blocking reloads
//      (_HLS_msn), no parts, no delta updates; an LL player's part requests add up to the same bytes. The age of
//      every live playlist seen (wall clock minus the end of its newest segment or part, from
//      EXT-X-PROGRAM-DATE-TIME) is reported when the playlist dates its media.
//
// Every request has its own timeout (to the last byte). The run ends at `durationSeconds` after the start (viewers
// that started late play less) or when `signal` aborts; requests in flight then are abandoned and not counted.
// A failed segment is skipped (counted by kind: `http 404`, `network ECONNRESET`, `timeout`, `invalid`), a failed
// playlist retried after a second.
//
// The query of the given URL (playback tokens) is carried to every same-origin URL that lacks the parameter.
// Connections are kept alive (one pool, `maxSockets` connections at most; default two per viewer). Memory stays
// bounded whatever the run: latencies go into fixed-bucket log histograms (1 % precision), not per-request lists.
//
// A load generator must not be pointed at other people's servers by accident: only loopback addresses are
// contacted (every host name resolution is checked, redirects and absolute URIs in playlists included) unless
// `allowRemote` is set.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { SmoothcastError } from '../core/errors.ts';

export type ViewerPick = 'top' | 'bottom' | 'random' | 'all-rungs';
export type RequestKind = 'multivariant' | 'playlist' | 'init' | 'segment';

export interface ViewersOptions {
  /** An HLS multivariant (or media) playlist URL, query included. */
  url: string;
  /** Viewers, 1…5000. */
  count: number;
  /** Length of the run, 1…3600 s. */
  durationSeconds: number;
  /** Default 'top'. */
  pick?: ViewerPick;
  /** Viewers start evenly over this many seconds; default min(5, durationSeconds / 4). */
  startSpreadSeconds?: number;
  /** Per request, to the last byte; default 10 000. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Contact hosts other than loopback ones. */
  allowRemote?: boolean;
  /** Play the variant's default audio rendition too (when it has an AUDIO group); default true. */
  audio?: boolean;
  /** Segments fetched at once before pacing starts; default 2. */
  startupSegments?: number;
  /** Connections at most; default 2 × count. */
  maxSockets?: number;
  /** Called once a second while the run lasts. */
  onProgress?: (p: ViewersProgress) => void;
  /** Called after every completed request (tests, custom statistics). */
  onRequest?: (r: RequestRecord) => void;
}

export interface RequestRecord {
  kind: RequestKind;
  url: string;
  /** HTTP status of the last answer (0: none). */
  status: number;
  /** Body bytes received. */
  bytes: number;
  ms: number;
  /** The error kind when it failed. */
  error?: string;
}

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface ViewersProgress {
  elapsedSeconds: number;
  /** Viewers started and not finished. */
  active: number;
  requests: number;
  errors: number;
  segments: number;
  bytes: number;
  /** Throughput over the last second. */
  mbps: number;
  segmentLatencyMs: Percentiles;
}

export interface ViewersReport {
  url: string;
  viewers: number;
  pick: ViewerPick;
  elapsedSeconds: number;
  /** Some media playlist seen had no EXT-X-ENDLIST. */
  live: boolean;
  /** Viewers per picked variant ("1280x720 3200k", "audio 128k", "media playlist"). */
  renditions: Record<string, number>;
  requests: { total: number } & Record<RequestKind, number>;
  errors: { total: number; byKind: Record<string, number> };
  /** Media segments fetched (init segments not included). */
  segments: number;
  /** Body bytes of completed requests; `media`: of init and media segments answered with success. */
  bytes: { total: number; media: number };
  /** Over the whole run, all bytes. */
  throughputMbps: number;
  /** Time to last byte of media segments (init included), ms. */
  segmentLatencyMs: Percentiles;
  playlistLatencyMs: Percentiles;
  /** VOD segments that arrived after their playout time. */
  stalls: number;
  /** Live: how far behind the wall clock each playlist's newest media was when it arrived (s); null: not dated. */
  playlistAgeSeconds: Percentiles | null;
}

// ---------------------------------------------------------------------------------------------------------------
// A fixed-bucket log histogram: bucket i holds [MIN·G^i, MIN·G^(i+1)); any value is within 1 % of its bucket.

const H_MIN = 0.01;
const H_GROWTH = 1.01;
const H_LOG = Math.log(H_GROWTH);
const H_BUCKETS = Math.ceil(Math.log(1e9 / H_MIN) / H_LOG) + 1;

export class LogHistogram {
  private readonly counts = new Float64Array(H_BUCKETS);
  count = 0;
  sum = 0;
  max = 0;

  record(v: number): void {
    const x = Number.isFinite(v) && v > 0 ? v : 0;
    const i = x <= H_MIN ? 0 : Math.min(H_BUCKETS - 1, Math.floor(Math.log(x / H_MIN) / H_LOG));
    this.counts[i]!++;
    this.count++;
    this.sum += x;
    if (x > this.max) this.max = x;
  }

  /** The value at quantile q (0…1): its bucket's geometric middle, never above the largest value seen. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < H_BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(this.max, i === 0 ? H_MIN : H_MIN * H_GROWTH ** (i + 0.5));
    }
    return this.max;
  }

  percentiles(scale = 1): Percentiles {
    const r = (v: number) => Math.round((v / scale) * 1000) / 1000;
    return {
      count: this.count,
      p50: r(this.quantile(0.5)),
      p90: r(this.quantile(0.9)),
      p99: r(this.quantile(0.99)),
      max: r(this.max),
      mean: r(this.count ? this.sum / this.count : 0),
    };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Playlists (RFC 8216): only what playing needs.

export interface ByteRange {
  offset: number;
  length: number;
}

export interface Variant {
  uri: string;
  bandwidth: number;
  resolution: string | null;
  audio: string | null;
}

export interface MediaRef {
  group: string;
  uri: string;
  default: boolean;
}

export interface Multivariant {
  variants: Variant[];
  audio: MediaRef[];
}

export interface MediaSegment {
  uri: string;
  duration: number;
  msn: number;
  range: ByteRange | null;
  map: { uri: string; range: ByteRange | null } | null;
}

export interface MediaPlaylist {
  targetDuration: number;
  partTarget: number | null;
  ended: boolean;
  segments: MediaSegment[];
  /** Wall clock (ms) of the end of the newest segment or part; null without EXT-X-PROGRAM-DATE-TIME. */
  edgeWallClockMs: number | null;
}

/** An attribute list (§4.2): `A=1,B="x,y"` → { A: '1', B: 'x,y' }. */
export function parseAttributes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const re = /([A-Z0-9-]+)=("[^"]*"|[^,]*)/g;
  for (const m of text.matchAll(re)) {
    const v = m[2]!;
    out[m[1]!] = v.startsWith('"') ? v.slice(1, -1) : v;
  }
  return out;
}

function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

function tag(line: string, name: string): string | null {
  return line.startsWith(`${name}:`) ? line.slice(name.length + 1) : null;
}

export function isMultivariant(text: string): boolean {
  return /^#EXT-X-STREAM-INF:/m.test(text);
}

export function parseMultivariant(text: string): Multivariant {
  const ls = lines(text);
  if (ls[0] !== '#EXTM3U') throw new SmoothcastError('BAD_REQUEST', 'not an HLS playlist (no #EXTM3U)');
  const variants: Variant[] = [];
  const audio: MediaRef[] = [];
  for (let i = 0; i < ls.length; i++) {
    const l = ls[i]!;
    const inf = tag(l, '#EXT-X-STREAM-INF');
    if (inf !== null) {
      const a = parseAttributes(inf);
      const uri = ls[i + 1];
      if (uri && !uri.startsWith('#')) {
        variants.push({
          uri,
          bandwidth: Number(a.BANDWIDTH) || 0,
          resolution: a.RESOLUTION ?? null,
          audio: a.AUDIO ?? null,
        });
        i++;
      }
      continue;
    }
    const media = tag(l, '#EXT-X-MEDIA');
    if (media !== null) {
      const a = parseAttributes(media);
      if (a.TYPE === 'AUDIO' && a.URI && a['GROUP-ID']) {
        audio.push({ group: a['GROUP-ID'], uri: a.URI, default: a.DEFAULT === 'YES' });
      }
    }
  }
  if (variants.length === 0) throw new SmoothcastError('BAD_REQUEST', 'the multivariant playlist lists no variant');
  return { variants, audio };
}

/** `n[@o]` (§4.3.2.2); without an offset the range follows the previous one of the same URI. */
function byteRange(spec: string, previousEnd: number): ByteRange {
  const [n, o] = spec.split('@');
  const length = Number(n);
  const offset = o === undefined ? previousEnd : Number(o);
  if (!Number.isSafeInteger(length) || !Number.isSafeInteger(offset) || length <= 0 || offset < 0) {
    throw new SmoothcastError('BAD_REQUEST', `bad byte range ${spec}`);
  }
  return { offset, length };
}

export function parseMediaPlaylist(text: string): MediaPlaylist {
  const ls = lines(text);
  if (ls[0] !== '#EXTM3U') throw new SmoothcastError('BAD_REQUEST', 'not an HLS playlist (no #EXTM3U)');
  let targetDuration = 0;
  let partTarget: number | null = null;
  let ended = false;
  let msn = 0;
  let map: MediaSegment['map'] = null;
  let duration: number | null = null;
  let rangeSpec: string | null = null;
  let wall: number | null = null;
  let pendingParts = 0;
  const rangeEnds = new Map<string, number>();
  const segments: MediaSegment[] = [];
  for (const l of ls) {
    if (!l.startsWith('#')) {
      if (duration === null) continue;
      const range = rangeSpec === null ? null : byteRange(rangeSpec, rangeEnds.get(l) ?? 0);
      segments.push({ uri: l, duration, msn, range, map });
      if (range) rangeEnds.set(l, range.offset + range.length);
      if (wall !== null) wall += duration * 1000;
      msn++;
      duration = null;
      rangeSpec = null;
      pendingParts = 0;
      continue;
    }
    const colon = l.indexOf(':');
    const name = colon < 0 ? l : l.slice(0, colon);
    const v = colon < 0 ? '' : l.slice(colon + 1);
    switch (name) {
      case '#EXTINF':
        duration = Number.parseFloat(v) || 0;
        break;
      case '#EXT-X-BYTERANGE':
        rangeSpec = v;
        break;
      case '#EXT-X-TARGETDURATION':
        targetDuration = Number(v) || 0;
        break;
      case '#EXT-X-MEDIA-SEQUENCE':
        msn = Number(v) || 0;
        break;
      case '#EXT-X-PART-INF':
        partTarget = Number(parseAttributes(v)['PART-TARGET']) || null;
        break;
      case '#EXT-X-PROGRAM-DATE-TIME': {
        const t = Date.parse(v);
        wall = Number.isFinite(t) ? t : null;
        break;
      }
      case '#EXT-X-PART':
        pendingParts += Number(parseAttributes(v).DURATION) || 0;
        break;
      case '#EXT-X-MAP': {
        const a = parseAttributes(v);
        if (a.URI) map = { uri: a.URI, range: a.BYTERANGE ? byteRange(a.BYTERANGE, 0) : null };
        break;
      }
      case '#EXT-X-ENDLIST':
        ended = true;
        break;
    }
  }
  return {
    targetDuration,
    partTarget,
    ended,
    segments,
    edgeWallClockMs: wall === null ? null : wall + pendingParts * 1000,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP: one keep-alive pool, loopback-only unless allowed, a timeout per request.

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

export function isLoopbackAddress(ip: string): boolean {
  const family = isIP(ip);
  return family !== 0 && LOOPBACK.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

function hostOf(u: URL): string {
  return u.hostname.replace(/^\[|\]$/g, '');
}

/** Resolves the URL's host and throws unless every address is a loopback one. */
export async function assertLoopback(u: URL): Promise<void> {
  const host = hostOf(u);
  const addresses = isIP(host)
    ? [host]
    : await new Promise<string[]>((resolve, reject) =>
        dnsLookup(host, { all: true }, (err, list) => (err ? reject(err) : resolve(list.map((a) => a.address)))),
      ).catch((err: Error) => {
        throw new SmoothcastError('BAD_REQUEST', `cannot resolve ${host}: ${err.message}`);
      });
  const remote = addresses.filter((a) => !isLoopbackAddress(a));
  if (addresses.length === 0 || remote.length > 0) {
    throw new SmoothcastError(
      'BAD_REQUEST',
      `${host} is not a loopback address (${remote.join(', ') || 'no address'}): the viewers tool only loads ` +
        'servers on this machine unless told otherwise (allowRemote, --allow-remote)',
    );
  }
}

/** dns.lookup that refuses non-loopback answers: checked on every connection, not just the first URL. */
const loopbackLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, list: LookupAddress[]) => {
    if (err) return callback(err, '', 0);
    const ok = list.filter((a) => isLoopbackAddress(a.address));
    if (ok.length !== list.length || ok.length === 0) {
      const e = Object.assign(new Error(`${hostname} is not a loopback address`), { code: 'EREMOTE' });
      return callback(e, '', 0);
    }
    if (options.all) (callback as unknown as (e: null, l: LookupAddress[]) => void)(null, ok);
    else callback(null, ok[0]!.address, ok[0]!.family);
  });
};

class Timeout extends Error {}

interface Answer {
  status: number;
  location: string | undefined;
  bytes: number;
  body: string | null;
}

const MAX_PLAYLIST_BYTES = 16 * 2 ** 20;
const RETRY_MS = 1000;

class Http {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;
  private readonly allowRemote: boolean;
  private readonly timeoutMs: number;
  private readonly stop: AbortSignal;

  constructor(o: { maxSockets: number; allowRemote: boolean; timeoutMs: number; stop: AbortSignal }) {
    const agent = { keepAlive: true, maxSockets: o.maxSockets, maxFreeSockets: o.maxSockets };
    this.http = new HttpAgent(agent);
    this.https = new HttpsAgent(agent);
    this.allowRemote = o.allowRemote;
    this.timeoutMs = o.timeoutMs;
    this.stop = o.stop;
  }

  close(): void {
    this.http.destroy();
    this.https.destroy();
  }

  /** One exchange, to the last byte; rejects on network errors, Timeout, or the run's end. */
  private once(u: URL, range: ByteRange | null, text: boolean): Promise<Answer> {
    return new Promise((resolve, reject) => {
      if (this.stop.aborted) return reject(this.stop.reason);
      const host = hostOf(u);
      if (!this.allowRemote && isIP(host) && !isLoopbackAddress(host)) {
        return reject(Object.assign(new Error(`${host} is not a loopback address`), { code: 'EREMOTE' }));
      }
      const https = u.protocol === 'https:';
      const headers: Record<string, string> = { 'user-agent': 'smoothcast-viewers/1', accept: '*/*' };
      if (range) headers.range = `bytes=${range.offset}-${range.offset + range.length - 1}`;
      let settled = false;
      const req = (https ? httpsRequest : httpRequest)(u, {
        agent: https ? this.https : this.http,
        headers,
        ...(this.allowRemote ? {} : { lookup: loopbackLookup }),
      });
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        cleanup();
        req.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Timeout()), this.timeoutMs);
      const onStop = () => fail(this.stop.reason);
      this.stop.addEventListener('abort', onStop, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        this.stop.removeEventListener('abort', onStop);
      };
      req.on('error', (err) => fail(Object.assign(err, { reused: req.reusedSocket })));
      req.on('response', (res: IncomingMessage) => {
        const status = res.statusCode ?? 0;
        const keep = text && status >= 200 && status < 300;
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (keep) {
            if (bytes > MAX_PLAYLIST_BYTES)
              return fail(Object.assign(new Error('playlist too large'), { invalid: true }));
            chunks.push(c);
          }
        });
        res.on('error', fail);
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('response cut short'), { code: 'ECONNRESET' }));
        });
        res.on('end', () => {
          if (settled) return;
          settled = true;
          cleanup();
          const location = res.headers.location;
          resolve({ status, location, bytes, body: keep ? Buffer.concat(chunks).toString('utf8') : null });
        });
      });
      req.end();
    });
  }

  /**
   * GET with redirects followed (5 at most) and one silent retry when a kept-alive connection turns out to have
   * been closed by the server as it was reused (the race every keep-alive client has).
   */
  async get(u: URL, range: ByteRange | null, text: boolean): Promise<{ answer: Answer; url: URL }> {
    let url = u;
    let retried = false;
    for (let hops = 0; ; ) {
      let answer: Answer;
      try {
        answer = await this.once(url, range, text);
      } catch (err) {
        const e = err as { code?: string; reused?: boolean };
        if (!retried && e.reused && (e.code === 'ECONNRESET' || e.code === 'EPIPE') && !this.stop.aborted) {
          retried = true;
          continue;
        }
        throw err;
      }
      if (answer.status >= 300 && answer.status < 400 && answer.location && hops < 5) {
        hops++;
        url = new URL(answer.location, url);
        continue;
      }
      return { answer, url };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The run.

class Stats {
  readonly requests: Record<RequestKind, number> = { multivariant: 0, playlist: 0, init: 0, segment: 0 };
  readonly errors = new Map<string, number>();
  errorCount = 0;
  segments = 0;
  bytes = 0;
  mediaBytes = 0;
  stalls = 0;
  live = false;
  readonly segmentLatency = new LogHistogram();
  readonly playlistLatency = new LogHistogram();
  readonly age = new LogHistogram();
  ageSeen = false;
  readonly renditions = new Map<string, number>();

  get requestCount(): number {
    const r = this.requests;
    return r.multivariant + r.playlist + r.init + r.segment;
  }

  error(kind: string): void {
    this.errorCount++;
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }
}

interface Ctx {
  http: Http;
  stats: Stats;
  stop: AbortSignal;
  base: URL;
  startup: number;
  audio: boolean;
  pick: ViewerPick;
  onRequest: ((r: RequestRecord) => void) | undefined;
}

function errorKind(err: unknown): string {
  if (err instanceof Timeout) return 'timeout';
  const e = err as { code?: string; invalid?: boolean };
  if (e.invalid) return 'invalid';
  return `network ${e.code ?? 'error'}`;
}

/** A URL of a playlist entry: resolved, with the run URL's query parameters it lacks when on the same origin. */
function resolveUri(ctx: Ctx, ref: string, base: URL): URL {
  const u = new URL(ref, base);
  if (u.origin === ctx.base.origin) {
    for (const [k, v] of ctx.base.searchParams) if (!u.searchParams.has(k)) u.searchParams.append(k, v);
  }
  return u;
}

type Fetch = { ok: true; url: URL; body: string | null } | { ok: false };

/** One request, counted; null when the run ended while it was in flight. */
async function fetchOne(ctx: Ctx, kind: RequestKind, u: URL, range: ByteRange | null): Promise<Fetch | null> {
  const text = kind === 'multivariant' || kind === 'playlist';
  const t0 = performance.now();
  let status = 0;
  let bytes = 0;
  let error: string | undefined;
  let result: Fetch;
  try {
    const { answer, url } = await ctx.http.get(u, range, text);
    status = answer.status;
    bytes = answer.bytes;
    if (status >= 200 && status < 300) result = { ok: true, url, body: answer.body };
    else {
      error = `http ${status}`;
      result = { ok: false };
    }
  } catch (err) {
    if (ctx.stop.aborted) return null;
    error = errorKind(err);
    result = { ok: false };
  }
  const ms = performance.now() - t0;
  const s = ctx.stats;
  s.requests[kind]++;
  s.bytes += bytes;
  if (error) s.error(error);
  else if (text) s.playlistLatency.record(ms);
  else {
    s.segmentLatency.record(ms);
    s.mediaBytes += bytes;
    if (kind === 'segment') s.segments++;
  }
  ctx.onRequest?.({ kind, url: u.href, status, bytes, ms, ...(error ? { error } : {}) });
  return result;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** A playlist fetched and parsed, retried every second until the run ends; null then. */
async function loadText(ctx: Ctx, kind: RequestKind, u: URL): Promise<{ url: URL; body: string } | null> {
  while (!ctx.stop.aborted) {
    const r = await fetchOne(ctx, kind, u, null);
    if (r === null) return null;
    if (r.ok && r.body !== null) return { url: r.url, body: r.body };
    await sleep(RETRY_MS, ctx.stop);
  }
  return null;
}

async function loadMedia(ctx: Ctx, u: URL, prefetched?: { url: URL; body: string }) {
  for (let text = prefetched; !ctx.stop.aborted; text = undefined) {
    const t = text ?? (await loadText(ctx, 'playlist', u));
    if (!t) return null;
    try {
      const pl = parseMediaPlaylist(t.body);
      if (pl.segments.length > 0 || !pl.ended) {
        if (!pl.ended) {
          ctx.stats.live = true;
          if (pl.edgeWallClockMs !== null) {
            ctx.stats.ageSeen = true;
            ctx.stats.age.record(Date.now() - pl.edgeWallClockMs);
          }
        }
        return { url: t.url, pl };
      }
    } catch {}
    ctx.stats.error('invalid');
    await sleep(RETRY_MS, ctx.stop);
  }
  return null;
}

/** Plays one media playlist (a variant's video, or its audio) until the run ends. */
async function playTrack(ctx: Ctx, u: URL, prefetched?: { url: URL; body: string }): Promise<void> {
  let loaded = await loadMedia(ctx, u, prefetched);
  if (!loaded) return;
  let mapKey = '';
  const ensureInit = async (seg: MediaSegment, base: URL) => {
    if (!seg.map) return;
    const key = `${seg.map.uri}|${seg.map.range?.offset ?? ''}`;
    if (key === mapKey) return;
    mapKey = key;
    await fetchOne(ctx, 'init', resolveUri(ctx, seg.map.uri, base), seg.map.range);
  };

  if (loaded.pl.ended) {
    // VOD: paced by the play clock, looping.
    const { pl, url } = loaded;
    let clock: number | null = null;
    let mediaTime = 0;
    const recent: number[] = [];
    for (let k = 0, i = 0; !ctx.stop.aborted; k++, i = (i + 1) % pl.segments.length) {
      const seg = pl.segments[i]!;
      await ensureInit(seg, url);
      if (clock !== null && k >= ctx.startup) {
        const behind = recent.reduce((a, b) => a + b, 0);
        await sleep(clock + (mediaTime - behind) * 1000 - performance.now(), ctx.stop);
        if (ctx.stop.aborted) return;
      }
      const r = await fetchOne(ctx, 'segment', resolveUri(ctx, seg.uri, url), seg.range);
      if (r === null) return;
      const now = performance.now();
      // The clock starts when the first answer is in, failed or not, so a failing origin is still paced.
      if (clock === null) clock = now;
      else if (r.ok) {
        const due = clock + mediaTime * 1000;
        if (now > due) {
          ctx.stats.stalls++;
          clock += now - due;
        }
      }
      // A floor, so a playlist of zero-length segments cannot turn the pace into a flood.
      const d = Math.max(seg.duration, 0.05);
      mediaTime += d;
      recent.push(d);
      if (recent.length > ctx.startup) recent.shift();
    }
    return;
  }

  // Live: newest segments first, then whatever each reload adds.
  let next = Math.max(0, (loaded.pl.segments.at(-1)?.msn ?? -1) - ctx.startup + 1);
  while (!ctx.stop.aborted && loaded) {
    const { pl, url } = loaded;
    const reloadAt = performance.now();
    const first = pl.segments[0]?.msn ?? next;
    if (next < first) next = first;
    let added = false;
    for (const seg of pl.segments) {
      if (seg.msn < next) continue;
      await ensureInit(seg, url);
      const r = await fetchOne(ctx, 'segment', resolveUri(ctx, seg.uri, url), seg.range);
      if (r === null) return;
      next = seg.msn + 1;
      added = true;
    }
    if (pl.ended) return;
    const target = Math.max(0.1, pl.targetDuration || 2);
    const interval = pl.partTarget ? pl.partTarget / 2 : added ? target : target / 2;
    await sleep(reloadAt + interval * 1000 - performance.now(), ctx.stop);
    if (ctx.stop.aborted) return;
    loaded = await loadMedia(ctx, u);
  }
}

function describeVariant(v: Variant): string {
  const kbps = `${Math.round(v.bandwidth / 1000)}k`;
  return v.resolution ? `${v.resolution} ${kbps}` : `audio ${kbps}`;
}

function pickVariant(mv: Multivariant, pick: ViewerPick, index: number): Variant {
  const byRate = [...mv.variants].sort((a, b) => b.bandwidth - a.bandwidth);
  switch (pick) {
    case 'top':
      return byRate[0]!;
    case 'bottom':
      return byRate.at(-1)!;
    case 'random':
      return byRate[Math.floor(Math.random() * byRate.length)]!;
    case 'all-rungs':
      return byRate[index % byRate.length]!;
  }
}

async function viewer(ctx: Ctx, index: number, delayMs: number, active: { n: number }): Promise<void> {
  await sleep(delayMs, ctx.stop);
  if (ctx.stop.aborted) return;
  active.n++;
  try {
    for (;;) {
      const top = await loadText(ctx, 'multivariant', ctx.base);
      if (!top) return;
      if (!isMultivariant(top.body)) {
        ctx.stats.renditions.set('media playlist', (ctx.stats.renditions.get('media playlist') ?? 0) + 1);
        return await playTrack(ctx, top.url, top);
      }
      let mv: Multivariant;
      try {
        mv = parseMultivariant(top.body);
      } catch {
        ctx.stats.error('invalid');
        await sleep(RETRY_MS, ctx.stop);
        continue;
      }
      const v = pickVariant(mv, ctx.pick, index);
      const name = describeVariant(v);
      ctx.stats.renditions.set(name, (ctx.stats.renditions.get(name) ?? 0) + 1);
      const tracks = [resolveUri(ctx, v.uri, top.url)];
      if (ctx.audio && v.audio) {
        const group = mv.audio.filter((a) => a.group === v.audio);
        const a = group.find((m) => m.default) ?? group[0];
        if (a) tracks.push(resolveUri(ctx, a.uri, top.url));
      }
      await Promise.all(tracks.map((t) => playTrack(ctx, t)));
      return;
    }
  } finally {
    active.n--;
  }
}

function checkRange(name: string, v: number, min: number, max: number, integer: boolean): void {
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new SmoothcastError('BAD_REQUEST', `${name} must be ${integer ? 'a whole number ' : ''}in ${min}…${max}`);
  }
}

const PICKS: readonly ViewerPick[] = ['top', 'bottom', 'random', 'all-rungs'];

/** Runs `count` virtual viewers against `url` for `durationSeconds` and reports what they saw. */
export async function runViewers(opts: ViewersOptions): Promise<ViewersReport> {
  let base: URL;
  try {
    base = new URL(opts.url);
  } catch {
    throw new SmoothcastError('BAD_REQUEST', `not a URL: ${opts.url}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new SmoothcastError('BAD_REQUEST', `only http and https URLs are played, not ${base.protocol}`);
  }
  checkRange('count', opts.count, 1, 5000, true);
  checkRange('durationSeconds', opts.durationSeconds, 1, 3600, false);
  const pick = opts.pick ?? 'top';
  if (!PICKS.includes(pick)) throw new SmoothcastError('BAD_REQUEST', `pick must be one of ${PICKS.join(', ')}`);
  const spread = opts.startSpreadSeconds ?? Math.min(5, opts.durationSeconds / 4);
  checkRange('startSpreadSeconds', spread, 0, opts.durationSeconds, false);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  checkRange('timeoutMs', timeoutMs, 1, 600_000, false);
  const startup = opts.startupSegments ?? 2;
  checkRange('startupSegments', startup, 1, 100, true);
  const allowRemote = opts.allowRemote === true;
  if (!allowRemote) await assertLoopback(base);

  const stopper = new AbortController();
  const stop = stopper.signal;
  const t0 = performance.now();
  const endTimer = setTimeout(() => stopper.abort(new Error('time is up')), opts.durationSeconds * 1000);
  const onAbort = () => stopper.abort(opts.signal?.reason);
  if (opts.signal?.aborted) onAbort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });

  const http = new Http({
    maxSockets: opts.maxSockets ?? Math.max(2, opts.count * 2),
    allowRemote,
    timeoutMs,
    stop,
  });
  const stats = new Stats();
  const ctx: Ctx = {
    http,
    stats,
    stop,
    base,
    startup,
    audio: opts.audio !== false,
    pick,
    onRequest: opts.onRequest,
  };
  const active = { n: 0 };
  let lastBytes = 0;
  const progress = opts.onProgress
    ? setInterval(() => {
        const bytes = stats.bytes;
        opts.onProgress?.({
          elapsedSeconds: Math.round((performance.now() - t0) / 100) / 10,
          active: active.n,
          requests: stats.requestCount,
          errors: stats.errorCount,
          segments: stats.segments,
          bytes,
          mbps: ((bytes - lastBytes) * 8) / 1e6,
          segmentLatencyMs: stats.segmentLatency.percentiles(),
        });
        lastBytes = bytes;
      }, 1000)
    : null;

  try {
    await Promise.all(
      Array.from({ length: opts.count }, (_, i) => viewer(ctx, i, (spread * 1000 * i) / opts.count, active)),
    );
  } finally {
    clearTimeout(endTimer);
    if (progress) clearInterval(progress);
    opts.signal?.removeEventListener('abort', onAbort);
    stopper.abort(new Error('done'));
    http.close();
  }
  const elapsed = (performance.now() - t0) / 1000;
  return {
    url: opts.url,
    viewers: opts.count,
    pick,
    elapsedSeconds: Math.round(elapsed * 1000) / 1000,
    live: stats.live,
    renditions: Object.fromEntries(stats.renditions),
    requests: { total: stats.requestCount, ...stats.requests },
    errors: { total: stats.errorCount, byKind: Object.fromEntries(stats.errors) },
    segments: stats.segments,
    bytes: { total: stats.bytes, media: stats.mediaBytes },
    throughputMbps: Math.round(((stats.bytes * 8) / 1e6 / Math.max(elapsed, 1e-3)) * 1000) / 1000,
    segmentLatencyMs: stats.segmentLatency.percentiles(),
    playlistLatencyMs: stats.playlistLatency.percentiles(),
    stalls: stats.stalls,
    playlistAgeSeconds: stats.ageSeen ? stats.age.percentiles(1000) : null,
  };
}
