// The hardened server on a bare Fastify (port 0): the Node server gets the head limit and deadlines, slow heads and
// slow bodies are cut off while others are served, fast and backpressured bodies are not, the security headers per
// route, and the API rate limit. BodyGuard's rules are also checked pass by pass on stand-in sockets.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance } from 'fastify';
import { endlessHead, rawClient } from '../../../test/helpers/raw-client.ts';
import { type ConfigInput, loadConfig } from '../../core/config.ts';
import { BodyGuard, cspDirectives, isRateLimited, registerHardening, serverOptions } from './hardening.ts';

const SERVER = {
  headersTimeoutSeconds: 1,
  idleTimeoutSeconds: 3,
  minBodyBytesPerSecond: 1000,
  bodyGraceSeconds: 1,
  rateLimitPerMinute: 5,
  // The tests give each case its own client address in X-Forwarded-For (the rate limit counts per address).
  trustProxy: true,
};
const SLACK_MS = 3000;

function configOf(server: Record<string, unknown>, more: ConfigInput = {}) {
  return loadConfig({ env: {}, overrides: { ...more, server: { host: '127.0.0.1', port: 0, ...server } } });
}

async function start(server: Record<string, unknown>, routes: (app: FastifyInstance) => void) {
  const config = configOf(server);
  const app = Fastify({ ...serverOptions(config), logger: false });
  const hardening = await registerHardening(app, config);
  // Bodies are the handlers' to read (as tus and the HTTP ingest do).
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));
  routes(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { app, port, base: `http://127.0.0.1:${port}`, hardening };
}

/** Reads the whole raw body (the handler's own stream, as tus does). */
async function drain(req: IncomingMessage): Promise<number> {
  let n = 0;
  for await (const chunk of req) n += (chunk as Buffer).length;
  return n;
}

function* bytes(b: string): Generator<string> {
  for (;;) yield b;
}

describe('serverOptions and the Node server', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start(SERVER, (app) => {
      app.get('/', async () => 'home');
    });
  });
  after(() => s.app.close());

  it('gives the Node server the head deadline, a short check interval, the idle timeouts and no request timeout', () => {
    const server = s.app.server as typeof s.app.server & { connectionsCheckingInterval: number };
    assert.equal(server.headersTimeout, 1000);
    assert.equal(server.requestTimeout, 0);
    assert.equal(server.connectionsCheckingInterval, 250);
    assert.equal(server.timeout, 3000);
    assert.equal(server.keepAliveTimeout, 3000);
    const opts = serverOptions(configOf({}));
    assert.equal(opts.http.headersTimeout, 15_000);
    assert.equal(opts.http.connectionsCheckingInterval, 1000);
    assert.equal(opts.http.maxHeaderSize, 16 * 1024);
    assert.equal(opts.trustProxy, false);
  });

  it('answers 20 KB of headers with 431 and goes on serving', async () => {
    const big = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20 * 1024)}\r\n\r\n`;
    const r = await rawClient(s.port, big, null, 0, 10_000);
    assert.match(r.response, /^HTTP\/1\.1 431 /);
    const res = await fetch(`${s.base}/`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'home');
  });

  it('cuts off a head sent byte by byte after headersTimeout, serving others meanwhile', async () => {
    const slow = rawClient(s.port, '', endlessHead(), 50, 1000 + SLACK_MS + 2000);
    await sleep(300);
    const res = await fetch(`${s.base}/`);
    assert.equal(res.status, 200, 'another client is served while the slow head trickles');
    await res.text();
    const r = await slow;
    assert.ok(r.closedMs !== null, 'the slow head was cut off');
    assert.ok(r.closedMs < 1000 + SLACK_MS, `cut off after ${Math.round(r.closedMs)} ms`);
    assert.ok(r.closedMs >= 900, `not before the deadline (${Math.round(r.closedMs)} ms)`);
  });

  it('closes a kept-alive connection after the idle timeout without a spurious 408', async () => {
    const r = await rawClient(s.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n', null, 0, 3000 + SLACK_MS + 2000);
    assert.ok(r.closedMs !== null && r.closedMs < 3000 + SLACK_MS, `closed after ${r.closedMs} ms`);
    assert.equal(r.response.match(/HTTP\/1\.1 /g)?.length, 1, r.response);
    assert.match(r.response, /^HTTP\/1\.1 200 /);
  });
});

describe('request bodies', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start(SERVER, (app) => {
      app.get('/', async () => 'home');
      app.route({
        method: ['POST', 'PATCH'],
        url: '/api/uploads/:id',
        handler: async (req) => ({ bytes: await drain(req.raw) }),
      });
    });
  });
  after(() => s.app.close());

  it('cuts off a body trickled below minBodyBytesPerSecond after the grace period, serving others meanwhile', async () => {
    const head = 'PATCH /api/uploads/abc HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n';
    const slow = rawClient(s.port, head, bytes('x'), 100, 1000 + SLACK_MS + 3000);
    await sleep(500);
    assert.equal(s.hardening.bodies.size, 1, 'the body is watched');
    const res = await fetch(`${s.base}/`);
    assert.equal(res.status, 200);
    await res.text();
    const r = await slow;
    assert.ok(r.closedMs !== null, 'the slow body was cut off');
    assert.ok(r.closedMs < 1000 + SLACK_MS, `cut off after ${Math.round(r.closedMs)} ms`);
    assert.equal(s.hardening.bodies.size, 0, 'nothing left watched');
  });

  it('lets a steady 4 MB upload through (spread over about 2.5 s, with a chunked one beside it)', async () => {
    const piece = Buffer.alloc(160 * 1024, 7);
    const size = 25 * piece.length;
    const stream = new ReadableStream<Uint8Array>({
      async start(controller) {
        for (let i = 0; i < 25; i++) {
          controller.enqueue(piece);
          await sleep(100);
        }
        controller.close();
      },
    });
    const chunked = fetch(`${s.base}/api/uploads/def`, {
      method: 'POST',
      body: new ReadableStream<Uint8Array>({
        async start(controller) {
          for (let i = 0; i < 20; i++) {
            controller.enqueue(Buffer.alloc(10_000, 1));
            await sleep(100);
          }
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    const res = await fetch(`${s.base}/api/uploads/abc`, {
      method: 'PATCH',
      headers: { 'content-length': String(size) },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { bytes: size });
    const c = await chunked;
    assert.equal(c.status, 200);
    assert.deepEqual(await c.json(), { bytes: 200_000 });
    await until(() => s.hardening.bodies.size === 0);
  });
});

describe('a body the server holds back (backpressure)', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    // A high minimum rate: without the backpressure exclusion, the bytes that fit in the buffers while the handler
    // waits would be far below it.
    s = await start({ ...SERVER, minBodyBytesPerSecond: 200_000, bodyGraceSeconds: 0.5 }, (app) => {
      app.post('/api/slow-consumer', async (req) => {
        await sleep(2000);
        return { bytes: await drain(req.raw) };
      });
    });
  });
  after(() => s.app.close());

  it('is not cut off while the server is not reading it', async () => {
    const size = 8 * 2 ** 20;
    const res = await fetch(`${s.base}/api/slow-consumer`, { method: 'POST', body: Buffer.alloc(size, 3) });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { bytes: size });
  });
});

describe('BodyGuard rules, pass by pass', () => {
  class FakeSocket {
    bytesRead = 100;
    destroyed = false;
    paused = false;
    isPaused() {
      return this.paused;
    }
    destroy() {
      this.destroyed = true;
    }
  }
  function fakeRequest() {
    const socket = new FakeSocket();
    const req = Object.assign(new EventEmitter(), {
      socket,
      complete: false,
      destroyed: false,
      readableLength: 0,
      readableHighWaterMark: 16384,
    });
    return { req, socket, asReq: req as unknown as IncomingMessage };
  }
  const guard = (cuts: string[]) =>
    new BodyGuard({
      minBytesPerSecond: 1000,
      graceMs: 1000,
      idleMs: 3000,
      tickMs: 60_000,
      onCutOff: (i) => cuts.push(i.reason),
    });

  it('cuts a body below the rate once the grace period is over, not before', () => {
    const cuts: string[] = [];
    const g = guard(cuts);
    const { socket, asReq } = fakeRequest();
    const t0 = performance.now();
    g.watch(asReq);
    socket.bytesRead += 500;
    g.check(t0 + 900);
    assert.equal(socket.destroyed, false, 'within the grace period');
    socket.bytesRead += 100;
    g.check(t0 + 1500); // 600 bytes in 1.5 s
    assert.equal(socket.destroyed, true);
    assert.deepEqual(cuts, ['slow']);
    assert.equal(g.size, 0);
    g.close();
  });

  it('keeps a body at the rate, and cuts it when it stops for idleMs', () => {
    const cuts: string[] = [];
    const g = new BodyGuard({ minBytesPerSecond: 0, graceMs: 1000, idleMs: 3000, tickMs: 60_000 });
    const { socket, asReq } = fakeRequest();
    const t0 = performance.now();
    g.watch(asReq);
    for (let t = 500; t <= 5000; t += 500) {
      socket.bytesRead += 1;
      g.check(t0 + t);
    }
    assert.equal(socket.destroyed, false, 'a byte every 500 ms is progress (no rate rule)');
    g.check(t0 + 7000);
    assert.equal(socket.destroyed, false, '2 s without a byte');
    g.check(t0 + 8100);
    assert.equal(socket.destroyed, true, 'more than 3 s without a byte');
    assert.deepEqual(cuts, []);
    g.close();
  });

  it('does not count time the server holds the body back', () => {
    const cuts: string[] = [];
    const g = guard(cuts);
    const { req, socket, asReq } = fakeRequest();
    const t0 = performance.now();
    g.watch(asReq);
    socket.bytesRead += 16384;
    req.readableLength = 16384; // the request's buffer is full: Node stopped reading the socket
    g.check(t0 + 500);
    g.check(t0 + 5000);
    g.check(t0 + 10_000);
    assert.equal(socket.destroyed, false, 'held back for 10 s: neither slow nor idle');
    req.readableLength = 0;
    socket.paused = true; // or its socket is paused
    g.check(t0 + 20_000);
    assert.equal(socket.destroyed, false);
    socket.paused = false;
    socket.bytesRead += 1000;
    g.check(t0 + 20_400);
    assert.equal(socket.destroyed, false, 'reading again at a good rate');
    g.close();
    assert.deepEqual(cuts, []);
  });

  it('forgets a request once it is complete or closed, and its timer stops', () => {
    const g = new BodyGuard({ minBytesPerSecond: 1000, graceMs: 1000, idleMs: 3000, tickMs: 10 });
    const a = fakeRequest();
    const b = fakeRequest();
    g.watch(a.asReq);
    g.watch(b.asReq);
    assert.equal(g.size, 2);
    a.req.complete = true;
    b.req.emit('close');
    assert.equal(g.size, 1);
    g.check();
    assert.equal(g.size, 0);
    assert.equal((g as unknown as { timer: unknown }).timer, null, 'no timer while nothing is watched');
    assert.equal(a.socket.destroyed, false);
  });
});

describe('security headers', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start(SERVER, (app) => {
      app.get('/', async (_req, reply) => reply.type('text/html').send('<!doctype html>'));
      app.get('/watch/:id', async (_req, reply) => reply.type('text/html').send('<!doctype html>'));
      app.get('/v/*', async (_req, reply) => {
        reply.header('access-control-allow-origin', '*');
        return 'media';
      });
      app.get('/api/thing', async () => ({ ok: true }));
    });
  });
  after(() => s.app.close());

  it('puts the CSP, nosniff, a referrer policy and same-origin framing on a page', async () => {
    const res = await fetch(`${s.base}/`);
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const d of [
      "default-src 'self'",
      "script-src 'self'",
      "style-src 'self'",
      "media-src 'self' blob: data:",
      "worker-src 'self' blob:",
      "connect-src 'self'",
      "object-src 'none'",
      "frame-ancestors 'self'",
    ]) {
      assert.ok(csp.split(';').includes(d), `${d} in ${csp}`);
    }
    assert.ok(!/unsafe-(inline|eval)/.test(csp), csp);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'strict-origin-when-cross-origin');
    assert.equal(res.headers.get('x-frame-options'), 'SAMEORIGIN');
    assert.equal(res.headers.get('cross-origin-resource-policy'), 'same-origin');
    assert.equal(res.headers.get('x-powered-by'), null);
    assert.equal(res.headers.get('strict-transport-security'), null, 'no HSTS over http');
  });

  it('lets any site frame the embed page, and only that page', async () => {
    const embed = await fetch(`${s.base}/watch/abcdefghijklmnop?embed&token=t`);
    assert.ok(embed.headers.get('content-security-policy')?.split(';').includes('frame-ancestors *'));
    assert.equal(embed.headers.get('x-frame-options'), null);
    const page = await fetch(`${s.base}/watch/abcdefghijklmnop`);
    assert.ok(page.headers.get('content-security-policy')?.split(';').includes("frame-ancestors 'self'"));
    assert.equal(page.headers.get('x-frame-options'), 'SAMEORIGIN');
  });

  it('marks playback cross-origin readable, keeping its CORS header', async () => {
    const res = await fetch(`${s.base}/v/abc/master.m3u8`, { headers: { origin: 'https://other.example' } });
    assert.equal(res.headers.get('cross-origin-resource-policy'), 'cross-origin');
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  });

  it('sends HSTS only on https requests (here, through a trusted proxy)', async () => {
    const res = await fetch(`${s.base}/api/thing`, { headers: { 'x-forwarded-proto': 'https' } });
    assert.equal(res.headers.get('strict-transport-security'), 'max-age=31536000');
  });

  it('adds server.publicUrl and the DRM license servers to the CSP', () => {
    const d = cspDirectives(
      configOf(
        { publicUrl: 'https://cdn.example.com/media' },
        { security: { widevineLicenseUrl: 'https://license.example.net/wv?x=1' } },
      ),
    );
    assert.deepEqual(d['media-src'], ["'self'", 'blob:', 'data:', 'https://cdn.example.com']);
    assert.deepEqual(d['img-src'], ["'self'", 'data:', 'blob:', 'https://cdn.example.com']);
    assert.deepEqual(d['connect-src'], ["'self'", 'https://cdn.example.com', 'https://license.example.net']);
  });
});

describe('the API rate limit', () => {
  let s: Awaited<ReturnType<typeof start>>;
  before(async () => {
    s = await start(SERVER, (app) => {
      app.get('/healthz', async () => ({ ok: true }));
      app.get('/api/thing', async () => ({ ok: true }));
      app.post('/api/uploads', async (_req, reply) => reply.code(201).send());
      app.route({ method: ['HEAD', 'PATCH'], url: '/api/uploads/:id', handler: async () => '' });
      app.get('/api/uploads/:id/asset', async () => ({ ok: true }));
      app.get('/v/*', async () => 'media');
    });
  });
  after(() => s.app.close());

  const from = (ip: string) => ({ 'x-forwarded-for': ip });

  it('answers 429 RATE_LIMITED past rateLimitPerMinute per address', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${s.base}/api/thing`, { headers: from('192.0.2.1') });
      assert.equal(res.status, 200, `request ${i + 1}`);
    }
    const res = await fetch(`${s.base}/api/thing`, { headers: from('192.0.2.1') });
    assert.equal(res.status, 429);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'RATE_LIMITED');
    assert.match(body.error.message, /5 API requests a minute/);
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', 'the 429 has the security headers too');
    const other = await fetch(`${s.base}/api/thing`, { headers: from('192.0.2.2') });
    assert.equal(other.status, 200, 'another address has its own count');
  });

  it('does not count playback, tus traffic or /healthz', async () => {
    const h = from('192.0.2.3');
    for (let i = 0; i < 8; i++) {
      assert.equal((await fetch(`${s.base}/v/a/b.m4s`, { headers: h })).status, 200);
      assert.equal((await fetch(`${s.base}/healthz`, { headers: h })).status, 200);
      assert.equal((await fetch(`${s.base}/api/uploads`, { method: 'POST', headers: h })).status, 201);
      assert.equal((await fetch(`${s.base}/api/uploads/abc`, { method: 'PATCH', headers: h })).status, 200);
    }
    assert.equal((await fetch(`${s.base}/api/thing`, { headers: h })).status, 200);
    assert.equal(isRateLimited('/api/uploads/:id/asset'), true, 'the JSON route beside tus is the API');
    assert.equal(isRateLimited('/api/uploads/:id'), false);
    assert.equal(isRateLimited('/v/*'), false);
  });

  it('is off at rateLimitPerMinute 0', async () => {
    const config = configOf({ ...SERVER, rateLimitPerMinute: 0 });
    const app = Fastify({ ...serverOptions(config), logger: false });
    await registerHardening(app, config);
    app.get('/api/thing', async () => ({ ok: true }));
    for (let i = 0; i < 20; i++) assert.equal((await app.inject('/api/thing')).statusCode, 200);
    await app.close();
  });
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}
