// npm run bench:live [-- --quick] — live streaming on this machine, measured end to end:
//
// 1. Glass-to-glass latency, by the picture itself: the publishing ffmpeg (-re, lavfi testsrc2 720p30 + a sine, x264
//    veryfast, 2 s GOPs, over RTMP) draws the wall-clock time each frame is read into the frame (bench/live-clock.ts);
//    a page in chromium (test/browser/live-lab.js, another origin than the media) decodes it from the video element
//    every animation frame and compares with Date.now(). Median and p95 over MEASURE seconds for LL-HLS in hls.js
//    (lowLatencyMode), standard HLS in hls.js (lowLatencyMode false) and DASH in dash.js (liveCatchup, the MPD's
//    ServiceDescription targets), one after the other on ONE publish. Beside it: the latency the player itself
//    derives from PROGRAM-DATE-TIME / availabilityStartTime, and the server's ingest lag (stats.latencySeconds).
// 2. CPU per stream: utime+stime (/proc) of the server's ladder ffmpeg, as cores, for a 720p30 input transcoded into
//    the ladder and for a stream created with transcode:false — each fed by a copying publisher (-re -c copy of a
//    pre-encoded 720p30 file, so the publisher costs next to nothing).
// 3. Capacity: 1, 2, 3, … transcoded 720p30 streams at once (copying publishers) until the ladders fall behind real
//    time (stats.latencySeconds, wall clock − media time at the edge, keeps growing); the largest count that keeps up.
// The machine's own load (other processes) is printed with every phase: on a shared VM it moves every figure.
// Output: a table with the ratios to the targets (LL-HLS hls.js median ≤ 2.5 s, p95 ≤ 3 s) and bench/out/live.json.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import type { LiveStreamJson } from '../src/roles/api/live.ts';
import { startLiveLab } from '../test/browser/lab-server.ts';
import { launchChromium } from '../test/helpers/browser.ts';
import { fmt, machine, outFile, type ServerProcess, startServer, waitFor } from './lib.ts';
import { CLOCK, checkClock, clockFilter, decodeClock, installClockSampler } from './live-clock.ts';

const run = promisify(execFile);
const QUICK = process.argv.includes('--quick');
/** Seconds of each latency measurement (after the player's warm-up). */
const MEASURE = QUICK ? 20 : 120;
const WARMUP = QUICK ? 8 : 15;
/** Seconds of each CPU measurement (after a warm-up of 6 s). */
const CPU_SECONDS = QUICK ? 10 : 30;
/** Seconds each capacity step runs. */
const STEP = QUICK ? 24 : 45;
const MAX_STREAMS = 6;
const TARGET = { median: 2.5, p95: 3 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
const quantile = (xs: readonly number[], q: number) => {
  const s = sorted(xs);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const median = (xs: readonly number[]) => quantile(xs, 0.5);
const f2 = (x: number | null | undefined) => (x === null || x === undefined || Number.isNaN(x) ? '—' : fmt(x));
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ---- CPU from /proc ------------------------------------------------------------------------------------------------

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** utime+stime (ticks), ppid and name of a process, or null once it is gone. */
function procStat(pid: number): { ticks: number; ppid: number; comm: string } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const f = s.slice(close + 2).split(' ');
    return { ticks: Number(f[11]) + Number(f[12]), ppid: Number(f[1]), comm };
  } catch {
    return null;
  }
}

/** Every process now: pid → ppid and name. */
function processTable(): Map<number, { ppid: number; comm: string }> {
  const t = new Map<number, { ppid: number; comm: string }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = procStat(Number(name));
    if (st) t.set(Number(name), { ppid: st.ppid, comm: st.comm });
  }
  return t;
}

/** A process's command line ('' once it is gone). */
function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/**
 * The server's ffmpeg children of one kind: the ladders (FLV on stdin) or the SRT listeners (one per stream, idle
 * until an SRT publisher connects).
 */
function serverFfmpegs(serverPid: number, kind: 'ladder' | 'srt'): number[] {
  return [...processTable()]
    .filter(([pid, p]) => {
      if (p.ppid !== serverPid || p.comm !== 'ffmpeg') return false;
      const cmd = cmdline(pid);
      return kind === 'ladder' ? cmd.includes(' -i pipe:0') : cmd.includes(' -i srt://');
    })
    .map(([pid]) => pid);
}

const ladderPids = (serverPid: number) => serverFfmpegs(serverPid, 'ladder');

/** This process and all its descendants (the server and its ladders, the publishers, chromium). */
function ourPids(): number[] {
  const t = processTable();
  const ours = new Set([process.pid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, p] of t) {
      if (!ours.has(pid) && ours.has(p.ppid)) {
        ours.add(pid);
        grew = true;
      }
    }
  }
  return [...ours];
}

/** Busy ticks of the whole machine (every CPU: all but idle and iowait). */
function machineBusyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return total - f[3]! - f[4]!;
}

/**
 * CPU of a changing set of processes over a window, as cores: polled every 500 ms; a process seen first after the
 * start counts from 0 (it started inside the window), one that exits keeps its last reading.
 */
class CpuMeter {
  readonly #select: () => number[];
  readonly #first = new Map<number, number>();
  readonly #last = new Map<number, number>();
  readonly #t0 = performance.now();
  readonly #busy0 = machineBusyTicks();
  #timer: NodeJS.Timeout;

  constructor(select: () => number[]) {
    this.#select = select;
    this.#poll(true);
    this.#timer = setInterval(() => this.#poll(false), 500);
  }

  #poll(start: boolean): void {
    for (const pid of this.#select()) {
      const st = procStat(pid);
      if (!st) continue;
      if (!this.#first.has(pid)) this.#first.set(pid, start ? st.ticks : 0);
      this.#last.set(pid, st.ticks);
    }
  }

  /** The processes seen so far. */
  get pids(): number[] {
    return [...this.#last.keys()];
  }

  /** Cores used by the selected processes, by the whole machine, and how many processes were seen. */
  stop(): { cores: number; machineCores: number; processes: number } {
    this.#poll(false);
    clearInterval(this.#timer);
    const secs = (performance.now() - this.#t0) / 1000;
    let ticks = 0;
    for (const [pid, last] of this.#last) ticks += last - (this.#first.get(pid) ?? 0);
    return {
      cores: ticks / CLK_TCK / secs,
      machineCores: (machineBusyTicks() - this.#busy0) / CLK_TCK / secs,
      processes: this.#last.size,
    };
  }
}

/** The ladders' cores, and the cores of processes that are not this benchmark's (other work on a shared VM). */
class PhaseCpu {
  readonly #ladder: CpuMeter;
  readonly #ours = new CpuMeter(ourPids);
  /** What each ladder process was (its command line, shortened), for the record. */
  readonly #what = new Map<number, string>();
  readonly #peek: NodeJS.Timeout;

  constructor(server: ServerProcess) {
    this.#ladder = new CpuMeter(() => ladderPids(server.child.pid!));
    this.#peek = setInterval(() => {
      for (const pid of this.#ladder.pids) {
        if (this.#what.has(pid)) continue;
        const cmd = cmdline(pid);
        if (cmd) this.#what.set(pid, `${pid}: ${cmd.slice(0, 160)}`);
      }
    }, 1000);
  }

  stop(): {
    ladderCores: number;
    oursCores: number;
    machineCores: number;
    otherCores: number;
    ladders: number;
    ladderCommands: string[];
  } {
    clearInterval(this.#peek);
    const l = this.#ladder.stop();
    const o = this.#ours.stop();
    return {
      ladderCores: l.cores,
      oursCores: o.cores,
      machineCores: o.machineCores,
      otherCores: Math.max(0, o.machineCores - o.cores),
      ladders: l.processes,
      ladderCommands: [...this.#what.values()],
    };
  }
}

// ---- the platform ------------------------------------------------------------------------------------------------

async function createStream(server: ServerProcess, body: Record<string, unknown>): Promise<LiveStreamJson> {
  const r = await fetch(`${server.url}/api/live`, {
    method: 'POST',
    headers: { ...server.auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (r.status !== 201) throw new Error(`POST /api/live: ${r.status} ${await r.text()}`);
  return (await r.json()) as LiveStreamJson;
}

async function getStream(server: ServerProcess, id: string): Promise<LiveStreamJson> {
  return (await (await fetch(`${server.url}/api/live/${id}`, { headers: server.auth })).json()) as LiveStreamJson;
}

async function shutdown(server: ServerProcess, id: string): Promise<void> {
  const r = await fetch(`${server.url}/api/live/${id}/shutdown`, { method: 'POST', headers: server.auth });
  if (r.status !== 200) console.log(`  (shutdown of ${id}: ${r.status} ${await r.text()})`);
}

/** Until every media playlist of the stream lists `n` complete segments. */
async function segmentsOut(server: ServerProcess, s: LiveStreamJson, n: number): Promise<void> {
  await waitFor(
    `${n} complete segments in every media playlist`,
    async () => {
      const master = await fetch(new URL(s.playback.hls, server.url));
      if (master.status !== 200) return undefined;
      const body = await master.text();
      const uris = body.split('\n').flatMap((l) => (l.startsWith('#') ? [/URI="([^"]+)"/.exec(l)?.[1] ?? ''] : [l]));
      for (const u of uris.filter((x) => x.endsWith('.m3u8'))) {
        const pl = await (await fetch(new URL(u, master.url))).text();
        if ((pl.match(/^#EXTINF/gm) ?? []).length < n) return undefined;
      }
      await sleep(200);
      return true;
    },
    60_000,
  );
}

function ffmpeg(args: string[]): ChildProcess & { log: () => string } {
  const child = spawn('ffmpeg', ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr?.on('data', (d) => {
    log = (log + d).slice(-2000);
  });
  return Object.assign(child, { log: () => log });
}

/** The latency publisher: live x264 of testsrc2 720p30 with the picture clock, and a sine. */
function publishClock(url: string, seconds: number) {
  // biome-ignore format: ffmpeg arguments read best in their groups
  return ffmpeg([
    '-re', '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
    '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(seconds), '-filter_complex', clockFilter(), '-map', '[v]', '-map', '1:a',
    '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-c:a', 'aac', '-f', 'flv', url,
  ]);
}

/** A copying publisher of a pre-encoded file, at its own pace (-re). */
function publishFile(url: string, file: string) {
  return ffmpeg(['-re', '-i', file, '-c', 'copy', '-f', 'flv', url]);
}

async function stopPublisher(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGKILL');
  await done;
}

// ---- 1. latency ----------------------------------------------------------------------------------------------------

interface LatencyResult {
  name: string;
  url: string;
  version: string;
  samples: number;
  undecodable: number;
  medianS: number;
  p95S: number;
  minS: number;
  maxS: number;
  /** Median of the first and last fifth of the run (does the latency drift?). */
  firstFifthS: number;
  lastFifthS: number;
  /** now − the playhead's wall-clock time as the player maps it (PROGRAM-DATE-TIME / availabilityStartTime). */
  playerClockS: number;
  /** The player's own latency figure (hls.latency, dash.js getCurrentLiveLatency). */
  playerOwnS: number;
  ingestLagS: number;
  /** Media seconds played per wall-clock second over the measurement (< 1: the player fell behind by itself). */
  playbackSpeed: number;
  heights: number[];
  stalls: number;
  errors: string[];
}

async function measureLatency(
  browser: Browser,
  labUrl: string,
  server: ServerProcess,
  stream: LiveStreamJson,
  c: { name: string; query: Record<string, string> },
): Promise<LatencyResult> {
  const page = await browser.newPage();
  try {
    await page.goto(`${labUrl}/live.html?${new URLSearchParams(c.query)}`);
    await page.waitForFunction(
      () => (globalThis as unknown as { lab: { state: string } }).lab.state !== 'loading',
      null,
      {
        timeout: 60_000,
      },
    );
    type Lab = { state: string; errors: string[]; version: string; events: string[] };
    const lab = () => page.evaluate(() => (globalThis as unknown as { lab: Lab }).lab);
    const first = await lab();
    if (first.state !== 'playing') throw new Error(`${c.name}: the player did not start: ${first.errors.join('; ')}`);
    await sleep(WARMUP * 1000);
    const eventsBefore = (await lab()).events.length;
    await page.evaluate(installClockSampler, { layout: CLOCK, decode: decodeClock.toString() });
    const clock: number[] = [];
    const own: number[] = [];
    const lags: number[] = [];
    const heights = new Set<number>();
    const ends: { now: number; currentTime: number }[] = [];
    const end = Date.now() + MEASURE * 1000;
    while (Date.now() < end) {
      await sleep(1000);
      const s = await page.evaluate(() =>
        (
          globalThis as unknown as {
            labLive: {
              sample(): {
                now: number;
                currentTime: number;
                latency: number | null;
                playerLatency: number | null;
                height: number | null;
              };
            };
          }
        ).labLive.sample(),
      );
      ends[0] ??= s;
      ends[1] = s;
      if (s.latency !== null) clock.push(s.latency);
      if (s.playerLatency !== null) own.push(s.playerLatency);
      if (s.height) heights.add(s.height);
      const lag = (await getStream(server, stream.id)).stats?.latencySeconds;
      if (typeof lag === 'number') lags.push(lag);
    }
    const got = await page.evaluate(() => {
      const w = globalThis as unknown as {
        clockSamples: number[];
        clockStats: { frames: number; undecodable: number };
      };
      return { samples: w.clockSamples, stats: w.clockStats };
    });
    const after = await lab();
    const xs = got.samples.map((ms) => ms / 1000);
    const fifth = Math.max(1, Math.floor(xs.length / 5));
    return {
      name: c.name,
      url: c.query.url ?? '',
      version: after.version,
      samples: xs.length,
      undecodable: got.stats.undecodable,
      medianS: median(xs),
      p95S: quantile(xs, 0.95),
      minS: sorted(xs)[0] ?? Number.NaN,
      maxS: sorted(xs).at(-1) ?? Number.NaN,
      firstFifthS: median(xs.slice(0, fifth)),
      lastFifthS: median(xs.slice(-fifth)),
      playerClockS: median(clock),
      playerOwnS: median(own),
      ingestLagS: median(lags),
      playbackSpeed:
        ends.length === 2
          ? (ends[1]!.currentTime - ends[0]!.currentTime) / ((ends[1]!.now - ends[0]!.now) / 1000)
          : Number.NaN,
      heights: [...heights].sort((a, b) => a - b),
      stalls: after.events.slice(eventsBefore).filter((e) => e.endsWith(' waiting')).length,
      errors: after.errors,
    };
  } finally {
    await page.close();
  }
}

// ---- 2. CPU and 3. capacity ----------------------------------------------------------------------------------------

/** A pre-encoded 720p30 H.264/AAC file like the latency publisher's stream (without the clock), for copying publishers. */
async function makeSource(file: string, seconds: number): Promise<string> {
  // biome-ignore format: ffmpeg arguments read best in their groups
  await run('ffmpeg', [
    '-hide_banner', '-nostdin', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=1280x720:rate=30:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-c:a', 'aac', '-shortest', file,
  ], { timeout: 1_200_000 });
  return file;
}

interface CpuResult {
  transcode: boolean;
  ladderCores: number;
  serverCores: number;
  machineCores: number;
  otherCores: number;
  /** The stream's SRT listener ffmpeg (waiting for an SRT publisher that never comes), cores. */
  srtListenerCores: number;
  ingestLagS: number;
}

async function cpuRun(server: ServerProcess, source: string, transcode: boolean): Promise<CpuResult> {
  const s = await createStream(server, { title: `bench cpu ${transcode}`, transcode, archive: false });
  const pub = publishFile(s.ingest.rtmp, source);
  try {
    await waitFor(
      'the stream to start',
      async () => ((await getStream(server, s.id)).stats ? true : undefined),
      30_000,
    );
    await sleep(6000);
    const phase = new PhaseCpu(server);
    const own = new CpuMeter(() => [server.child.pid!]);
    const srt = new CpuMeter(() => serverFfmpegs(server.child.pid!, 'srt'));
    const lags: number[] = [];
    for (const end = Date.now() + CPU_SECONDS * 1000; Date.now() < end; ) {
      await sleep(1000);
      const lag = (await getStream(server, s.id)).stats?.latencySeconds;
      if (typeof lag === 'number') lags.push(lag);
    }
    const c = phase.stop();
    const o = own.stop();
    const l = srt.stop();
    if (pub.exitCode !== null) throw new Error(`the publisher exited early: ${pub.log()}`);
    return {
      transcode,
      ladderCores: c.ladderCores,
      serverCores: o.cores,
      machineCores: c.machineCores,
      otherCores: c.otherCores,
      srtListenerCores: l.cores,
      ingestLagS: median(lags),
    };
  } finally {
    await stopPublisher(pub);
    await shutdown(server, s.id);
  }
}

/** Least-squares slope of y over x. */
function slope(pts: readonly { t: number; lag: number }[]): number {
  const n = pts.length;
  if (n < 3) return Number.NaN;
  const mt = pts.reduce((a, p) => a + p.t, 0) / n;
  const ml = pts.reduce((a, p) => a + p.lag, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of pts) {
    num += (p.t - mt) * (p.lag - ml);
    den += (p.t - mt) ** 2;
  }
  return num / den;
}

/** Keeping up: the ingest lag grows by at most this many seconds per second (the ladder runs at ≥ 0.99× real time). */
const MAX_SLOPE = 0.01;
/** … and ends below this. */
const MAX_LAG = 2;

interface CapacityStep {
  streams: number;
  keepsUp: boolean;
  /** Per stream, after a warm-up of a quarter of the step: the ingest lag's growth (s per s) and its final median. */
  slopes: number[];
  lagEnd: number[];
  ladderCores: number;
  machineCores: number;
  otherCores: number;
}

async function capacityStep(server: ServerProcess, source: string, n: number): Promise<CapacityStep> {
  const streams = await Promise.all(
    Array.from({ length: n }, (_, i) => createStream(server, { title: `bench capacity ${n}.${i}`, archive: false })),
  );
  const pubs = streams.map((s) => publishFile(s.ingest.rtmp, source));
  const lags = streams.map(() => [] as { t: number; lag: number }[]);
  const t0 = Date.now();
  const phase = new PhaseCpu(server);
  try {
    while (Date.now() - t0 < STEP * 1000) {
      await sleep(1000);
      const t = (Date.now() - t0) / 1000;
      await Promise.all(
        streams.map(async (s, i) => {
          const lag = (await getStream(server, s.id)).stats?.latencySeconds;
          if (typeof lag === 'number') lags[i]!.push({ t, lag });
        }),
      );
      const dead = pubs.findIndex((p) => p.exitCode !== null);
      if (dead >= 0) throw new Error(`publisher ${dead} of ${n} exited: ${pubs[dead]!.log()}`);
    }
  } finally {
    await Promise.all(pubs.map(stopPublisher));
    await Promise.all(streams.map((s) => shutdown(server, s.id)));
  }
  const cpu = phase.stop();
  const after = lags.map((xs) => xs.filter((x) => x.t >= STEP / 4));
  const slopes = after.map(slope);
  const lagEnd = after.map((xs) => median(xs.slice(-5).map((x) => x.lag)));
  const keepsUp = slopes.every((k, i) => k <= MAX_SLOPE && lagEnd[i]! <= MAX_LAG);
  return {
    streams: n,
    keepsUp,
    slopes,
    lagEnd,
    ladderCores: cpu.ladderCores,
    machineCores: cpu.machineCores,
    otherCores: cpu.otherCores,
  };
}

/** What the server logged about its encoders (a death, a restart) during the run. */
function encoderEvents(server: ServerProcess): string[] {
  return server
    .log()
    .split('\n')
    .filter((l) => /encoder (died|exited)|restart/.test(l))
    .map((l) => l.slice(0, 300));
}

// ---- main ----------------------------------------------------------------------------------------------------------

async function main() {
  console.log(`machine: ${machine()}; load average ${loadavg()}${QUICK ? '; --quick' : ''}`);
  const clock = await checkClock(3);
  console.log(
    `picture clock check (filter → rawvideo pipe, no encoder): ${clock.frames} frames, ${clock.undecodable} undecodable, ` +
      `arrival − drawn time median ${clock.arrivalMedianMs} ms (max ${clock.arrivalMaxMs}), drift from the frame timeline ≤ ${clock.driftMaxMs.toFixed(0)} ms`,
  );
  if (clock.undecodable > 0) throw new Error('the picture clock does not decode');

  const work = mkdtempSync(join(tmpdir(), 'sc-bench-live-'));
  const srtFrom = 30000 + ((process.pid * 20) % 20000);
  const server = await startServer(join(work, 'data'), {
    SMOOTHCAST_LIVE_RTMP_PORT: '0',
    SMOOTHCAST_LIVE_SRT_PORTS: `${srtFrom}-${srtFrom + 19}`,
  });
  const browser = await launchChromium();
  const lab = await startLiveLab();
  const out: Record<string, unknown> = { machine: machine(), quick: QUICK, clock, loadBefore: loadavg() };
  try {
    console.log('generating the 720p30 source of the copying publishers…');
    const sourceSeconds = Math.max(STEP, CPU_SECONDS + 6) + 20;
    const source = await makeSource(join(work, 'source.mp4'), sourceSeconds);

    // 1. Latency: one clock publish, the three players one after another.
    const stream = await createStream(server, { title: 'bench latency', latency: 'low', dvrWindowSeconds: 60 });
    const publishSeconds = 3 * (WARMUP + MEASURE + 20) + 60;
    const pub = publishClock(stream.ingest.rtmp, publishSeconds);
    const configs = [
      { name: 'LL-HLS, hls.js lowLatencyMode', query: { player: 'hls.js', ll: '1' }, target: true },
      { name: 'HLS, hls.js lowLatencyMode false', query: { player: 'hls.js', ll: '0' }, target: false },
      { name: 'DASH, dash.js liveCatchup', query: { player: 'dash.js', ll: '1' }, target: false },
    ];
    const latency: (LatencyResult & { target: boolean })[] = [];
    let latencyCpu: ReturnType<PhaseCpu['stop']> | undefined;
    try {
      await segmentsOut(server, stream, 3);
      const phase = new PhaseCpu(server);
      for (const c of configs) {
        const url = new URL(c.query.player === 'dash.js' ? stream.playback.dash : stream.playback.hls, server.url).href;
        console.log(`latency: ${c.name} (${WARMUP} s warm-up, ${MEASURE} s measured; load average ${loadavg()})…`);
        const r = await measureLatency(browser, lab.url, server, stream, { name: c.name, query: { ...c.query, url } });
        latency.push({ ...r, target: c.target });
        console.log(
          `  median ${f2(r.medianS)} s, p95 ${f2(r.p95S)} s over ${r.samples} frames (${r.undecodable} undecodable; first → last fifth ${f2(r.firstFifthS)} → ${f2(r.lastFifthS)} s); ` +
            `player clock ${f2(r.playerClockS)} s, ingest lag ${f2(r.ingestLagS)} s, playback speed ${fmt(r.playbackSpeed, 3)}, ${r.heights.join('/')}p, ${r.stalls} stalls${r.errors.length ? `, errors: ${r.errors.join('; ')}` : ''}`,
        );
        if (pub.exitCode !== null) throw new Error(`the clock publisher exited: ${pub.log()}`);
      }
      latencyCpu = phase.stop();
    } finally {
      await stopPublisher(pub);
      await shutdown(server, stream.id);
    }
    out.latency = latency;
    out.latencyPhaseCpu = latencyCpu;

    // 2. CPU per stream.
    const cpu: CpuResult[] = [];
    for (const transcode of [true, false]) {
      console.log(`cpu: transcode ${transcode} (${CPU_SECONDS} s; load average ${loadavg()})…`);
      cpu.push(await cpuRun(server, source, transcode));
    }
    out.cpu = cpu;

    // 3. Capacity.
    const steps: CapacityStep[] = [];
    for (let n = 1; n <= MAX_STREAMS; n++) {
      console.log(`capacity: ${n} transcoded 720p30 stream(s) for ${STEP} s (load average ${loadavg()})…`);
      const st = await capacityStep(server, source, n);
      steps.push(st);
      console.log(
        `  ${st.keepsUp ? 'keeps up' : 'falls behind'}: ingest lag growth ${st.slopes.map((k) => f2(k * 60)).join('/')} s per minute, final ${st.lagEnd.map(f2).join('/')} s; ladders ${f2(st.ladderCores)} cores, other processes ${f2(st.otherCores)} cores`,
      );
      if (!st.keepsUp) break;
    }
    out.capacity = steps;
    out.loadAfter = loadavg();
    const sustained = steps.filter((s) => s.keepsUp).at(-1)?.streams ?? 0;
    out.sustainedStreams = sustained;
    out.encoderEvents = encoderEvents(server);

    // The tables.
    console.log('');
    console.log(
      `bench:live${QUICK ? ' --quick' : ''} — ${machine()}; load average before ${out.loadBefore}, after ${out.loadAfter}`,
    );
    console.log('');
    console.log(
      '| glass-to-glass (picture clock) | median | p95 | target median / p95 | ratio median / p95 | frames | first → last fifth | player clock | ingest lag | playback speed | renditions | stalls |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of latency) {
      const ratio = r.target ? `**${fmt(r.medianS / TARGET.median)}** / **${fmt(r.p95S / TARGET.p95)}**` : '—';
      console.log(
        `| ${r.name} (${r.version}) | ${f2(r.medianS)} s | ${f2(r.p95S)} s | ${r.target ? `≤ ${TARGET.median} s / ≤ ${TARGET.p95} s` : '—'} | ${ratio} | ${r.samples} | ${f2(r.firstFifthS)} → ${f2(r.lastFifthS)} s | ${f2(r.playerClockS)} s | ${f2(r.ingestLagS)} s | ${fmt(r.playbackSpeed, 3)} | ${r.heights.join('/')}p | ${r.stalls} |`,
      );
    }
    if (latencyCpu) {
      console.log(
        `during the latency runs: ladder ${f2(latencyCpu.ladderCores)} cores (${latencyCpu.ladders} process(es)), this benchmark's processes ${f2(latencyCpu.oursCores)} cores (publisher, server, chromium), other processes ${f2(latencyCpu.otherCores)} cores, machine ${f2(latencyCpu.machineCores)} of 2 busy`,
      );
    }
    console.log('');
    const [tx, copy] = [cpu.find((c) => c.transcode)!, cpu.find((c) => !c.transcode)!];
    console.log(
      '| CPU per 720p30 stream | ladder ffmpeg | server (node) | SRT listener (idle) | other processes | ingest lag |',
    );
    console.log('|---|---|---|---|---|---|');
    for (const c of [tx, copy]) {
      console.log(
        `| ${c.transcode ? 'transcoded (5 rungs + AAC)' : 'transcode: false (copy)'} | ${f2(c.ladderCores)} cores | ${f2(c.serverCores)} cores | ${fmt(c.srtListenerCores, 3)} cores | ${f2(c.otherCores)} cores | ${f2(c.ingestLagS)} s |`,
      );
    }
    console.log(`ratio transcoded / copy (ladder CPU): ${f2(tx.ladderCores / copy.ladderCores)}`);
    console.log('');
    console.log(
      `| concurrent transcoded 720p30 streams | ingest lag growth (s/min; keeps up ≤ ${fmt(MAX_SLOPE * 60)}) | final ingest lag (≤ ${MAX_LAG} s) | ladders | other processes | |`,
    );
    console.log('|---|---|---|---|---|---|');
    for (const s of steps) {
      console.log(
        `| ${s.streams} | ${s.slopes.map((k) => f2(k * 60)).join(' / ')} | ${s.lagEnd.map(f2).join(' / ')} s | ${f2(s.ladderCores)} cores | ${f2(s.otherCores)} cores | ${s.keepsUp ? 'keeps up' : 'falls behind'} |`,
      );
    }
    console.log(`sustained in real time: ${sustained} transcoded 720p30 stream(s) on this machine`);
    const events = out.encoderEvents as string[];
    if (events.length > 0) console.log(`server encoder events:\n  ${events.join('\n  ')}`);
    writeFileSync(outFile('live'), `${JSON.stringify(out, null, 2)}\n`);
  } finally {
    await browser.close();
    await lab.close();
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
