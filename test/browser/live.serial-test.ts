// Live interop: ONE event, published over RTMP by ffmpeg (-re -c copy of lavfi testsrc2 720p30 + a sine, encoded
// beforehand with x264 ultrafast and 2 s GOPs, so the publisher costs no CPU while the event runs), played in
// headless chromium from a page on another origin than the media (test/browser/live-lab.js):
//   - at the moment the API shows the event playable: hls.js (LL-HLS), Shaka (HLS) and dash.js (DASH) start it;
//   - once a few segments are out, two pages at a time: hls.js in lowLatencyMode on LL-HLS, dash.js with liveCatchup
//     on the dynamic MPD, Shaka on HLS and on DASH, dash.js's MSS module on the Smooth live manifest — each plays
//     ≥ 4 s, and its latency (now − the wall-clock time of its playhead: PROGRAM-DATE-TIME in HLS,
//     availabilityStartTime in DASH) is reported;
//   - after the event has run ≥ 70 s: hls.js and dash.js seek 60 s back into the DVR window and play there;
//   - shutdown: within 5 s the HLS playlists end (EXT-X-ENDLIST), the MPD turns static and the asset is ready; hls.js
//     plays the archive from its start, and the archive's segment URLs serve the media its playlist describes.
// Every failure names the player and what it saw: its state, buffer, the player's errors, the HTTP errors (status,
// URL, body) the page met, its event log and its last media requests (with what each playlist listed). The latencies
// are printed at the end, beside the server's own ingest lag (on two shared cores the ladder and chromium compete:
// a lag of several seconds there is the machine, not the players; with the publisher encoding live at veryfast as
// well, an AMD EPYC box fell 6–17 s behind and dash.js's catch-up kept seeking to an edge that was not there yet).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { FragmentIndexer } from '../../src/media/bmff/indexer.ts';
import type { LiveStreamJson } from '../../src/roles/api/live.ts';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { launchChromium } from '../helpers/browser.ts';
import { ffmpegFixture } from '../helpers/media.ts';
import { startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { type LiveLab, startLiveLab } from './lab-server.ts';

/** Long enough for every check; shutdown ends the publish before. */
const PUBLISH_SECONDS = 170;
/** The DVR check seeks this far back, once the event has run DVR_AFTER seconds. */
const SEEK_BACK = 60;
const DVR_AFTER = 72;

interface Sample {
  now: number;
  currentTime: number;
  readyState: number;
  paused: boolean;
  buffered: string;
  seekable: [number, number] | null;
  playheadMs: number | null;
  latency: number | null;
  playerLatency: number | null;
  target: number | null;
  lowLatency: boolean | null;
  height: number | null;
}
interface LabState {
  state: string;
  errors: string[];
  version: string;
  events: string[];
}
interface LatencyRow {
  player: string;
  format: string;
  version: string;
  latency: number | null;
  playerLatency: number | null;
  target: number | null;
  lowLatency: boolean | null;
  /** The server's own figure while measuring: wall clock − media time at the top rung's edge (stats.latencySeconds). */
  ingestLag: number | null;
  note: string;
}
const latencies: LatencyRow[] = [];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const f2 = (x: number | null | undefined) => (x === null || x === undefined ? '—' : x.toFixed(2));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A player page: its samples and everything it saw, for the failure messages. */
class Player {
  readonly name: string;
  readonly page: Page;
  /** HTTP responses ≥ 400 and failed requests (aborts excluded: players cancel blocking reloads). */
  readonly http: string[] = [];
  aborted = 0;
  /** The media requests of the page, in order, with their answers (the last ones go into failure messages). */
  readonly requests: string[] = [];
  readonly #opened = Date.now();
  readonly pageErrors: string[] = [];
  last: Sample | undefined;
  lab: LabState | undefined;

  constructor(name: string, page: Page) {
    this.name = name;
    this.page = page;
    const at = () => `${((Date.now() - this.#opened) / 1000).toFixed(1)}s`;
    const media = (u: string) => u.includes('/v/');
    const log = (line: string) => {
      this.requests.push(line);
      if (this.requests.length > 400) this.requests.splice(0, 200);
    };
    page.on('request', (r) => {
      if (media(r.url())) log(`${at()} → ${new URL(r.url()).pathname}`);
    });
    page.on('response', async (r) => {
      const path = new URL(r.url()).pathname;
      const when = at();
      // What a playlist listed, and why an error was answered: the body, read back.
      let what = '';
      if (r.status() >= 400 || path.endsWith('.m3u8')) {
        const body = await r.text().catch(() => '');
        what =
          r.status() >= 400
            ? ` ${body.slice(0, 120)}`
            : ` [${(body.match(/^#EXTINF/gm) ?? []).length} segments, ${(body.match(/^#EXT-X-PART:/gm) ?? []).length} parts${body.includes('#EXT-X-ENDLIST') ? ', ENDLIST' : ''}]`;
      }
      if (r.status() >= 400 && this.http.length < 60) this.http.push(`${r.status()} ${r.url()}${what}`);
      if (media(r.url())) log(`${when} ← ${r.status()} ${path}${what}`);
    });
    page.on('requestfailed', (r) => {
      const why = r.failure()?.errorText ?? '';
      if (why.includes('ERR_ABORTED')) this.aborted++;
      else if (this.http.length < 60) this.http.push(`${why} ${r.url()}`);
    });
    page.on('pageerror', (e) => this.pageErrors.push(e.message));
  }

  async sample(): Promise<Sample> {
    const r = await this.page.evaluate(() => {
      const w = window as unknown as { lab: LabState; labLive?: { sample(): Sample } };
      return { lab: w.lab, s: w.labLive?.sample() };
    });
    this.lab = r.lab;
    if (r.s) this.last = r.s;
    return r.s!;
  }

  errors(): string[] {
    return [...(this.lab?.errors ?? []), ...this.pageErrors.map((e) => `page: ${e}`)];
  }

  /** What the player saw, for a failure message. */
  saw(): string {
    const s = this.last;
    const state = s
      ? `currentTime ${s.currentTime.toFixed(2)}, readyState ${s.readyState}, ${s.paused ? 'paused' : 'not paused'}, buffered [${s.buffered}], seekable ${s.seekable ? `${f2(s.seekable[0])}–${f2(s.seekable[1])}` : 'none'}, ${s.height ?? '?'}p, latency ${f2(s.latency)} s (player's own ${f2(s.playerLatency)} s)`
      : 'no sample';
    const errors = this.errors();
    return [
      `page state ${this.lab?.state ?? '?'}; ${state}`,
      `player errors: ${errors.length ? errors.join(' | ') : 'none'}`,
      `HTTP errors: ${this.http.length ? this.http.slice(-12).join(' | ') : 'none'}${this.aborted ? ` (+${this.aborted} aborted requests)` : ''}`,
      `events: ${(this.lab?.events ?? []).slice(-12).join(' | ') || 'none'}`,
      `last media requests: ${this.requests.slice(-16).join(' | ') || 'none'}`,
    ].join('\n  ');
  }

  fail(what: string): never {
    throw new assert.AssertionError({ message: `${this.name}: ${what}\n  ${this.saw()}` });
  }

  /** Polls until `ok(sample)`; fails naming the player on a player error or at the deadline. */
  async waitFor(what: string, ok: (s: Sample) => boolean, timeoutMs: number): Promise<Sample> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.sample().catch(() => undefined);
      if (this.errors().length > 0) this.fail(`player error while waiting for ${what}`);
      if (this.lab?.state === 'failed') this.fail(`the player did not start (waiting for ${what})`);
      if (s && ok(s)) return s;
      if (Date.now() > deadline) this.fail(`no ${what} within ${(timeoutMs / 1000).toFixed(0)} s`);
      await sleep(250);
    }
  }

  /** Starts playing, then plays `seconds` of media (currentTime advancing from where it first played). */
  async plays(seconds: number, timeoutMs = 45_000): Promise<Sample> {
    const first = await this.waitFor(
      'playback start',
      (s) => this.lab?.state === 'playing' && s.readyState >= 2,
      timeoutMs,
    );
    const from = first.currentTime;
    return this.waitFor(
      `${seconds} s of playback (from currentTime ${from.toFixed(2)})`,
      (s) => s.currentTime >= from + seconds,
      timeoutMs,
    );
  }

  /** Latency samples every 0.5 s for `seconds`: medians of now − playhead wall clock and of the player's own. */
  async latency(seconds: number): Promise<{ latency: number | null; playerLatency: number | null; last: Sample }> {
    const ls: number[] = [];
    const ps: number[] = [];
    let last = await this.sample();
    for (const end = Date.now() + seconds * 1000; Date.now() < end; await sleep(500)) {
      last = await this.sample();
      if (this.errors().length > 0) this.fail('player error while measuring latency');
      if (last.latency !== null) ls.push(last.latency);
      if (last.playerLatency !== null) ps.push(last.playerLatency);
    }
    return { latency: median(ls), playerLatency: median(ps), last };
  }

  close(): Promise<void> {
    return this.page.close().catch(() => {});
  }
}

async function text(url: string): Promise<{ status: number; url: string; body: string }> {
  const r = await fetch(url);
  return { status: r.status, url: r.url, body: await r.text() };
}

/** The media playlist URLs a multivariant playlist names (video variants and audio renditions). */
function mediaPlaylists(master: { url: string; body: string }): string[] {
  const uris = master.body
    .split('\n')
    .flatMap((l) => (l.startsWith('#') ? [/URI="([^"]+\.m3u8)"/.exec(l)?.[1] ?? ''] : [l.trim()]))
    .filter((u) => u.endsWith('.m3u8'));
  return [...new Set(uris)].map((u) => new URL(u, master.url).href);
}

/** The tfdt (seconds) of the first fragment in `segment`, read with the init segment's timescale. */
function firstFragmentStart(init: Uint8Array, segment: Uint8Array): number {
  const file = Buffer.concat([init, segment]);
  const ix = new FragmentIndexer();
  for (let q = ix.next(file.length); q; q = ix.next(file.length))
    ix.push(q.offset, file.subarray(q.offset, q.offset + q.length));
  const first = ix.segments[0];
  if (!first || !ix.track) throw new Error('no fragment in the segment');
  return first.start / ix.track.timescale;
}

/** The PIFF tfrf box's entries (the fragments a live Smooth fragment announces), read independently of the server. */
function tfrfEntries(fragment: Uint8Array): { time: number; duration: number }[] {
  const uuid = Buffer.from('d4807ef2ca3946958e5426cb9e46a79f', 'hex');
  const at = Buffer.from(fragment).indexOf(uuid);
  if (at < 8) return [];
  const v = new DataView(fragment.buffer, fragment.byteOffset + at + 16);
  const version = v.getUint8(0);
  const count = v.getUint8(4);
  const out: { time: number; duration: number }[] = [];
  for (let i = 0; i < count; i++) {
    out.push(
      version === 1
        ? { time: Number(v.getBigUint64(5 + 16 * i)), duration: Number(v.getBigUint64(13 + 16 * i)) }
        : { time: v.getUint32(5 + 8 * i), duration: v.getUint32(9 + 8 * i) },
    );
  }
  return out;
}

/** The video chunks of a Smooth manifest: the lowest QualityLevel's bitrate, the URL template, and chunk starts. */
function smoothVideo(manifest: string): { bitrate: number; url: string; starts: number[] } {
  const si = /<StreamIndex[^>]*Type="video"[^>]*>[\s\S]*?<\/StreamIndex>/.exec(manifest)?.[0] ?? '';
  const url = /Url="([^"]+)"/.exec(si)?.[1] ?? '';
  const bitrate = Math.min(...[...si.matchAll(/<QualityLevel[^>]*Bitrate="(\d+)"/g)].map((m) => Number(m[1])));
  const starts: number[] = [];
  let t = 0;
  for (const c of si.matchAll(/<c\b([^>]*)\/>/g)) {
    const a = (k: string) => Number(new RegExp(`\\b${k}="(\\d+)"`).exec(c[1]!)?.[1] ?? Number.NaN);
    if (!Number.isNaN(a('t'))) t = a('t');
    // One <c> per fragment (the live writer emits no r=).
    starts.push(t);
    t += a('d');
  }
  return { bitrate, url, starts };
}

describe('live: one RTMP event in hls.js, dash.js and Shaka', { concurrency: false }, () => {
  let p: TestPlatform;
  let stream: LiveStreamJson;
  let browser: Browser;
  let lab: LiveLab;
  let publisher: ChildProcess | undefined;
  let publisherLog = '';
  let publishedAt = 0;
  let playable: Promise<number>;
  const open: Player[] = [];
  const abs = (u: string) => new URL(u, p.url).href;
  const age = () => (Date.now() - publishedAt) / 1000;

  async function player(name: string, query: Record<string, string>): Promise<Player> {
    const page = await browser.newPage();
    const pl = new Player(name, page);
    open.push(pl);
    await page.goto(`${lab.url}/live.html?${new URLSearchParams({ cap: '1', ...query })}`);
    return pl;
  }

  async function ingestLag(): Promise<number | null> {
    return (await p.get<LiveStreamJson>(`/api/live/${stream.id}`)).stats?.latencySeconds ?? null;
  }

  function record(
    pl: Player,
    format: string,
    m: { latency: number | null; playerLatency: number | null; last: Sample },
    lag: number | null,
    note = '',
  ) {
    latencies.push({
      player: pl.name.split(' (')[0]!,
      format,
      version: pl.lab?.version ?? '',
      latency: m.latency,
      playerLatency: m.playerLatency,
      target: m.last.target,
      lowLatency: m.last.lowLatency,
      ingestLag: lag,
      note,
    });
  }

  before(async () => {
    p = await startTestPlatform();
    const res = await p.api('/api/live', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'Live interop', dvrWindowSeconds: 120, latency: 'low' }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    stream = (await res.json()) as LiveStreamJson;
    // The browser and the source first: either would otherwise take CPU from the ladder's first seconds. The source is
    // encoded before the event (a real publisher encodes on its own machine), then sent in real time as it is.
    let source: string;
    [browser, lab, source] = await Promise.all([
      launchChromium(),
      startLiveLab(),
      // biome-ignore format: ffmpeg arguments read best in their groups
      ffmpegFixture([
        '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
        '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
        '-t', String(PUBLISH_SECONDS),
        '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '30', '-g', '60', '-c:a', 'aac',
      ], 'flv'),
    ]);
    // biome-ignore format: ffmpeg arguments read best in their groups
    publisher = spawn('ffmpeg', [
      '-hide_banner', '-nostdin', '-loglevel', 'error', '-re',
      '-i', source, '-c', 'copy',
      '-f', 'flv', stream.ingest.rtmp,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    publisher.stderr?.on('data', (d) => {
      publisherLog = (publisherLog + d).slice(-2000);
    });
    publishedAt = Date.now();
    // Playable: the stream's own HLS URL answers (302 to the event's multivariant playlist, then 200).
    playable = until(
      'the event to be playable (its master.m3u8 answering 200)',
      async () => ((await text(abs(stream.playback.hls))).status === 200 ? age() : undefined),
      30_000,
    );
    await playable.catch(() => {});
  });

  after(async () => {
    for (const pl of open) await pl.close();
    publisher?.kill('SIGKILL');
    await browser?.close();
    await lab?.close();
    await p?.stop();
    if (latencies.length > 0) {
      console.log(
        [
          "live latency: now − the wall-clock time of the playhead (median over 6 s), the player's own estimate, and the server's ingest lag then (stats.latencySeconds: wall clock − media time at the top rung's edge):",
          "| player | version | format | low-latency mode | latency | player's own | target | ingest lag | note |",
          '|---|---|---|---|---|---|---|---|---|',
          ...latencies.map(
            (r) =>
              `| ${r.player} | ${r.version} | ${r.format} | ${r.lowLatency ?? '—'} | ${f2(r.latency)} s | ${f2(r.playerLatency)} s | ${f2(r.target)} | ${f2(r.ingestLag)} s | ${r.note} |`,
          ),
        ].join('\n'),
      );
    }
  });

  it('the event is playable within 15 s of the publish starting', async (t) => {
    const at = await playable.catch((err) => assert.fail(`${err}; publisher: ${publisherLog || 'no output'}`));
    t.diagnostic(`playable ${at.toFixed(2)} s after ffmpeg started publishing`);
    assert.ok(at < 15, `playable only ${at.toFixed(1)} s after the publish started`);
  });

  // A viewer who opens the stream the moment it turns playable (the web app links it then).
  describe('started the moment the event is playable', { concurrency: true }, () => {
    const cell = (name: string, query: () => Record<string, string>) =>
      it(`${name} starts it`, { timeout: 60_000 }, async () => {
        await playable;
        const pl = await player(`${name} (started at playable)`, query());
        try {
          await pl.plays(2, 30_000);
        } finally {
          await pl.close();
        }
      });
    cell('hls.js LL-HLS', () => ({ player: 'hls.js', ll: '1', url: abs(stream.playback.hls) }));
    cell('Shaka HLS', () => ({ player: 'shaka', url: abs(stream.playback.hls) }));
    cell('dash.js DASH', () => ({ player: 'dash.js', ll: '1', url: abs(stream.playback.dash) }));
  });

  describe('players, two pages at a time', { concurrency: 2 }, () => {
    before(async () => {
      // Steady state: every media playlist lists ≥ 3 complete segments, the MPD and the Smooth manifest answer.
      await until(
        'three complete segments in every media playlist, and the MPD and Smooth manifest answering 200',
        async () => {
          const master = await text(abs(stream.playback.hls));
          if (master.status !== 200) return undefined;
          for (const u of mediaPlaylists(master)) {
            const m = await text(u);
            if (m.status !== 200 || (m.body.match(/^#EXTINF/gm) ?? []).length < 3) return undefined;
          }
          const [mpd, ism] = await Promise.all([text(abs(stream.playback.dash)), text(abs(stream.playback.smooth))]);
          return mpd.status === 200 && ism.status === 200 ? true : undefined;
        },
        40_000,
      );
    });

    const cell = (
      name: string,
      format: string,
      query: () => Record<string, string>,
      opts: { wallClock: boolean; smooth?: boolean } = { wallClock: true },
    ) =>
      it(`${name} plays ${format}`, { timeout: 90_000 }, async (t: TestContext) => {
        const pl = await player(name, query());
        try {
          await pl.plays(4);
          const lag = await ingestLag();
          const m = await pl.latency(6);
          // Smooth has no wall-clock anchor (dash.js puts its availabilityStartTime at 0): how far behind the end
          // of the seekable range it plays instead.
          const edge = m.last.seekable ? m.last.seekable[1] - m.last.currentTime : null;
          const shown = opts.wallClock ? m : { ...m, latency: null, playerLatency: null };
          record(
            pl,
            format,
            shown,
            lag,
            opts.wallClock ? '' : `no wall clock in Smooth; ${f2(edge)} s behind the seekable end`,
          );
          t.diagnostic(
            `${name}: latency ${f2(shown.latency)} s (player's own ${f2(shown.playerLatency)} s, target ${f2(m.last.target)}, low-latency ${m.last.lowLatency}); server's ingest lag ${f2(lag)} s`,
          );
          const l = m.latency;
          if (opts.wallClock && l === null) {
            pl.fail('no wall-clock time for the playhead (PROGRAM-DATE-TIME / availabilityStartTime)');
          }
          if (opts.wallClock && l !== null && !(l > 0 && l < 30)) {
            pl.fail(`latency ${l.toFixed(2)} s is not within (0, 30) s`);
          }
          assert.deepEqual(pl.errors(), [], `${name}: player errors`);
          if (opts.smooth) {
            // Every fragment the player asks for was announced (manifest or the previous fragment's tfrf) — watched
            // for a while longer, once the player has caught up with the edge and asks for each fragment as its
            // predecessor's tfrf announces it.
            await pl.waitFor('10 more seconds of playback', (s) => s.currentTime >= m.last.currentTime + 10, 30_000);
            const missing = pl.http.filter((h) => /^404 .*\/Fragments\(/.test(h));
            if (missing.length > 0) pl.fail(`${missing.length} announced Smooth fragment(s) answered 404`);
          }
        } finally {
          await pl.close();
        }
      });

    cell('hls.js (lowLatencyMode)', 'LL-HLS', () => ({ player: 'hls.js', ll: '1', url: abs(stream.playback.hls) }));
    cell('dash.js (liveCatchup)', 'DASH live', () => ({ player: 'dash.js', ll: '1', url: abs(stream.playback.dash) }));
    cell('Shaka Player', 'HLS live', () => ({ player: 'shaka', url: abs(stream.playback.hls) }));
    cell('Shaka Player', 'DASH live', () => ({ player: 'shaka', url: abs(stream.playback.dash) }));
    // dash.js's clock for a Smooth stream, which cannot name one: the origin's (its default is on the internet).
    cell(
      'dash.js (MSS)',
      'Smooth live',
      () => ({ player: 'dash.js', url: abs(stream.playback.smooth), time: `${p.url}/v/time` }),
      { wallClock: false, smooth: true },
    );
  });

  it("Smooth: the fragment a live fragment's tfrf announces is served when asked for at once", {
    timeout: 60_000,
  }, async () => {
    // dash.js asks for the fragment a tfrf announces as soon as it has appended the one carrying it; at the live edge
    // that fragment is still being written. Caught right after a chunk completes, so its successor is ~2 s away.
    const first = await text(abs(stream.playback.smooth));
    assert.equal(first.status, 200, `GET ${stream.playback.smooth} → ${first.status} ${first.body.slice(0, 200)}`);
    const base = first.url.replace(/Manifest$/, '');
    const before = smoothVideo(first.body).starts.length;
    const now = await until(
      'a new video chunk in the Smooth manifest',
      async () => {
        const m = await text(first.url);
        const v = smoothVideo(m.body);
        return v.starts.length > before ? v : undefined;
      },
      15_000,
    );
    const fragmentUrl = (t: number) =>
      base + now.url.replace('{bitrate}', String(now.bitrate)).replace('{start time}', String(t));
    const lastUrl = fragmentUrl(now.starts.at(-1)!);
    const last = await fetch(lastUrl);
    const lastBytes = new Uint8Array(await last.arrayBuffer());
    assert.equal(last.status, 200, `GET ${lastUrl.replace(p.url, '')} (the manifest's last chunk) → ${last.status}`);
    const next = tfrfEntries(lastBytes)[0];
    assert.ok(next, `GET ${lastUrl.replace(p.url, '')}: no tfrf entry in the last live fragment`);
    const nextUrl = fragmentUrl(next.time);
    const t0 = Date.now();
    const r = await fetch(nextUrl);
    const body = await r.text();
    assert.equal(
      r.status,
      200,
      `GET ${nextUrl.replace(p.url, '')} — announced by the tfrf of ${lastUrl.replace(p.url, '')} — answered ${r.status} after ${Date.now() - t0} ms: ${body.slice(0, 160)}`,
    );
  });

  describe(`seeking ${SEEK_BACK} s back into the DVR window`, { concurrency: true }, () => {
    const cell = (name: string, query: () => Record<string, string>) =>
      it(`${name} plays from ${SEEK_BACK} s back`, { timeout: 150_000 }, async () => {
        const pl = await player(name, query());
        try {
          await pl.plays(2);
          // The event has run long enough and the player's seekable range reaches back far enough.
          while (age() < DVR_AFTER) await sleep(500);
          const live = await pl.waitFor(
            `a seekable range reaching ${SEEK_BACK + 2} s behind the playhead`,
            (s) => s.seekable !== null && s.seekable[0] <= s.currentTime - SEEK_BACK - 2,
            30_000,
          );
          await pl.page.evaluate(
            (s) => (window as unknown as { labLive: { seekBack(s: number): void } }).labLive.seekBack(s),
            SEEK_BACK,
          );
          const target = live.currentTime - SEEK_BACK;
          const after = await pl.waitFor(
            `playback from the seek target ${target.toFixed(2)} (3 s of it)`,
            (s) => s.currentTime >= target + 3 && s.currentTime < target + 20 && !s.paused,
            30_000,
          );
          // Still back there: the playhead's wall clock is about SEEK_BACK further from now than at the live edge.
          if (live.latency !== null && after.latency !== null) {
            const behind = after.latency - live.latency;
            if (behind < SEEK_BACK - 10)
              pl.fail(`after the seek the playhead is only ${behind.toFixed(1)} s further behind now`);
          }
          assert.deepEqual(pl.errors(), [], `${name}: player errors`);
        } finally {
          await pl.close();
        }
      });
    cell('hls.js (lowLatencyMode)', () => ({ player: 'hls.js', ll: '1', url: abs(stream.playback.hls) }));
    cell('dash.js (liveCatchup)', () => ({ player: 'dash.js', ll: '1', url: abs(stream.playback.dash) }));
  });

  describe('after shutdown', { concurrency: false }, () => {
    let asset: AssetJson;

    it('within 5 s the HLS playlists end, the MPD is static and the asset is ready', { timeout: 60_000 }, async (t) => {
      const started = Date.now();
      const res = await p.api(`/api/live/${stream.id}/shutdown`, { method: 'POST' });
      assert.equal(res.status, 200, `POST /api/live/${stream.id}/shutdown: ${res.status} ${await res.clone().text()}`);
      const s = (await res.json()) as LiveStreamJson;
      assert.equal(s.state, 'shutdown');
      assert.ok(s.currentAssetId, 'the shut-down stream names its event');
      const seen: string[] = [];
      const done = await until(
        'ENDLIST in every HLS media playlist, a static MPD and a ready asset',
        async () => {
          seen.length = 0;
          const master = await text(abs(stream.playback.hls));
          seen.push(`GET ${stream.playback.hls} → ${master.status} ${master.url}`);
          if (master.status !== 200) return undefined;
          let ended = true;
          for (const u of mediaPlaylists(master)) {
            const m = await text(u);
            const has = m.body.includes('#EXT-X-ENDLIST');
            seen.push(`GET ${u} → ${m.status}${has ? ' ENDLIST' : ' no ENDLIST'}`);
            ended &&= m.status === 200 && has;
          }
          const mpd = await text(abs(stream.playback.dash));
          const type = /<MPD[^>]*\stype="(\w+)"/.exec(mpd.body)?.[1];
          seen.push(`GET ${stream.playback.dash} → ${mpd.status} type=${type}`);
          const a = await p.get<AssetJson>(`/api/assets/${s.currentAssetId}`);
          seen.push(`asset ${a.status}`);
          return ended && type === 'static' && a.status === 'ready' ? a : undefined;
        },
        Math.max(100, 5000 - (Date.now() - started)),
      ).catch((err) => assert.fail(`${err}; last look: ${seen.join('; ')}`));
      asset = done;
      t.diagnostic(
        `ended and ready ${((Date.now() - started) / 1000).toFixed(2)} s after POST shutdown; archive ${f2(asset.duration)} s`,
      );
    });

    it('hls.js plays the archive from its start', { timeout: 90_000 }, async () => {
      assert.ok(asset, 'the shutdown check found the ready asset');
      const pl = await player('hls.js (archive)', { player: 'hls.js', ll: '0', url: abs(asset.playback.hls!) });
      try {
        const first = await pl.waitFor(
          'playback start',
          (s) => pl.lab?.state === 'playing' && s.readyState >= 2,
          45_000,
        );
        if (first.currentTime > 1) pl.fail(`started at ${first.currentTime.toFixed(2)} s, not at the start`);
        await pl.waitFor('8 s of the archive from its start', (s) => s.currentTime >= 8, 45_000);
        const d = await pl.page.evaluate(() => document.querySelector('video')!.duration);
        if (!(Math.abs(d - (asset.duration ?? 0)) < 2))
          pl.fail(`video.duration ${d} but the asset is ${asset.duration} s`);
        assert.deepEqual(pl.errors(), [], 'hls.js (archive): player errors');
      } finally {
        await pl.close();
      }
    });

    it("the archive's segment URLs serve the media its HLS playlists describe", { timeout: 60_000 }, async () => {
      assert.ok(asset, 'the shutdown check found the ready asset');
      const master = await text(abs(asset.playback.hls!));
      const wrong: string[] = [];
      for (const u of mediaPlaylists(master).filter((x) => /\/(v0|a0)\.m3u8$/.test(x))) {
        const pl = await text(u);
        const lines = pl.body.split('\n');
        const init = new URL(/#EXT-X-MAP:URI="([^"]+)"/.exec(pl.body)![1]!, u).href;
        const initBytes = new Uint8Array(await (await fetch(init)).arrayBuffer());
        let start = 0;
        let checked = 0;
        for (let i = 0; i < lines.length && checked < 6; i++) {
          const d = /^#EXTINF:([\d.]+)/.exec(lines[i]!);
          if (!d) continue;
          const seg = new URL(lines[i + 1]!.trim(), u).href;
          const r = await fetch(seg);
          const bytes = new Uint8Array(await r.arrayBuffer());
          const served = r.status === 200 ? firstFragmentStart(initBytes, bytes) : Number.NaN;
          if (!(Math.abs(served - start) < 0.05)) {
            wrong.push(
              `${u.replace(p.url, '')} lists ${lines[i + 1]} at ${start.toFixed(3)} s (EXTINF ${d[1]}); GET ${seg.replace(p.url, '')} → ${r.status}, ${bytes.length} bytes, media from ${served.toFixed(3)} s`,
            );
          }
          start += Number(d[1]);
          checked++;
        }
      }
      assert.deepEqual(wrong, [], `the archive's playlists and segments disagree:\n  ${wrong.join('\n  ')}`);
    });
  });
});
