// A bandwidth-shaping HTTP reverse proxy for the QoE lab (bench/qoe.ts): one listener (127.0.0.1, port 0) per
// player session in front of the smoothcast server, so every request a player makes through that port — audio and
// video fetched in parallel, manifests, text — shares one token bucket, as on one real link.
//
// - Rate: follows a bandwidth trace (`seconds<TAB>Mbit/s`, ../shared/traces/README.md), piecewise constant from each
//   sample until the next; the trace loops when played past its end. Its clock starts at start(), or else at the
//   session's first shaped request.
// - Round trip: the upstream's response headers are held back `rttMs` (default 80 ms) after they arrive, and during
//   an outage (rate 0) until the rate is above zero again: nothing flows in an outage, not even headers.
// - Bucket: refilled every `tickMs` (10 ms) by the integral of the trace's rate over the elapsed time, and never
//   holding more than one tick of bytes at the current rate (at least one 1500 B packet) across ticks — no burst
//   beyond the rate after an idle spell. Bytes go out in 1500 B quanta, round-robin over the session's responses
//   (deficit round robin: parallel requests share the rate fairly).
// - Only media is shaped: /v/… (manifests, playlists, init and media segments, text) except /v/<id>/player.json and
//   /v/<id>/poster.jpg; everything else (the web app, /api/*) passes unshaped with no delay.
// - Request headers (Range, If-None-Match, …) are passed through, with the client's Host (so any absolute URL the
//   server writes points back at the proxy), and every response header (CORS included) back; hop-by-hop headers
//   are not forwarded. Backpressure both ways (upstream paused while the queue is full, a client response skipped
//   until `drain`), an aborted client request stops its upstream request and frees its queue, an upstream error is a
//   502 (or a cut response once the headers went out).
// - Counts body bytes delivered per session, per path and per rendition id (/v/{asset}/{rev}/{rid}/{n}.m4s).
import { readdirSync, readFileSync } from 'node:fs';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { basename, join } from 'node:path';

// ---- traces --------------------------------------------------------------------------------------------------------

export interface TraceSample {
  /** Seconds from the trace's start. */
  t: number;
  /** Mbit/s from t until the next sample. */
  mbps: number;
}

export interface Trace {
  name: string;
  samples: TraceSample[];
  /**
   * Seconds after which the trace loops: the last sample's time plus the gap before it (the last sample lasts as
   * long as the one before it); a one-sample trace is constant (its period is 1 s).
   */
  duration: number;
}

/**
 * A trace from its text: one sample a line, `seconds<TAB>Mbit/s` (any whitespace between the two), times strictly
 * increasing from 0, rates ≥ 0; empty lines and `#` comments are skipped. Throws naming the line of what is wrong.
 */
export function parseTrace(text: string, name = 'trace'): Trace {
  const samples: TraceSample[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#')) continue;
    const where = `${name}:${i + 1}`;
    const f = line.split(/\s+/);
    if (f.length !== 2) throw new Error(`${where}: expected "seconds<TAB>Mbit/s", got ${JSON.stringify(line)}`);
    const t = Number(f[0]);
    const mbps = Number(f[1]);
    if (!Number.isFinite(t) || !Number.isFinite(mbps) || f[0] === '' || f[1] === '') {
      throw new Error(`${where}: not two numbers: ${JSON.stringify(line)}`);
    }
    if (mbps < 0) throw new Error(`${where}: negative rate ${mbps} Mbit/s`);
    const prev = samples.at(-1);
    if (!prev && t !== 0) throw new Error(`${where}: the first sample must be at 0 s (got ${t})`);
    if (prev && t <= prev.t) throw new Error(`${where}: time ${t} s does not increase (previous ${prev.t} s)`);
    samples.push({ t, mbps });
  }
  if (samples.length === 0) throw new Error(`${name}: no samples (expected lines of "seconds<TAB>Mbit/s")`);
  const n = samples.length;
  const duration = n === 1 ? 1 : samples[n - 1]!.t + (samples[n - 1]!.t - samples[n - 2]!.t);
  return { name, samples, duration };
}

/** A trace file; its name is the file name without `.tsv`. */
export function loadTraceFile(file: string): Trace {
  return parseTrace(readFileSync(file, 'utf8'), basename(file).replace(/\.tsv$/, ''));
}

/** Every `*.tsv` in `dir`, by name. */
export function loadTraceFolder(dir: string): Trace[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.tsv'))
    .sort();
  if (files.length === 0) throw new Error(`${dir}: no *.tsv trace files`);
  return files.map((f) => loadTraceFile(join(dir, f)));
}

/** A constant-rate trace. */
export function constantTrace(mbps: number, name = `constant-${mbps}`): Trace {
  return { name, samples: [{ t: 0, mbps }], duration: 1 };
}

/** The trace's mean rate, Mbit/s, over its period. */
export function traceMean(trace: Trace): number {
  return bitsBetween(trace, 0, trace.duration) / 1e6 / trace.duration;
}

/** Bits/s at `seconds` on the trace's clock (looping). */
export function rateAt(trace: Trace, seconds: number): number {
  const s = trace.samples;
  const x = ((seconds % trace.duration) + trace.duration) % trace.duration;
  let lo = 0;
  let hi = s.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (s[mid]!.t <= x) lo = mid;
    else hi = mid - 1;
  }
  return s[lo]!.mbps * 1e6;
}

const prefixCache = new WeakMap<Trace, number[]>();
/** Bits from 0 to each sample's time (and to `duration` as the last entry). */
function prefix(trace: Trace): number[] {
  let p = prefixCache.get(trace);
  if (p) return p;
  p = [0];
  const s = trace.samples;
  for (let i = 0; i < s.length; i++) {
    const end = i + 1 < s.length ? s[i + 1]!.t : trace.duration;
    p.push(p[i]! + s[i]!.mbps * 1e6 * (end - s[i]!.t));
  }
  prefixCache.set(trace, p);
  return p;
}

/** Bits the trace carries from 0 to `seconds` (looping). */
function cumulativeBits(trace: Trace, seconds: number): number {
  const p = prefix(trace);
  const periods = Math.floor(seconds / trace.duration);
  const x = seconds - periods * trace.duration;
  const s = trace.samples;
  let i = 0;
  while (i + 1 < s.length && s[i + 1]!.t <= x) i++;
  return periods * p[s.length]! + p[i]! + s[i]!.mbps * 1e6 * (x - s[i]!.t);
}

/** Bits the trace carries between two times on its clock. */
export function bitsBetween(trace: Trace, from: number, to: number): number {
  return cumulativeBits(trace, to) - cumulativeBits(trace, from);
}

// ---- what is shaped ------------------------------------------------------------------------------------------------

/** Media requests are shaped: /v/… except a video's player.json and poster.jpg. */
export function isShaped(path: string): boolean {
  if (!path.startsWith('/v/')) return false;
  return !/^\/v\/[^/]+\/(player\.json|poster\.jpg)$/.test(path);
}

/** The rendition id of a segment, init segment or media playlist path (`v0`, `a0`, …), else null. */
export function renditionOf(path: string): string | null {
  return /^\/v\/[^/]+\/[^/]+\/([va]\d{1,2})(?:\/|\.m3u8$|-br\.m3u8$|\.mp4$)/.exec(path)?.[1] ?? null;
}

// ---- the proxy -----------------------------------------------------------------------------------------------------

export interface ShaperOptions {
  /** The server in front of which it stands (http://host:port). */
  upstream: string;
  trace: Trace;
  /** Default 80. */
  rttMs?: number;
  /** Bucket refill period, default 10 ms. */
  tickMs?: number;
  /** Bytes queued per response before the upstream is paused; default 256 KiB. */
  highWater?: number;
}

export interface PathStats {
  requests: number;
  bytes: number;
}

export interface ShaperStats {
  /** Body bytes delivered to the client, shaped and unshaped. */
  shapedBytes: number;
  unshapedBytes: number;
  shapedRequests: number;
  unshapedRequests: number;
  /** Requests answered 502 (or cut) because the upstream failed, and requests the client aborted. */
  upstreamErrors: number;
  aborted: number;
  /** performance.now() of the trace clock's start (null: not started). */
  startedAt: number | null;
  /** Seconds since the trace clock's start. */
  elapsed: number;
  /** Bits the trace allowed since its start (the link's capacity so far). */
  capacityBits: number;
  byPath: Record<string, PathStats>;
  /** Shaped bytes by rendition id (segments, init segments and media playlists); `other`: manifests, text. */
  byRendition: Record<string, number>;
}

export interface ShaperSession {
  url: string;
  port: number;
  trace: Trace;
  /** Starts the trace clock now (no-op once started). */
  start(): void;
  /** Bits/s the bucket refills at now (0 before the clock starts). */
  currentRate(): number;
  stats(): ShaperStats;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function endToEnd(h: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

const PACKET = 1500;

/** One shaped response: its queued body, whether the headers are out, whether the client can take more. */
interface Flow {
  res: ServerResponse;
  path: string;
  queue: Buffer[];
  queued: number;
  /** Upstream body done: end the response once the queue is empty. */
  upstreamEnded: boolean;
  /** The upstream response, while it may be paused or resumed. */
  upstream: IncomingMessage | null;
  /** Headers waiting to be sent (status, headers) and the earliest time they may go. */
  head: { status: number; message: string; headers: OutgoingHttpHeaders; notBefore: number } | null;
  headersSent: boolean;
  blocked: boolean;
  deficit: number;
  done: boolean;
}

export async function startShaper(opts: ShaperOptions): Promise<ShaperSession> {
  const up = new URL(opts.upstream);
  const rttMs = opts.rttMs ?? 80;
  const tickMs = opts.tickMs ?? 10;
  const highWater = opts.highWater ?? 256 * 1024;
  const trace = opts.trace;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });

  let startedAt: number | null = null;
  /** Trace seconds up to which the bucket has been refilled. */
  let refilledTo = 0;
  let tokens = 0;
  const flows: Flow[] = [];
  let rr = 0;
  const st = {
    shapedBytes: 0,
    unshapedBytes: 0,
    shapedRequests: 0,
    unshapedRequests: 0,
    upstreamErrors: 0,
    aborted: 0,
  };
  const byPath = new Map<string, PathStats>();
  const byRendition = new Map<string, number>();

  const start = () => {
    if (startedAt !== null) return;
    startedAt = performance.now();
    refilledTo = 0;
    tokens = 0;
  };
  const traceNow = () => (startedAt === null ? 0 : (performance.now() - startedAt) / 1000);
  const currentRate = () => (startedAt === null ? 0 : rateAt(trace, traceNow()));

  const count = (path: string, n: number) => {
    st.shapedBytes += n;
    const p = byPath.get(path);
    if (p) p.bytes += n;
    const rid = renditionOf(path) ?? 'other';
    byRendition.set(rid, (byRendition.get(rid) ?? 0) + n);
  };

  const finish = (f: Flow) => {
    if (f.done) return;
    f.done = true;
    f.queue = [];
    f.queued = 0;
    const i = flows.indexOf(f);
    if (i >= 0) flows.splice(i, 1);
  };

  /** Sends what the bucket allows; called every tick. */
  const tick = () => {
    if (startedAt === null) return;
    const now = traceNow();
    const rate = rateAt(trace, now);
    const depth = Math.max(PACKET, (rate * tickMs) / 1000 / 8);
    // What was left over may carry at most one bucket's depth (none into an outage); this tick's refill is spent
    // now or carried.
    tokens = (rate > 0 ? Math.min(tokens, depth) : 0) + bitsBetween(trace, refilledTo, now) / 8;
    refilledTo = now;
    const wall = performance.now();
    // Headers whose round trip is over go out while the link is up.
    for (const f of flows) {
      if (f.head && !f.headersSent && wall >= f.head.notBefore && rate > 0) {
        f.res.writeHead(f.head.status, f.head.message, f.head.headers);
        f.res.flushHeaders();
        f.headersSent = true;
        f.head = null;
      }
    }
    // Deficit round robin over the flows with bytes to send and room in the client socket.
    for (;;) {
      const ready = flows.filter((f) => f.headersSent && !f.blocked && f.queued > 0);
      if (ready.length === 0 || tokens < 1) break;
      let progressed = false;
      for (let k = 0; k < ready.length && tokens >= 1; k++) {
        const f = ready[(rr + k) % ready.length]!;
        f.deficit += PACKET;
        const n = Math.min(Math.floor(f.deficit), Math.floor(tokens), f.queued);
        if (n <= 0) continue;
        let left = n;
        const parts: Buffer[] = [];
        while (left > 0) {
          const b = f.queue[0]!;
          if (b.length <= left) {
            parts.push(b);
            f.queue.shift();
            left -= b.length;
          } else {
            parts.push(b.subarray(0, left));
            f.queue[0] = b.subarray(left);
            left = 0;
          }
        }
        f.queued -= n;
        f.deficit -= n;
        tokens -= n;
        count(f.path, n);
        progressed = true;
        const ok = f.res.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
        if (!ok) f.blocked = true;
        if (f.queued < highWater / 2 && f.upstream?.isPaused()) f.upstream.resume();
      }
      rr++;
      if (!progressed) break;
    }
    // Responses whose body is all out end; a flow with nothing queued keeps no deficit (DRR).
    for (const f of [...flows]) {
      if (f.queued === 0) f.deficit = 0;
      if (f.headersSent && f.upstreamEnded && f.queued === 0) {
        f.res.end();
        finish(f);
      }
    }
  };
  const timer = setInterval(tick, tickMs);

  const upstreamHeaders = (req: IncomingMessage): OutgoingHttpHeaders => ({
    ...endToEnd(req.headers),
    host: req.headers.host ?? up.host,
  });

  /** Unshaped: piped both ways, no delay. */
  const passThrough = (req: IncomingMessage, res: ServerResponse) => {
    st.unshapedRequests++;
    const u = httpRequest(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: upstreamHeaders(req), agent },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.statusMessage, endToEnd(ur.headers));
        ur.on('data', (d: Buffer) => {
          st.unshapedBytes += d.length;
        });
        ur.pipe(res);
        ur.on('error', () => res.destroy());
      },
    );
    u.on('error', () => {
      st.upstreamErrors++;
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('upstream error');
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) {
        st.aborted++;
        u.destroy();
      }
    });
    req.pipe(u);
  };

  const shaped = (req: IncomingMessage, res: ServerResponse, path: string) => {
    start();
    st.shapedRequests++;
    const p = byPath.get(path);
    if (p) p.requests++;
    else byPath.set(path, { requests: 1, bytes: 0 });
    const f: Flow = {
      res,
      path,
      queue: [],
      queued: 0,
      upstreamEnded: false,
      upstream: null,
      head: null,
      headersSent: false,
      blocked: false,
      deficit: 0,
      done: false,
    };
    flows.push(f);
    res.on('drain', () => {
      f.blocked = false;
    });
    const u = httpRequest(
      { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: upstreamHeaders(req), agent },
      (ur) => {
        if (f.done) {
          ur.destroy();
          return;
        }
        f.upstream = ur;
        f.head = {
          status: ur.statusCode ?? 502,
          message: ur.statusMessage ?? '',
          headers: endToEnd(ur.headers),
          notBefore: performance.now() + rttMs,
        };
        ur.on('data', (d: Buffer) => {
          if (f.done) return;
          f.queue.push(d);
          f.queued += d.length;
          if (f.queued >= highWater) ur.pause();
        });
        ur.on('end', () => {
          f.upstreamEnded = true;
          f.upstream = null;
        });
        ur.on('error', () => {
          st.upstreamErrors++;
          res.destroy();
          finish(f);
        });
      },
    );
    u.on('error', () => {
      if (f.done) return;
      st.upstreamErrors++;
      // A 502 also waits for its round trip (and for the link): it is an answer like any other.
      f.head = {
        status: 502,
        message: 'Bad Gateway',
        headers: { 'content-type': 'text/plain', 'access-control-allow-origin': '*' },
        notBefore: performance.now() + rttMs,
      };
      const body = Buffer.from('upstream error');
      f.queue = [body];
      f.queued = body.length;
      f.upstreamEnded = true;
    });
    res.on('close', () => {
      if (!res.writableFinished && !f.done) {
        st.aborted++;
        u.destroy();
        f.upstream?.destroy();
      }
      finish(f);
    });
    req.pipe(u);
  };

  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (isShaped(path)) shaped(req, res, path);
    else passThrough(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    trace,
    start,
    currentRate,
    stats() {
      const elapsed = traceNow();
      return {
        ...st,
        startedAt,
        elapsed,
        capacityBits: startedAt === null ? 0 : bitsBetween(trace, 0, elapsed),
        byPath: Object.fromEntries([...byPath].map(([k, v]) => [k, { ...v }])),
        byRendition: Object.fromEntries(byRendition),
      };
    },
    async close() {
      clearInterval(timer);
      for (const f of [...flows]) {
        f.upstream?.destroy();
        finish(f);
      }
      for (const s of sockets) s.destroy();
      agent.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ---- calibration ---------------------------------------------------------------------------------------------------

/**
 * A throwaway upstream on 127.0.0.1:0 answering GET /v/calibration/r/v0/{n}.m4s with `bytes` of zeros (a segment-like
 * body, with the origin's CORS header).
 */
export async function bodyServer(bytes: number): Promise<{ url: string; close(): Promise<void> }> {
  const body = Buffer.alloc(bytes);
  const server = createServer((req, res) => {
    res.writeHead(200, {
      'content-type': 'video/mp4',
      'content-length': body.length,
      'access-control-allow-origin': '*',
      'x-upstream-range': req.headers.range ?? '',
    });
    res.end(body);
  });
  return listenLocal(server);
}

/** `server` listening on 127.0.0.1:0: its URL, and a close that ends its open connections too. */
export async function listenLocal(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** GETs `url` and counts body bytes, with the time of the headers and of each chunk (performance.now()). */
export function timedGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headersAt: number; sentAt: number; chunks: { at: number; n: number }[]; bytes: number }> {
  return new Promise((resolve, reject) => {
    const sentAt = performance.now();
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      const headersAt = performance.now();
      const chunks: { at: number; n: number }[] = [];
      let bytes = 0;
      res.on('data', (d: Buffer) => {
        chunks.push({ at: performance.now(), n: d.length });
        bytes += d.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headersAt, sentAt, chunks, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Bytes of `chunks` that arrived within [from, to) (performance.now() ms). */
export function bytesWithin(chunks: readonly { at: number; n: number }[], from: number, to: number): number {
  return chunks.filter((c) => c.at >= from && c.at < to).reduce((a, c) => a + c.n, 0);
}

/**
 * Downloads a large segment-like body through a shaper at a constant `mbps` for `seconds` and returns the rate
 * delivered over that window (from the first body byte), its relative error, and the bytes.
 */
export async function calibrate(mbps = 2, seconds = 10): Promise<{ mbps: number; error: number; bytes: number }> {
  const body = await bodyServer(Math.ceil(((mbps * 1e6) / 8) * (seconds + 1)));
  const shaper = await startShaper({ upstream: body.url, trace: constantTrace(mbps) });
  try {
    const r = await timedGet(`${shaper.url}/v/calibration/r/v0/1.m4s`);
    const first = r.chunks[0]?.at ?? r.headersAt;
    const bytes = bytesWithin(r.chunks, first, first + seconds * 1000);
    const got = (bytes * 8) / seconds / 1e6;
    return { mbps: got, error: got / mbps - 1, bytes };
  } finally {
    await shaper.close();
    await body.close();
  }
}
