// Ids are validated before any path is built: `..`, `%2e%2e`, an encoded slash or a NUL in an id, on the API and
// on playback routes, answer 400 (INVALID_ID) — or 404 where the router itself finds no route — and no file in or
// beside the data folder is created, changed or removed.
import assert from 'node:assert/strict';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.ts';

function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      // The database (and its WAL) is left out: it is not a path a request could reach.
      else if (!/smoothcast\.db/.test(name)) out.push(`${p} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out.join('\n');
}

/** A request with its path sent exactly as written (fetch would resolve `..` before sending). */
function raw(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const EVIL = [
  '..',
  '%2e%2e',
  '..%2f..%2fetc',
  '%2e%2e%2f%2e%2e',
  'a%2fb',
  'abc%00def',
  '%00',
  '....%5c',
  'AAAAAAAAAAAAAAAA',
];

describe('path traversal ids', () => {
  let p: TestPlatform;
  let sentinel: string;
  before(async () => {
    p = await startTestPlatform();
    sentinel = join(dirname(p.dataDir), `${p.dataDir.split('/').pop()}-sentinel`);
    writeFileSync(sentinel, 'outside');
  });
  after(() => p.stop());

  it('refuses them on every id-taking route before touching a file', async () => {
    const before = snapshot(p.dataDir);
    const sentinelBefore = statSync(sentinel).mtimeMs;
    for (const id of EVIL) {
      const paths = [
        ['GET', `/api/assets/${id}`],
        ['DELETE', `/api/assets/${id}`],
        ['GET', `/api/assets/${id}/captions`],
        ['POST', `/api/assets/${id}/captions?language=en`],
        ['DELETE', `/api/assets/aaaaaaaaaaaaaaaa/captions/${id}`],
        ['GET', `/api/live/${id}`],
        ['GET', `/api/users/${id}`],
        ['DELETE', `/api/tokens/${id}`],
        ['GET', `/api/webhooks/${id}`],
        ['HEAD', `/api/uploads/${id}`],
        ['GET', `/v/${id}/master.m3u8`],
        ['GET', `/v/${id}/manifest.mpd`],
        ['GET', `/v/${id}/poster.jpg`],
        ['GET', `/v/aaaaaaaaaaaaaaaa/${id}/v0.m3u8`],
        ['GET', `/v/aaaaaaaaaaaaaaaa/r1-1/${id}/0.m4s`],
        ['GET', `/v/aaaaaaaaaaaaaaaa/r1-1/v0/${id}`],
        ['GET', `/v/${id}/player.json`],
      ] as const;
      for (const [method, path] of paths) {
        const res = await raw(
          p.url,
          method,
          path,
          {
            ...p.auth,
            ...(method === 'POST' ? { 'content-type': 'text/vtt' } : {}),
            ...(method === 'HEAD' ? { 'tus-resumable': '1.0.0' } : {}),
          },
          method === 'POST' ? 'WEBVTT\n' : undefined,
        );
        assert.ok([400, 404].includes(res.status), `${method} ${path} → ${res.status} ${res.body}`);
        if (res.status === 400 && method !== 'HEAD') {
          const body = JSON.parse(res.body) as { error: { code: string } };
          assert.ok(['INVALID_ID', 'BAD_REQUEST'].includes(body.error.code), `${method} ${path}: ${body.error.code}`);
        }
      }
    }
    assert.equal(snapshot(p.dataDir), before, 'no file in the data folder changed');
    assert.equal(statSync(sentinel).mtimeMs, sentinelBefore);
    // And the server keeps serving.
    assert.equal((await fetch(`${p.url}/healthz`)).status, 200);
  });

  it('answers a plainly invalid asset id with 400 INVALID_ID', async () => {
    for (const id of ['..', '%2e%2e', 'a%2fb', 'abc%00def']) {
      const r = await raw(p.url, 'GET', `/api/assets/${id}`, p.auth);
      assert.equal(r.status, 400, `${id}: ${r.body}`);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'INVALID_ID');
      const v = await raw(p.url, 'GET', `/v/${id}/master.m3u8`, {});
      assert.equal(v.status, 400, `${id}: ${v.body}`);
    }
  });
});
