// Shared pieces of the benchmarks: a smoothcast server in its own process, nginx as the reference, wrk as the
// load tool, and the machine description recorded with every result.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { AssetJson } from '../src/roles/api/present.ts';

const run = promisify(execFile);
export const BIN = fileURLToPath(new URL('../bin/smoothcast.js', import.meta.url));

export function machine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return `${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}`;
}

export async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface ServerProcess {
  url: string;
  /** An admin API token of the server's data folder (made with `smoothcast token create` before the start). */
  token: string;
  /** `{ authorization: 'Bearer …' }` with that token: every /api request sends it. */
  auth: Record<string, string>;
  /** Everything the server printed so far (JSON log lines). */
  log(): string;
  child: ChildProcess;
  /** Peak resident set size of the server process so far (VmHWM), bytes. */
  peakRss(): number;
  stop(): Promise<void>;
}

/** `smoothcast serve` as its own process on a free port over `dataDir`, and an admin API token to call it with. */
export async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const created = await run(
    process.execPath,
    [BIN, 'token', 'create', '--name', 'bench', '--scopes', 'admin', '--data', dataDir],
    { env: { ...process.env, ...env }, timeout: 60_000 },
  );
  const token = created.stdout.trim();
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--data', dataDir], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  const url = await waitFor('server start', () => /serving (http:\/\/\S+)/.exec(out)?.[1], 60_000);
  return {
    url,
    token,
    auth: { authorization: `Bearer ${token}` },
    child,
    log: () => out,
    peakRss() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      return kb * 1024;
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export { type Nginx, startNginx } from '../test/helpers/nginx.ts';

export interface WrkResult {
  requestsPerSecond: number;
  bytesPerSecond: number;
  non2xx: number;
  errors: string;
}

/** wrk at `connections` connections for `seconds`, cycling through `paths` on `base`. */
export async function wrk(
  base: string,
  paths: readonly string[],
  connections: number,
  seconds: number,
  workDir: string,
  /** A Range header value per path ('' for none). */
  ranges?: readonly string[],
) {
  const script = join(workDir, `paths-${Date.now()}.lua`);
  writeFileSync(
    script,
    `local paths = {${paths.map((p) => JSON.stringify(p)).join(',')}}
local ranges = {${(ranges ?? paths.map(() => '')).map((r) => JSON.stringify(r)).join(',')}}
local i = 0
request = function()
  i = i % #paths + 1
  if ranges[i] ~= "" then return wrk.format("GET", paths[i], { Range = ranges[i] }) end
  return wrk.format("GET", paths[i])
end
`,
  );
  const { stdout } = await run('wrk', ['-t2', `-c${connections}`, `-d${seconds}s`, '-s', script, base], {
    timeout: (seconds + 60) * 1000,
  });
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(stdout)?.[1]);
  const tm = /Transfer\/sec:\s+([0-9.]+)([KMG]?B)/.exec(stdout);
  const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[tm?.[2] ?? 'B'] ?? 1;
  return {
    requestsPerSecond: rps,
    bytesPerSecond: Number(tm?.[1]) * unit,
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0),
    errors: /Socket errors:.*/.exec(stdout)?.[0] ?? '',
  } satisfies WrkResult;
}

export const MB = 1024 * 1024;
export const fmt = (n: number, d = 2) => n.toFixed(d);

/** Where a benchmark writes its machine-readable result (bench/out/NAME.json, not committed). */
export function outFile(name: string): string {
  const dir = fileURLToPath(new URL('./out/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  return join(dir, `${name}.json`);
}

/**
 * A 1080p30 H.264/AAC source made by ffmpeg (lavfi). `noise` adds film-like grain so encoders really spend their
 * bitrate (plain test patterns compress to almost nothing).
 */
export async function makeSource(file: string, seconds: number, noise = 0, size = '1920x1080'): Promise<string> {
  console.log(`generating a ${seconds} s ${size} 30 fps source…`);
  const video = `testsrc2=size=${size}:rate=30:duration=${seconds}${noise ? `,noise=alls=${noise}:allf=t` : ''}`;
  await run(
    'ffmpeg',
    ['-y', '-v', 'error', '-f', 'lavfi', '-i', video, '-f', 'lavfi', '-i', `sine=duration=${seconds}`].concat([
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-crf',
      '20',
      '-c:a',
      'aac',
      '-shortest',
      file,
    ]),
    { timeout: 3_600_000 },
  );
  return file;
}

/**
 * A `seconds` long noisy 1080p source (so the encoder really spends its bitrate) imported into `work/data` and
 * encoded by a server of its own; returns the server (still running) and the ready asset.
 */
export async function encodedAsset(
  work: string,
  seconds = 20,
): Promise<{ server: ServerProcess; asset: AssetJson; dataDir: string }> {
  const dataDir = join(work, 'data');
  const source = join(work, 'source.mp4');
  await makeSource(source, seconds, 12);
  console.log('importing (encoding the ladder)…');
  const { stdout } = await run(process.execPath, [BIN, 'import', '--data', dataDir, '--json', '--no-wait', source], {
    timeout: 60_000,
  });
  const { id } = JSON.parse(stdout) as { id: string };
  const server = await startServer(dataDir);
  const asset = await readyAsset(server, id, 1_200_000);
  return { server, asset, dataDir };
}

/** Asset `id` on `server` once its encode is ready (a failed encode throws). */
export function readyAsset(server: ServerProcess, id: string, timeoutMs: number): Promise<AssetJson> {
  return waitFor(
    'the encode',
    async () => {
      const a = (await (await fetch(`${server.url}/api/assets/${id}`, { headers: server.auth })).json()) as AssetJson;
      if (a.status === 'failed') throw new Error(`encode failed: ${JSON.stringify(a.error)}`);
      return a.status === 'ready' ? a : undefined;
    },
    timeoutMs,
  );
}

/** The segment paths of the asset's top HLS rendition (the ~1 MB class at 1080p). */
export async function topSegmentPaths(serverUrl: string, asset: AssetJson): Promise<string[]> {
  const masterUrl = new URL(asset.playback.hls!, serverUrl);
  const master = await (await fetch(masterUrl)).text();
  const mediaUrl = new URL(master.split('\n').find((l) => l.endsWith('.m3u8') && !l.startsWith('#'))!, masterUrl);
  const playlist = await (await fetch(mediaUrl)).text();
  return playlist
    .split('\n')
    .filter((l) => l.endsWith('.m4s'))
    .map((l) => new URL(l, mediaUrl).pathname);
}

/** Fetches `paths` from smoothcast and stores them as static files under `root` at the same paths; mean size. */
export async function saveAsStatic(serverUrl: string, paths: readonly string[], root: string): Promise<number> {
  let total = 0;
  for (const p of paths) {
    const bytes = Buffer.from(await (await fetch(serverUrl + p)).arrayBuffer());
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), bytes);
    total += bytes.length;
  }
  return total / paths.length;
}

export interface LoadCase {
  name: string;
  paths: string[];
  /** A Range header per path, when the case is range reads. */
  ranges?: string[];
}

/**
 * One case on both servers, same run: first both must answer the same bytes; then a warm-up each and two
 * alternating measured runs each, keeping each side's best. Any non-2xx or socket error fails the bench.
 */
export async function compareWithNginx(
  c: LoadCase,
  originUrl: string,
  nginxUrl: string,
  work: string,
  opts: { connections: number; seconds: number },
): Promise<{ origin: WrkResult; nginx: WrkResult; ratio: number }> {
  const first = async (base: string) => {
    const res = await fetch(base + c.paths[0], c.ranges ? { headers: { range: c.ranges[0]! } } : {});
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  };
  const [a, b] = [await first(originUrl), await first(nginxUrl)];
  if (a.status !== b.status || a.status >= 300 || !a.body.equals(b.body)) {
    throw new Error(
      `${c.name}: smoothcast ${a.status} (${a.body.length} B) and nginx ${b.status} (${b.body.length} B) differ`,
    );
  }
  const measure = (base: string, seconds: number) => wrk(base, c.paths, opts.connections, seconds, work, c.ranges);
  await measure(originUrl, 2);
  await measure(nginxUrl, 2);
  const ours: WrkResult[] = [];
  const ref: WrkResult[] = [];
  for (let i = 0; i < 2; i++) {
    ours.push(await measure(originUrl, opts.seconds));
    ref.push(await measure(nginxUrl, opts.seconds));
  }
  for (const r of [...ours, ...ref]) {
    if (r.non2xx || r.errors) throw new Error(`${c.name}: a run had failures: ${JSON.stringify(r)}`);
  }
  const best = (xs: WrkResult[]) => xs.reduce((x, y) => (y.bytesPerSecond > x.bytesPerSecond ? y : x));
  const origin = best(ours);
  const nginx = best(ref);
  return { origin, nginx, ratio: origin.bytesPerSecond / nginx.bytesPerSecond };
}
