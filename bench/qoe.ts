// npm run bench:qoe [-- --players LIST] [--traces DIR|FILE[,…]]… [--seconds N] [--parallel K] [--runs N] [--rtt MS]
//
// The QoE lab: one HLS/DASH ladder played in chromium (playwright-core) through a shaping proxy of ours
// (bench/shaper.ts) by several players in ONE run on the SAME bandwidth traces, and per player × trace QoE figures.
//
// - Source: a 5-minute 1280×720 30 fps testsrc2 with temporal noise (so every rung spends its bitrate) and a sine,
//   encoded once by the platform itself into its default ladder, in a data folder kept at bench/out/qoe-data (a later
//   run reuses the ready asset while the source parameters are the same).
// - Players, each in its own browser context (1280×720 viewport) with its own proxy port: `shaka` (Shaka 5 defaults,
//   DASH), `hls.js` (defaults, HLS), `dash.js` (defaults, DASH) on the lab's page (bench/qoe-lab.js, another origin
//   than the media), `smoothabr` (the platform's watch page: Shaka + SmoothAbr) and, off by default, `watch-shaka`
//   (the watch page with ?abr=shaka).
// - Traces: every *.tsv of ../shared/traces (3G commutes) and bench/traces (a synthetic step-and-outage trace), or
//   --traces instead. Each session lasts the trace's length (at most the video's; --seconds cuts it); every player of
//   a trace plays at the same time (own buckets), --parallel traces at a time. The trace clock of each session starts
//   when its page is opened (shaper.start() just before the navigation).
// - Figures, from each player's own events (bench/qoe-lab.js records them in the page): startup (navigation → the
//   first `playing` after which currentTime advances), stalls after it (video `waiting`/`stalled` → `playing`, and
//   Shaka's `buffering`), the video bitrate on screen (the rendered height mapped to the API's video rendition
//   bitrate: by default from the video element's `resize`/videoHeight, the same signal for every player, with the
//   player's own events — hls.js FRAG_CHANGED, dash.js QUALITY_CHANGE_RENDERED, Shaka `mediaqualitychanged` where
//   it fires — as the cross-check; --rendered player swaps them), switches per minute, dropped frames, the bytes the
//   proxy delivered (and the share per rendition), and Pensieve's linear QoE over segment-long chunks of playback:
//   Σ R_k − 4.3 × stall s − Σ |R_{k+1} − R_k| (R in Mbit/s).
// - Output: a table per trace, totals, PASS/FAIL lines of SmoothAbr against each default, bench/out/qoe.json.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { AssetJson } from '../src/roles/api/present.ts';
import { launchChromium } from '../test/helpers/browser.ts';
import { BIN, fmt, machine, outFile, readyAsset, type ServerProcess, startServer } from './lib.ts';
import {
  bitsBetween,
  calibrate,
  listenLocal,
  loadTraceFile,
  loadTraceFolder,
  type ShaperSession,
  type ShaperStats,
  startShaper,
  type Trace,
} from './shaper.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DATA = fileURLToPath(new URL('./out/qoe-data/', import.meta.url));
const LAB_JS = fileURLToPath(new URL('./qoe-lab.js', import.meta.url));
const DEFAULT_TRACES = [join(ROOT, '../shared/traces'), fileURLToPath(new URL('./traces/', import.meta.url))];

const PLAYERS = ['shaka', 'hls.js', 'dash.js', 'smoothabr', 'watch-shaka'] as const;
type Player = (typeof PLAYERS)[number];
const DEFAULT_PLAYERS: Player[] = ['shaka', 'hls.js', 'dash.js', 'smoothabr'];
/** The players SmoothAbr is judged against (those of them that ran). */
const DEFAULTS: Player[] = ['shaka', 'hls.js', 'dash.js', 'watch-shaka'];
/**
 * Traces at a time. Measured on the 2-core VM (2 × Xeon, 24 GiB) with the four default players, 60 s sessions of
 * all six traces: K = 1 (4 pages): machine CPU 46–73 % busy, load 3.3–5.3, dropped frames 0.3–1.4 % per player;
 * K = 2 (8 pages): 84–94 %, load 8.5–9.6, 4–8 %; K = 3 (12 pages): 100 %, load 9.6–14, 28–54 % (and Shaka's lab page
 * starved into ~30 s of stalls a minute). Only K = 1 keeps decoding intact on 2 cores.
 */
const DEFAULT_PARALLEL = 1;
const REBUFFER_PENALTY = 4.3;

/** The source, all it depends on: a later run reuses the encoded asset while this is unchanged. */
const SOURCE = {
  seconds: 300,
  size: '1280x720',
  fps: 30,
  video: 'testsrc2,noise=alls=12:allf=t+u',
  audio: 'sine=frequency=440:sample_rate=48000',
  x264: 'ultrafast crf 23 g 60',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const f1 = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '—' : fmt(x, 1));
const f2 = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '—' : fmt(x, 2));

// ---- options -------------------------------------------------------------------------------------------------------

const HELP = `npm run bench:qoe -- [options]
  --players LIST     comma list of ${PLAYERS.join(', ')} (default ${DEFAULT_PLAYERS.join(',')})
  --traces PATH      a folder of *.tsv traces or one .tsv file; repeatable or a comma list
                     (default ../shared/traces and bench/traces)
  --seconds N        each session's length (default: the trace's, at most the video's)
  --parallel K       traces played at the same time (default ${DEFAULT_PARALLEL})
  --runs N           repeat the whole run N times and compare the runs (default 1)
  --rtt MS           the shaper's round trip (default 80)
  --rendered SOURCE  what says which rendition is on screen: resize (the video element's videoHeight, default) or
                     player (its own events: hls.js FRAG_CHANGED, dash.js QUALITY_CHANGE_RENDERED, Shaka
                     mediaqualitychanged where it fires); the other is recorded as the cross-check`;

const { values: opt } = parseArgs({
  options: {
    players: { type: 'string' },
    traces: { type: 'string', multiple: true },
    seconds: { type: 'string' },
    parallel: { type: 'string' },
    runs: { type: 'string' },
    rtt: { type: 'string' },
    rendered: { type: 'string' },
    help: { type: 'boolean' },
  },
});
if (opt.help) {
  console.log(HELP);
  process.exit(0);
}
const positive = (name: string, v: string | undefined, dflt: number) => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new Error(`--${name} wants a positive number, got ${v}`);
  return n;
};
const players = (opt.players ?? DEFAULT_PLAYERS.join(','))
  .split(',')
  .map((p) => p.trim())
  .filter(Boolean) as Player[];
for (const p of players)
  if (!PLAYERS.includes(p)) throw new Error(`unknown player ${p} (known: ${PLAYERS.join(', ')})`);
const SECONDS = opt.seconds === undefined ? null : positive('seconds', opt.seconds, 0);
const PARALLEL = Math.round(positive('parallel', opt.parallel, DEFAULT_PARALLEL));
const RUNS = Math.round(positive('runs', opt.runs, 1));
const RTT = positive('rtt', opt.rtt, 80);
const RENDERED = opt.rendered ?? 'resize';
if (RENDERED !== 'resize' && RENDERED !== 'player') throw new Error(`--rendered is resize or player, not ${RENDERED}`);

function loadTraces(): { trace: Trace; file: string }[] {
  const paths = (opt.traces ?? DEFAULT_TRACES).flatMap((p) => p.split(',')).filter(Boolean);
  const out: { trace: Trace; file: string }[] = [];
  for (const p of paths) {
    if (statSync(p).isDirectory()) {
      for (const t of loadTraceFolder(p)) out.push({ trace: t, file: join(p, `${t.name}.tsv`) });
    } else out.push({ trace: loadTraceFile(p), file: p });
  }
  const names = new Set<string>();
  for (const { trace } of out) {
    if (names.has(trace.name)) throw new Error(`two traces named ${trace.name}`);
    names.add(trace.name);
  }
  return out;
}

// ---- cleanup -------------------------------------------------------------------------------------------------------

const cleanups: (() => Promise<unknown>)[] = [];
async function cleanupAll(): Promise<void> {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
}
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.log(`\n${sig}: closing the browser, the proxies and the server…`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

async function stopServer(s: ServerProcess): Promise<void> {
  if (s.child.exitCode !== null || s.child.signalCode !== null) return;
  await s.stop();
}

// ---- the asset -----------------------------------------------------------------------------------------------------

interface Rung {
  id: string;
  type: 'video' | 'audio';
  width: number | null;
  height: number | null;
  /** The API's bitrate (the encode's target), bits/s. */
  bitrate: number;
  /** What the segments really average (byte-range HLS playlist: bytes × 8 / seconds, init excluded), bits/s. */
  actual: number | null;
}

async function makeSource(file: string): Promise<void> {
  const s = SOURCE;
  console.log(`generating the source: ${s.seconds} s ${s.size} ${s.fps} fps ${s.video}, ${s.audio}…`);
  // biome-ignore format: ffmpeg arguments read best in their groups
  await run('ffmpeg', [
    '-y', '-v', 'error',
    '-f', 'lavfi', '-i', `testsrc2=size=${s.size}:rate=${s.fps}:duration=${s.seconds},noise=alls=12:allf=t+u`,
    '-f', 'lavfi', '-i', `${s.audio}:duration=${s.seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '23', '-g', '60', '-c:a', 'aac', '-shortest', file,
  ], { timeout: 1_800_000 });
}

/** The ready asset of SOURCE in DATA (reused, or made now) and the server over DATA. */
async function prepareAsset(): Promise<{ server: ServerProcess; asset: AssetJson; reused: string }> {
  mkdirSync(DATA, { recursive: true });
  const marker = join(DATA, 'qoe-asset.json');
  const key = JSON.stringify(SOURCE);
  let server = await startServer(DATA);
  cleanups.push(() => stopServer(server));
  const m = existsSync(marker) ? (JSON.parse(readFileSync(marker, 'utf8')) as { source: unknown; id: string }) : null;
  if (m && JSON.stringify(m.source) === key) {
    const r = await fetch(`${server.url}/api/assets/${m.id}`, { headers: server.auth });
    if (r.ok) {
      const a = (await r.json()) as AssetJson;
      if (a.status !== 'failed') {
        const t0 = Date.now();
        const asset = a.status === 'ready' ? a : await readyAsset(server, a.id, 3_600_000);
        const how =
          a.status === 'ready' ? 'ready' : `was ${a.status}, ready after ${fmt((Date.now() - t0) / 1000, 0)} s`;
        return { server, asset, reused: `reused asset ${a.id} (${how}) of ${marker}` };
      }
    }
  }
  await stopServer(server);
  cleanups.pop();
  const source = join(DATA, 'source.mp4');
  const g0 = Date.now();
  await makeSource(source);
  console.log(`  ${fmt((Date.now() - g0) / 1000, 0)} s; importing (the platform encodes its default ladder)…`);
  const { stdout } = await run(process.execPath, [BIN, 'import', '--data', DATA, '--json', '--no-wait', source], {
    timeout: 300_000,
  });
  const { id } = JSON.parse(stdout) as { id: string };
  writeFileSync(marker, `${JSON.stringify({ source: SOURCE, id }, null, 2)}\n`);
  server = await startServer(DATA);
  cleanups.push(() => stopServer(server));
  const e0 = Date.now();
  const asset = await readyAsset(server, id, 3_600_000);
  rmSync(source, { force: true });
  return { server, asset, reused: `encoded asset ${id} now (${fmt((Date.now() - e0) / 1000, 0)} s), kept in ${DATA}` };
}

/** The ladder with each rendition's real average (from the byte-range playlists) and the segment duration. */
async function ladderOf(server: ServerProcess, asset: AssetJson): Promise<{ ladder: Rung[]; segmentDuration: number }> {
  const actual = new Map<string, number>();
  const extinfs: number[] = [];
  if (asset.playback.hlsByteRange) {
    const masterUrl = new URL(asset.playback.hlsByteRange, server.url);
    const master = await (await fetch(masterUrl)).text();
    const uris = master
      .split('\n')
      .flatMap((l) => (l.startsWith('#') ? [/URI="([^"]+)"/.exec(l)?.[1] ?? ''] : [l.trim()]))
      .filter((u) => u.endsWith('.m3u8'));
    for (const u of new Set(uris)) {
      const url = new URL(u, masterUrl);
      const rid = /([va]\d{1,2})-br\.m3u8$/.exec(url.pathname)?.[1];
      if (!rid) continue;
      const lines = (await (await fetch(url)).text()).split('\n');
      let seconds = 0;
      let bytes = 0;
      for (let i = 0; i < lines.length; i++) {
        const inf = /^#EXTINF:([0-9.]+)/.exec(lines[i]!);
        if (inf) {
          seconds += Number(inf[1]);
          if (rid.startsWith('v')) extinfs.push(Number(inf[1]));
        }
        const br = /^#EXT-X-BYTERANGE:(\d+)/.exec(lines[i]!);
        if (br) bytes += Number(br[1]);
      }
      if (seconds > 0) actual.set(rid, (bytes * 8) / seconds);
    }
  }
  const ladder = asset.renditions.map((r) => ({
    id: r.id,
    type: r.type,
    width: r.width,
    height: r.height,
    bitrate: r.bitrate,
    actual: actual.get(r.id) ?? null,
  }));
  const sorted = [...extinfs].sort((a, b) => a - b);
  const segmentDuration =
    (asset as { segmentDuration?: number }).segmentDuration ?? sorted[Math.floor(sorted.length / 2)] ?? 2;
  return { ladder, segmentDuration };
}

// ---- the lab's page origin -----------------------------------------------------------------------------------------

const LIBS: Record<string, string> = {
  '/lib/hls.js': 'node_modules/hls.js/dist/hls.min.js',
  '/lib/dash.all.min.js': 'node_modules/dashjs/dist/modern/umd/dash.all.min.js',
  '/lib/shaka5.js': 'node_modules/shaka-player/dist/shaka-player.compiled.js',
};

/** /qoe.html (a 1280×720 video and bench/qoe-lab.js), /qoe-lab.js and the players' libraries, on 127.0.0.1:0. */
async function startLabOrigin(): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (type: string, body: Buffer | string) => {
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (path === '/qoe.html') {
      return send(
        'text/html; charset=utf-8',
        '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><style>body{margin:0;background:#000}</style>' +
          '<video width="1280" height="720" muted autoplay playsinline></video><script src="/qoe-lab.js"></script>',
      );
    }
    if (path === '/qoe-lab.js') return send('text/javascript', readFileSync(LAB_JS));
    const lib = LIBS[path];
    if (lib) return send('text/javascript', readFileSync(join(ROOT, lib)));
    res.writeHead(404).end();
  });
  return listenLocal(server);
}

// ---- one session ---------------------------------------------------------------------------------------------------

/** What bench/qoe-lab.js collected (window.qoeCollect()). Times: ms since the page's navigation. */
interface Raw {
  kind: string;
  version: string;
  loadCallAt: number | null;
  playingAt: number | null;
  startupAt: number | null;
  events: [number, string, number, number, number][];
  samples: [number, number, number, number, number][];
  quality: [number, number, number][];
  buffering: [number, number][];
  resize: [number, number][];
  visibility: [number, string][];
  errors: string[];
  plays: number;
  now: number;
  visibilityNow: string;
  dropped: number;
  totalFrames: number;
  currentTime: number | null;
  paused: boolean | null;
  hasVideo: boolean;
  abrReason: string | null;
}

interface Figures {
  started: boolean;
  startupS: number | null;
  /** From the player's load call (lab pages). */
  startupFromLoadS: number | null;
  stalls: number;
  stallS: number;
  stallIntervals: [number, number][];
  /** Cross-check: seconds after startup the playhead did not move while not paused (100 ms samples). */
  frozenS: number;
  playS: number;
  /** Time-weighted video bitrate on screen, Mbit/s (player events; resize before the first one). */
  bitrateMbps: number;
  /** The same from the other timeline (null: the player has no quality events, as Shaka by default). */
  bitrateCrossMbps: number | null;
  /** Where the rendered height came from (--rendered), and the cross-check's source. */
  qualitySource: 'player' | 'resize';
  crossSource: 'player' | 'resize' | null;
  switches: number;
  switchesCross: number | null;
  switchesPerMin: number;
  /** Seconds on screen per height. */
  heightSeconds: Record<string, number>;
  droppedPct: number | null;
  dropped: number;
  totalFrames: number;
  qoe: number;
  qoeParts: { quality: number; rebuffer: number; smoothness: number; chunks: number };
  visible: boolean;
}

interface Session {
  player: Player;
  trace: string;
  seconds: number;
  url: string;
  figures: Figures;
  version: string;
  errors: string[];
  fallbackPlay: boolean;
  /** The watch page's adaptation reason at the end (null on the lab's page). */
  abrReason: string | null;
  proxy: {
    bytes: number;
    /** Mbit/s the proxy delivered over the session (media only: audio, video, manifests, text). */
    mbps: number;
    /** Mean rate the trace allowed over the session, Mbit/s. */
    capacityMbps: number;
    requests: number;
    aborted: number;
    upstreamErrors: number;
    unshapedBytes: number;
    /** Share of the shaped bytes per rendition id (`other`: manifests, text). */
    share: Record<string, number>;
    byRendition: Record<string, number>;
  };
  timeline: {
    quality: [number, number, number][];
    resize: [number, number][];
    buffering: [number, number][];
    visibility: [number, string][];
  };
}

function merge(iv: [number, number][]): [number, number][] {
  const s = iv.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const [a, b] of s) {
    const last = out.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** Every figure of one session from the page's raw records. */
function analyse(raw: Raw, ladder: Rung[], segmentDuration: number): Figures {
  const end = raw.now;
  const video = ladder.filter((r) => r.type === 'video' && r.height);
  const mbpsOf = (h: number) => {
    if (!h) return 0;
    let best = video[0];
    for (const r of video) if (Math.abs(r.height! - h) < Math.abs(best!.height! - h)) best = r;
    return (best?.bitrate ?? 0) / 1e6;
  };
  const visible = raw.visibility.every(([, v]) => v === 'visible') && raw.visibilityNow === 'visible';
  const dropped = {
    droppedPct: raw.totalFrames ? (100 * raw.dropped) / raw.totalFrames : null,
    dropped: raw.dropped,
    totalFrames: raw.totalFrames,
  };
  const start = raw.startupAt;
  if (start === null) {
    return {
      started: false,
      startupS: null,
      startupFromLoadS: null,
      stalls: 0,
      stallS: 0,
      stallIntervals: [],
      frozenS: 0,
      playS: 0,
      bitrateMbps: 0,
      bitrateCrossMbps: null,
      qualitySource: RENDERED === 'player' && raw.quality.length ? 'player' : 'resize',
      crossSource: null,
      switches: 0,
      switchesCross: null,
      switchesPerMin: 0,
      heightSeconds: {},
      ...dropped,
      qoe: 0,
      qoeParts: { quality: 0, rebuffer: 0, smoothness: 0, chunks: 0 },
      visible,
    };
  }
  // Stalls: video waiting (or stalled while starved) → playing, and Shaka's buffering true → false; after startup.
  const iv: [number, number][] = [];
  let open: number | null = null;
  for (const [t, type, , rs] of raw.events) {
    if (type === 'waiting' || (type === 'stalled' && rs < 3)) open ??= t;
    else if (type === 'playing' && open !== null) {
      iv.push([open, t]);
      open = null;
    }
  }
  if (open !== null) iv.push([open, end]);
  let buf: number | null = null;
  for (const [t, on] of raw.buffering) {
    if (on) buf ??= t;
    else if (buf !== null) {
      iv.push([buf, t]);
      buf = null;
    }
  }
  if (buf !== null) iv.push([buf, end]);
  const stalls = merge(iv.map(([a, b]): [number, number] => [Math.max(a, start), Math.min(b, end)]));
  const stallS = stalls.reduce((a, [x, y]) => a + (y - x), 0) / 1000;
  // Playing: [startup, end] without the stalls.
  const playing: [number, number][] = [];
  let cur = start;
  for (const [a, b] of stalls) {
    if (a > cur) playing.push([cur, a]);
    cur = Math.max(cur, b);
  }
  if (end > cur) playing.push([cur, end]);
  const playS = playing.reduce((a, [x, y]) => a + (y - x), 0) / 1000;
  // Frozen playhead (cross-check).
  let frozen = 0;
  for (let i = 1; i < raw.samples.length; i++) {
    const [t0, c0, p0] = raw.samples[i - 1]!;
    const [t1, c1] = raw.samples[i]!;
    if (t0 < start || p0) continue;
    const dt = (t1 - t0) / 1000;
    if (c1 - c0 < 0.2 * dt) frozen += dt;
  }
  // The height on screen. Two timelines: the player's own events (hls.js FRAG_CHANGED, dash.js
  // QUALITY_CHANGE_RENDERED, Shaka `mediaqualitychanged` — which Shaka fires only with
  // streaming.observeQualityChanges, off by default and not set by the watch page) and the video element's `resize`
  // (videoHeight: the decoded frames' size; every rung has its own height). --rendered picks the primary one (default
  // resize: the same signal for every player; dash.js's event also reports sub-second flips no frame shows); the
  // other is the cross-check. Before the first entry of the primary timeline, `resize` says what shows.
  const rz = raw.resize.filter(([, h]) => h > 0).map(([t, h]): [number, number] => [t, h]);
  const ev = [...raw.quality].sort((a, b) => a[0] - b[0]).map(([t, h]): [number, number] => [t, h]);
  const usePlayer = RENDERED === 'player' && ev.length > 0;
  const prim = usePlayer ? ev : rz;
  const cross = usePlayer ? rz : ev;
  const stepAt = (xs: readonly [number, number][], t: number): number | null => {
    let h: number | null = null;
    for (const x of xs) {
      if (x[0] <= t) h = x[1];
      else break;
    }
    return h;
  };
  const heightAt = (t: number) => stepAt(prim, t) ?? stepAt(rz, t) ?? prim[0]?.[1] ?? rz[0]?.[1] ?? 0;
  const crossAt = (t: number) => stepAt(cross, t) ?? stepAt(rz, t) ?? cross[0]?.[1] ?? 0;
  const cuts = [...ev.map((x) => x[0]), ...rz.map((x) => x[0])].sort((a, b) => a - b);
  const pieces: { s: number; mbps: number; h: number; cmbps: number }[] = [];
  for (const [a, b] of playing) {
    const inside = cuts.filter((t) => t > a && t < b);
    const bounds = [a, ...inside, b];
    for (let i = 0; i + 1 < bounds.length; i++) {
      const x = bounds[i]!;
      const s = (bounds[i + 1]! - x) / 1000;
      if (s <= 0) continue;
      const h = heightAt(x);
      pieces.push({ s, mbps: mbpsOf(h), h, cmbps: mbpsOf(crossAt(x)) });
    }
  }
  const heightSeconds: Record<string, number> = {};
  for (const p of pieces) heightSeconds[p.h] = (heightSeconds[p.h] ?? 0) + p.s;
  const bitrateMbps = playS ? pieces.reduce((a, p) => a + p.s * p.mbps, 0) / playS : 0;
  const bitrateCrossMbps = cross.length && playS ? pieces.reduce((a, p) => a + p.s * p.cmbps, 0) / playS : null;
  // Switches: changes of the rendered rendition after startup.
  const switchesOf = (xs: readonly [number, number][], at: (t: number) => number) => {
    let n = 0;
    let prev = at(start);
    for (const [t, h] of xs) {
      if (t <= start || t > end) continue;
      if (h !== prev) n++;
      prev = h;
    }
    return n;
  };
  const switches = switchesOf(prim, heightAt);
  const switchesCross = cross.length ? switchesOf(cross, crossAt) : null;
  // Linear QoE over chunks of segmentDuration seconds of playback.
  const chunks: { s: number; r: number }[] = [];
  let c = { s: 0, r: 0 };
  for (const p of pieces) {
    let left = p.s;
    while (left > 1e-9) {
      const take = Math.min(left, segmentDuration - c.s);
      c.s += take;
      c.r += take * p.mbps;
      left -= take;
      if (c.s >= segmentDuration - 1e-9) {
        chunks.push(c);
        c = { s: 0, r: 0 };
      }
    }
  }
  if (c.s > 1e-6) chunks.push(c);
  const rk = chunks.map((k) => k.r / k.s);
  const quality = chunks.reduce((a, k) => a + k.r / segmentDuration, 0);
  let smoothness = 0;
  for (let k = 1; k < rk.length; k++) smoothness += Math.abs(rk[k]! - rk[k - 1]!);
  const rebuffer = REBUFFER_PENALTY * stallS;
  return {
    started: true,
    startupS: start / 1000,
    startupFromLoadS: raw.loadCallAt === null ? null : (start - raw.loadCallAt) / 1000,
    stalls: stalls.length,
    stallS,
    stallIntervals: stalls.map(([a, b]) => [a / 1000, b / 1000]),
    frozenS: frozen,
    playS,
    bitrateMbps,
    bitrateCrossMbps,
    qualitySource: usePlayer ? 'player' : 'resize',
    crossSource: cross.length ? (usePlayer ? 'resize' : 'player') : null,
    switches,
    switchesCross,
    switchesPerMin: playS ? switches / (playS / 60) : 0,
    heightSeconds,
    ...dropped,
    qoe: quality - rebuffer - smoothness,
    qoeParts: { quality, rebuffer, smoothness, chunks: chunks.length },
    visible,
  };
}

interface Ctx {
  browser: Browser;
  server: ServerProcess;
  asset: AssetJson;
  lab: { url: string };
  ladder: Rung[];
  segmentDuration: number;
}

interface Open {
  player: Player;
  shaper: ShaperSession;
  context: BrowserContext;
  page: Page;
  url: string;
  errors: string[];
}

async function openSession(ctx: Ctx, player: Player, trace: Trace): Promise<Open> {
  const shaper = await startShaper({ upstream: ctx.server.url, trace, rttMs: RTT });
  const context = await ctx.browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => {
    if (errors.length < 20) errors.push(`pageerror: ${e.message.slice(0, 300)}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && errors.length < 20) errors.push(`console: ${m.text().slice(0, 300)}`);
  });
  const id = ctx.asset.id;
  let url: string;
  if (player === 'smoothabr' || player === 'watch-shaka') {
    await context.addInitScript({ path: LAB_JS });
    url = `${shaper.url}/watch/${id}?autoplay=1&muted=1&embed${player === 'watch-shaka' ? '&abr=shaka' : ''}`;
  } else {
    const manifest = player === 'hls.js' ? ctx.asset.playback.hls! : ctx.asset.playback.dash!;
    const media = new URL(manifest, shaper.url).href;
    url = `${ctx.lab.url}/qoe.html?${new URLSearchParams({ player, url: media })}`;
  }
  return { player, shaper, context, page, url, errors };
}

async function closeSession(o: Open): Promise<void> {
  await o.context.close().catch(() => {});
  await o.shaper.close().catch(() => {});
}

/** Plays one open session for `seconds` from its navigation; then collects. */
async function playSession(ctx: Ctx, o: Open, trace: Trace, seconds: number): Promise<Session> {
  o.shaper.start();
  const t0 = performance.now();
  await o.page.goto(o.url, { waitUntil: 'commit', timeout: 30_000 });
  const watch = o.player === 'smoothabr' || o.player === 'watch-shaka';
  let fallbackPlay = false;
  const endAt = t0 + seconds * 1000;
  while (performance.now() < endAt - 5) {
    await sleep(Math.min(1000, endAt - performance.now()));
    // The watch page starts by itself with ?autoplay=1&muted=1; if it did not (no `play` 6 s in, media loaded),
    // start it from here as a viewer's click would.
    if (watch && !fallbackPlay && performance.now() - t0 > 6000) {
      fallbackPlay = await o.page
        .evaluate(() => (globalThis as unknown as { qoeFallbackPlay: () => boolean }).qoeFallbackPlay())
        .catch(() => false);
    }
  }
  const raw = (await o.page.evaluate(() =>
    (globalThis as unknown as { qoeCollect: () => unknown }).qoeCollect(),
  )) as Raw;
  const st: ShaperStats = o.shaper.stats();
  const figures = analyse(raw, ctx.ladder, ctx.segmentDuration);
  const bytes = st.shapedBytes;
  const share = Object.fromEntries(
    Object.entries(st.byRendition)
      .sort((a, b) => a[0].localeCompare(b[0]))
      .map(([k, v]) => [k, bytes ? v / bytes : 0]),
  );
  return {
    player: o.player,
    trace: trace.name,
    seconds,
    url: o.url,
    figures,
    version: raw.version,
    errors: [...raw.errors, ...o.errors].slice(0, 30),
    fallbackPlay,
    abrReason: raw.abrReason ?? null,
    proxy: {
      bytes,
      mbps: (bytes * 8) / st.elapsed / 1e6,
      capacityMbps: st.capacityBits / st.elapsed / 1e6,
      requests: st.shapedRequests,
      aborted: st.aborted,
      upstreamErrors: st.upstreamErrors,
      unshapedBytes: st.unshapedBytes,
      share,
      byRendition: st.byRendition,
    },
    timeline: { quality: raw.quality, resize: raw.resize, buffering: raw.buffering, visibility: raw.visibility },
  };
}

// ---- CPU of the machine --------------------------------------------------------------------------------------------

function cpuTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

// ---- one trace, one run --------------------------------------------------------------------------------------------

interface TraceRun {
  trace: string;
  seconds: number;
  sessions: Session[];
  /** Machine CPU busy over the trace's sessions (0–1 of all cores) and the load average at its end. */
  cpuBusy: number;
  loadAvg: string;
  /** Traces playing at the same time when this one started. */
  concurrent: number;
}

let playingNow = 0;

async function runTrace(ctx: Ctx, trace: Trace, seconds: number): Promise<TraceRun> {
  playingNow++;
  const concurrent = playingNow;
  const opened: Open[] = [];
  const cleanup = async () => {
    await Promise.all(opened.map(closeSession));
  };
  cleanups.push(cleanup);
  try {
    for (const p of players) opened.push(await openSession(ctx, p, trace));
    const c0 = cpuTicks();
    console.log(
      `  ${trace.name}: ${players.length} players for ${fmt(seconds, 0)} s (${concurrent} trace(s) playing; load average ${loadavg()})…`,
    );
    const sessions = await Promise.all(opened.map((o) => playSession(ctx, o, trace, seconds)));
    const c1 = cpuTicks();
    const cpuBusy = (c1.busy - c0.busy) / Math.max(1, c1.total - c0.total);
    const line = sessions
      .map(
        (s) =>
          `${s.player} ${s.figures.started ? `${f1(s.figures.startupS)} s` : 'no start'}, ${s.figures.stalls} stalls ${f1(s.figures.stallS)} s, ${f2(s.figures.bitrateMbps)} Mb/s, QoE ${f1(s.figures.qoe)}`,
      )
      .join(' | ');
    console.log(`  ${trace.name} done (CPU ${fmt(cpuBusy * 100, 0)} % busy): ${line}`);
    return { trace: trace.name, seconds, sessions, cpuBusy, loadAvg: loadavg(), concurrent };
  } finally {
    playingNow--;
    await cleanup();
    cleanups.splice(cleanups.indexOf(cleanup), 1);
  }
}

async function runAll(ctx: Ctx, traces: Trace[], videoSeconds: number): Promise<TraceRun[]> {
  const queue = [...traces];
  const out: TraceRun[] = [];
  const worker = async () => {
    for (;;) {
      const t = queue.shift();
      if (!t || interrupted) return;
      const seconds = Math.min(SECONDS ?? t.duration, videoSeconds);
      out.push(await runTrace(ctx, t, seconds));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, traces.length) }, worker));
  return traces.map((t) => out.find((r) => r.trace === t.name)!).filter(Boolean);
}

// ---- summaries -----------------------------------------------------------------------------------------------------

interface Row {
  player: Player;
  startupS: number | null;
  stalls: number;
  stallS: number;
  bitrateMbps: number;
  switchesPerMin: number;
  droppedPct: number | null;
  qoe: number;
  proxyMbps: number;
  notStarted: number;
}

function rowOf(s: Session): Row {
  const f = s.figures;
  return {
    player: s.player,
    startupS: f.startupS,
    stalls: f.stalls,
    stallS: f.stallS,
    bitrateMbps: f.bitrateMbps,
    switchesPerMin: f.switchesPerMin,
    droppedPct: f.droppedPct,
    qoe: f.qoe,
    proxyMbps: s.proxy.mbps,
    notStarted: f.started ? 0 : 1,
  };
}

function totalOf(player: Player, ss: Session[]): Row {
  const play = ss.reduce((a, s) => a + s.figures.playS, 0);
  const started = ss.filter((s) => s.figures.started);
  const frames = ss.reduce((a, s) => a + s.figures.totalFrames, 0);
  const secs = ss.reduce((a, s) => a + s.seconds, 0);
  return {
    player,
    startupS: started.length ? started.reduce((a, s) => a + s.figures.startupS!, 0) / started.length : null,
    stalls: ss.reduce((a, s) => a + s.figures.stalls, 0),
    stallS: ss.reduce((a, s) => a + s.figures.stallS, 0),
    bitrateMbps: play ? ss.reduce((a, s) => a + s.figures.bitrateMbps * s.figures.playS, 0) / play : 0,
    switchesPerMin: play ? ss.reduce((a, s) => a + s.figures.switches, 0) / (play / 60) : 0,
    droppedPct: frames ? (100 * ss.reduce((a, s) => a + s.figures.dropped, 0)) / frames : null,
    qoe: ss.reduce((a, s) => a + s.figures.qoe, 0),
    proxyMbps: secs ? ss.reduce((a, s) => a + s.proxy.mbps * s.seconds, 0) / secs : 0,
    notStarted: ss.length - started.length,
  };
}

function printTable(title: string, rows: Row[], startupLabel = 'startup s'): void {
  console.log(`\n${title}`);
  console.log(
    `| player | ${startupLabel} | stalls | stall s | bitrate Mb/s | switches/min | dropped % | QoE | proxy Mb/s |`,
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const start = r.notStarted ? `${f2(r.startupS)} (${r.notStarted} no start)` : f2(r.startupS);
    console.log(
      `| ${r.player} | ${start} | ${r.stalls} | ${f1(r.stallS)} | ${f2(r.bitrateMbps)} | ${f1(r.switchesPerMin)} | ${f2(r.droppedPct)} | ${f1(r.qoe)} | ${f2(r.proxyMbps)} |`,
    );
  }
}

interface Verdict {
  line: string;
  pass: boolean;
}

/** SmoothAbr against each default that ran: per trace and on the totals. */
function criteria(runs: TraceRun[]): { lines: Verdict[]; pass: boolean } | null {
  if (!players.includes('smoothabr')) return null;
  const refs = DEFAULTS.filter((p) => players.includes(p));
  if (!refs.length) return null;
  const lines: Verdict[] = [];
  const pf = (b: boolean) => (b ? 'PASS' : 'FAIL');
  const qoeWins = new Map<Player, number>(refs.map((r) => [r, 0]));
  for (const tr of runs) {
    const ours = tr.sessions.find((s) => s.player === 'smoothabr')!.figures;
    for (const d of refs) {
      const o = tr.sessions.find((s) => s.player === d)!.figures;
      const a = ours.stallS <= o.stallS + 1e-9;
      const b = ours.bitrateMbps >= 0.95 * o.bitrateMbps;
      const c = ours.qoe >= o.qoe;
      if (c) qoeWins.set(d, qoeWins.get(d)! + 1);
      lines.push({
        line: `${tr.trace}: smoothabr vs ${d}: stall ${f1(ours.stallS)} ≤ ${f1(o.stallS)} s ${pf(a)}; bitrate ${f2(ours.bitrateMbps)} ≥ 0.95 × ${f2(o.bitrateMbps)} Mb/s ${pf(b)}; QoE ${f1(ours.qoe)} ≥ ${f1(o.qoe)} ${pf(c)}`,
        pass: a && b && c,
      });
    }
  }
  const all = (p: Player) =>
    totalOf(
      p,
      runs.map((t) => t.sessions.find((s) => s.player === p)!),
    );
  const ours = all('smoothabr');
  const need = Math.ceil((5 * runs.length) / 6);
  let pass = true;
  for (const d of refs) {
    const o = all(d);
    const checks: [string, boolean][] = [
      [`total stall ${f1(ours.stallS)} ≤ ${f1(o.stallS)} s`, ours.stallS <= o.stallS + 1e-9],
      [
        `total bitrate ${f2(ours.bitrateMbps)} ≥ 0.95 × ${f2(o.bitrateMbps)} Mb/s`,
        ours.bitrateMbps >= 0.95 * o.bitrateMbps,
      ],
      [`total QoE ${f1(ours.qoe)} ≥ ${f1(o.qoe)}`, ours.qoe >= o.qoe],
      [`QoE ≥ on ${qoeWins.get(d)} of ${runs.length} traces (need ${need})`, qoeWins.get(d)! >= need],
    ];
    for (const [text, ok] of checks) {
      lines.push({ line: `TOTAL smoothabr vs ${d}: ${text} ${pf(ok)}`, pass: ok });
      pass &&= ok;
    }
  }
  return { lines, pass };
}

// ---- main ----------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const traces = loadTraces();
  console.log(`bench:qoe — ${machine()}; load average ${loadavg()}`);
  console.log(
    `players ${players.join(', ')}; ${traces.length} traces; ${SECONDS ? `${SECONDS} s sessions` : 'sessions of the trace length'}; ${PARALLEL} trace(s) at a time; ${RUNS} run(s); RTT ${RTT} ms`,
  );

  // Calibration: the shaper must deliver what it is told.
  const cal = await calibrate(2, 10);
  console.log(
    `calibration: a constant 2 Mbit/s trace delivered ${fmt(cal.mbps, 3)} Mbit/s over 10 s (${cal.bytes} B; error ${fmt(cal.error * 100, 2)} %)`,
  );
  if (Math.abs(cal.error) > 0.05) {
    throw new Error(
      `calibration failed: the shaper delivered ${fmt(cal.mbps, 3)} Mbit/s for 2 Mbit/s (error ${fmt(cal.error * 100, 1)} %, more than 5 %): the machine is too busy for its 10 ms ticks, or the shaper is broken`,
    );
  }

  const { server, asset, reused } = await prepareAsset();
  console.log(reused);
  if (asset.playbackPolicy !== 'public') throw new Error(`asset ${asset.id} is ${asset.playbackPolicy}, not public`);
  const { ladder, segmentDuration } = await ladderOf(server, asset);
  const videoSeconds = asset.duration ?? SOURCE.seconds;
  console.log(
    `ladder (the platform's default for a ${SOURCE.size} source; ${fmt(videoSeconds, 1)} s, ${segmentDuration} s segments):`,
  );
  for (const r of ladder) {
    console.log(
      `  ${r.id} ${r.type === 'video' ? `${r.width}×${r.height}` : 'audio'}: API ${fmt(r.bitrate / 1e3, 0)} kb/s, actual average ${r.actual === null ? '—' : `${fmt(r.actual / 1e3, 0)} kb/s`}`,
    );
  }
  console.log(
    `traces: ${traces.map((t) => `${t.trace.name} (${fmt(t.trace.duration, 0)} s, mean ${fmt(bitsBetween(t.trace, 0, t.trace.duration) / 1e6 / t.trace.duration, 2)} Mbit/s)`).join(', ')}`,
  );

  const browser = await launchChromium();
  cleanups.push(() => browser.close());
  const lab = await startLabOrigin();
  cleanups.push(() => lab.close());
  const ctx: Ctx = { browser, server, asset, lab, ladder, segmentDuration };

  console.log(
    `columns: startup from navigation; stalls after it; bitrate = the video rendition on screen (by ${RENDERED === 'resize' ? 'videoHeight/resize; player events as the cross-check' : "the player's events; resize as the cross-check"}), time-weighted over playback; QoE = Σ R_k − ${REBUFFER_PENALTY} × stall s − Σ |ΔR| over ${segmentDuration} s chunks; proxy = media Mbit/s the shaper delivered`,
  );
  const runs: { startedAt: string; traces: TraceRun[]; verdict: ReturnType<typeof criteria> }[] = [];
  for (let r = 0; r < RUNS && !interrupted; r++) {
    console.log(`\nrun ${r + 1} of ${RUNS}:`);
    const rs = new Date().toISOString();
    const tr = await runAll(
      ctx,
      traces.map((t) => t.trace),
      videoSeconds,
    );
    for (const t of tr) {
      printTable(
        `${t.trace} — ${fmt(t.seconds, 0)} s, trace mean ${f2(t.sessions[0]?.proxy.capacityMbps)} Mbit/s over the session; CPU ${fmt(t.cpuBusy * 100, 0)} % busy, load ${t.loadAvg}`,
        t.sessions.map(rowOf),
      );
      for (const s of t.sessions) {
        const notes: string[] = [];
        if (!s.figures.visible) notes.push('page NOT visible');
        if (s.fallbackPlay) notes.push('started by the lab (no autoplay)');
        if (s.errors.length) notes.push(`errors: ${s.errors.slice(0, 3).join('; ')}`);
        const x = s.figures.bitrateCrossMbps;
        if (x !== null && Math.abs(x - s.figures.bitrateMbps) > 0.05 * s.figures.bitrateMbps + 0.01) {
          notes.push(
            `${s.figures.crossSource} events say ${f2(x)} Mb/s, ${s.figures.switchesCross} switches (cross-check)`,
          );
        }
        if (Math.abs(s.figures.frozenS - s.figures.stallS) > 1)
          notes.push(`frozen playhead ${f1(s.figures.frozenS)} s`);
        const share = Object.entries(s.proxy.share)
          .map(([k, v]) => `${k} ${fmt(v * 100, 0)}%`)
          .join(' ');
        if (s.abrReason) notes.push(`adaptation: ${s.abrReason}`);
        console.log(`  ${s.player} (${s.version}): proxy ${share}${notes.length ? `; ${notes.join('; ')}` : ''}`);
      }
    }
    const verdict = criteria(tr);
    printTable(
      `totals, run ${r + 1} (startup: mean; bitrate, switches: over all playback; QoE: sum)`,
      players.map((p) =>
        totalOf(
          p,
          tr.map((t) => t.sessions.find((s) => s.player === p)!),
        ),
      ),
      'mean startup s',
    );
    if (verdict) {
      console.log('');
      for (const v of verdict.lines) console.log(v.line);
      console.log(`SmoothAbr criteria, run ${r + 1}: ${verdict.pass ? 'PASS' : 'FAIL'}`);
    }
    runs.push({ startedAt: rs, traces: tr, verdict });
  }

  // Stability between runs.
  let stability: unknown = null;
  if (runs.length > 1) {
    console.log('\nbetween runs (run N − run 1; criterion: stall ± 0.5 s, bitrate ± 5 %):');
    console.log('| trace | player | Δ stall s | Δ bitrate % | |');
    console.log('|---|---|---|---|---|');
    const rows: unknown[] = [];
    let within = 0;
    let n = 0;
    for (let r = 1; r < runs.length; r++) {
      for (const t of runs[r]!.traces) {
        for (const s of t.sessions) {
          const a = runs[0]!.traces.find((x) => x.trace === t.trace)?.sessions.find((x) => x.player === s.player);
          if (!a) continue;
          const ds = s.figures.stallS - a.figures.stallS;
          const db = a.figures.bitrateMbps ? (s.figures.bitrateMbps / a.figures.bitrateMbps - 1) * 100 : Number.NaN;
          const ok = Math.abs(ds) <= 0.5 && Math.abs(db) <= 5;
          n++;
          if (ok) within++;
          rows.push({ run: r + 1, trace: t.trace, player: s.player, stallDeltaS: ds, bitrateDeltaPct: db, ok });
          console.log(`| ${t.trace} | ${s.player} | ${fmt(ds, 1)} | ${fmt(db, 1)} | ${ok ? 'within' : 'MOVED'} |`);
        }
      }
    }
    console.log(`${within} of ${n} player × trace figures within ± 0.5 s and ± 5 %`);
    stability = { within, of: n, rows };
  }

  const out = {
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: machine(),
    loadAverageEnd: loadavg(),
    options: { players, seconds: SECONDS, parallel: PARALLEL, runs: RUNS, rttMs: RTT, rendered: RENDERED },
    calibration: { targetMbps: 2, seconds: 10, ...cal },
    source: SOURCE,
    asset: { id: asset.id, duration: asset.duration, reused },
    ladder,
    segmentDuration,
    traces: traces.map((t) => ({
      name: t.trace.name,
      file: t.file,
      duration: t.trace.duration,
      meanMbps: bitsBetween(t.trace, 0, t.trace.duration) / 1e6 / t.trace.duration,
      samples: t.trace.samples.length,
    })),
    runs: runs.map((r) => ({
      startedAt: r.startedAt,
      traces: r.traces,
      totals: players.map((p) =>
        totalOf(
          p,
          r.traces.map((t) => t.sessions.find((s) => s.player === p)!),
        ),
      ),
      criteria: r.verdict,
    })),
    stability,
  };
  writeFileSync(outFile('qoe'), `${JSON.stringify(out, null, 1)}\n`);
  console.log(`\nwritten: ${outFile('qoe')}`);
}

try {
  await main();
} finally {
  await cleanupAll();
}
