// npm run bench:security — what encryption on the fly and signed playback cost the origin, against the same
// server and asset in the same run, each figure as a ratio to serving the same segments clear and public.
//
// 1. Segment throughput (wrk, 64 keep-alive connections, every rendition's segments round-robin) for encryption
//    none / aes-128 / cenc / cbcs (PATCH /api/assets/:id between runs), in two regimes:
//    warm — the segments requested fit the origin's encrypted-segment cache (OnTheFly, 64 MiB in
//           src/roles/server.ts), so each is encrypted once and then served from memory;
//    cold — every segment of the asset, more bytes than that cache: requested in a cycle (each wrk thread its own
//           half of the paths), an LRU misses every time, so every request reads and encrypts. A miss enters the
//           cache only when its encryption is done, so what is in flight (64 segments) does not count: the bytes
//           requested between two requests of one segment must exceed the cache without them, or a cycle hits.
//    Target: ≥ 0.80 × clear. Beside them, the crypto alone: the encryptSegment functions of
//    src/media/crypto/aes128.ts and cenc.ts called in this process on the real segment bytes.
// 2. Signed playback: the same clear asset signed (segment URLs carry ?token=, verified on every request) vs
//    public, requests/s; and PlaybackVerifier in this process, µs per verify with a signature check (a new token)
//    and from its LRU (the same token again).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PlaybackSigner, PlaybackVerifier } from '../src/core/auth/playback-tokens.ts';
import { openDatabase } from '../src/core/db/database.ts';
import { SqliteSigningKeys } from '../src/core/db/signing-keys.ts';
import { encryptSegment as aesSegment, segmentIv } from '../src/media/crypto/aes128.ts';
import { encryptSegment as cencSegment, trackInfo } from '../src/media/crypto/cenc.ts';
import type { AssetJson } from '../src/roles/api/present.ts';
import { ivTag } from '../src/roles/origin/encryption.ts';
import {
  BIN,
  fmt,
  MB,
  machine,
  outFile,
  readyAsset,
  type ServerProcess,
  startServer,
  type WrkResult,
  waitFor,
} from './lib.ts';

const run = promisify(execFile);
const CONNECTIONS = 64;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/**
 * Long enough that the whole ladder (~0.9 MB per second of media) outgrows the encrypted-segment cache by more than
 * what is in flight: 90 s (77 MiB) still hit 86 % of requests at 64 connections, 120 s (103 MiB) missed 99.9 %
 * (counted in a run with a counter wrapped around OnTheFly.segment).
 */
const SOURCE_SECONDS = Number(process.env.BENCH_SOURCE_SECONDS ?? 120);
/** OnTheFly's cacheBytes as src/roles/server.ts sets it (not configurable). */
const CACHE_BYTES = 64 * 2 ** 20;
const TARGET = 0.8;
const MODES = ['none', 'aes-128', 'cenc', 'cbcs'] as const;
type Mode = (typeof MODES)[number];

interface Seg {
  rid: string;
  n: number;
  /** Path as the media playlist wrote it (with its query, if any). */
  path: string;
  clear: Buffer;
}

/**
 * A 720p30 H.264/AAC source with film grain: 10 s made by ffmpeg (lavfi testsrc2 + noise + sine), looped by stream
 * copy to `seconds` (making the grain for all of it would cost more than the encode).
 */
async function makeSource(work: string, seconds: number): Promise<string> {
  console.log(`generating a ${seconds} s 720p30 source…`);
  const clip = join(work, 'clip.mp4');
  const video = 'testsrc2=size=1280x720:rate=30:duration=10,noise=alls=12:allf=t';
  await run(
    'ffmpeg',
    ['-y', '-v', 'error', '-f', 'lavfi', '-i', video, '-f', 'lavfi', '-i', 'sine=duration=10'].concat([
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-crf',
      '24',
      '-c:a',
      'aac',
      '-shortest',
      clip,
    ]),
  );
  const file = join(work, 'source.mp4');
  const loops = String(Math.ceil(seconds / 10) - 1);
  await run('ffmpeg', [
    '-y',
    '-v',
    'error',
    '-stream_loop',
    loops,
    '-i',
    clip,
    '-c',
    'copy',
    '-t',
    String(seconds),
    file,
  ]);
  return file;
}

/**
 * wrk at CONNECTIONS connections (2 threads) for `seconds`, thread k cycling through `lists[k]` only: each path has
 * one thread, so a path comes back once per cycle of its list (a cycle longer than an LRU cache misses it).
 */
async function wrk(base: string, lists: readonly [string[], string[]], seconds: number, work: string) {
  const script = join(work, `paths-${Date.now()}.lua`);
  const table = (ps: readonly string[]) => `{${ps.map((p) => JSON.stringify(p)).join(',')}}`;
  writeFileSync(
    script,
    `local lists = {${lists.map(table).join(',')}}
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
local paths = nil
local i = 0
request = function()
  if paths == nil then paths = lists[id + 1] end
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
`,
  );
  const { stdout } = await run('wrk', ['-t2', `-c${CONNECTIONS}`, `-d${seconds}s`, '-s', script, base], {
    timeout: (seconds + 60) * 1000,
  });
  const tm = /Transfer\/sec:\s+([0-9.]+)([KMG]?B)/.exec(stdout);
  const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[tm?.[2] ?? 'B'] ?? 1;
  const r: WrkResult = {
    requestsPerSecond: Number(/Requests\/sec:\s+([0-9.]+)/.exec(stdout)?.[1]),
    bytesPerSecond: Number(tm?.[1]) * unit,
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0),
    errors: /Socket errors:.*/.exec(stdout)?.[0] ?? '',
  };
  if (r.non2xx || r.errors || !(r.requestsPerSecond > 0)) throw new Error(`a wrk run had failures: ${stdout}`);
  return r;
}

/**
 * The two threads' lists of a set of segments (in round-robin order): by rendition and segment number alternately,
 * so both get every rendition and about half the bytes.
 */
function split(set: readonly Seg[], rids: readonly string[], path = (s: Seg) => s.path): [string[], string[]] {
  const lists: [string[], string[]] = [[], []];
  for (const s of set) lists[(rids.indexOf(s.rid) + s.n) % 2]!.push(path(s));
  return lists;
}

/** Every segment of every HLS rendition (video and audio), as the playlists behind `masterUrl` list them. */
async function allSegments(masterUrl: URL): Promise<Omit<Seg, 'clear'>[]> {
  const master = await (await fetch(masterUrl)).text();
  const media = master
    .split('\n')
    .flatMap((l) =>
      l.startsWith('#EXT-X-MEDIA:') ? [/URI="([^"]+)"/.exec(l)?.[1] ?? ''] : l.startsWith('#') ? [] : [l],
    )
    .filter((l) => /\.m3u8(\?|$)/.test(l));
  const out: Omit<Seg, 'clear'>[] = [];
  for (const m of media) {
    const url = new URL(m, masterUrl);
    const playlist = await (await fetch(url)).text();
    for (const l of playlist.split('\n')) {
      if (!l || l.startsWith('#')) continue;
      const u = new URL(l, url);
      const hit = /\/([av]\d+)\/(\d+)(?:\.(?:aes|cenc|cbcs))?\.m4s$/.exec(u.pathname);
      if (hit) out.push({ rid: hit[1]!, n: Number(hit[2]), path: u.pathname + u.search });
    }
  }
  // Round-robin over the renditions: segment 0 of each, then segment 1 of each, …
  return out.sort((a, b) => a.n - b.n || a.rid.localeCompare(b.rid));
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'sc-bench-security-'));
  console.log(
    `machine: ${machine()}; load average ${loadavg()
      .map((l) => fmt(l))
      .join(' ')}`,
  );
  const dataDir = join(work, 'data');
  const source = await makeSource(work, SOURCE_SECONDS);
  const t0 = Date.now();
  const { stdout } = await run(process.execPath, [BIN, 'import', '--data', dataDir, '--json', '--no-wait', source]);
  const { id } = JSON.parse(stdout) as { id: string };
  // ultrafast only to keep the bench short: the ladder's rates are VBV-capped ABR, so the bytes served are the
  // sizes the default preset gives (what encryption costs depends on the bytes and samples, not on the quality).
  const server = await startServer(dataDir, {
    SMOOTHCAST_ENCODE_PRESET: 'ultrafast',
    SMOOTHCAST_LIVE_ENABLED: 'false',
  });
  try {
    console.log('importing (encoding the 720p ladder)…');
    const asset = await readyAsset(server, id, 600_000);
    console.log(`encoded in ${fmt((Date.now() - t0) / 1000, 1)} s`);
    await measure(server, asset, work);
  } finally {
    await server.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

async function measure(server: ServerProcess, asset: AssetJson, work: string) {
  const api = async (path: string, method: string, body: unknown) => {
    const res = await fetch(server.url + path, {
      method,
      headers: { ...server.auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<unknown>;
  };
  const masterUrl = new URL(asset.playback.hls!, server.url);
  const segs: Seg[] = [];
  for (const s of await allSegments(masterUrl)) {
    segs.push({ ...s, clear: Buffer.from(await (await fetch(server.url + s.path)).arrayBuffer()) });
  }
  const bytes = (xs: readonly Seg[]) => xs.reduce((t, s) => t + s.clear.length, 0);
  const total = bytes(segs);
  const rids = [...new Set(segs.map((s) => s.rid))];
  for (const rid of rids) {
    const mine = segs.filter((s) => s.rid === rid).map((s) => s.clear.length);
    console.log(
      `  ${rid}: ${mine.length} segments, mean ${fmt(mine.reduce((a, b) => a + b, 0) / mine.length / 1024, 0)} KiB, largest ${fmt(Math.max(...mine) / 1024, 0)} KiB`,
    );
  }
  // The clear inits (what cenc/cbcs encryption reads each track's layout from), for the in-process encrypt cost.
  const infos = new Map<string, ReturnType<typeof trackInfo>>();
  for (const rid of rids) {
    const initPath = segs[0]!.path.replace(/\/[av]\d+\/\d+\.m4s.*$/, `/${rid}/init.mp4`);
    infos.set(rid, trackInfo(Buffer.from(await (await fetch(server.url + initPath)).arrayBuffer())));
  }
  // Warm: the first segments of every rendition, up to half the cache.
  const warm: Seg[] = [];
  for (let acc = 0, i = 0; i < segs.length && acc + segs[i]!.clear.length <= CACHE_BYTES / 2; i++) {
    acc += segs[i]!.clear.length;
    warm.push(segs[i]!);
  }
  const mib = (n: number) => `${fmt(n / 2 ** 20, 1)} MiB`;
  console.log(
    `${rids.length} renditions; warm set ${warm.length} segments, ${mib(bytes(warm))}; cold set ${segs.length} segments, ${mib(total)} (${fmt(total / CACHE_BYTES)} × the ${mib(CACHE_BYTES)} cache)`,
  );
  // Bytes that enter the cache between two requests of one segment: all but the ones in flight.
  const between = total - CONNECTIONS * (total / segs.length);
  console.log(
    `  between two requests of a segment, cold: ~${mib(between)} enter the cache (${fmt(between / CACHE_BYTES)} × it)`,
  );
  if (between < 1.25 * CACHE_BYTES) console.log('WARNING: too close to the cache size: cold requests may hit');

  // A segment's URL names its encryption (`3.m4s` clear, `3.aes.m4s`, `3.cenc.m4s`, `3.cbcs.m4s`).
  const TAG: Record<Mode, string> = { none: '', 'aes-128': '.aes', cenc: '.cenc', cbcs: '.cbcs' };
  const pathOf = (s: Seg, mode: Mode) => s.path.replace(/\.m4s$/, `${TAG[mode]}.m4s`);
  // Switches the asset's access, waits until the origin serves segments accordingly and checks that the HLS
  // playlists list the URLs this bench requests.
  const probe = segs.find((s) => s.rid === 'v0' && s.n === 2) ?? segs[0]!;
  const setAccess = async (encryption: Mode, playbackPolicy: 'public' | 'signed') => {
    await api(`/api/assets/${asset.id}`, 'PATCH', { encryption, playbackPolicy });
    await waitFor(
      `the origin to serve ${encryption}/${playbackPolicy}`,
      async () => {
        const res = await fetch(server.url + pathOf(probe, encryption));
        const body = Buffer.from(await res.arrayBuffer());
        if (playbackPolicy === 'signed') return res.status === 403 ? true : undefined;
        if (res.status !== 200) return undefined;
        const etag = res.headers.get('etag') ?? '';
        if (encryption === 'none') return body.equals(probe.clear) ? true : undefined;
        return etag.includes(`.${encryption}.`) && !body.equals(probe.clear) ? true : undefined;
      },
      5000,
    );
    if (playbackPolicy === 'signed') return;
    const listed = new Set((await allSegments(masterUrl)).map((s) => s.path));
    const missing = segs.find((s) => !listed.has(pathOf(s, encryption)));
    if (missing || listed.size !== segs.length) {
      throw new Error(
        `the ${encryption} playlists do not list ${missing ? pathOf(missing, encryption) : 'the same segments'}`,
      );
    }
  };

  // The crypto alone, in this process, on the real bytes of the warm set.
  console.log('\nencrypt cost per segment (encryptSegment in this process, on the bytes of the warm set, one core):');
  const key = randomBytes(16);
  const kid = randomBytes(16);
  const crypto: Record<
    string,
    { mbPerSecond: number; usPerSegment: number; perRendition: Record<string, { meanBytes: number; us: number }> }
  > = {};
  const encrypt: Record<Exclude<Mode, 'none'>, (s: Seg) => Buffer> = {
    'aes-128': (s) => aesSegment(s.clear, key, segmentIv(s.n)),
    cenc: (s) => cencSegment(s.clear, infos.get(s.rid)!, { scheme: 'cenc', kid, key, ivTag: ivTag(s.rid) }, s.n),
    cbcs: (s) => cencSegment(s.clear, infos.get(s.rid)!, { scheme: 'cbcs', kid, key, ivTag: ivTag(s.rid) }, s.n),
  };
  for (const [mode, fn] of Object.entries(encrypt)) {
    for (const s of warm) fn(s); // warm-up
    let passes = 0;
    const perRid = new Map<string, number>(rids.map((r) => [r, 0]));
    const start = performance.now();
    while (performance.now() - start < 1000 || passes < 2) {
      for (const s of warm) {
        const t = performance.now();
        fn(s);
        perRid.set(s.rid, perRid.get(s.rid)! + performance.now() - t);
      }
      passes++;
    }
    const ms = performance.now() - start;
    const count = (rid: string) => warm.filter((s) => s.rid === rid).length;
    const sizeOf = (rid: string) => bytes(warm.filter((s) => s.rid === rid)) / count(rid);
    crypto[mode] = {
      mbPerSecond: (passes * bytes(warm)) / MB / (ms / 1000),
      usPerSegment: (ms * 1000) / (passes * warm.length),
      perRendition: Object.fromEntries(
        rids.map((r) => [r, { meanBytes: sizeOf(r), us: (perRid.get(r)! * 1000) / (passes * count(r)) }]),
      ),
    };
    console.log(
      `  ${mode.padEnd(8)} ${fmt(crypto[mode].mbPerSecond, 0).padStart(6)} MB/s, ${fmt(crypto[mode].usPerSegment, 0)} µs per segment (mean ${fmt(bytes(warm) / warm.length / 1024, 0)} KiB); ${rids
        .map((r) => `${r} (${fmt(sizeOf(r) / 1024, 0)} KiB) ${fmt(crypto[mode]!.perRendition[r]!.us, 0)} µs`)
        .join(', ')}`,
    );
  }

  // Clear is measured first and again last in each regime; the reference is their mean (the two show the drift).
  const results: Record<'warm' | 'cold', Partial<Record<Mode | 'none (again)', WrkResult>>> = { warm: {}, cold: {} };
  const reference = (regime: 'warm' | 'cold') =>
    (results[regime].none!.bytesPerSecond + results[regime]['none (again)']!.bytesPerSecond) / 2;
  for (const [regime, set] of [
    ['warm', warm],
    ['cold', segs],
  ] as const) {
    console.log(`\n${regime}: ${set.length} segments round-robin, ${CONNECTIONS} connections, ${SECONDS} s each`);
    for (const mode of [...MODES, 'none (again)'] as const) {
      await setAccess(mode === 'none (again)' ? 'none' : mode, 'public');
      const paths = split(set, rids, (s) => pathOf(s, mode === 'none (again)' ? 'none' : mode));
      await wrk(server.url, paths, 1, work); // warm-up (and, warm, fills the cache)
      const r = await wrk(server.url, paths, SECONDS, work);
      results[regime][mode] = r;
      const alone = mode === 'none' || mode === 'none (again)' ? undefined : crypto[mode]!.mbPerSecond;
      // The origin encrypts on its one JavaScript thread: a regime in which every request encrypts cannot beat the
      // crypto alone; the warm one, served from the cache, should.
      const check =
        alone === undefined
          ? ''
          : regime === 'cold'
            ? r.bytesPerSecond / MB <= alone * 1.1
              ? `  (≤ encrypt alone, ${fmt(alone, 0)} MB/s: consistent with every request encrypting)`
              : `  (ABOVE encrypt alone, ${fmt(alone, 0)} MB/s: some requests hit the cache)`
            : r.bytesPerSecond / MB > alone
              ? `  (> encrypt alone, ${fmt(alone, 0)} MB/s: served from the cache)`
              : `  (≤ encrypt alone, ${fmt(alone, 0)} MB/s: the cache did not help?)`;
      console.log(
        `  ${mode.padEnd(12)} ${fmt(r.requestsPerSecond, 0).padStart(6)} req/s ${fmt(r.bytesPerSecond / MB, 0).padStart(6)} MB/s${check}`,
      );
    }
    const ref = reference(regime);
    console.log(`  reference: clear ${fmt(ref / MB, 0)} MB/s (mean of the two clear runs); ratios to it:`);
    for (const mode of MODES.slice(1)) {
      const ratio = results[regime][mode]!.bytesPerSecond / ref;
      console.log(
        `    ${mode.padEnd(8)} ${fmt(ratio)}× clear — target ≥ ${fmt(TARGET)}: ${ratio >= TARGET ? 'met' : 'NOT met'}`,
      );
    }
  }

  // Signed playback: the clear asset, public vs signed (its segment URLs then carry the token).
  console.log(`\nsigned playback (clear asset, warm set, ${CONNECTIONS} connections, ${SECONDS} s each):`);
  await setAccess('none', 'public');
  await wrk(server.url, split(warm, rids), 1, work);
  const pub = await wrk(server.url, split(warm, rids), SECONDS, work);
  await setAccess('none', 'signed');
  const { token, playback } = (await api(`/api/assets/${asset.id}/playback-tokens`, 'POST', {})) as {
    token: string;
    playback: { hls: string };
  };
  const signedSegs = await allSegments(new URL(playback.hls, server.url));
  const signedPaths = split(warm, rids, (w) => {
    const s = signedSegs.find((x) => x.rid === w.rid && x.n === w.n);
    if (!s?.path.includes(`token=${token}`)) throw new Error(`${w.path}: the signed playlist's URL has no token`);
    return s.path;
  });
  await wrk(server.url, signedPaths, 1, work);
  const signed = await wrk(server.url, signedPaths, SECONDS, work);
  const tokenRatio = signed.requestsPerSecond / pub.requestsPerSecond;
  const perRequestUs = (1 / signed.requestsPerSecond - 1 / pub.requestsPerSecond) * 1e6;
  console.log(
    `  public   ${fmt(pub.requestsPerSecond, 0).padStart(6)} req/s ${fmt(pub.bytesPerSecond / MB, 0).padStart(6)} MB/s`,
  );
  console.log(
    `  signed   ${fmt(signed.requestsPerSecond, 0).padStart(6)} req/s ${fmt(signed.bytesPerSecond / MB, 0).padStart(6)} MB/s  ${fmt(tokenRatio)}× public (≈ ${fmt(perRequestUs, 1)} µs more per request at saturation; ${token.length}-character token)`,
  );
  await setAccess('none', 'public');

  const verify = await verifierCost(work, asset.id);
  console.log(
    `  PlaybackVerifier in this process: ${fmt(verify.coldUs, 1)} µs per verify of a new token (signature check, ES256); the same token again from its LRU: ${fmt(verify.one.verifyUs, 2)} µs with ${verify.one.cached} token cached, ${fmt(verify.many.verifyUs, 2)} µs with ${verify.many.cached} (verifyCached ${fmt(verify.one.syncUs, 2)} / ${fmt(verify.many.syncUs, 2)} µs)`,
  );

  console.log(
    `\norigin peak RSS: ${fmt(server.peakRss() / MB, 0)} MB; load average now ${loadavg()
      .map((l) => fmt(l))
      .join(' ')}`,
  );
  const line = (regime: 'warm' | 'cold') => {
    const r = results[regime];
    return MODES.map((m) => {
      if (m === 'none') return `clear ${fmt(reference(regime) / MB, 0)} MB/s`;
      return `${m} ${fmt(r[m]!.bytesPerSecond / MB, 0)} MB/s (${fmt(r[m]!.bytesPerSecond / reference(regime))}×)`;
    }).join(' | ');
  };
  console.log(`\nsummary (target ≥ ${fmt(TARGET)}× clear):`);
  console.log(`  warm: ${line('warm')}`);
  console.log(`  cold: ${line('cold')}`);
  console.log(
    `  encrypt alone: ${Object.entries(crypto)
      .map(([m, c]) => `${m} ${fmt(c.mbPerSecond, 0)} MB/s (${fmt(c.usPerSegment, 0)} µs/segment)`)
      .join(' | ')}`,
  );
  console.log(
    `  token: public ${fmt(pub.requestsPerSecond, 0)} req/s | signed ${fmt(signed.requestsPerSecond, 0)} req/s (${fmt(tokenRatio)}×) | verify ${fmt(verify.coldUs, 1)} µs cold, ${fmt(verify.one.verifyUs, 2)} µs cached (1 token), ${fmt(verify.many.verifyUs, 2)} µs cached (${verify.many.cached} tokens)`,
  );
  writeFileSync(
    outFile('security'),
    `${JSON.stringify(
      {
        machine: machine(),
        connections: CONNECTIONS,
        seconds: SECONDS,
        sourceSeconds: SOURCE_SECONDS,
        cacheBytes: CACHE_BYTES,
        warmSet: { segments: warm.length, bytes: bytes(warm) },
        coldSet: { segments: segs.length, bytes: total },
        throughput: results,
        encryptAlone: crypto,
        token: { public: pub, signed, ratio: tokenRatio, ...verify },
        peakRss: server.peakRss(),
      },
      null,
      2,
    )}\n`,
  );
}

/**
 * µs per PlaybackVerifier.verify (the origin's call): a new token each time (a signature check, ES256), and one
 * token again (its LRU) with 1 and with 10 000 tokens cached (the default cap, what a server with that many viewers
 * holds); verifyCached, the synchronous fast path, beside it.
 */
async function verifierCost(work: string, sub: string) {
  const db = await openDatabase(join(work, 'tokens.sqlite'));
  try {
    const keys = new SqliteSigningKeys(db);
    const signer = new PlaybackSigner(keys, randomBytes(32));
    let checks = 0;
    const make = () => new PlaybackVerifier(() => keys.verificationKeys(), { onSignatureCheck: () => checks++ });
    const want = { sub, aud: 'manifest' as const, ip: '127.0.0.1' };
    const COLD = 10_000;
    const WARMUP = 200;
    const tokens: string[] = [];
    for (let i = 0; i < COLD + WARMUP; i++) {
      tokens.push((await signer.sign({ sub, aud: ['manifest', 'key'], expiresInSeconds: 3600, sid: `v${i}` })).token);
    }
    const cachedCost = async (verifier: PlaybackVerifier, token: string) => {
      const N = 100_000;
      const before = checks;
      let start = performance.now();
      for (let i = 0; i < N; i++) await verifier.verify(token, want);
      const verifyUs = ((performance.now() - start) * 1000) / N;
      start = performance.now();
      for (let i = 0; i < N; i++) verifier.verifyCached(token, want);
      const syncUs = ((performance.now() - start) * 1000) / N;
      if (checks !== before) throw new Error(`the cached verifies checked ${checks - before} signatures`);
      return { verifyUs, syncUs, cached: verifier.cached };
    };
    // One token cached (a fresh verifier, as for one viewer).
    const single = make();
    for (const t of tokens.slice(COLD, COLD + WARMUP)) await make().verify(t, want); // warm-up: key import, JIT
    await single.verify(tokens[COLD]!, want);
    const one = await cachedCost(single, tokens[COLD]!);
    // New tokens: each a signature check; they fill a verifier's LRU to its default cap.
    const full = make();
    await full.verify(tokens[COLD]!, want); // its key import
    checks = 0;
    const start = performance.now();
    for (const t of tokens.slice(0, COLD)) await full.verify(t, want);
    const coldUs = ((performance.now() - start) * 1000) / COLD;
    if (checks !== COLD) throw new Error(`${checks} signature checks for ${COLD} new tokens`);
    const many = await cachedCost(full, tokens[COLD - 1]!);
    return { coldUs, one, many };
  } finally {
    await db.close();
  }
}

await main();
