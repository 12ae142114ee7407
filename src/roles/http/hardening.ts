// The HTTP server against slow, oversized and abusive clients, and the security headers of every answer.
//
//   head        `maxHeaderBytes` → Node answers 431 itself; the whole head within `headersTimeoutSeconds` → else
//               Node answers 408 and closes (its connection check runs every `connectionsCheckingInterval`, 30 s by
//               default: set here to a fraction of the timeout, so a slowloris head is cut off on time).
//   idle        a connection that sends and receives nothing for `idleTimeoutSeconds` is closed (socket timeout,
//               and the keep-alive wait between requests).
//   body        no overall request timeout (an upload may take hours): BodyGuard watches each request that has a
//               body and cuts its connection when, after `bodyGraceSeconds`, its average rate is below
//               `minBodyBytesPerSecond`, or when no byte came for `idleTimeoutSeconds`. Time the server itself is
//               not reading (backpressure: a full request buffer, a paused socket) counts for neither. One shared
//               timer, running only while some body is in flight; nothing per request but a Set entry.
//   headers     @fastify/helmet: a Content-Security-Policy fitting the web app and its player (Shaka over Media
//               Source Extensions), nosniff, a referrer policy, no X-Powered-By. Per route: Cross-Origin-Resource-
//               Policy cross-origin for playback (/v/, fetched by players on other sites), same-origin elsewhere;
//               the embed page (/watch/<id>?embed) may be framed by any site, every other page only by this one;
//               Strict-Transport-Security only on https requests.
//   rate        @fastify/rate-limit on the API (/api/*): `rateLimitPerMinute` per client address (its /64 for
//               IPv6), answered 429 RATE_LIMITED. Playback (/v/), tus upload traffic, the web app and /healthz are
//               not counted; 0 turns it off.
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import type { FastifyHttpOptions, FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../core/config.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { UPLOADS_PATH } from '../upload/uploads.ts';

export type HardeningLogger = (msg: string, extra?: Record<string, unknown>) => void;

/** How often Node checks request heads against headersTimeout: a quarter of it, within [100 ms, 1 s]. */
export function connectionsCheckingInterval(headersTimeoutMs: number): number {
  return Math.min(1000, Math.max(100, Math.floor(headersTimeoutMs / 4)));
}

/**
 * The Fastify constructor options of the hardened server (spread into `Fastify({...})`): timeouts, the head size
 * limit and whether to trust X-Forwarded-*. The head deadline and its check interval go to http.createServer, so
 * they hold from the first connection on.
 */
export function serverOptions(config: Config) {
  const s = config.server;
  const headersTimeout = Math.round(s.headersTimeoutSeconds * 1000);
  const idle = Math.round(s.idleTimeoutSeconds * 1000);
  return {
    // socket.setTimeout: no byte either way for this long closes the connection.
    connectionTimeout: idle,
    // Between requests on a kept-alive connection (Node announces it in `Keep-Alive: timeout=`).
    keepAliveTimeout: idle,
    // No deadline on a whole request: uploads are long; slow bodies are BodyGuard's.
    requestTimeout: 0,
    trustProxy: s.trustProxy,
    http: {
      maxHeaderSize: s.maxHeaderBytes,
      headersTimeout,
      requestTimeout: 0,
      connectionsCheckingInterval: connectionsCheckingInterval(headersTimeout),
    },
  } satisfies FastifyHttpOptions<Server>;
}

export interface BodyGuardOptions {
  /** Average body bytes per second required once the grace period is over (0: no rate rule). */
  minBytesPerSecond: number;
  /** Milliseconds of (client-paced) body time before the rate rule applies. */
  graceMs: number;
  /** Milliseconds without a body byte (the server reading) after which the connection is cut. */
  idleMs: number;
  /** Check period; default a quarter of min(grace, idle), within [100 ms, 1 s]. */
  tickMs?: number;
  /** Told of each cut-off (after the socket is destroyed). */
  onCutOff?: (info: { reason: 'slow' | 'idle'; label: string; bytes: number; ms: number }) => void;
}

interface Watched {
  req: IncomingMessage;
  socket: Socket;
  label: string;
  startBytes: number;
  lastBytes: number;
  /** When a byte last came (or the server last held the body back). */
  lastProgress: number;
  /** Milliseconds the body was the client's to send (server backpressure excluded). */
  activeMs: number;
  lastTick: number;
}

/**
 * Cuts the connection of a request whose body arrives too slowly. It reads only `socket.bytesRead` (adding a
 * 'data' listener would start the body flowing before its consumer is attached), so what it counts is every byte
 * after the head was parsed.
 */
export class BodyGuard {
  private readonly watched = new Set<Watched>();
  private readonly opts: BodyGuardOptions;
  private readonly tickMs: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(opts: BodyGuardOptions) {
    this.opts = opts;
    this.tickMs = opts.tickMs ?? Math.min(1000, Math.max(100, Math.floor(Math.min(opts.graceMs, opts.idleMs) / 4)));
  }

  /** Requests being watched now. */
  get size(): number {
    return this.watched.size;
  }

  /** Starts watching a request's body until it is complete or its connection is gone. */
  watch(req: IncomingMessage, label = ''): void {
    const socket = req.socket as Socket | null;
    // Injected requests (light-my-request) have no real socket.
    if (!socket || typeof socket.bytesRead !== 'number' || socket.destroyed || req.complete) return;
    const now = performance.now();
    const w: Watched = {
      req,
      socket,
      label,
      startBytes: socket.bytesRead,
      lastBytes: socket.bytesRead,
      lastProgress: now,
      activeMs: 0,
      lastTick: now,
    };
    this.watched.add(w);
    req.once('close', () => this.watched.delete(w));
    if (!this.timer) {
      this.timer = setInterval(() => this.check(), this.tickMs);
      this.timer.unref();
    }
  }

  /** One pass over the watched requests (the timer's; public for tests). */
  check(now = performance.now()): void {
    const { minBytesPerSecond, graceMs, idleMs } = this.opts;
    for (const w of this.watched) {
      const { req, socket } = w;
      if (req.complete || req.destroyed || socket.destroyed) {
        this.watched.delete(w);
        continue;
      }
      const dt = now - w.lastTick;
      w.lastTick = now;
      const bytes = socket.bytesRead;
      // The server is not reading: the request's buffer is full or its socket paused (a slow consumer).
      const held = socket.isPaused() || req.readableLength >= req.readableHighWaterMark;
      if (bytes !== w.lastBytes || held) {
        w.lastBytes = bytes;
        w.lastProgress = now;
      }
      if (!held) w.activeMs += dt;
      const body = bytes - w.startBytes;
      let reason: 'slow' | 'idle' | null = null;
      if (now - w.lastProgress >= idleMs) reason = 'idle';
      else if (minBytesPerSecond > 0 && w.activeMs >= graceMs && body < (minBytesPerSecond * w.activeMs) / 1000) {
        reason = 'slow';
      }
      if (reason) {
        this.watched.delete(w);
        socket.destroy();
        this.opts.onCutOff?.({ reason, label: w.label, bytes: body, ms: Math.round(w.activeMs) });
      }
    }
    if (this.watched.size === 0) this.stop();
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.stop();
    this.watched.clear();
  }
}

function hasBody(req: IncomingMessage): boolean {
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) return true;
  const cl = req.headers['content-length'];
  return cl !== undefined && cl !== '0';
}

/** The request's path for routing decisions: the matched route's pattern, else the raw path (a 404). */
function routePath(req: FastifyRequest): string {
  return req.routeOptions.url ?? req.url.split('?', 1)[0]!;
}

/** tus protocol requests (the creation POST and the HEAD/PATCH/DELETE of an upload), not the JSON routes beside. */
function isTus(path: string): boolean {
  return path === UPLOADS_PATH || path === `${UPLOADS_PATH}/:id`;
}

/** Requests the rate limit counts: the JSON API, less tus traffic. */
export function isRateLimited(path: string): boolean {
  return (path === '/api' || path.startsWith('/api/')) && !isTus(path);
}

/** Playback: media, manifests and the time source, fetched by players on any site. */
function isPlayback(path: string): boolean {
  return path.startsWith('/v/');
}

function isEmbed(req: FastifyRequest, path: string): boolean {
  return path === '/watch/:id' && typeof req.query === 'object' && req.query !== null && 'embed' in req.query;
}

/** Origins (scheme://host[:port]) of the given absolute URLs; empty ones skipped. */
function origins(...urls: string[]): string[] {
  const out = new Set<string>();
  for (const u of urls) {
    if (!u) continue;
    try {
      out.add(new URL(u).origin);
    } catch {
      // the config validated it; nothing to add
    }
  }
  return [...out];
}

/**
 * The Content-Security-Policy directives of the web app (everything but frame-ancestors, set per page).
 *   script-src 'self'          one module script from /assets/ (Vite; no inline script, no eval)
 *   style-src 'self'           one stylesheet; the pages and Shaka set element styles through the CSSOM only
 *   media-src 'self' blob: data:  Shaka plays through Media Source Extensions (a blob: URL on the video)
 *   img-src 'self' data: blob: posters and thumbnail sprites; the data: favicon; Shaka's data:/blob: images
 *   connect-src 'self'         the API, tus uploads, SSE and the player's manifests and segments
 *   worker-src 'self' blob:    a player worker, if one is ever configured
 * plus the origin of server.publicUrl (playback links may point there) for media, images and fetches, and the
 * DRM license servers for fetches. Not helmet's default upgrade-insecure-requests: it would break a server reached
 * over plain http (HSTS does that job on https).
 */
export function cspDirectives(config: Config): Record<string, string[]> {
  const media = origins(config.server.publicUrl);
  const drm = origins(config.security.widevineLicenseUrl, config.security.playreadyLicenseUrl);
  return {
    'default-src': ["'self'"],
    'base-uri': ["'self'"],
    'script-src': ["'self'"],
    'script-src-attr': ["'none'"],
    'style-src': ["'self'"],
    'img-src': ["'self'", 'data:', 'blob:', ...media],
    'media-src': ["'self'", 'blob:', 'data:', ...media],
    'connect-src': [...new Set(["'self'", ...media, ...drm])],
    'worker-src': ["'self'", 'blob:'],
    'font-src': ["'self'", 'data:'],
    'object-src': ["'none'"],
    'form-action': ["'self'"],
  };
}

const HSTS = 'max-age=31536000';

export interface Hardening {
  bodies: BodyGuard;
}

/**
 * Security headers, the body guard and the API rate limit. Call (and await) it right after the error handlers
 * and before any route, so its hooks run first: before authentication, and on every route and 404.
 */
export async function registerHardening(
  app: FastifyInstance,
  config: Config,
  log?: HardeningLogger,
): Promise<Hardening> {
  const s = config.server;
  const bodies = new BodyGuard({
    minBytesPerSecond: s.minBodyBytesPerSecond,
    graceMs: s.bodyGraceSeconds * 1000,
    idleMs: s.idleTimeoutSeconds * 1000,
    onCutOff: (info) => log?.('request body too slow: connection closed', info),
  });
  app.addHook('onClose', (_instance, done) => {
    bodies.close();
    done();
  });

  // Before helmet's hooks (added when it loads, below): the per-route headers, and which requests are the embed
  // page, for helmet's frame-ancestors.
  const embeds = new WeakSet<IncomingMessage>();
  app.addHook('onRequest', (req, reply, done) => {
    const path = routePath(req);
    const raw = reply.raw;
    raw.setHeader('cross-origin-resource-policy', isPlayback(path) ? 'cross-origin' : 'same-origin');
    if (isEmbed(req, path)) embeds.add(req.raw);
    else raw.setHeader('x-frame-options', 'SAMEORIGIN');
    if (req.protocol === 'https') raw.setHeader('strict-transport-security', HSTS);
    if (hasBody(req.raw)) bodies.watch(req.raw, `${req.method} ${path}`);
    done();
  });

  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        ...cspDirectives(config),
        'frame-ancestors': [(req: IncomingMessage) => (embeds.has(req) ? '*' : "'self'")],
      },
    },
    // Set per route by the hook above.
    crossOriginResourcePolicy: false,
    xFrameOptions: false,
    strictTransportSecurity: false,
    referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
  });

  if (s.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      global: false,
      max: s.rateLimitPerMinute,
      timeWindow: 60_000,
      errorResponseBuilder: (_req, ctx) =>
        new SmoothcastError(
          'RATE_LIMITED',
          `more than ${ctx.max} API requests a minute from this address: retry in ${ctx.after}`,
        ),
    });
    const limit = app.rateLimit();
    // After helmet's hooks, so a 429 carries the same headers as any answer.
    app.addHook('onRequest', async (req, reply) => {
      if (!isRateLimited(routePath(req))) return;
      try {
        await limit.call(app, req, reply);
      } catch (err) {
        if (!(err instanceof SmoothcastError)) throw err;
        return reply.code(err.status).send({ error: err.toJSON() });
      }
    });
  }
  return { bodies };
}
