// npm run bench:publish — time from `smoothcast import` to `playable`, and to the first segment a decoder accepts,
// for a 10 s and a 10 min 1080p source (target ≤ 3 s for both: publishing must not depend on the length).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BIN, fmt, machine, makeSource, outFile, startServer, waitFor } from './lib.ts';

const run = promisify(execFile);
const LENGTHS = (process.env.BENCH_LENGTHS ?? '10,600').split(',').map(Number);

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'sc-bench-publish-'));
  const data = join(work, 'data');
  console.log(`machine: ${machine()}`);
  const files = new Map<number, string>();
  // A short warm-up import first (not counted): the first encode after a start pays one-time costs (ffmpeg and its
  // libraries paged in, JIT) that have nothing to do with the source's length.
  files.set(0, await makeSource(join(work, 'warm-up.mp4'), 4));
  for (const s of LENGTHS) files.set(s, await makeSource(join(work, `source-${s}.mp4`), s));
  const server = await startServer(data);
  const results: { seconds: number; playable: number; firstSegment: number }[] = [];
  try {
    for (const [seconds, file] of files) {
      const t0 = performance.now();
      const r = await run(process.execPath, [BIN, 'import', '--data', data, '--json', '--no-wait', file]);
      const { id } = JSON.parse(r.stdout) as { id: string };
      const asset = await waitFor(
        'playable',
        async () => {
          const a = (await (await fetch(`${server.url}/api/assets/${id}`, { headers: server.auth })).json()) as {
            playable: boolean;
            status: string;
            playback: { hls: string };
          };
          if (a.status === 'failed') throw new Error(`import failed: ${JSON.stringify(a)}`);
          return a.playable ? a : undefined;
        },
        120_000,
      );
      const playable = (performance.now() - t0) / 1000;
      const masterUrl = new URL(asset.playback.hls, server.url);
      const master = await (await fetch(masterUrl)).text();
      // The lowest rung, where an adaptive player starts before it knows the bandwidth.
      const media = new URL(master.split('\n').findLast((l) => l.endsWith('.m3u8') && !l.startsWith('#'))!, masterUrl);
      const pl = await (await fetch(media)).text();
      const init = /URI="([^"]+)"/.exec(pl)![1]!;
      const seg0 = pl.split('\n').find((l) => l.endsWith('.m4s'))!;
      const bytes = Buffer.concat(
        await Promise.all(
          [init, seg0].map(async (u) => Buffer.from(await (await fetch(new URL(u, media))).arrayBuffer())),
        ),
      );
      // The segment was there when its bytes arrived; checking that it decodes is not part of the latency.
      const firstSegment = (performance.now() - t0) / 1000;
      const local = join(work, `first-${seconds}.mp4`);
      writeFileSync(local, bytes);
      const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', local, '-f', 'null', '-']);
      if (stderr.trim()) throw new Error(`first segment did not decode: ${stderr}`);
      if (seconds === 0) {
        console.log(`  warm-up: playable ${fmt(playable)} s, first segment ${fmt(firstSegment)} s (not counted)`);
      } else {
        results.push({ seconds, playable, firstSegment });
        console.log(
          `${String(seconds).padStart(5)} s source: import → playable ${fmt(playable)} s, → first decodable segment ${fmt(firstSegment)} s`,
        );
        for (const line of server.log().split('\n')) if (line.includes(id)) console.log(`    server: ${line}`);
      }
      // Deleting stops the encode; the next measurement starts on an idle worker.
      await fetch(`${server.url}/api/assets/${id}`, { method: 'DELETE', headers: server.auth });
      await waitFor(
        'idle worker',
        async () => {
          const h = (await (await fetch(`${server.url}/healthz`)).json()) as { worker: { active: number } };
          return h.worker.active === 0 ? true : undefined;
        },
        60_000,
      );
    }
    const worst = Math.max(...results.map((r) => r.firstSegment));
    console.log(`worst: ${fmt(worst)} s  (target ≤ 3 s for every length)`);
    writeFileSync(outFile('publish'), `${JSON.stringify({ machine: machine(), results }, null, 2)}\n`);
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
