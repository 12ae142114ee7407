// HTTP semantics of the origin against one small ready asset: virtual segments are byte-exact slices of the one
// CMAF file per rendition, immutable, cacheable and range-addressable (RFC 9110 §13, §14); manifests are short-lived;
// every error is JSON with a stable code; the server keeps answering after all of them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { indexBuffer } from '../../src/media/bmff/index.ts';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { cli, importSettled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';
import { fetchText, parseMediaPlaylist } from '../helpers/verify.ts';

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** ffmpeg's stderr for a run (empty when it reports nothing). */
async function runFfmpeg(args: string[]): Promise<string> {
  const { stderr } = await promisify(execFile)('ffmpeg', args, { timeout: 120_000, maxBuffer: 1 << 24 });
  return stderr;
}

interface Rendition {
  id: string;
  kind: 'video' | 'audio';
  /** The rendition's CMAF file as written on disk. */
  file: Buffer;
  playlistUrl: string;
  initUrl: string;
  segmentUrls: string[];
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
  assert.equal(typeof body.error?.code, 'string', JSON.stringify(body));
  assert.equal(typeof body.error?.message, 'string', JSON.stringify(body));
  return body.error as { code: string; message: string };
}

async function bytes(res: Response): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

describe('origin HTTP semantics', () => {
  let p: TestPlatform;
  let asset: AssetJson;
  let rev: string;
  const renditions: Rendition[] = [];
  /** A video segment in the middle of the asset, used by the header tests. */
  let seg: { url: string; body: Buffer };
  let source: string;

  before(async () => {
    p = await startTestPlatform();
    source = await h264Clip({ seconds: 6 });
    asset = await importSettled(p, source, 120_000);
    assert.equal(asset.status, 'ready', JSON.stringify(asset.error));

    const masterUrl = new URL(asset.playback.hls!, p.url).href;
    const master = await fetchText(masterUrl);
    const m = /^(r[0-9a-z-]+)\//m.exec(master) ?? /URI="(r[0-9a-z-]+)\//.exec(master);
    assert.ok(m?.[1], `no rev in ${master}`);
    rev = m[1];
    for (const rr of asset.renditions) {
      const playlistUrl = new URL(`${rev}/${rr.id}.m3u8`, masterUrl).href;
      const pl = parseMediaPlaylist(await fetchText(playlistUrl));
      renditions.push({
        id: rr.id,
        kind: rr.type,
        file: readFileSync(join(p.dataDir, 'media', 'assets', asset.id, rev, `${rr.id}.mp4`)),
        playlistUrl,
        initUrl: new URL(pl.map, playlistUrl).href,
        segmentUrls: pl.segments.map((s) => new URL(s.uri, playlistUrl).href),
      });
    }
    assert.ok(renditions.some((x) => x.kind === 'video') && renditions.some((x) => x.kind === 'audio'));
    const v = renditions.find((x) => x.kind === 'video')!;
    assert.ok(v.segmentUrls.length >= 3, `a 6 s source in 2 s segments: ${v.segmentUrls.length}`);
    const url = v.segmentUrls[1]!;
    seg = { url, body: await bytes(await fetch(url)) };
  });

  after(async () => {
    await p?.stop();
  });

  it('serves init and media segments as exact, immutable slices of the rendition file', async () => {
    for (const r of renditions) {
      const { track, segments } = indexBuffer(r.file);
      assert.equal(segments.length, r.segmentUrls.length, `${r.id}: playlist lists every fragment`);
      const type = r.kind === 'video' ? 'video/mp4' : 'audio/mp4';
      const parts: Buffer[] = [];
      const expected = [
        { url: r.initUrl, offset: 0, size: track.initSize },
        ...segments.map((s, n) => ({ url: r.segmentUrls[n]!, offset: s.offset, size: s.size })),
      ];
      for (const e of expected) {
        const res = await fetch(e.url);
        assert.equal(res.status, 200, e.url);
        assert.equal(res.headers.get('content-type'), type, e.url);
        assert.equal(res.headers.get('cache-control'), IMMUTABLE, e.url);
        assert.equal(res.headers.get('access-control-allow-origin'), '*', e.url);
        assert.equal(res.headers.get('accept-ranges'), 'bytes', e.url);
        const etag = res.headers.get('etag') ?? '';
        assert.match(etag, /^"[^"]+"$/, `${e.url}: a strong, quoted ETag (${etag})`);
        const body = await bytes(res);
        assert.equal(Number(res.headers.get('content-length')), body.length, e.url);
        assert.equal(body.length, e.size, e.url);
        assert.ok(body.equals(r.file.subarray(e.offset, e.offset + e.size)), `${e.url}: bytes differ from the file`);
        parts.push(body);
      }
      // init + every segment in order is the file up to the end of the last mdat: nothing skipped, nothing
      // repeated; what follows (if anything) is the mfra random-access trailer, not media.
      const whole = Buffer.concat(parts);
      const last = segments.at(-1)!;
      assert.equal(whole.length, last.offset + last.size, r.id);
      assert.ok(whole.equals(r.file.subarray(0, whole.length)), `${r.id}: init + segments ≠ the file's head`);
      const rest = r.file.subarray(whole.length);
      if (rest.length > 0) assert.equal(rest.subarray(4, 8).toString('latin1'), 'mfra', `${r.id}: trailer`);
      // ETags differ between objects (a cache must never confuse two segments).
      const etags = new Set<string>();
      for (const e of expected) etags.add((await fetch(e.url, { method: 'HEAD' })).headers.get('etag') ?? '');
      assert.equal(etags.size, expected.length, `${r.id}: every object has its own ETag`);
    }
  });

  it('answers byte ranges: closed, suffix, open, unsatisfiable, and several (whole body)', async () => {
    const size = seg.body.length;
    assert.ok(size > 1000, `segment of ${size} bytes`);
    const range = (h: string) => fetch(seg.url, { headers: { range: h } });

    const closed = await range('bytes=10-99');
    assert.equal(closed.status, 206);
    assert.equal(closed.headers.get('content-range'), `bytes 10-99/${size}`);
    assert.equal(closed.headers.get('content-length'), '90');
    assert.equal(closed.headers.get('cache-control'), IMMUTABLE);
    assert.ok((await bytes(closed)).equals(seg.body.subarray(10, 100)));

    const suffix = await range('bytes=-100');
    assert.equal(suffix.status, 206);
    assert.equal(suffix.headers.get('content-range'), `bytes ${size - 100}-${size - 1}/${size}`);
    assert.ok((await bytes(suffix)).equals(seg.body.subarray(size - 100)));

    const open = await range('bytes=100-');
    assert.equal(open.status, 206);
    assert.equal(open.headers.get('content-range'), `bytes 100-${size - 1}/${size}`);
    assert.equal(Number(open.headers.get('content-length')), size - 100);
    assert.ok((await bytes(open)).equals(seg.body.subarray(100)));

    // A last-byte-pos past the end is clamped to the object (RFC 9110 §14.1.1).
    const past = await range(`bytes=${size - 5}-${size + 1000}`);
    assert.equal(past.status, 206);
    assert.equal(past.headers.get('content-range'), `bytes ${size - 5}-${size - 1}/${size}`);
    assert.ok((await bytes(past)).equals(seg.body.subarray(size - 5)));

    const unsatisfiable = await range('bytes=999999999-');
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers.get('content-range'), `bytes */${size}`);
    assert.equal((await errorOf(unsatisfiable)).code, 'RANGE_NOT_SATISFIABLE');

    // Several ranges: a server may ignore the header and send the whole object (RFC 9110 §14.2).
    const multi = await range('bytes=0-9,20-29');
    assert.equal(multi.status, 200);
    assert.equal(multi.headers.get('content-range'), null);
    assert.ok((await bytes(multi)).equals(seg.body));
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const get = await fetch(seg.url);
    await get.arrayBuffer();
    const head = await fetch(seg.url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    for (const h of ['content-type', 'cache-control', 'etag', 'accept-ranges', 'access-control-allow-origin']) {
      assert.equal(head.headers.get(h), get.headers.get(h), h);
    }
    assert.equal(Number(head.headers.get('content-length')), seg.body.length, 'HEAD tells the real size');
    assert.equal((await bytes(head)).length, 0);

    const headRange = await fetch(seg.url, { method: 'HEAD', headers: { range: 'bytes=10-99' } });
    assert.equal(headRange.status, 206);
    assert.equal(headRange.headers.get('content-range'), `bytes 10-99/${seg.body.length}`);
    assert.equal(headRange.headers.get('content-length'), '90');
    assert.equal((await bytes(headRange)).length, 0);
  });

  it('revalidates with If-None-Match: 304 for the same ETag, 200 for another', async () => {
    const etag = (await fetch(seg.url, { method: 'HEAD' })).headers.get('etag')!;
    const same = await fetch(seg.url, { headers: { 'if-none-match': etag } });
    assert.equal(same.status, 304);
    assert.equal(same.headers.get('etag'), etag);
    assert.equal((await bytes(same)).length, 0);
    const listed = await fetch(seg.url, { headers: { 'if-none-match': `"nope", ${etag}` } });
    assert.equal(listed.status, 304, 'a list of validators matches if one does');
    await listed.arrayBuffer();
    const other = await fetch(seg.url, { headers: { 'if-none-match': '"something-else"' } });
    assert.equal(other.status, 200);
    assert.ok((await bytes(other)).equals(seg.body));
  });

  it('answers a CORS preflight on a segment URL', async () => {
    const res = await fetch(seg.url, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://player.example',
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'range',
      },
    });
    assert.equal(res.status, 204);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /\bGET\b/);
    assert.match(res.headers.get('access-control-allow-methods') ?? '', /\bHEAD\b/);
    assert.match(res.headers.get('access-control-allow-headers') ?? '', /\brange\b/i);
    assert.equal((await bytes(res)).length, 0);
    // A cross-origin player reads these response headers of a range answer.
    const get = await fetch(seg.url, { headers: { origin: 'https://player.example', range: 'bytes=0-0' } });
    await get.arrayBuffer();
    const exposed = (get.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    for (const h of ['content-range', 'content-length', 'etag']) assert.ok(exposed.includes(h), h);
  });

  it('serves manifests with their media types and a short cache lifetime', async () => {
    const cases = [
      { url: new URL(asset.playback.hls!, p.url).href, type: 'application/vnd.apple.mpegurl' },
      { url: renditions[0]!.playlistUrl, type: 'application/vnd.apple.mpegurl' },
      { url: new URL(asset.playback.dash!, p.url).href, type: 'application/dash+xml' },
    ];
    for (const c of cases) {
      const res = await fetch(c.url);
      assert.equal(res.status, 200, c.url);
      assert.equal(res.headers.get('content-type')?.split(';')[0], c.type, c.url);
      assert.equal(res.headers.get('access-control-allow-origin'), '*', c.url);
      const cc = res.headers.get('cache-control') ?? '';
      const maxAge = Number(/max-age=(\d+)/.exec(cc)?.[1]);
      assert.ok(maxAge > 0 && maxAge <= 600, `${c.url}: short max-age (${cc})`);
      assert.doesNotMatch(cc, /immutable/, c.url);
      assert.ok((await res.text()).length > 0);
    }
  });

  it('answers errors as JSON with stable codes and keeps serving', async () => {
    const id = asset.id;
    const v = renditions.find((x) => x.kind === 'video')!;
    const unknown = 'a'.repeat(16);
    const cases: { method?: string; path: string; status: number; code?: string }[] = [
      { path: '/v/BAD!/master.m3u8', status: 400, code: 'INVALID_ID' },
      { path: '/api/assets/..%2f..', status: 400, code: 'INVALID_ID' },
      { path: '/api/assets/..%2f..%2fsmoothcast.db/events', status: 400, code: 'INVALID_ID' },
      { path: `/api/assets/${unknown}`, status: 404, code: 'ASSET_NOT_FOUND' },
      { path: `/v/${unknown}/master.m3u8`, status: 404, code: 'ASSET_NOT_FOUND' },
      { path: `/v/${unknown}/manifest.mpd`, status: 404, code: 'ASSET_NOT_FOUND' },
      { path: `/v/${id}/${rev}/${v.id}/${v.segmentUrls.length}.m4s`, status: 404, code: 'NOT_FOUND' },
      { path: `/v/${id}/${rev}/${v.id}/999999999.m4s`, status: 404, code: 'NOT_FOUND' },
      { path: `/v/${id}/${rev}/v9/0.m4s`, status: 404, code: 'NOT_FOUND' },
      { path: `/v/${id}/${rev}/${v.id}/0.ts`, status: 404, code: 'NOT_FOUND' },
      { path: `/v/${id}/r999-9/${v.id}/0.m4s`, status: 404 },
      { path: `/v/${id}/r999-9/${v.id}/init.mp4`, status: 404 },
      { path: `/v/${id}/r999-9/${v.id}.m3u8`, status: 404 },
      { path: `/v/${unknown}/${rev}/${v.id}/0.m4s`, status: 404 },
      { path: '/no/such/route', status: 404, code: 'NOT_FOUND' },
      { method: 'DELETE', path: `/api/assets/${unknown}`, status: 404, code: 'ASSET_NOT_FOUND' },
      { method: 'DELETE', path: '/api/assets/BAD!', status: 400, code: 'INVALID_ID' },
      { path: '/api/assets?limit=0', status: 400, code: 'BAD_REQUEST' },
      { path: '/api/assets?limit=abc', status: 400, code: 'BAD_REQUEST' },
      { path: '/api/assets?offset=-1', status: 400, code: 'BAD_REQUEST' },
      { path: `/api/assets/${unknown}/events`, status: 404, code: 'ASSET_NOT_FOUND' },
    ];
    for (const c of cases) {
      // The API as the admin; playback and unknown routes as anyone.
      const init = { method: c.method ?? 'GET', headers: c.path.startsWith('/api/') ? p.auth : {} };
      const res = await fetch(p.url + c.path, init);
      const what = `${c.method ?? 'GET'} ${c.path}`;
      assert.equal(res.status, c.status, what);
      const err = await errorOf(res);
      if (c.code) assert.equal(err.code, c.code, `${what}: ${JSON.stringify(err)}`);
      assert.doesNotMatch(err.message, new RegExp(p.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), what);
    }
    const health = await p.get<{ ok: boolean }>('/healthz');
    assert.equal(health.ok, true);
    // The asset itself is untouched by all of the above.
    const still = await fetch(seg.url);
    assert.equal(still.status, 200);
    assert.ok((await bytes(still)).equals(seg.body));
  });

  it('answers 404, not cacheable, for a segment another process deleted under a cached index', async () => {
    // A second copy of the asset, removed by `smoothcast rm` (another process: this server's index cache still
    // holds its indexes, as a second origin behind a load balancer would after a DELETE made through the first).
    const other = await importSettled(p, source, 120_000);
    const id = other.id;
    assert.equal(other.status, 'ready', JSON.stringify(other.error));
    const masterUrl = new URL(other.playback.hls!, p.url).href;
    const otherRev = /^(r[0-9a-z-]+)\//m.exec(await fetchText(masterUrl))?.[1];
    const urls = [`${p.url}/v/${id}/${otherRev}/v0/init.mp4`, `${p.url}/v/${id}/${otherRev}/v0/0.m4s`];
    for (const url of urls) assert.equal((await fetch(url, { method: 'HEAD' })).status, 200, url);
    for (const url of urls) await (await fetch(url)).arrayBuffer();
    const rm = await cli(['rm', '--data', p.dataDir, id]);
    assert.equal(rm.code, 0, rm.stderr);
    const requests = [...urls.map((url) => ({ url, range: '' })), { url: urls[1]!, range: 'bytes=0-9' }];
    for (const { url, range } of requests) {
      const res = await fetch(url, range ? { headers: { range } } : {});
      assert.equal(res.status, 404, url);
      assert.equal(res.headers.get('etag'), null, `${url}: an error carries no validator of the object`);
      assert.doesNotMatch(res.headers.get('cache-control') ?? '', /immutable|max-age=[1-9]/, url);
      const err = await errorOf(res);
      assert.equal(err.code, 'NOT_FOUND', url);
      assert.ok(!err.message.includes(p.dataDir), `${url}: the message shows no server path (${err.message})`);
    }
    assert.equal((await fetch(masterUrl)).status, 404);
    assert.equal((await p.get<{ ok: boolean }>('/healthz')).ok, true);
  });

  it('serves byte-range HLS and SegmentBase DASH from single files that are init + sidx + the same fragments', async () => {
    const a = await p.get<AssetJson>(`/api/assets/${asset.id}`);
    assert.ok(a.playback.hlsByteRange && a.playback.dashSegmentBase);
    const brMaster = new URL(a.playback.hlsByteRange, p.url).href;
    for (const r of renditions) {
      const single = Buffer.from(await (await fetch(`${p.url}/v/${asset.id}/${rev}/${r.id}.mp4`)).arrayBuffer());
      const { track, segments } = indexBuffer(r.file);
      const sidxSize = single.readUInt32BE(track.initSize);
      assert.equal(single.subarray(track.initSize + 4, track.initSize + 8).toString('latin1'), 'sidx');
      const last = segments.at(-1)!;
      assert.ok(single.subarray(0, track.initSize).equals(r.file.subarray(0, track.initSize)), 'init first');
      assert.ok(
        single.subarray(track.initSize + sidxSize).equals(r.file.subarray(track.initSize, last.offset + last.size)),
        'then the stored fragments',
      );
      // The byte-range playlist addresses exactly the bytes of the per-segment URLs.
      const text = await fetchText(new URL(`${rev}/${r.id}-br.m3u8`, brMaster).href);
      assert.match(text, new RegExp(`#EXT-X-MAP:URI="${r.id}.mp4",BYTERANGE="${track.initSize}@0"`));
      const ranges = [...text.matchAll(/#EXT-X-BYTERANGE:(\d+)@(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
      assert.equal(ranges.length, r.segmentUrls.length);
      for (const [n, [size, offset]] of ranges.entries()) {
        const res = await fetch(`${p.url}/v/${asset.id}/${rev}/${r.id}.mp4`, {
          headers: { range: `bytes=${offset}-${offset! + size! - 1}` },
        });
        assert.equal(res.status, 206);
        assert.ok((await bytes(res)).equals(await bytes(await fetch(r.segmentUrls[n]!))), `${r.id} segment ${n}`);
      }
    }
    // Real demuxers play both (ffmpeg's HLS with byte ranges, its DASH with SegmentBase).
    for (const url of [brMaster, new URL(a.playback.dashSegmentBase, p.url).href]) {
      const out = await runFfmpeg(['-v', 'error', '-i', url, '-map', '0', '-f', 'null', '-']);
      assert.equal(out.trim(), '', `${url}: ${out}`);
    }
  });

  it('exports a folder of single files and manifests that plays with no server, byte-identical to the origin', async () => {
    const dir = join(p.dataDir, 'export-test');
    const r = await cli(['export', '--data', p.dataDir, '--json', asset.id, dir]);
    assert.equal(r.code, 0, r.stderr);
    const listing = JSON.parse(r.stdout) as { files: string[] };
    for (const x of renditions) {
      assert.ok(listing.files.includes(`${x.id}.mp4`));
      const served = await bytes(await fetch(`${p.url}/v/${asset.id}/${rev}/${x.id}.mp4`));
      assert.ok(readFileSync(join(dir, `${x.id}.mp4`)).equals(served), `${x.id}.mp4 as the origin serves it`);
    }
    assert.equal(listing.files.filter((f) => f.endsWith('.m4s')).length, 0, 'no chunk files');
    for (const f of ['master.m3u8', 'manifest.mpd']) {
      const out = await runFfmpeg(['-v', 'error', '-i', join(dir, f), '-map', '0', '-f', 'null', '-']);
      assert.equal(out.trim(), '', `${f}: ${out}`);
    }
    const again = await cli(['export', '--data', p.dataDir, asset.id, dir]);
    assert.equal(again.code, 1, 'refuses a non-empty folder');
    assert.match(again.stderr, /not empty/);
  });
});
