// HTTP push ingest: encoders POST (or PUT) fragmented MP4 they have already encoded — no transcode.
//
//   Smooth Streaming push   POST|PUT {prefix}/KEY.isml/Streams(NAME)   ffmpeg -f ismv: one moov with every track
//   DASH-IF ingest (CMAF)   POST|PUT {prefix}/KEY/PATH                 one single-track CMAF stream per PATH
//
// Either as one long-running chunked request (what ffmpeg's http output does: Transfer-Encoding: chunked, no
// Content-Type) or as one request per segment on the same path (the init first, each later request then finds it
// remembered). The body is streamed through PushDemuxer (src/media/live/push.ts), never held whole: a chunk is read
// only once the previous one's fragments are in their sink, so a slow sink slows the encoder down (TCP backpressure).
//
// The key is checked before any byte of the body is read: a malformed key, or one authorize() does not know, is
// 403 LIVE_KEY_INVALID; a path that names no stream (neither shape above) is 404 LIVE_NOT_FOUND. Then each track
// goes to onTrack() (once per request that carries or uses it) and each fragment to its sink; a fragment repeated
// in the same request (same track and tfdt) is passed once, repeats across requests are the sink's to spot. The
// answer comes at the end of the body: 201 when a fragment was stored, else 200, with a JSON summary. An error in
// the middle (412 LIVE_INIT_MISSING, 415 LIVE_MEDIA_UNSUPPORTED, 400 for a damaged body, 413 over the byte limit,
// 400 after idleTimeoutMs without a byte) is answered at once with `Connection: close`; the rest of the body is not
// read, the connection closes after the answer, and every sink opened by the request is ended.
//
// Routing: ONE wildcard route `{prefix}/*` for POST and PUT, parsed here (parseIngestPath). Fastify 5's router has
// no literal parentheses around a parameter: `/ingest/:key.isml/Streams(:name)` matches with a parameter named
// `name)` worth `live1)`, and the escaped forms match nothing (tried). The route's scope has one catch-all
// content-type parser that reads nothing.
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SmoothcastError } from '../../core/errors.ts';
import { PushDemuxer, type PushInit, type PushLimits } from '../../media/live/push.ts';
import type { TrackInfo, TrackKind } from '../../media/types.ts';

export type Logger = (msg: string, extra?: Record<string, unknown>) => void;

/** Stream keys: 32 base32 characters (docs/live.md "Stream keys"). */
export const STREAM_KEY = /^[a-z2-7]{32}$/;

export type IngestProtocol = 'smooth' | 'cmaf';

/** What a request pushes to, from its path. */
export interface IngestPath {
  protocol: IngestProtocol;
  key: string;
  /** Smooth: the NAME of Streams(NAME); CMAF: the path after the key (e.g. 'Streams(video).cmfv'). */
  name: string;
}

export interface IngestTrack {
  trackId: number;
  kind: TrackKind;
  /** A single-track ftyp+moov. */
  init: Uint8Array;
  track: TrackInfo;
  name: string;
  protocol: IngestProtocol;
}

export interface FragmentInfo {
  duration: number;
  samples: number;
  keyframe: boolean;
}

export type StoreResult = 'stored' | 'duplicate';

/** Where one track's fragments go for the length of one request. */
export interface TrackSink {
  /** A single-track moof+mdat starting at `start` (tfdt, track timescale). 'duplicate': this track had it already. */
  fragment(bytes: Uint8Array, start: number, info: FragmentInfo): Promise<StoreResult> | StoreResult;
  /** The request is over (its body ended, failed or was cut); called once, also after errors. */
  end(): Promise<void> | void;
}

export interface HttpIngestOptions<T> {
  /** The target for a well-formed key, or null to refuse it (403). Called before the body is read. */
  authorize(key: string, path: IngestPath): T | null | Promise<T | null>;
  /** A track this request carries (its init) or uses (an init remembered from an earlier request on the path). */
  onTrack(target: T, track: IngestTrack): Promise<TrackSink> | TrackSink;
  /** URL prefix of the routes. Default '/ingest'. */
  prefix?: string;
  /** Body bytes one request may carry. Default 64 GiB (a day at about 6 Mb/s). */
  maxRequestBytes?: number;
  /** No body byte for this long fails the request (not counted while a sink is busy). Default 15 s. */
  idleTimeoutMs?: number;
  /** Paths whose inits are remembered for later requests (least recently used first out). Default 1024. */
  rememberPaths?: number;
  limits?: PushLimits;
  log?: Logger;
}

export interface IngestSummary {
  protocol: IngestProtocol;
  name: string;
  bytes: number;
  tracks: { trackId: number; kind: TrackKind; fragments: number; stored: number; duplicates: number }[];
}

const NAME = /^[A-Za-z0-9_.~ -]{1,128}$/;
const DEDUPE_WINDOW = 4096;
const SEGMENT = /^[A-Za-z0-9_.~()-]{1,128}$/;

/** The path after the prefix → what it pushes to; null for anything else (404). */
export function parseIngestPath(rest: string): IngestPath | null {
  if (rest.length > 512) return null;
  let segments: string[];
  try {
    segments = rest.split('/').map((s) => decodeURIComponent(s));
  } catch {
    return null;
  }
  const [first, ...more] = segments;
  if (first === undefined || first === '' || more.length === 0) return null;
  if (first.endsWith('.isml')) {
    const m = more.length === 1 ? /^Streams\((.*)\)$/.exec(more[0]!) : null;
    if (!m || !NAME.test(m[1]!)) return null;
    return { protocol: 'smooth', key: first.slice(0, -'.isml'.length), name: m[1]! };
  }
  if (!more.every((s) => SEGMENT.test(s) && s !== '.' && s !== '..')) return null;
  return { protocol: 'cmaf', key: first, name: more.join('/') };
}

/** Errors as the client sees them: a damaged body is the client's (400), not an internal error. */
function answer(err: unknown): unknown {
  if (!(err instanceof SmoothcastError)) return err;
  if (err.code === 'BMFF_MALFORMED') return new SmoothcastError('BAD_REQUEST', err.message, { cause: err });
  if (err.code === 'BMFF_UNSUPPORTED')
    return new SmoothcastError('LIVE_MEDIA_UNSUPPORTED', err.message, { cause: err });
  return err;
}

/** Pulls body chunks one at a time (backpressure: nothing is read ahead of the consumer) with an idle timeout. */
class BodyReader {
  readonly #req: IncomingMessage;
  readonly #idleMs: number;
  #ended = false;
  #failed: Error | undefined;
  #wake: (() => void) | undefined;

  constructor(req: IncomingMessage, idleMs: number) {
    this.#req = req;
    this.#idleMs = idleMs;
    const wake = () => {
      const w = this.#wake;
      this.#wake = undefined;
      w?.();
    };
    req.on('readable', wake);
    req.on('end', () => {
      this.#ended = true;
      wake();
    });
    req.on('error', (err) => {
      this.#failed ??= err;
      wake();
    });
    req.on('close', () => {
      if (!req.complete) this.#failed ??= new SmoothcastError('BAD_REQUEST', 'the client closed the request body');
      wake();
    });
  }

  async next(): Promise<Uint8Array | null> {
    for (;;) {
      const chunk = this.#req.read() as Buffer | null;
      if (chunk !== null) return chunk;
      if (this.#failed) throw this.#failed;
      if (this.#ended || this.#req.readableEnded) return null;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve, reject) => {
        this.#wake = resolve;
        timer = setTimeout(() => {
          this.#wake = undefined;
          reject(new SmoothcastError('BAD_REQUEST', `no body byte for ${this.#idleMs} ms`));
        }, this.#idleMs);
      }).finally(() => clearTimeout(timer));
    }
  }
}

interface OpenTrack {
  sink: TrackSink;
  stats: IngestSummary['tracks'][number];
}

export function registerHttpIngest<T>(app: FastifyInstance, opts: HttpIngestOptions<T>): void {
  const prefix = (opts.prefix ?? '/ingest').replace(/\/+$/, '');
  const maxRequestBytes = opts.maxRequestBytes ?? 64 * 2 ** 30;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 15_000;
  const rememberPaths = opts.rememberPaths ?? 1024;
  for (const [k, v] of Object.entries({ maxRequestBytes, idleTimeoutMs, rememberPaths })) {
    if (!(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`registerHttpIngest: ${k} must be > 0, not ${v}`);
  }
  const log = opts.log ?? (() => {});
  /** key + name → the last init of each track pushed there. */
  const remembered = new Map<string, Map<number, PushInit>>();
  const remember = (id: string, init: PushInit) => {
    const inits = remembered.get(id) ?? new Map<number, PushInit>();
    remembered.delete(id);
    inits.set(init.trackId, init);
    remembered.set(id, inits);
    while (remembered.size > rememberPaths) remembered.delete(remembered.keys().next().value!);
  };

  async function ingest(req: FastifyRequest, path: IngestPath, target: T): Promise<IngestSummary> {
    const id = `${path.key}\n${path.protocol}\n${path.name}`;
    const known = remembered.get(id);
    if (known) {
      remembered.delete(id);
      remembered.set(id, known);
    }
    const demuxer = new PushDemuxer({ limits: opts.limits, tracks: known?.values() });
    const open = new Map<number, OpenTrack>();
    /** Per track, the starts passed to its sink in this request (the latest DEDUPE_WINDOW of them). */
    const seen = new Map<number, Set<number>>();
    const summary: IngestSummary = { protocol: path.protocol, name: path.name, bytes: 0, tracks: [] };
    const openTrack = async (init: PushInit): Promise<OpenTrack> => {
      const old = open.get(init.trackId);
      if (old) {
        open.delete(init.trackId);
        await old.sink.end();
      }
      const sink = await opts.onTrack(target, {
        trackId: init.trackId,
        kind: init.kind,
        init: init.init,
        track: init.track,
        name: path.name,
        protocol: path.protocol,
      });
      const stats = old?.stats ?? { trackId: init.trackId, kind: init.kind, fragments: 0, stored: 0, duplicates: 0 };
      if (!old) summary.tracks.push(stats);
      const t = { sink, stats };
      open.set(init.trackId, t);
      return t;
    };
    const body = new BodyReader(req.raw, idleTimeoutMs);
    try {
      for (;;) {
        const chunk = await body.next();
        if (chunk && summary.bytes + chunk.length > maxRequestBytes) {
          throw new SmoothcastError('PAYLOAD_TOO_LARGE', `the body is over the ${maxRequestBytes}-byte limit`);
        }
        if (chunk) summary.bytes += chunk.length;
        const events = chunk ? demuxer.push(chunk) : demuxer.end();
        for (const e of events) {
          if (e.type === 'init') {
            remember(id, e);
            await openTrack(e);
            continue;
          }
          let t = open.get(e.trackId);
          if (!t) {
            const init = demuxer.tracks.find((i) => i.trackId === e.trackId);
            if (!init) throw new SmoothcastError('INTERNAL', `fragment of track ${e.trackId} without its init`);
            t = await openTrack(init);
          }
          t.stats.fragments++;
          const starts = seen.get(e.trackId) ?? new Set<number>();
          seen.set(e.trackId, starts);
          if (starts.has(e.start)) {
            t.stats.duplicates++;
            continue;
          }
          starts.add(e.start);
          if (starts.size > DEDUPE_WINDOW) starts.delete(starts.values().next().value!);
          const info = { duration: e.duration, samples: e.samples, keyframe: e.keyframe };
          const result = await t.sink.fragment(e.fragment, e.start, info);
          if (result === 'stored') t.stats.stored++;
          else if (result === 'duplicate') t.stats.duplicates++;
          else throw new SmoothcastError('INTERNAL', `sink.fragment returned ${String(result)}`);
        }
        if (!chunk) return summary;
      }
    } finally {
      for (const t of open.values()) {
        try {
          await t.sink.end();
        } catch (err) {
          log('http ingest: sink failed to end', { name: path.name, trackId: t.stats.trackId, error: String(err) });
        }
      }
    }
  }

  async function handler(req: FastifyRequest, reply: FastifyReply) {
    let path: IngestPath | null = null;
    try {
      const url = req.raw.url ?? '';
      const pathname = url.split('?')[0]!;
      path = pathname.startsWith(`${prefix}/`) ? parseIngestPath(pathname.slice(prefix.length + 1)) : null;
      if (!path) throw new SmoothcastError('LIVE_NOT_FOUND', `no ingest stream at ${pathname.slice(0, 200)}`);
      if (!STREAM_KEY.test(path.key)) throw new SmoothcastError('LIVE_KEY_INVALID');
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > maxRequestBytes) {
        throw new SmoothcastError('PAYLOAD_TOO_LARGE', `the body is over the ${maxRequestBytes}-byte limit`);
      }
      const target = await opts.authorize(path.key, path);
      if (target === null || target === undefined) throw new SmoothcastError('LIVE_KEY_INVALID');
      const t0 = performance.now();
      const summary = await ingest(req, path, target);
      const stored = summary.tracks.reduce((n, t) => n + t.stored, 0);
      log('http ingest: body ended', { ...summary, ms: Math.round(performance.now() - t0) }); // no key in it
      return reply.code(stored > 0 ? 201 : 200).send(summary);
    } catch (err) {
      if (!req.raw.complete) {
        // The answer goes out now; the rest of the body is not read, and the connection closes after the answer
        // (an encoder that only reads the answer at the end then sees its writes fail instead of hanging).
        reply.header('connection', 'close');
        // The path holds the stream key: the log names the stream only.
        log('http ingest: answered before the end of the body', {
          protocol: path?.protocol,
          name: path?.name,
          error: String(err),
        });
      }
      throw answer(err);
    }
  }

  app.register(async (scope) => {
    // The body is the handler's to stream: no parser reads it, whatever its Content-Type (ffmpeg sends none).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_req, _payload, done) => done(null));
    scope.route({ method: ['POST', 'PUT'], url: `${prefix}/*`, handler });
  });
}
