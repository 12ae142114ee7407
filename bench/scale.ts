// npm run bench:scale — the scale-out topology on one box (test/helpers/cluster.ts: a throwaway PostgreSQL, Swift
// with its S3 API, every role its own `smoothcast serve --roles …` process, the nginx edge of `smoothcast
// edge-config`), each figure against a reference measured in the same run:
//
// 1. Segment throughput of one origin process reading from S3 (Swift) vs the same origin code reading the same
//    bytes from local disk: wrk, 32 keep-alive connections, 2 threads, cycling segment URLs of the 1080p rung of a
//    20 s noisy 1080p asset (encoded once on the cluster). The local reference is an origin process with
//    SMOOTHCAST_STORAGE_BACKEND=local over a folder holding the asset's objects downloaded from the bucket under the
//    same keys, same catalog: byte-identical answers to identical URLs (checked). Two regimes:
//      hot  — 4 segments, the S3 origin with its default 64 MiB read cache (storage.s3CacheBytes): after the first
//             round every request is served from memory;
//      cold — every 1080p segment, a second S3 origin with SMOOTHCAST_STORAGE_S3_CACHE_BYTES=0: every request is a
//             ranged GET to Swift. The local origin reads the page cache in both.
// 2. Origin CPU per 1000 segment requests, from each origin's /metrics (smoothcast_process_cpu_seconds_total and
//    smoothcast_http_requests_total of the segment route) before and after each measured run; for S3 also the CPU
//    of Swift's own processes (proxy, object, container, account servers, from /proc), which share the box.
// 3. Segments through the edge (nginx with the `smoothcast edge-config` file, warmed: every URI of the asset's HLS
//    requested once) vs a plain nginx serving the same bytes as static files (test/helpers/nginx.ts), same paths,
//    byte-identical (checked); 3 alternating rounds each, best vs best, each round's ratio printed too, and each
//    nginx's CPU (master + workers, /proc) per 1000 requests. Target ≥ 0.95.
// 4. The most concurrent real-time-paced 1080p viewers (src/tools/viewers.ts, pick 'top', audio too) the edge
//    sustains with p99 segment latency < 1 s and no errors: 50, 100, 200, … doubling until a count fails, then
//    bisected twice. The load generator runs in this process (200 viewers per worker thread, see viewerShard), on
//    the same 2 cores; its CPU and the edge's are printed per step.
// 5. 1, 2 and 3 worker processes on 3 queued identical encodes (10 s 720p30 with grain): queued with no worker
//    running, then N workers started at once and timed until all 3 assets are ready; fresh assets for each N.
//    Speed-up vs 1 worker, and the CPU the workers and their ffmpeg children used (/proc: utime + stime + cutime +
//    cstime), which shows how much of the 2 cores the encodes actually got.
//
// Progress goes to stderr, the tables to stdout, everything to bench/out/scale.json. Every process and temp folder
// is removed at the end, on failure and on Ctrl-C. Env: BENCH_SECONDS (wrk run length, default 10),
// BENCH_VIEWER_SECONDS (default 20).
import { execFile } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { AssetJson } from '../src/roles/api/present.ts';
import { runViewers, type ViewersReport } from '../src/tools/viewers.ts';
import { type Cluster, type ClusterNode, startCluster } from '../test/helpers/cluster.ts';
import { startNginxWithConfig } from '../test/helpers/nginx.ts';
import { freePort } from '../test/helpers/platform.ts';
import { BIN, fmt, MB, machine, makeSource, outFile, saveAsStatic, startNginx, type WrkResult, wrk } from './lib.ts';

const run = promisify(execFile);
const CONNECTIONS = 32;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const VIEWER_SECONDS = Number(process.env.BENCH_VIEWER_SECONDS ?? 20);
const HOT_SEGMENTS = 4;
const EDGE_TARGET = 0.95;
/** Alternating measured rounds of the edge vs nginx comparison (the ratio is the noisiest figure here). */
const EDGE_ROUNDS = 3;
const P99_LIMIT_MS = 1000;
const MAX_VIEWERS = 5000;
/** The origin's media segment route (/v/ID/REV/RID/N.m4s); playlists are /v/:id/:rev/:file. */
const SEGMENT_ROUTE = '/v/:id/:rev/:rid/:seg';
/** Viewers per worker thread: each thread's event loop stays under 1024 busy sockets (see viewerShard). */
const VIEWERS_PER_THREAD = 200;

const log = (msg: string) => process.stderr.write(`[bench:scale ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const uptime = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

// ---------------------------------------------------------------------------------------------------------------
// Sources and assets.

async function importQueued(c: Cluster, file: string): Promise<string> {
  const out = await c.cli(['import', '--json', '--no-wait', file]);
  return (JSON.parse(out) as AssetJson).id;
}

async function getAsset(api: ClusterNode, token: string, id: string): Promise<AssetJson> {
  const r = await fetch(`${api.url}/api/assets/${id}`, { headers: { authorization: `Bearer ${token}` } });
  if (!r.ok) throw new Error(`GET /api/assets/${id}: ${r.status} ${await r.text()}`);
  return (await r.json()) as AssetJson;
}

/**
 * `fn` every `everyMs` until it returns a value (lib's waitFor polls every 25 ms, which trips the API's rate limit of
 * 1200 requests a minute from one address).
 */
async function poll<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function readyAsset(api: ClusterNode, token: string, id: string, timeoutMs: number): Promise<AssetJson> {
  return poll(
    `asset ${id} ready`,
    async () => {
      const a = await getAsset(api, token, id);
      if (a.status === 'failed') throw new Error(`encode of ${id} failed: ${JSON.stringify(a.error)}`);
      return a.status === 'ready' ? a : undefined;
    },
    timeoutMs,
  );
}

/** Every URI of the asset's HLS presentation (playlists, init segments, media segments), as paths from `base`. */
async function hlsUris(base: string, masterPath: string): Promise<{ all: string[]; top: string[] }> {
  const text = async (p: string) => {
    const r = await fetch(base + p);
    if (!r.ok) throw new Error(`GET ${p}: ${r.status}`);
    return r.text();
  };
  const resolve = (u: string, from: string) => {
    const x = new URL(u, `http://x${from}`);
    return x.pathname + x.search;
  };
  const refs = (playlist: string) => {
    const out: string[] = [];
    for (const l of playlist.split('\n').map((s) => s.trim())) {
      if (!l) continue;
      if (!l.startsWith('#')) out.push(l);
      else for (const m of l.matchAll(/URI="([^"]+)"/g)) out.push(m[1]!);
    }
    return out;
  };
  const master = await text(masterPath);
  // The top variant: highest BANDWIDTH.
  let topUri = '';
  let topRate = -1;
  const lines = master.split('\n').map((s) => s.trim());
  lines.forEach((l, i) => {
    const bw = /^#EXT-X-STREAM-INF:.*BANDWIDTH=(\d+)/.exec(l);
    if (bw && Number(bw[1]) > topRate) {
      topRate = Number(bw[1]);
      topUri = lines[i + 1]!;
    }
  });
  const all = new Set<string>([masterPath]);
  let top: string[] = [];
  for (const u of refs(master)) {
    const p = resolve(u, masterPath);
    all.add(p);
    if (!p.split('?')[0]!.endsWith('.m3u8')) continue;
    const media = refs(await text(p)).map((x) => resolve(x, p));
    for (const m of media) all.add(m);
    if (u === topUri) top = media.filter((m) => m.split('?')[0]!.endsWith('.m4s'));
  }
  if (top.length === 0) throw new Error('no segments found in the top variant');
  return { all: [...all], top };
}

/** Downloads every object under `prefix` from the bucket into `root/<key>` (LocalStorage's layout). */
async function copyBucketPrefix(c: Cluster, prefix: string, root: string): Promise<{ objects: number; bytes: number }> {
  const s3 = c.s3Client();
  let objects = 0;
  let bytes = 0;
  try {
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: c.s3.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        // The origin never reads the source.
        if (/\/source[^/]*$/.test(o.Key!)) continue;
        const file = join(root, o.Key!);
        mkdirSync(dirname(file), { recursive: true });
        const got = await s3.send(new GetObjectCommand({ Bucket: c.s3.bucket, Key: o.Key! }));
        await pipeline(got.Body as Readable, createWriteStream(file));
        objects++;
        bytes += o.Size ?? 0;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } finally {
    s3.destroy();
  }
  return { objects, bytes };
}

// ---------------------------------------------------------------------------------------------------------------
// CPU: the origin's own counters, and Swift's processes from /proc.

interface Scrape {
  cpuSeconds: number;
  segmentRequests: number;
  /** Requests answered by route pattern, /metrics left out. */
  routes: Record<string, number>;
}

async function scrape(url: string): Promise<Scrape> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let cpuSeconds = Number.NaN;
  const routes: Record<string, number> = {};
  for (const l of text.split('\n')) {
    if (l.startsWith('smoothcast_process_cpu_seconds_total ')) cpuSeconds = Number(l.split(' ')[1]);
    else if (l.startsWith('smoothcast_http_requests_total{')) {
      const route = /route="([^"]*)"/.exec(l)?.[1] ?? '?';
      if (route !== '/metrics') routes[route] = (routes[route] ?? 0) + Number(l.slice(l.lastIndexOf(' ') + 1));
    }
  }
  if (!Number.isFinite(cpuSeconds)) throw new Error(`${url}/metrics has no smoothcast_process_cpu_seconds_total`);
  return { cpuSeconds, segmentRequests: routes[SEGMENT_ROUTE] ?? 0, routes };
}

/** Requests per route between two scrapes (routes with none left out). */
function routeDelta(a: Scrape, b: Scrape): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.routes)) if (v - (a.routes[k] ?? 0) > 0) out[k] = v - (a.routes[k] ?? 0);
  return out;
}

const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

const CLK_TCK = 100;

/**
 * The pids of the Swift servers behind `endpoint`: the processes started with a `…/etc/<kind>-server.conf` whose
 * folder's proxy-server.conf binds the endpoint's port (other test runs on the box have Swifts of their own).
 */
function swiftPids(endpoint: string): number[] {
  const port = new URL(endpoint).port;
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'sh') continue; // the watchdogs
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const conf = argv.find((a) => /\/etc\/(proxy|object|container|account)-server\.conf$/.test(a));
      if (!conf) continue;
      const proxy = readFileSync(join(dirname(conf), 'proxy-server.conf'), 'utf8');
      if (new RegExp(`^bind_port = ${port}$`, 'm').test(proxy)) pids.push(Number(d));
    } catch {}
  }
  return pids;
}

/** utime + stime of the processes (with `children`: + cutime + cstime, the waited-for children such as ffmpeg). */
function procCpuSeconds(pids: readonly number[], children = false): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime, cutime, cstime: fields 14–17 of stat.
      ticks += Number(fields[11]) + Number(fields[12]);
      if (children) ticks += Number(fields[13]) + Number(fields[14]);
    } catch {}
  }
  return ticks / CLK_TCK;
}

/** An nginx's master (from its pid file) and its workers (the master's children). */
function nginxPids(pidFile: string): number[] {
  const master = Number(readFileSync(pidFile, 'utf8').trim());
  const pids = [master];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === master) pids.push(Number(d));
    } catch {}
  }
  return pids;
}

/** CPU seconds of this process, all threads (the viewers' worker threads included). */
const selfCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// ---------------------------------------------------------------------------------------------------------------
// 3: the edge vs plain nginx.

interface NginxSide {
  name: string;
  url: string;
  pids: number[];
}

interface EdgeComparison {
  edge: WrkResult;
  nginx: WrkResult;
  /** Best MB/s over best MB/s. */
  ratio: number;
  /** Each round's edge / nginx MB/s, in order. */
  roundRatios: number[];
  /** nginx CPU (master + workers) per 1000 requests (requests from wrk's rate × run length), over every round. */
  edgeCpuMsPer1000: number;
  nginxCpuMsPer1000: number;
}

async function compareEdge(
  edge: NginxSide,
  plain: NginxSide,
  paths: readonly string[],
  work: string,
): Promise<EdgeComparison> {
  for (const p of paths) {
    const [a, b] = await Promise.all([bodyOf(edge.url + p), bodyOf(plain.url + p)]);
    if (!a.equals(b)) throw new Error(`the edge and plain nginx answer ${p} differently`);
  }
  for (const t of [edge, plain]) await wrk(t.url, paths, CONNECTIONS, 2, work);
  const runs = [edge, plain].map(() => ({ results: [] as WrkResult[], cpu: 0, requests: 0 }));
  for (let round = 0; round < EDGE_ROUNDS; round++) {
    for (const [i, t] of [edge, plain].entries()) {
      log(`edge vs nginx: ${t.name}, run ${round + 1}/${EDGE_ROUNDS} (${SECONDS} s)`);
      const cpu0 = procCpuSeconds(t.pids);
      const r = await wrk(t.url, paths, CONNECTIONS, SECONDS, work);
      const acc = runs[i]!;
      acc.cpu += procCpuSeconds(t.pids) - cpu0;
      acc.requests += r.requestsPerSecond * SECONDS;
      if (r.non2xx || r.errors || !(r.requestsPerSecond > 0)) {
        throw new Error(`${t.name}: a run had failures: ${JSON.stringify(r)}`);
      }
      acc.results.push(r);
    }
  }
  const best = (xs: WrkResult[]) => xs.reduce((x, y) => (y.bytesPerSecond > x.bytesPerSecond ? y : x));
  const [e, n] = runs as [(typeof runs)[0], (typeof runs)[0]];
  return {
    edge: best(e.results),
    nginx: best(n.results),
    ratio: best(e.results).bytesPerSecond / best(n.results).bytesPerSecond,
    roundRatios: e.results.map((r, k) => r.bytesPerSecond / n.results[k]!.bytesPerSecond),
    edgeCpuMsPer1000: (e.cpu * 1e6) / e.requests,
    nginxCpuMsPer1000: (n.cpu * 1e6) / n.requests,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 1 + 2: origin throughput with CPU per request.

interface OriginTarget {
  name: string;
  node: ClusterNode;
  /** Storage processes whose CPU is charged to this origin's requests (Swift), if any. */
  storagePids: number[];
}

interface OriginResult {
  name: string;
  best: WrkResult;
  /** Over both measured runs. */
  requests: number;
  cpuMsPer1000: number;
  storageCpuMsPer1000: number | null;
}

async function bodyOf(url: string): Promise<Buffer> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

/** Both targets must answer the same bytes; a warm-up each, then two alternating measured runs each. */
async function compareOrigins(
  label: string,
  targets: readonly [OriginTarget, OriginTarget],
  paths: readonly string[],
  work: string,
): Promise<[OriginResult, OriginResult]> {
  for (const p of paths) {
    const [a, b] = await Promise.all(targets.map((t) => bodyOf(t.node.url + p)));
    if (!a!.equals(b!)) throw new Error(`${label}: ${targets[0].name} and ${targets[1].name} answer ${p} differently`);
  }
  for (const t of targets) await wrk(t.node.url, paths, CONNECTIONS, 2, work);
  const runs = targets.map(() => ({ results: [] as WrkResult[], cpu: 0, storageCpu: 0, requests: 0 }));
  for (let round = 0; round < 2; round++) {
    for (const [i, t] of targets.entries()) {
      log(`${label}: ${t.name}, run ${round + 1}/2 (${SECONDS} s)`);
      const before = await scrape(t.node.url);
      const storageBefore = procCpuSeconds(t.storagePids);
      const r = await wrk(t.node.url, paths, CONNECTIONS, SECONDS, work);
      const after = await scrape(t.node.url);
      const acc = runs[i]!;
      acc.storageCpu += procCpuSeconds(t.storagePids) - storageBefore;
      acc.cpu += after.cpuSeconds - before.cpuSeconds;
      acc.requests += after.segmentRequests - before.segmentRequests;
      if (r.non2xx || r.errors || !(r.requestsPerSecond > 0)) {
        throw new Error(`${label}, ${t.name}: a run had failures: ${JSON.stringify(r)}`);
      }
      if (after.segmentRequests <= before.segmentRequests) {
        throw new Error(`${label}, ${t.name}: /metrics counted no ${SEGMENT_ROUTE} requests during the run`);
      }
      acc.results.push(r);
    }
  }
  return targets.map((t, i) => {
    const acc = runs[i]!;
    return {
      name: t.name,
      best: acc.results.reduce((x, y) => (y.bytesPerSecond > x.bytesPerSecond ? y : x)),
      requests: acc.requests,
      cpuMsPer1000: (acc.cpu * 1e6) / acc.requests,
      storageCpuMsPer1000: t.storagePids.length ? (acc.storageCpu * 1e6) / acc.requests : null,
    };
  }) as [OriginResult, OriginResult];
}

// ---------------------------------------------------------------------------------------------------------------
// 4: viewers.

interface ViewerStep {
  viewers: number;
  threads: number;
  pass: boolean;
  p50: number;
  p99: number;
  max: number;
  errors: number;
  errorsByKind: Record<string, number>;
  stalls: number;
  throughputMbps: number;
  segments: number;
  /** The longest a thread's run took (asked for: VIEWER_SECONDS). */
  elapsedSeconds: number;
  renditions: Record<string, number>;
  /** Requests that reached the origin behind the edge during the step, by route. */
  originRequests: Record<string, number>;
  /** CPU used over the step's wall time, in cores: the viewers (this process) and the edge's nginx. */
  generatorCores: number;
  edgeCores: number;
}

interface ShardInput {
  url: string;
  count: number;
  durationSeconds: number;
  startSpreadSeconds: number;
}

interface ShardOutput {
  report: ViewersReport;
  /** Time to last byte (ms) of every init and media segment answered with success, as the report's histogram. */
  latencies: Float64Array;
}

/**
 * One worker thread's share of the viewers. Why threads: one Node event loop with more than ~1024 busy sockets
 * starves its timers — libuv's epoll loop takes up to 48 full batches of 1024 events before it runs timers again,
 * and each event here is a 64 KiB read — so pacing sleeps, request timeouts and the run's end fire seconds late
 * (measured: 1600 viewers in one thread asked for 10 s ran 41 s, with 31 s between two timer callbacks, and the
 * late viewers then fetched back to back). 200 viewers (≤ 400 sockets) per thread stay well under that.
 */
async function viewerShard(input: ShardInput): Promise<ShardOutput> {
  const latencies: number[] = [];
  const report = await runViewers({
    url: input.url,
    count: input.count,
    durationSeconds: input.durationSeconds,
    startSpreadSeconds: input.startSpreadSeconds,
    pick: 'top',
    onRequest: (r) => {
      if ((r.kind === 'segment' || r.kind === 'init') && !r.error) latencies.push(r.ms);
    },
  });
  return { report, latencies: Float64Array.from(latencies) };
}

function runShard(input: ShardInput): Promise<ShardOutput> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: input });
    let got: ShardOutput | undefined;
    w.once('message', (m: ShardOutput) => {
      got = m;
    });
    w.once('error', reject);
    w.once('exit', (code) => (got ? resolve(got) : reject(new Error(`a viewers thread exited ${code}`))));
  });
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function viewerStep(
  edgeUrl: string,
  edgePids: readonly number[],
  masterPath: string,
  origin: ClusterNode,
  n: number,
): Promise<ViewerStep> {
  const threads = Math.ceil(n / VIEWERS_PER_THREAD);
  log(`viewers: ${n} for ${VIEWER_SECONDS} s in ${threads} thread${threads > 1 ? 's' : ''}…`);
  const before = await scrape(origin.url);
  const self0 = selfCpuSeconds();
  const edge0 = procCpuSeconds(edgePids);
  const w0 = performance.now();
  const spread = Math.min(5, VIEWER_SECONDS / 4);
  const shards = await Promise.all(
    Array.from({ length: threads }, (_, i) =>
      runShard({
        url: edgeUrl + masterPath,
        count: Math.floor(n / threads) + (i < n % threads ? 1 : 0),
        durationSeconds: VIEWER_SECONDS,
        startSpreadSeconds: spread,
      }),
    ),
  );
  const wall = (performance.now() - w0) / 1000;
  const generatorCores = (selfCpuSeconds() - self0) / wall;
  const edgeCores = (procCpuSeconds(edgePids) - edge0) / wall;
  const after = await scrape(origin.url);
  const all = new Float64Array(shards.reduce((a, s) => a + s.latencies.length, 0));
  let at = 0;
  for (const s of shards) {
    all.set(s.latencies, at);
    at += s.latencies.length;
  }
  all.sort();
  const reports = shards.map((s) => s.report);
  const sum = (f: (r: ViewersReport) => number) => reports.reduce((a, r) => a + f(r), 0);
  const merge = (f: (r: ViewersReport) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(f(r))) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  const elapsed = Math.max(...reports.map((r) => r.elapsedSeconds));
  const errors = sum((r) => r.errors.total);
  const p99 = quantile(all, 0.99);
  const s: ViewerStep = {
    viewers: n,
    threads,
    pass: errors === 0 && p99 < P99_LIMIT_MS,
    p50: quantile(all, 0.5),
    p99,
    max: all.length ? all[all.length - 1]! : 0,
    errors,
    errorsByKind: merge((r) => r.errors.byKind),
    stalls: sum((r) => r.stalls),
    // Each thread's bytes over its own run; the threads run side by side.
    throughputMbps: sum((r) => r.throughputMbps),
    segments: sum((r) => r.segments),
    elapsedSeconds: elapsed,
    renditions: merge((r) => r.renditions),
    originRequests: routeDelta(before, after),
    generatorCores,
    edgeCores,
  };
  log(
    `viewers: ${n}: p50 ${fmt(s.p50, 0)} ms, p99 ${fmt(s.p99, 0)} ms, max ${fmt(s.max, 0)} ms, ${s.errors} errors ` +
      `${JSON.stringify(s.errorsByKind)}, ${s.stalls} stalls, ${fmt(s.throughputMbps, 0)} Mbit/s, ${s.segments} segments, ` +
      `ran ${fmt(elapsed, 1)} s, cores: viewers ${fmt(generatorCores)}, edge ${fmt(edgeCores)}, ${JSON.stringify(s.renditions)}, origin ${JSON.stringify(s.originRequests)}; load ${uptime()} → ${s.pass ? 'pass' : 'FAIL'}`,
  );
  return s;
}

async function maxViewers(edgeUrl: string, edgePids: readonly number[], masterPath: string, origin: ClusterNode) {
  const steps: ViewerStep[] = [];
  let lo: ViewerStep | undefined;
  let hi: ViewerStep | undefined;
  for (let n = 50; n <= MAX_VIEWERS; n = n * 2 > MAX_VIEWERS && n < MAX_VIEWERS ? MAX_VIEWERS : n * 2) {
    const s = await viewerStep(edgeUrl, edgePids, masterPath, origin, n);
    steps.push(s);
    if (s.pass) lo = s;
    else {
      hi = s;
      break;
    }
    if (n === MAX_VIEWERS) break;
  }
  if (hi) {
    for (let i = 0; i < 2; i++) {
      const from = lo?.viewers ?? 0;
      const mid = Math.round((from + hi.viewers) / 2 / 10) * 10;
      if (mid <= from || mid >= hi.viewers) break;
      const s = await viewerStep(edgeUrl, edgePids, masterPath, origin, mid);
      steps.push(s);
      if (s.pass) lo = s;
      else hi = s;
    }
  }
  return { steps, best: lo ?? null, firstFail: hi ?? null };
}

// ---------------------------------------------------------------------------------------------------------------
// 5: workers.

interface WorkerRun {
  workers: number;
  seconds: number;
  /** CPU seconds of the worker processes and their ffmpeg children over the run. */
  cpuSeconds: number;
  loadAverage: string;
  /** Seconds from the start of the workers to each asset being ready. */
  readyAt: number[];
  /** Encodes each worker started (from its log). */
  jobsPerWorker: number[];
}

async function workerRun(c: Cluster, api: ClusterNode, source: string, n: number): Promise<WorkerRun> {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push(await importQueued(c, source));
  for (const id of ids) {
    const a = await getAsset(api, c.token, id);
    if (a.status === 'ready') throw new Error(`asset ${id} was encoded with no worker running`);
  }
  log(`workers: 3 encodes queued, starting ${n} worker${n > 1 ? 's' : ''}…`);
  const t0 = performance.now();
  const workers = await Promise.all(Array.from({ length: n }, () => c.start('worker')));
  try {
    const readyAt = new Map<string, number>();
    await poll(
      `3 encodes on ${n} workers`,
      async () => {
        for (const id of ids) {
          if (readyAt.has(id)) continue;
          const a = await getAsset(api, c.token, id);
          if (a.status === 'failed') throw new Error(`encode of ${id} failed: ${JSON.stringify(a.error)}`);
          if (a.status === 'ready') readyAt.set(id, (performance.now() - t0) / 1000);
        }
        return readyAt.size === ids.length ? true : undefined;
      },
      900_000,
    );
    const seconds = (performance.now() - t0) / 1000;
    const cpuSeconds = procCpuSeconds(
      workers.map((w) => w.proc.pid!),
      true,
    );
    const jobsPerWorker = workers.map(
      (w) => w.lines.filter((l) => l.includes('"encode start"') && ids.some((id) => l.includes(id))).length,
    );
    const loadAverage = uptime();
    log(
      `workers: ${n} → ${fmt(seconds, 1)} s, ${fmt(cpuSeconds, 1)} CPU s (jobs per worker ${jobsPerWorker.join('/')}); load ${loadAverage}`,
    );
    return { workers: n, seconds, cpuSeconds, loadAverage, readyAt: ids.map((id) => readyAt.get(id)!), jobsPerWorker };
  } finally {
    await Promise.all(workers.map((w) => w.stop()));
  }
}

// ---------------------------------------------------------------------------------------------------------------

function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...cells.slice(1).map(line)].join('\n');
}

const rate = (r: WrkResult) => `${fmt(r.requestsPerSecond, 0)} req/s, ${fmt(r.bytesPerSecond / MB, 0)} MB/s`;

async function main() {
  const t0 = performance.now();
  const loadBefore = uptime();
  log(`machine: ${machine()}; load average ${loadBefore}`);
  const work = mkdtempSync(join(tmpdir(), 'sc-bench-scale-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  let cleaning: Promise<void> | null = null;
  const cleanup = () => {
    cleaning ??= (async () => {
      for (const f of cleanups.reverse()) await f().catch((err) => log(`cleanup: ${err}`));
      rmSync(work, { recursive: true, force: true });
    })();
    return cleaning;
  };
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log('starting PostgreSQL, Swift and the cluster…');
    const c = await startCluster();
    cleanups.push(() => c.stop());
    const api = await c.start('api');

    // The asset, encoded on the cluster into the bucket.
    const source = await makeSource(join(work, 'source-1080p.mp4'), 20, 8, '1920x1080');
    const id = await importQueued(c, source);
    log(`encoding the 1080p ladder of ${id} on one worker…`);
    const encodeStart = performance.now();
    const firstWorker = await c.start('worker');
    const asset = await readyAsset(api, c.token, id, 900_000);
    const encodeSeconds = (performance.now() - encodeStart) / 1000;
    await firstWorker.stop();
    log(`ready in ${fmt(encodeSeconds, 1)} s: ${asset.renditions.map((r) => r.height ?? r.type).join(', ')}`);

    // The origins: S3 with its read cache, S3 without, local disk with the same objects.
    const localData = join(work, 'local-data');
    const copied = await copyBucketPrefix(c, `assets/${id}/`, join(localData, 'media'));
    log(`copied ${copied.objects} objects (${fmt(copied.bytes / MB, 1)} MB) from the bucket to ${localData}/media`);
    const s3Hot = await c.start('origin');
    const s3Cold = await c.start('origin', { SMOOTHCAST_STORAGE_S3_CACHE_BYTES: '0' });
    const local = await c.start('origin', {
      SMOOTHCAST_STORAGE_BACKEND: 'local',
      SMOOTHCAST_STORAGE_DATA_DIR: localData,
    });
    const swift = swiftPids(c.s3.endpoint);
    log(`Swift processes: ${swift.length} (${swift.join(', ')})`);

    const masterPath = new URL(asset.playback.hls!, api.url).pathname;
    const { all, top } = await hlsUris(s3Hot.url, masterPath);
    const sizes = await Promise.all(top.map(async (p) => (await bodyOf(s3Hot.url + p)).length));
    const meanTop = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    const hotPaths = top.slice(0, HOT_SEGMENTS);
    const meanHot = sizes.slice(0, HOT_SEGMENTS).reduce((a, b) => a + b, 0) / HOT_SEGMENTS;
    log(`${top.length} segments in the 1080p rung, mean ${fmt(meanTop / MB)} MB; ${all.length} URIs in all`);

    console.log(`machine: ${machine()}; nproc ${availableParallelism()}; load average at the start ${loadBefore}`);
    console.log(`asset: 20 s 1080p30 with grain, ladder encoded in ${fmt(encodeSeconds, 1)} s on one worker\n`);

    // 1 + 2.
    const localT = { name: 'local disk', node: local, storagePids: [] };
    const [hotS3, hotLocal] = await compareOrigins(
      'hot',
      [{ name: 'S3, 64 MiB read cache', node: s3Hot, storagePids: swift }, localT],
      hotPaths,
      work,
    );
    const [coldS3, coldLocal] = await compareOrigins(
      'cold',
      [{ name: 'S3, s3CacheBytes=0', node: s3Cold, storagePids: swift }, localT],
      top,
      work,
    );
    const originRow = (regime: string, segs: string, s3: OriginResult, loc: OriginResult) => [
      regime,
      segs,
      `${s3.name}: ${rate(s3.best)}`,
      `${rate(loc.best)}`,
      fmt(s3.best.bytesPerSecond / loc.best.bytesPerSecond),
      `${fmt(s3.cpuMsPer1000, 0)} + Swift ${fmt(s3.storageCpuMsPer1000 ?? 0, 0)}`,
      fmt(loc.cpuMsPer1000, 0),
    ];
    console.log(
      `1+2. one origin process, S3 (Swift) vs local disk: wrk ${CONNECTIONS} connections, best of 2 × ${SECONDS} s\n${table(
        [
          'regime',
          'segments',
          'S3 origin',
          'local origin',
          'S3/local',
          'CPU ms/1000 req, S3',
          'CPU ms/1000 req, local',
        ],
        [
          originRow('hot', `${HOT_SEGMENTS} × ${fmt(meanHot / MB)} MB`, hotS3, hotLocal),
          originRow('cold', `${top.length} × ${fmt(meanTop / MB)} MB`, coldS3, coldLocal),
        ],
      )}\n`,
    );

    // 3. The edge in front of the (cached) S3 origin, and plain nginx over the same bytes.
    const edgePort = await freePort();
    const edgeDir = join(work, 'edge');
    mkdirSync(edgeDir, { recursive: true });
    const args = ['edge-config', '--origin', s3Hot.url, '--listen', String(edgePort), '--listen-address', '127.0.0.1'];
    args.push('--cache-dir', join(edgeDir, 'cache'), '--max-size', '2g');
    if (process.getuid?.() === 0) args.push('--user', 'root');
    const conf = await run(process.execPath, [BIN, ...args], { timeout: 60_000 });
    writeFileSync(join(edgeDir, 'nginx.conf'), conf.stdout);
    const edge = await startNginxWithConfig(join(edgeDir, 'nginx.conf'), `http://127.0.0.1:${edgePort}/healthz`);
    cleanups.push(() => edge.stop());
    log(`edge on ${edge.url}: warming ${all.length} URIs…`);
    for (const p of all) await bodyOf(edge.url + p);
    const hit = await fetch(edge.url + top[0]!);
    await hit.arrayBuffer();
    if (hit.headers.get('x-cache-status') !== 'HIT') {
      throw new Error(`the warmed edge answers ${top[0]} with X-Cache-Status ${hit.headers.get('x-cache-status')}`);
    }
    const staticRoot = join(work, 'static');
    await saveAsStatic(s3Hot.url, top, staticRoot);
    const plain = await startNginx(staticRoot, join(work, 'nginx'));
    cleanups.push(() => plain.stop());
    log('edge vs plain nginx…');
    const originBeforeEdge = await scrape(s3Hot.url);
    const edgePids = nginxPids(join(edgeDir, 'nginx.pid'));
    const edgeCmp = await compareEdge(
      { name: 'edge', url: edge.url, pids: edgePids },
      { name: 'plain nginx', url: plain.url, pids: nginxPids(join(work, 'nginx', 'nginx.pid')) },
      top,
      work,
    );
    const edgeOriginRequests = total(routeDelta(originBeforeEdge, await scrape(s3Hot.url)));
    await plain.stop();
    cleanups.pop();
    console.log(
      `3. through the edge (warm) vs plain nginx, same bytes: ${top.length} × ${fmt(meanTop / MB)} MB segments, wrk ${CONNECTIONS} connections, best of ${EDGE_ROUNDS} alternating × ${SECONDS} s\n${table(
        [
          'edge (smoothcast edge-config)',
          'plain nginx',
          'ratio MB/s (best/best)',
          `target ≥ ${EDGE_TARGET}`,
          'ratio per round',
          'nginx CPU ms/1000 req, edge / plain',
          'origin requests',
        ],
        [
          [
            rate(edgeCmp.edge),
            rate(edgeCmp.nginx),
            fmt(edgeCmp.ratio),
            edgeCmp.ratio >= EDGE_TARGET ? 'PASS' : 'FAIL',
            edgeCmp.roundRatios.map((r) => fmt(r)).join(' / '),
            `${fmt(edgeCmp.edgeCpuMsPer1000, 0)} / ${fmt(edgeCmp.nginxCpuMsPer1000, 0)}`,
            edgeOriginRequests,
          ],
        ],
      )}\n`,
    );

    // 4. Viewers through the edge.
    const viewers = await maxViewers(edge.url, edgePids, masterPath, s3Hot);
    console.log(
      `4. real-time 1080p viewers through the edge (${VIEWER_SECONDS} s each, p99 segment latency < ${P99_LIMIT_MS} ms, no errors; the load generator on the same cores)\n${table(
        [
          'viewers',
          'threads',
          'p50 ms',
          'p99 ms',
          'max ms',
          'errors',
          'stalls',
          'Mbit/s',
          'ran s',
          'cores: viewers / edge',
          'origin requests',
          'result',
        ],
        viewers.steps.map((s) => [
          s.viewers,
          s.threads,
          fmt(s.p50, 0),
          fmt(s.p99, 0),
          fmt(s.max, 0),
          s.errors,
          s.stalls,
          fmt(s.throughputMbps, 0),
          fmt(s.elapsedSeconds, 1),
          `${fmt(s.generatorCores)} / ${fmt(s.edgeCores)}`,
          total(s.originRequests),
          s.pass ? 'pass' : 'fail',
        ]),
      )}\n${
        viewers.best
          ? `largest passing: ${viewers.best.viewers} viewers (p99 ${fmt(viewers.best.p99, 0)} ms, ${fmt(viewers.best.throughputMbps, 0)} Mbit/s)${viewers.firstFail ? `; ${viewers.firstFail.viewers} failed` : ' (the cap of the tool)'}`
          : 'no count passed'
      }\n`,
    );

    // 5. Workers.
    const source720 = await makeSource(join(work, 'source-720p.mp4'), 10, 8, '1280x720');
    const workerRuns: WorkerRun[] = [];
    for (const n of [1, 2, 3]) workerRuns.push(await workerRun(c, api, source720, n));
    const one = workerRuns[0]!.seconds;
    console.log(
      `5. 3 queued encodes (10 s 720p30 with grain) on N worker processes, nproc ${availableParallelism()}\n${table(
        [
          'workers',
          'all 3 ready',
          'each ready at',
          'jobs per worker',
          'CPU s (workers + ffmpeg)',
          'cores busy',
          'speed-up vs 1',
          'load average after',
        ],
        workerRuns.map((w) => [
          w.workers,
          `${fmt(w.seconds, 1)} s`,
          w.readyAt.map((s) => fmt(s, 1)).join(' / '),
          w.jobsPerWorker.join(' / '),
          fmt(w.cpuSeconds, 1),
          fmt(w.cpuSeconds / w.seconds, 2),
          `${fmt(one / w.seconds)}×`,
          w.loadAverage,
        ]),
      )}\n`,
    );

    const loadAfter = uptime();
    const totalSeconds = (performance.now() - t0) / 1000;
    console.log(`load average at the end ${loadAfter}; the bench took ${fmt(totalSeconds / 60, 1)} min`);
    writeFileSync(
      outFile('scale'),
      `${JSON.stringify(
        {
          machine: machine(),
          nproc: availableParallelism(),
          loadAverage: { before: loadBefore, after: loadAfter, sampled: loadavg() },
          totalSeconds,
          connections: CONNECTIONS,
          seconds: SECONDS,
          asset: { id, encodeSeconds, topSegments: top.length, meanTopSegmentBytes: meanTop, copied },
          origin: { hot: { s3: hotS3, local: hotLocal }, cold: { s3: coldS3, local: coldLocal } },
          edge: { ...edgeCmp, target: EDGE_TARGET, originRequests: edgeOriginRequests },
          viewers,
          workers: workerRuns,
        },
        null,
        2,
      )}\n`,
    );
    log(`written ${outFile('scale')}`);
  } finally {
    log('cleaning up…');
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

if (isMainThread) await main();
else parentPort!.postMessage(await viewerShard(workerData as ShardInput));
