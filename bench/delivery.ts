// npm run bench:delivery — requests/s and MB/s at 64 connections (wrk) for three kinds of responses smoothcast
// cuts from the same files: HLS virtual segments (the top rendition), Smooth Streaming fragments (a tfxd added on
// the fly, then cached), and progressive-download Range reads of 1 MiB; each against nginx serving the very same
// bytes as static files from the same disk (the progressive file itself for the ranges), in the same run. Prints
// the ratios (target ≥ 0.9 for responses ≥ 500 KB).
import { execFile } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

interface Case {
  name: string;
  paths: string[];
  ranges?: string[];
  meanBytes: number;
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'sc-bench-delivery-'));
  const data = join(work, 'data');
  console.log(`machine: ${machine()}`);
  const source = join(work, 'source.mp4');
  await makeSource(source, 20, 12);
  console.log('importing (encoding the ladder)…');
  await run(process.execPath, [BIN, 'import', '--data', data, '--json', '--no-wait', source], { timeout: 60_000 });
  const server = await startServer(data);
  const root = join(work, 'static');
  const cases: Case[] = [];
  try {
    const { assets } = (await (await fetch(`${server.url}/api/assets`)).json()) as { assets: { id: string }[] };
    const id = assets[0]!.id;
    let asset: { status: string; playback: { hls: string; smooth: string; downloads: { url: string }[] } };
    for (;;) {
      asset = (await (await fetch(`${server.url}/api/assets/${id}`)).json()) as typeof asset;
      if (asset.status === 'ready') break;
      if (asset.status === 'failed') throw new Error('encode failed');
      await new Promise((r) => setTimeout(r, 500));
    }
    const save = async (path: string, range?: string) => {
      const res = await fetch(server.url + path, range ? { headers: { range } } : {});
      const bytes = Buffer.from(await res.arrayBuffer());
      if (!range) {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), bytes);
      }
      return bytes.length;
    };
    // 1. HLS virtual segments of the top rendition.
    const master = await (await fetch(server.url + asset.playback.hls)).text();
    const mediaUrl = new URL(
      master.split('\n').find((l) => l.endsWith('.m3u8') && !l.startsWith('#'))!,
      server.url + asset.playback.hls,
    );
    const playlist = await (await fetch(mediaUrl)).text();
    const hls = playlist
      .split('\n')
      .filter((l) => l.endsWith('.m4s'))
      .map((l) => new URL(l, mediaUrl).pathname);
    let total = 0;
    for (const p of hls) total += await save(p);
    cases.push({ name: 'HLS segments', paths: hls, meanBytes: total / hls.length });
    // 2. Smooth Streaming fragments of the top video quality level.
    const manifestUrl = server.url + asset.playback.smooth;
    const manifest = await (await fetch(manifestUrl)).text();
    const video = manifest.slice(manifest.indexOf('<StreamIndex Type="video"'), manifest.indexOf('</StreamIndex>'));
    const top = Math.max(...[...video.matchAll(/Bitrate="(\d+)"/g)].map((m) => Number(m[1])));
    let t = 0;
    const smooth: string[] = [];
    for (const c of video.matchAll(/<c(?: t="(\d+)")? d="(\d+)"\/>/g)) {
      if (c[1] !== undefined) t = Number(c[1]);
      smooth.push(new URL(`QualityLevels(${top})/Fragments(video=${t})`, manifestUrl).pathname);
      t += Number(c[2]);
    }
    total = 0;
    for (const p of smooth) total += await save(p);
    cases.push({ name: 'Smooth fragments', paths: smooth, meanBytes: total / smooth.length });
    // 3. Range reads of 1 MiB across the top progressive download; nginx gets the same file (a hard link).
    const dl = new URL(asset.playback.downloads[0]!.url, server.url).pathname;
    const size = Number((await fetch(server.url + dl, { method: 'HEAD' })).headers.get('content-length'));
    mkdirSync(dirname(join(root, dl)), { recursive: true });
    linkSync(join(data, 'media', dl.replace(/^\/v\//, 'assets/')), join(root, dl));
    const ranges: string[] = [];
    for (let at = 0; at + MB <= size; at += MB) ranges.push(`bytes=${at}-${at + MB - 1}`);
    cases.push({ name: 'progressive 1 MiB ranges', paths: ranges.map(() => dl), ranges, meanBytes: MB });

    const nginx = await startNginx(root, join(work, 'nginx'), await freePort());
    const rows: Record<string, unknown>[] = [];
    try {
      for (const c of cases) {
        // Both must answer the same bytes.
        const probe = async (base: string) => {
          const res = await fetch(base + c.paths[0], c.ranges ? { headers: { range: c.ranges[0]! } } : {});
          return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
        };
        const [a, b] = [await probe(server.url), await probe(nginx.url)];
        if (a.status !== b.status || !a.body.equals(b.body))
          throw new Error(`${c.name}: the servers differ (${a.status}/${b.status})`);
        await wrk(server.url, c.paths, CONNECTIONS, 2, work, c.ranges);
        await wrk(nginx.url, c.paths, CONNECTIONS, 2, work, c.ranges);
        const ours: WrkResult[] = [];
        const ref: WrkResult[] = [];
        for (let i = 0; i < 2; i++) {
          ours.push(await wrk(server.url, c.paths, CONNECTIONS, SECONDS, work, c.ranges));
          ref.push(await wrk(nginx.url, c.paths, CONNECTIONS, SECONDS, work, c.ranges));
        }
        for (const r of [...ours, ...ref])
          if (r.non2xx || r.errors) throw new Error(`${c.name}: failures ${JSON.stringify(r)}`);
        const best = (xs: WrkResult[]) => xs.reduce((x, y) => (y.bytesPerSecond > x.bytesPerSecond ? y : x));
        const o = best(ours);
        const n = best(ref);
        const ratio = o.bytesPerSecond / n.bytesPerSecond;
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
