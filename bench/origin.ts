// npm run bench:origin — segment requests/s and MB/s at 64 connections (wrk) against smoothcast's origin, which
// cuts each segment out of one CMAF file per rendition, and against nginx serving the same bytes pre-cut into
// static files on the same disk, in the same run. Prints the ratio (target ≥ 0.9 for ~1 MB segments) and the
// origin's peak RSS. (bench:delivery runs the same case beside Smooth fragments and progressive ranges.)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  compareWithNginx,
  encodedAsset,
  fmt,
  MB,
  machine,
  outFile,
  saveAsStatic,
  startNginx,
  topSegmentPaths,
} from './lib.ts';

const CONNECTIONS = 64;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'sc-bench-origin-'));
  console.log(`machine: ${machine()}`);
  const { server, asset } = await encodedAsset(work);
  try {
    const paths = await topSegmentPaths(server.url, asset);
    const root = join(work, 'static');
    const mean = await saveAsStatic(server.url, paths, root);
    console.log(`${paths.length} segments of the top rendition, mean ${fmt(mean / MB)} MB`);
    const nginx = await startNginx(root, join(work, 'nginx'));
    try {
      const c = { name: 'HLS segments', paths };
      const {
        origin: o,
        nginx: n,
        ratio,
      } = await compareWithNginx(c, server.url, nginx.url, work, {
        connections: CONNECTIONS,
        seconds: SECONDS,
      });
      for (const [name, r] of [
        ['smoothcast origin', o],
        ['nginx static files', n],
      ] as const) {
        console.log(
          `${name.padEnd(20)} ${fmt(r.requestsPerSecond, 0).padStart(7)} req/s ${fmt(r.bytesPerSecond / MB, 1).padStart(8)} MB/s`,
        );
      }
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
