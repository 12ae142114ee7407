// npm run bench:origin — segment requests/s and MB/s at 64 connections (wrk) against smoothcast's origin, which
// cuts each segment out of one CMAF file per rendition, and against nginx serving the same bytes pre-cut into
// static files on the same disk, in the same run. Prints the ratio (target ≥ 0.9 for ~1 MB segments) and the
// origin's peak RSS.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, fmt, MB, machine, makeSource, outFile, startNginx, startServer, type WrkResult, wrk } from './lib.ts';

const run = promisify(execFile);
const CONNECTIONS = 64;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'sc-bench-origin-'));
  const data = join(work, 'data');
  console.log(`machine: ${machine()}`);
  // A 1080p source with film-like noise so the encoder really spends its bitrate (test patterns compress to nothing).
  const source = join(work, 'source.mp4');
  await makeSource(source, 20, 12);
  console.log('importing (encoding the ladder)…');
  await run(process.execPath, [BIN, 'import', '--data', data, '--json', '--no-wait', source], { timeout: 60_000 });
  const server = await startServer(data);
  try {
    const assets = (await (await fetch(`${server.url}/api/assets`)).json()) as {
      assets: { id: string; status: string }[];
    };
    const id = assets.assets[0]!.id;
    const t0 = Date.now();
    for (;;) {
      const a = (await (await fetch(`${server.url}/api/assets/${id}`)).json()) as { status: string; error: unknown };
      if (a.status === 'ready') break;
      if (a.status === 'failed') throw new Error(`encode failed: ${JSON.stringify(a.error)}`);
      if (Date.now() - t0 > 1_200_000) throw new Error('encode took too long');
      await new Promise((r) => setTimeout(r, 500));
    }
    // The top rendition's segments (the ~1 MB class): the same URL paths on both servers.
    const master = await (await fetch(`${server.url}/v/${id}/master.m3u8`)).text();
    const mediaPath = master.split('\n').find((l) => l.endsWith('.m3u8') && !l.startsWith('#'))!;
    const mediaUrl = new URL(mediaPath, `${server.url}/v/${id}/master.m3u8`);
    const playlist = await (await fetch(mediaUrl)).text();
    const paths = playlist
      .split('\n')
      .filter((l) => l.endsWith('.m4s'))
      .map((l) => new URL(l, mediaUrl).pathname);
    const root = join(work, 'static');
    let total = 0;
    for (const p of paths) {
      const bytes = Buffer.from(await (await fetch(server.url + p)).arrayBuffer());
      total += bytes.length;
      mkdirSync(dirname(join(root, p)), { recursive: true });
      writeFileSync(join(root, p), bytes);
    }
    const mean = total / paths.length;
    console.log(`${paths.length} segments of the top rendition, mean ${fmt(mean / MB)} MB`);
    const nginx = await startNginx(root, join(work, 'nginx'), await freePort());
    try {
      // Both servers must answer the same bytes, or the comparison means nothing.
      for (const p of [paths[0]!, paths.at(-1)!]) {
        const [a, b] = await Promise.all([fetch(server.url + p), fetch(nginx.url + p)]);
        const [x, y] = [Buffer.from(await a.arrayBuffer()), Buffer.from(await b.arrayBuffer())];
        if (a.status !== 200 || b.status !== 200 || !x.equals(y)) {
          throw new Error(`${p}: origin ${a.status} (${x.length} B), nginx ${b.status} (${y.length} B) differ`);
        }
      }
      // Warm both (page cache, JIT, index cache), then alternate measured runs and keep each side's best.
      await wrk(server.url, paths, CONNECTIONS, 2, work);
      await wrk(nginx.url, paths, CONNECTIONS, 2, work);
      const ours: WrkResult[] = [];
      const ref: WrkResult[] = [];
      for (let i = 0; i < 2; i++) {
        ours.push(await wrk(server.url, paths, CONNECTIONS, SECONDS, work));
        ref.push(await wrk(nginx.url, paths, CONNECTIONS, SECONDS, work));
      }
      for (const r of [...ours, ...ref]) {
        if (r.non2xx || r.errors) throw new Error(`a run had failures: ${JSON.stringify(r)}`);
      }
      const best = (xs: typeof ours) => xs.reduce((a, b) => (b.bytesPerSecond > a.bytesPerSecond ? b : a));
      const o = best(ours);
      const n = best(ref);
      for (const [name, r] of [
        ['smoothcast origin', o],
        ['nginx static files', n],
      ] as const) {
        console.log(
          `${name.padEnd(20)} ${fmt(r.requestsPerSecond, 0).padStart(7)} req/s ${fmt(r.bytesPerSecond / MB, 1).padStart(8)} MB/s` +
            `${r.non2xx ? `  NON-2xx: ${r.non2xx}` : ''} ${r.errors}`,
        );
      }
      const ratio = o.bytesPerSecond / n.bytesPerSecond;
      console.log(`ratio (origin / nginx, MB/s): ${fmt(ratio)}  (target ≥ 0.90 for ~1 MB segments)`);
      console.log(`origin peak RSS: ${fmt(server.peakRss() / MB, 0)} MB`);
      writeFileSync(
        outFile('origin'),
        `${JSON.stringify({ machine: machine(), meanSegmentBytes: mean, connections: CONNECTIONS, seconds: SECONDS, origin: o, nginx: n, ratio, peakRss: server.peakRss() }, null, 2)}\n`,
      );
    } finally {
      await nginx.stop();
    }
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
