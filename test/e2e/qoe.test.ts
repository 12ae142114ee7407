// End to end: viewing quality from CMCD (CTA-5004). Requests carry CMCD headers exactly as Shaka Player 5.2 writes
// them (captured on the watch page: key order, quoting, which header holds which key); the origin aggregates them per
// session, flushes to the catalog, and GET /api/assets/:id/qoe gives the figures. Malformed CMCD changes nothing and
// never costs the player its segment.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { importSettled, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';
import { fetchText, parseMediaPlaylist, parseMultivariant } from '../helpers/verify.ts';

interface Shaka {
  sid: string;
  cid: string;
  ot: 'm' | 'i' | 'a' | 'v';
  br?: number;
  d?: number;
  tb?: number;
  bl?: number;
  dl?: number;
  nor?: string;
  su?: boolean;
  bs?: boolean;
  rtp?: number;
}

/**
 * The four headers as Shaka's CMCD v1 reporter writes them: keys in alphabetical order within each header, strings
 * quoted, `sf` only on manifest requests, a header left out when it has no key. Captured example (a video segment
 * at startup): CMCD-Request `bl=1000,dl=1000,nor="..%2F..%2Fr1-1%2Fv3%2F2.m4s",su`, CMCD-Object
 * `br=164,d=1000,ot=v,tb=2355`, CMCD-Status `rtp=800`, CMCD-Session
 * `cid="fovasdslblx4vvg7",sid="b85b43e2-016b-4cde-acbd-1f0f84159bbc",st=v`.
 */
function shakaHeaders(o: Shaka): Record<string, string> {
  const join = (parts: (string | false | undefined)[]) => parts.filter(Boolean).join(',');
  const h: Record<string, string> = {
    'CMCD-Request': join([
      o.bl !== undefined && `bl=${o.bl}`,
      o.dl !== undefined && `dl=${o.dl}`,
      o.nor !== undefined && `nor="${o.nor}"`,
      o.su && 'su',
    ]),
    'CMCD-Object': join([
      o.br !== undefined && `br=${o.br}`,
      o.d !== undefined && `d=${o.d}`,
      `ot=${o.ot}`,
      o.tb !== undefined && `tb=${o.tb}`,
    ]),
    'CMCD-Status': join([o.bs && 'bs', o.rtp !== undefined && `rtp=${o.rtp}`]),
    'CMCD-Session': join([`cid="${o.cid}"`, o.ot === 'm' && 'sf=d', `sid="${o.sid}"`, 'st=v']),
  };
  for (const k of Object.keys(h)) if (!h[k]) delete h[k];
  return h;
}

interface Rendition {
  id: string;
  /** kbps, as Shaka puts it in `br` (the MPD's @bandwidth / 1000). */
  br: number;
  init: string;
  segments: { url: string; d: number }[];
}

describe('viewing quality from CMCD: origin → catalog → API', () => {
  let p: TestPlatform;
  let asset: AssetJson;
  let manifest: string;
  let video: Rendition[];
  let audio: Rendition;
  const SID_A = 'b85b43e2-016b-4cde-acbd-1f0f84159bbc';
  const SID_B = '0f6a4b1e-7a53-4d3e-9c55-2b1f4f0f3a11';
  /** Client-side bounds of session A's startup (the server measures between the two request arrivals). */
  let startup = { min: 0, max: 0 };
  const expected = { videoMs: 0, bitrateMs: 0 };

  const get = async (url: string, headers: Record<string, string>) => {
    const started = Date.now();
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    return { status: res.status, started, done: Date.now() };
  };
  /** A Shaka request; video objects also add to the expected sums. */
  const shaka = async (url: string, o: Shaka) => {
    const r = await get(url, shakaHeaders(o));
    assert.equal(r.status, 200, url);
    if (o.ot === 'v' && o.br !== undefined && o.d !== undefined) {
      expected.videoMs += o.d;
      expected.bitrateMs += o.br * o.d;
    }
    return r;
  };
  const qoe = () => p.get<Record<string, unknown>>(`/api/assets/${asset.id}/qoe`);
  const totalRequests = async () =>
    Number((await p.db.get(sql`SELECT COALESCE(SUM(requests), 0) AS n FROM qoe_sessions`))?.n ?? 0);

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' }, origin: { qoeFlushMs: 200 } });
    asset = await importSettled(p, await h264Clip({ seconds: 8, width: 640, height: 360 }), 180_000);
    assert.equal(asset.status, 'ready', JSON.stringify(asset.error));
    manifest = new URL(asset.playback.dash!, p.url).href;
    const mpd = await fetchText(manifest);
    const bandwidth = new Map(
      [...mpd.matchAll(/<Representation\b[^>]*\bid="([^"]+)"[^>]*\bbandwidth="(\d+)"/g)].map((m) => [
        m[1]!,
        Number(m[2]),
      ]),
    );
    const masterUrl = new URL(asset.playback.hls!, p.url).href;
    const master = parseMultivariant(await fetchText(masterUrl), masterUrl);
    const rendition = async (playlistUrl: string): Promise<Rendition> => {
      const id = /\/([va]\d+)\.m3u8/.exec(playlistUrl)![1]!;
      const pl = parseMediaPlaylist(await fetchText(playlistUrl));
      return {
        id,
        br: Math.round(bandwidth.get(id)! / 1000),
        init: new URL(pl.map, playlistUrl).href,
        segments: pl.segments.map((s) => ({ url: new URL(s.uri, playlistUrl).href, d: Math.round(s.duration * 1000) })),
      };
    };
    video = await Promise.all(master.video.map((v) => rendition(v.uri)));
    audio = await rendition(master.audio[0]!);
    assert.ok(video.length >= 2 && video.every((v) => v.segments.length >= 3 && v.br > 0), JSON.stringify(video));
  });

  after(async () => {
    await p?.stop();
  });

  it('answers zeros before any session; 404 for an unknown asset; players on other origins may send CMCD', async () => {
    assert.deepEqual(await qoe(), {
      sessions: 0,
      stalledSessions: 0,
      stalls: 0,
      stallRatio: 0,
      medianStartupMs: null,
      averageBitrate: null,
      watchedSeconds: 0,
    });
    const unknown = await p.api('/api/assets/aaaaaaaaaaaaaaaa/qoe');
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { error: { code: string } }).error.code, 'ASSET_NOT_FOUND');
    assert.equal((await p.api('/api/assets/NOT-AN-ID/qoe')).status, 400);
    assert.equal((await fetch(`${p.url}/api/assets/${asset.id}/qoe`)).status, 401);
    const pre = await fetch(video[0]!.segments[0]!.url, {
      method: 'OPTIONS',
      headers: { origin: 'https://elsewhere.example', 'access-control-request-headers': 'cmcd-request,cmcd-object' },
    });
    assert.equal(pre.status, 204);
    const allowed = (pre.headers.get('access-control-allow-headers') ?? '').split(/,\s*/);
    for (const h of ['cmcd-request', 'cmcd-object', 'cmcd-status', 'cmcd-session']) assert.ok(allowed.includes(h), h);
  });

  it('two sessions (one starting up and stalling, one joined mid-way) give exact figures; bad CMCD changes nothing', async () => {
    const top = video[0]!;
    const low = video.at(-1)!;
    const tb = Math.max(...video.map((v) => v.br));
    const a = { sid: SID_A, cid: asset.id };
    // Session A: Shaka's startup sequence — manifest, then init and first segments with `su`.
    const first = await shaka(manifest, { ...a, ot: 'm' });
    await shaka(audio.init, { ...a, ot: 'i', br: audio.br, d: 0, su: true });
    await shaka(audio.segments[0]!.url, {
      ...a,
      ot: 'a',
      br: audio.br,
      d: audio.segments[0]!.d,
      tb: audio.br,
      dl: 0,
      su: true,
      rtp: 1300,
    });
    await shaka(low.init, { ...a, ot: 'i', br: low.br, d: 0, su: true });
    await shaka(low.segments[0]!.url, {
      ...a,
      ot: 'v',
      br: low.br,
      d: low.segments[0]!.d,
      tb,
      dl: 0,
      su: true,
      rtp: 1600,
    });
    await shaka(top.segments[1]!.url, {
      ...a,
      ot: 'v',
      br: top.br,
      d: top.segments[1]!.d,
      tb,
      bl: 1000,
      dl: 1000,
      su: true,
      rtp: 11800,
    });
    // Playing: the next request has no `su` (startup ends), the one after reports a buffer starvation.
    await new Promise((ok) => setTimeout(ok, 250));
    const end = await shaka(audio.segments[1]!.url, {
      ...a,
      ot: 'a',
      br: audio.br,
      d: audio.segments[1]!.d,
      tb: audio.br,
      bl: 3000,
      dl: 3000,
      rtp: 200,
    });
    startup = { min: end.started - first.done, max: end.done - first.started };
    await shaka(top.segments[2]!.url, {
      ...a,
      ot: 'v',
      br: top.br,
      d: top.segments[2]!.d,
      tb,
      bl: 0,
      dl: 0,
      bs: true,
      rtp: 2700,
    });

    // Session B: its first object request has no `su` (it started on another origin): no startup figure, no stall.
    const b = { sid: SID_B, cid: asset.id };
    await shaka(manifest, { ...b, ot: 'm' });
    await shaka(low.segments[1]!.url, {
      ...b,
      ot: 'v',
      br: low.br,
      d: low.segments[1]!.d,
      tb,
      bl: 4000,
      dl: 4000,
      rtp: 900,
    });

    // Malformed or unacceptable CMCD: the segment is served all the same, nothing is recorded.
    const seg = low.segments[2]!.url;
    const good = shakaHeaders({ ...b, ot: 'v', br: low.br, d: 2000, tb });
    const bad: Record<string, string>[] = [
      { ...good, 'CMCD-Object': 'br=abc,d=2000,ot=v' },
      { ...good, 'CMCD-Object': 'br=100,d=2000,ot=v,' },
      { ...good, 'CMCD-Object': 'br=100,d=2000,ot="v"' },
      { ...good, 'CMCD-Request': `nor="${'x'.repeat(1100)}"` },
      { ...good, 'CMCD-Session': `cid="${asset.id}",sid="two words",st=v` },
      { ...good, 'CMCD-Session': `cid="${asset.id}",sid="${'s'.repeat(65)}",st=v` },
      { ...good, 'CMCD-Session': `cid="${asset.id}",sid="unterminated,st=v` },
      { ...good, 'CMCD-Status': 'bs=1' },
    ];
    for (const h of bad) assert.equal((await get(seg, h)).status, 200, JSON.stringify(h));
    assert.equal((await get(`${seg}?CMCD=br%3D1%2C`, {})).status, 200);
    assert.equal((await get(`${seg}?CMCD=%E0%A4%A`, {})).status, 200);
    // A request the origin refuses (no such asset) is not a viewing session.
    const missing = seg.replace(asset.id, 'aaaaaaaaaaaaaaaa');
    assert.equal((await get(missing, shakaHeaders({ ...b, sid: 'ghost', ot: 'v', br: 100, d: 2000 }))).status, 404);
    // B's last request, sent after the bad ones: the figures below include it and nothing of them.
    await shaka(seg, { ...b, ot: 'v', br: low.br, d: low.segments[2]!.d, tb, bl: 5000, dl: 5000, rtp: 900 });

    // The flush (every 200 ms here) lands all 11 requests: 8 of A, 3 of B.
    await until('the QoE flush', async () => ((await totalRequests()) === 11 ? true : undefined), 15_000);
    const q = await qoe();
    const medianStartupMs = q.medianStartupMs as number;
    assert.ok(
      medianStartupMs >= startup.min && medianStartupMs <= startup.max,
      `startup ${medianStartupMs} ms within the client's bounds ${JSON.stringify(startup)}`,
    );
    assert.deepEqual(q, {
      sessions: 2,
      stalledSessions: 1,
      stalls: 1,
      stallRatio: 0.5,
      medianStartupMs,
      averageBitrate: Math.round((expected.bitrateMs / expected.videoMs) * 1000),
      watchedSeconds: expected.videoMs / 1000,
    });
    const rows = await p.db.all(
      sql`SELECT session_id, startup_ms, stalls, requests, top_bitrate, first_at, last_at FROM qoe_sessions
          WHERE asset_id = ${asset.id} ORDER BY requests DESC`,
    );
    assert.deepEqual(
      rows.map((r) => [r.session_id, r.startup_ms === null ? null : 'set', r.stalls, r.requests, r.top_bitrate]),
      [
        [SID_A, 'set', 1, 8, tb],
        [SID_B, null, 0, 3, tb],
      ],
    );
    for (const r of rows) assert.ok(Number(r.first_at) <= Number(r.last_at));
  });

  it('reads the CMCD query parameter of players in query mode', async () => {
    const v = video[0]!;
    const cmcd = (s: string) => `?CMCD=${encodeURIComponent(s)}`;
    const s0 = v.segments[0]!;
    const s1 = v.segments[1]!;
    const r1 = await fetch(`${s0.url}${cmcd(`br=${v.br},d=${s0.d},ot=v,sid="query-1",su`)}`);
    assert.equal(r1.status, 200);
    await r1.arrayBuffer();
    const r2 = await fetch(`${s1.url}${cmcd(`bl=2000,br=${v.br},d=${s1.d},ot=v,sid="query-1"`)}`);
    assert.equal(r2.status, 200);
    await r2.arrayBuffer();
    await until('the QoE flush', async () => ((await totalRequests()) === 13 ? true : undefined), 15_000);
    const row = await p.db.get(sql`SELECT * FROM qoe_sessions WHERE session_id = ${'query-1'}`);
    assert.equal(Number(row?.video_ms), s0.d + s1.d);
    assert.equal(Number(row?.bitrate_ms), v.br * (s0.d + s1.d));
    assert.notEqual(row?.startup_ms, null);
    assert.equal((await qoe()).sessions, 3);
  });
});
