// The virtual-viewer load tool (src/tools/viewers.ts) against a real platform playing a tiny asset, and against a
// scripted origin that answers 404, hangs, checks tokens or points elsewhere: what it reports must be what went
// over the wire, it must keep a player's pace, and it must end on time whatever the server does.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { AssetJson } from '../../src/roles/api/present.ts';
import {
  LogHistogram,
  parseMediaPlaylist,
  type RequestRecord,
  runViewers,
  type ViewersReport,
} from '../../src/tools/viewers.ts';
import { cli, importSettled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';

/** Upper bound of the segments a paced track can fetch in `seconds`: the startup burst, then real time. */
function pacedMax(tracks: number, seconds: number, shortestSegment: number, startup = 2): number {
  return tracks * (startup + Math.ceil(seconds / shortestSegment) + 1);
}

describe('viewers: a real platform', () => {
  let p: TestPlatform;
  let asset: AssetJson;
  let url: string;

  before(async () => {
    p = await startTestPlatform();
    asset = await importSettled(p, await h264Clip({ seconds: 4, width: 320, height: 180 }), 120_000);
    assert.equal(asset.status, 'ready', JSON.stringify(asset.error));
    url = new URL(asset.playback.hls!, p.url).href;
  });
  after(() => p?.stop());

  it('10 viewers for 5 s: no errors, paced like players, bytes equal to the segments fetched', async () => {
    const fetched = new Map<string, number>();
    const records: RequestRecord[] = [];
    const r = await runViewers({
      url,
      count: 10,
      durationSeconds: 5,
      startSpreadSeconds: 1,
      onRequest: (rec) => {
        records.push(rec);
        if (rec.kind === 'init' || rec.kind === 'segment') fetched.set(rec.url, (fetched.get(rec.url) ?? 0) + 1);
      },
    });
    assert.deepEqual(r.errors, { total: 0, byKind: {} });
    assert.ok(r.elapsedSeconds >= 4.9 && r.elapsedSeconds < 6.5, `ran ${r.elapsedSeconds} s`);
    assert.equal(r.live, false);
    assert.equal(r.requests.multivariant, 10);
    // Each viewer plays the variant and its audio: two media playlists and two init segments.
    assert.equal(r.requests.playlist, 20);
    assert.equal(r.requests.init, 20);
    assert.equal(r.requests.total, records.length);
    assert.equal(r.segments, records.filter((x) => x.kind === 'segment').length);
    assert.deepEqual(Object.values(r.renditions), [10]);
    // Paced: more than the startup bursts, far fewer than a loop of the 4 s asset as fast as it goes.
    assert.ok(r.segments >= 20 * 3, `${r.segments} segments`);
    assert.ok(r.segments <= pacedMax(20, 5, 0.9), `${r.segments} segments: not paced`);
    // The bytes reported are the bytes of what was fetched: each URL fetched once more here, times its count.
    let expected = 0;
    for (const [u, n] of fetched) {
      const res = await fetch(u);
      assert.equal(res.status, 200, u);
      expected += (await res.arrayBuffer()).byteLength * n;
    }
    assert.equal(r.bytes.media, expected);
    assert.ok(r.bytes.total > r.bytes.media);
    const l = r.segmentLatencyMs;
    assert.equal(l.count, r.segments + r.requests.init);
    assert.ok(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
    assert.ok(r.playlistLatencyMs.count === 30 && r.playlistLatencyMs.max > 0);
    assert.equal(r.playlistAgeSeconds, null);
    assert.ok(r.throughputMbps > 0);
  });

  it('smoothcast viewers --json: the same report from the command line', async () => {
    const res = await cli(['viewers', url, '--count', '2', '--duration', '2', '--pick', 'bottom', '--json'], {
      timeoutMs: 30_000,
    });
    assert.equal(res.code, 0, res.stderr);
    const r = JSON.parse(res.stdout) as ViewersReport;
    assert.equal(r.viewers, 2);
    assert.equal(r.pick, 'bottom');
    assert.equal(r.errors.total, 0);
    assert.ok(r.segments > 0);
    assert.match(res.stderr, /^ +1\/2 s +\d+ playing +\d+ req +0 err/m, 'a progress line per second');
  });
});

describe('viewers: a scripted origin', () => {
  let server: Server;
  let base: string;
  const seen: string[] = [];

  before(async () => {
    const playlist = (segments: string[], map = 'init.mp4') =>
      [
        '#EXTM3U',
        '#EXT-X-VERSION:7',
        '#EXT-X-TARGETDURATION:1',
        '#EXT-X-PLAYLIST-TYPE:VOD',
        `#EXT-X-MAP:URI="${map}"`,
        ...segments.flatMap((s) => ['#EXTINF:1.0,', s]),
        '#EXT-X-ENDLIST',
        '',
      ].join('\n');
    const master = (variant: string) =>
      `#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000,RESOLUTION=16x16\n${variant}\n#EXT-X-STREAM-INF:BANDWIDTH=50000\nlow.m3u8\n`;
    server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      seen.push(req.url ?? '');
      const send = (status: number, body: string | Buffer) => {
        res.writeHead(status, { 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      switch (u.pathname) {
        // Segments that are all missing, and one that never answers.
        case '/missing/master.m3u8':
          return send(200, master('v.m3u8'));
        case '/missing/v.m3u8':
          return send(200, playlist(['0.m4s', '1.m4s', 'hang.m4s', '3.m4s']));
        case '/missing/hang.m4s':
          return; // no answer
        // Everything needs ?token=abc, which the playlists do not repeat.
        case '/signed/master.m3u8':
        case '/signed/v.m3u8':
        case '/signed/init.mp4':
        case '/signed/0.m4s':
        case '/signed/1.m4s': {
          if (u.searchParams.get('token') !== 'abc') return send(403, 'token');
          if (u.pathname.endsWith('master.m3u8')) return send(200, master('v.m3u8'));
          if (u.pathname.endsWith('v.m3u8')) return send(200, playlist(['0.m4s', '1.m4s']));
          return send(200, Buffer.alloc(1000));
        }
        // A variant on a host that is not this machine.
        case '/remote/master.m3u8':
          return send(200, master('http://192.0.2.1/v.m3u8'));
        default:
          return send(404, 'not found');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('counts errors by status and timeouts, keeps the pace, and ends on time', async () => {
    const t0 = performance.now();
    const r = await runViewers({
      url: `${base}/missing/master.m3u8`,
      count: 5,
      durationSeconds: 3,
      startSpreadSeconds: 0.5,
      timeoutMs: 400,
    });
    const s = (performance.now() - t0) / 1000;
    assert.ok(s >= 2.9 && s < 3.8, `took ${s} s`);
    assert.equal(r.segments, 0);
    assert.equal(r.bytes.media, 0);
    const e = r.errors.byKind;
    assert.ok((e['http 404'] ?? 0) >= 5 * 3, JSON.stringify(e));
    assert.ok((e.timeout ?? 0) >= 1, JSON.stringify(e));
    assert.equal(r.errors.total, r.requests.init + r.requests.segment);
    assert.equal(r.requests.init, 5, 'the init is asked once per track, not per segment');
    assert.ok(r.requests.segment <= pacedMax(5, 3, 1), `${r.requests.segment} segment requests: not paced`);
    assert.deepEqual(r.renditions, { '16x16 100k': 5 });
  });

  it('carries the query of the playlist URL (a playback token) to every URL, and picks bottom', async () => {
    seen.length = 0;
    const r = await runViewers({
      url: `${base}/signed/master.m3u8?token=abc`,
      count: 2,
      durationSeconds: 1.5,
      pick: 'bottom',
      startSpreadSeconds: 0,
    });
    // The bottom variant (low.m3u8) is not on the signed path: 404 there, and nothing else failed.
    assert.deepEqual(r.renditions, { 'audio 50k': 2 });
    assert.deepEqual(Object.keys(r.errors.byKind), ['http 404']);
    const top = await runViewers({
      url: `${base}/signed/master.m3u8?token=abc`,
      count: 2,
      durationSeconds: 1.5,
      startSpreadSeconds: 0,
    });
    assert.deepEqual(top.errors, { total: 0, byKind: {} });
    assert.ok(top.segments >= 4);
    assert.equal(top.bytes.media, 1000 * (top.segments + top.requests.init));
    assert.ok(seen.filter((u) => u.startsWith('/signed/') && !u.includes('token=abc')).length === 0, seen.join(' '));
  });

  it('refuses a host that is not a loopback address, at the start and inside playlists', async () => {
    await assert.rejects(
      runViewers({ url: 'http://192.0.2.1/master.m3u8', count: 1, durationSeconds: 1 }),
      /not a loopback address/,
    );
    await assert.rejects(runViewers({ url: `${base}/x.m3u8`, count: 0, durationSeconds: 1 }), /count must be/);
    await assert.rejects(runViewers({ url: `${base}/x.m3u8`, count: 1, durationSeconds: 4000 }), /durationSeconds/);
    const r = await runViewers({ url: `${base}/remote/master.m3u8`, count: 1, durationSeconds: 1.2, timeoutMs: 500 });
    assert.ok((r.errors.byKind['network EREMOTE'] ?? 0) >= 1, JSON.stringify(r.errors));
    const res = await cli(['viewers', 'http://192.0.2.1/master.m3u8', '--duration', '1'], { timeoutMs: 30_000 });
    assert.equal(res.code, 2);
    assert.match(res.stderr, /not a loopback address/);
  });
});

describe('viewers: playlists and statistics', () => {
  it('dates the live edge from EXT-X-PROGRAM-DATE-TIME, segments and trailing parts', () => {
    const pl = parseMediaPlaylist(
      [
        '#EXTM3U',
        '#EXT-X-TARGETDURATION:2',
        '#EXT-X-PART-INF:PART-TARGET=0.5',
        '#EXT-X-MEDIA-SEQUENCE:7',
        '#EXT-X-MAP:URI="init.mp4"',
        '#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:00.000Z',
        '#EXTINF:2.0,',
        '7.m4s',
        '#EXT-X-PART:DURATION=0.5,URI="8.0.m4s",INDEPENDENT=YES',
        '#EXT-X-PART:DURATION=0.5,URI="8.1.m4s"',
        '#EXTINF:1.0,',
        '8.m4s',
        '#EXT-X-PART:DURATION=0.5,URI="9.0.m4s",INDEPENDENT=YES',
        '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="9.1.m4s"',
        '',
      ].join('\n'),
    );
    assert.equal(pl.ended, false);
    assert.equal(pl.partTarget, 0.5);
    assert.deepEqual(
      pl.segments.map((s) => [s.msn, s.uri, s.duration, s.map?.uri]),
      [
        [7, '7.m4s', 2, 'init.mp4'],
        [8, '8.m4s', 1, 'init.mp4'],
      ],
    );
    assert.equal(pl.edgeWallClockMs, Date.parse('2025-01-01T00:00:03.500Z'));
  });

  it('reads byte ranges, an offset left out following the previous range of the URI', () => {
    const pl = parseMediaPlaylist(
      '#EXTM3U\n#EXT-X-MAP:URI="a.mp4",BYTERANGE="800@0"\n#EXTINF:2,\n#EXT-X-BYTERANGE:100@800\na.mp4\n' +
        '#EXTINF:2,\n#EXT-X-BYTERANGE:50\na.mp4\n#EXT-X-ENDLIST\n',
    );
    assert.deepEqual(pl.segments[0]!.map, { uri: 'a.mp4', range: { offset: 0, length: 800 } });
    assert.deepEqual(
      pl.segments.map((s) => s.range),
      [
        { offset: 800, length: 100 },
        { offset: 900, length: 50 },
      ],
    );
    assert.equal(pl.edgeWallClockMs, null);
  });

  it('keeps percentiles within 1 % in a fixed amount of memory', () => {
    const h = new LogHistogram();
    for (let i = 1; i <= 100_000; i++) h.record(i / 100); // 0.01 … 1000 ms, uniform
    const p = h.percentiles();
    assert.equal(p.count, 100_000);
    for (const [q, v] of [
      [0.5, p.p50],
      [0.9, p.p90],
      [0.99, p.p99],
    ] as const) {
      assert.ok(Math.abs(v - q * 1000) / (q * 1000) < 0.01, `p${q * 100} = ${v}`);
    }
    assert.equal(p.max, 1000);
    assert.ok(Math.abs(p.mean - 500) < 0.01);
  });
});
