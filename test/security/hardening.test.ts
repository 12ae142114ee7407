// The hardened HTTP server through the real platform (port 0, short deadlines): oversized heads, slowloris heads and
// upload bodies are cut off while other clients are served; the security headers on the web app without breaking
// cross-origin playback; uploaded SVG/HTML never comes back as a document; the API rate limit.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { endlessHead, rawClient } from '../helpers/raw-client.ts';

const TIMEOUTS = { headersTimeoutSeconds: 1, idleTimeoutSeconds: 3, minBodyBytesPerSecond: 1000, bodyGraceSeconds: 1 };
/** Bounded slack on every cut-off (the server's check periods, a loaded test machine). */
const SLACK_MS = 3000;
const TUS = { 'tus-resumable': '1.0.0' };

function metadata(m: Record<string, string>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`)
    .join(',');
}

function* oneByteAtATime(): Generator<string> {
  for (;;) yield 'x';
}

/** Creates a tus upload (optionally with its whole body at once); its URL and id. */
async function createUpload(p: TestPlatform, size: number, meta: Record<string, string>, body?: Buffer) {
  const res = await p.api('/api/uploads', {
    method: 'POST',
    headers: {
      ...TUS,
      'upload-length': String(size),
      'upload-metadata': metadata(meta),
      ...(body ? { 'content-type': 'application/offset+octet-stream' } : {}),
    },
    ...(body ? { body } : {}),
  });
  const text = await res.text();
  assert.ok(res.status === 201 || res.status === 204, `create: ${res.status} ${text}`);
  const location = res.headers.get('location');
  assert.ok(location, 'Location header');
  const url = new URL(location, p.url);
  return { url, path: url.pathname, id: url.pathname.split('/').at(-1)!, status: res.status };
}

describe('hardened server (real platform)', () => {
  let p: TestPlatform;
  let port: number;

  before(async () => {
    p = await startTestPlatform({ server: TIMEOUTS });
    port = Number(new URL(p.url).port);
  });
  after(() => p?.stop());

  it('answers 20 KB of headers with 431, and serves the next request', async () => {
    const head = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20 * 1024)}\r\n\r\n`;
    const r = await rawClient(port, head, null, 0, 10_000);
    assert.match(r.response, /^HTTP\/1\.1 431 /);
    const res = await fetch(`${p.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { ok: boolean }).ok, true);
  });

  it('cuts off a GET head trickled byte by byte within headersTimeout, serving another client meanwhile', async () => {
    const slow = rawClient(port, '', endlessHead('/healthz'), 50, 1000 + SLACK_MS + 3000);
    await sleep(300);
    const res = await fetch(`${p.url}/healthz`);
    assert.equal(res.status, 200, 'served while the slow head trickles');
    await res.text();
    const r = await slow;
    assert.ok(r.closedMs !== null, 'the slow head was cut off');
    assert.ok(r.closedMs < 1000 + SLACK_MS, `cut off after ${Math.round(r.closedMs)} ms`);
  });

  it('cuts off a tus PATCH whose body trickles, serving others meanwhile', async () => {
    const up = await createUpload(p, 100_000, { filename: 'clip.mp4', title: 'Slow' });
    const head =
      `PATCH ${up.path} HTTP/1.1\r\nHost: x\r\nAuthorization: ${p.auth.authorization}\r\nTus-Resumable: 1.0.0\r\n` +
      'Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\nContent-Length: 100000\r\n\r\n';
    const slow = rawClient(port, head, oneByteAtATime(), 100, 1000 + SLACK_MS + 3000);
    await sleep(400);
    const res = await fetch(`${p.url}/healthz`);
    assert.equal(res.status, 200, 'served while the slow body trickles');
    await res.text();
    const r = await slow;
    assert.ok(r.closedMs !== null, 'the slow body was cut off');
    assert.ok(r.closedMs < 1000 + SLACK_MS, `cut off after ${Math.round(r.closedMs)} ms`);
    assert.ok(
      p.logs.some((l) => l.includes('request body too slow')),
      'the cut-off is logged',
    );
    // The upload is still there to resume (tus keeps what arrived; its lock is free again).
    const offset = await until(
      'the upload to answer HEAD',
      async () => {
        const h = await p.api(up.path, { method: 'HEAD', headers: TUS });
        return h.status === 200 ? Number(h.headers.get('upload-offset')) : undefined;
      },
      10_000,
    );
    assert.ok(offset < 100_000, `offset ${offset}`);
  });

  it('puts helmet headers (CSP) on the web app, lets the embed page be framed, keeps /v/ CORS', async () => {
    const page = await fetch(`${p.url}/`);
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy') ?? '';
    for (const d of [
      "default-src 'self'",
      "script-src 'self'",
      "media-src 'self' blob: data:",
      "frame-ancestors 'self'",
    ]) {
      assert.ok(csp.split(';').includes(d), `${d} in ${csp}`);
    }
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(page.headers.get('x-frame-options'), 'SAMEORIGIN');
    assert.ok(page.headers.get('referrer-policy'));
    assert.equal(page.headers.get('strict-transport-security'), null, 'no HSTS over plain http');

    const embed = await fetch(`${p.url}/watch/abcdefghijklmnop?embed`);
    assert.ok(embed.headers.get('content-security-policy')?.split(';').includes('frame-ancestors *'));
    assert.equal(embed.headers.get('x-frame-options'), null);

    const time = await fetch(`${p.url}/v/time`, { headers: { origin: 'https://player.example' } });
    assert.equal(time.status, 200);
    assert.equal(time.headers.get('access-control-allow-origin'), '*');
    assert.equal(time.headers.get('cross-origin-resource-policy'), 'cross-origin');
    const preflight = await fetch(`${p.url}/v/abc/master.m3u8`, {
      method: 'OPTIONS',
      headers: { origin: 'https://player.example', 'access-control-request-method': 'GET' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), '*');
  });

  it('never serves an uploaded SVG or HTML back as a document', async () => {
    const files = [
      {
        meta: { filename: 'x.svg', title: 'svg', filetype: 'image/svg+xml' },
        body: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
      },
      {
        meta: { filename: 'x.html', title: 'html', filetype: 'text/html' },
        body: Buffer.from('<!doctype html><script>alert(1)</script>'),
      },
    ];
    for (const f of files) {
      const up = await createUpload(p, f.body.length, f.meta, f.body);
      // Every way a client could ask for the upload back, with and without credentials.
      const tries: Response[] = [
        await p.api(up.path),
        await p.api(up.path, { headers: { ...TUS, accept: 'text/html,image/svg+xml,*/*' } }),
        await fetch(up.url),
        await p.api(`${up.path}/asset`),
      ];
      for (const res of tries) {
        const type = res.headers.get('content-type') ?? '';
        const body = await res.text();
        assert.ok(!/html|svg|xml/i.test(type), `${res.url}: ${res.status} ${type}`);
        assert.ok(!body.includes('<script>'), `${res.url} gave the file back: ${body.slice(0, 100)}`);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      }
      assert.equal(tries[0]!.status, 404, 'GET of an upload is not a route');
    }
  });
});

describe('API rate limit (real platform)', () => {
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ server: { rateLimitPerMinute: 3 } });
  });
  after(() => p?.stop());

  it('answers 429 RATE_LIMITED past the limit, and does not count playback', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await fetch(`${p.url}/v/time`)).status, 200);
    for (let i = 0; i < 3; i++) {
      const res = await p.api('/api/assets');
      assert.equal(res.status, 200, `request ${i + 1}: ${await res.text()}`);
    }
    const res = await p.api('/api/assets');
    assert.equal(res.status, 429);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'RATE_LIMITED');
    assert.ok(body.error.message);
    assert.ok(Number(res.headers.get('retry-after')) > 0);
    assert.equal((await fetch(`${p.url}/v/time`)).status, 200, 'playback still served');
    assert.equal((await fetch(`${p.url}/healthz`)).status, 200, '/healthz still served');
  });
});
