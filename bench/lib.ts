// Shared pieces of the benchmarks: a smoothcast server in its own process, nginx as the reference, wrk as the
// load tool, and the machine description recorded with every result.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

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
  /** Everything the server printed so far (JSON log lines). */
  log(): string;
  child: ChildProcess;
  /** Peak resident set size of the server process so far (VmHWM), bytes. */
  peakRss(): number;
  stop(): Promise<void>;
}

/** `smoothcast serve` as its own process on a free port over `dataDir`. */
export async function startServer(dataDir: string, env: Record<string, string> = {}): Promise<ServerProcess> {
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
export async function makeSource(file: string, seconds: number, noise = 0): Promise<string> {
  console.log(`generating a ${seconds} s 1080p30 source…`);
  const video = `testsrc2=size=1920x1080:rate=30:duration=${seconds}${noise ? `,noise=alls=${noise}:allf=t` : ''}`;
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
