// npm run bench:delivery — requests/s and MB/s at 64 connections (wrk) for three kinds of responses smoothcast
// cuts from the same files: HLS virtual segments (the top rendition), Smooth Streaming fragments (a tfxd added on
// the fly, then cached), and progressive-download Range reads of 1 MiB; each against nginx serving the very same
// bytes as static files from the same disk (the progressive file itself for the ranges), in the same run. Prints
// the ratios (target ≥ 0.9 for responses ≥ 500 KB).
import { linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  compareWithNginx,
  encodedAsset,
  fmt,
  type LoadCase,
  MB,
  machine,
  outFile,
  saveAsStatic,
  startNginx,
  topSegmentPaths,
} from './lib.ts';

const CONNECTIONS = 64;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

/** Fragment paths of the top video QualityLevel of a Smooth Streaming manifest. */
async function smoothFragmentPaths(manifestUrl: string): Promise<string[]> {
  const manifest = await (await fetch(manifestUrl)).text();
  const video = manifest.slice(manifest.indexOf('<StreamIndex Type="video"'), manifest.indexOf('</StreamIndex>'));
  const top = Math.max(...[...video.matchAll(/Bitrate="(\d+)"/g)].map((m) => Number(m[1])));
  let t = 0;
  const paths: string[] = [];
  for (const c of video.matchAll(/<c(?: t="(\d+)")? d="(\d+)"\/>/g)) {
    if (c[1] !== undefined) t = Number(c[1]);
    paths.push(new URL(`QualityLevels(${top})/Fragments(video=${t})`, manifestUrl).pathname);
    t += Number(c[2]);
  }
  return paths;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'sc-bench-delivery-'));
  console.log(`machine: ${machine()}`);
  const { server, asset, dataDir } = await encodedAsset(work);
  const root = join(work, 'static');
  try {
    const hls = await topSegmentPaths(server.url, asset);
    const smooth = await smoothFragmentPaths(new URL(asset.playback.smooth!, server.url).href);
    // Range reads of 1 MiB across the top progressive download; nginx gets the same file (a hard link).
    const dl = new URL(asset.playback.downloads[0]!.url, server.url).pathname;
    const size = Number((await fetch(server.url + dl, { method: 'HEAD' })).headers.get('content-length'));
    mkdirSync(dirname(join(root, dl)), { recursive: true });
    linkSync(join(dataDir, 'media', dl.replace(/^\/v\//, 'assets/')), join(root, dl));
    const ranges: string[] = [];
    for (let at = 0; at + MB <= size; at += MB) ranges.push(`bytes=${at}-${at + MB - 1}`);
    const cases: (LoadCase & { meanBytes: number })[] = [
      { name: 'HLS segments', paths: hls, meanBytes: await saveAsStatic(server.url, hls, root) },
      { name: 'Smooth fragments', paths: smooth, meanBytes: await saveAsStatic(server.url, smooth, root) },
      { name: 'progressive 1 MiB ranges', paths: ranges.map(() => dl), ranges, meanBytes: MB },
    ];

    const nginx = await startNginx(root, join(work, 'nginx'));
    const rows: Record<string, unknown>[] = [];
    try {
      for (const c of cases) {
        const {
          origin: o,
          nginx: n,
          ratio,
        } = await compareWithNginx(c, server.url, nginx.url, work, {
          connections: CONNECTIONS,
          seconds: SECONDS,
        });
        console.log(
          `${c.name.padEnd(26)} mean ${fmt(c.meanBytes / MB)} MB  smoothcast ${fmt(o.requestsPerSecond, 0).padStart(6)} req/s ${fmt(o.bytesPerSecond / MB, 0).padStart(5)} MB/s` +
            `  nginx ${fmt(n.requestsPerSecond, 0).padStart(6)} req/s ${fmt(n.bytesPerSecond / MB, 0).padStart(5)} MB/s  ratio ${fmt(ratio)}`,
        );
        rows.push({ case: c.name, meanBytes: c.meanBytes, origin: o, nginx: n, ratio });
      }
    } finally {
      await nginx.stop();
    }
    console.log(`(target ≥ 0.90 for responses ≥ 500 KB)  origin peak RSS: ${fmt(server.peakRss() / MB, 0)} MB`);
    writeFileSync(
      outFile('delivery'),
      `${JSON.stringify({ machine: machine(), connections: CONNECTIONS, seconds: SECONDS, rows, peakRss: server.peakRss() }, null, 2)}\n`,
    );
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
