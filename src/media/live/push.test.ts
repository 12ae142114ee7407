// PushDemuxer against what ffmpeg 5.1 actually pushes: `-f ismv` (Smooth push: one moov with two tracks, a moof per
// track, tfxd and no tfdt, AAC priming as a negative time), `-movflags isml` (a live server manifest uuid box before
// the moov), DASH-IF CMAF ingest streams (one track each, H.264, HEVC and AAC) and a plain two-track fragmented MP4
// (one moof with two trafs over one mdat). ffmpeg writes to a pipe, as to its http output (both non-seekable: the
// bytes are the same as the chunked POST body, see docs in push.ts). Fed in random chunk sizes, every track's
// init + fragments must decode whole, with the source's frame count and time span; then damaged bodies and a seeded
// fuzz of the byte stream.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { pipedFixture, testSource } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { parseMoof } from '../bmff/fragment.ts';
import { indexBuffer } from '../bmff/index.ts';
import { parseMoov } from '../bmff/movie.ts';
import { box, concat, fullBox, init as initBox, prng, trak, u32 } from '../bmff/testing.ts';
import { demuxBody, PushDemuxer, type PushEvent, type PushFragment, type PushInit } from './push.ts';

const run = promisify(execFile);
const FUZZ_CASES = Number(process.env.SMOOTHCAST_FUZZ_CASES ?? 10_000);
const FUZZ_SEED = Number(process.env.SMOOTHCAST_FUZZ_SEED ?? 0x9054);
const CASE_LIMIT_MS = 200;

const SECONDS = 4;
const VIDEO = ['-c:v', 'libx264', '-preset', 'veryfast', '-g', '30', '-pix_fmt', 'yuv420p'];
const CMAF = ['-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof+cmaf'];
const SOURCE = testSource({ seconds: SECONDS, width: 160, height: 120 });

/** The bodies ffmpeg pushes (as files, written through a pipe). */
const fixtures = {
  // The brief's Smooth push command; veryfast has B-frames (composition offsets, a video delay).
  ismv: () => pipedFixture([...SOURCE, ...VIDEO, '-c:a', 'aac', '-f', 'ismv'], 'ismv'),
  isml: () =>
    pipedFixture([...SOURCE, ...VIDEO, '-c:a', 'aac', '-movflags', 'isml+frag_keyframe', '-f', 'ismv'], 'ismv'),
  cmafVideo: () => pipedFixture([...SOURCE, '-map', '0:v', ...VIDEO, ...CMAF], 'cmfv'),
  cmafAudio: () =>
    pipedFixture([...SOURCE, '-map', '1:a', '-c:a', 'aac', '-frag_duration', '1000000', ...CMAF], 'cmfa'),
  cmafHevc: () =>
    pipedFixture(
      [
        ...testSource({ seconds: 2, width: 160, height: 120, audio: false }),
        '-c:v',
        'libx265',
        '-preset',
        'ultrafast',
      ].concat(['-x265-params', 'log-level=error:keyint=30', '-tag:v', 'hvc1', ...CMAF]),
      'cmfv',
    ),
  // Without `cmaf`/separate_moof, ffmpeg puts both tracks in one moof over one mdat.
  multi: () =>
    pipedFixture(
      [...SOURCE, ...VIDEO, '-c:a', 'aac', '-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof'],
      'mp4',
    ),
  opus: () => pipedFixture([...SOURCE, '-map', '1:a', '-c:a', 'libopus', ...CMAF], 'mp4'),
  mp3: () => pipedFixture([...SOURCE, '-map', '1:a', '-c:a', 'libmp3lame', ...CMAF], 'mp4'),
};

type Name = keyof typeof fixtures;
const bodies = new Map<Name, Uint8Array>();
const body = (name: Name) => bodies.get(name)!;

/** Feeds `bytes` in random chunks of 1..maxChunk bytes. */
function demuxChunked(bytes: Uint8Array, random: () => number, maxChunk: number, d = new PushDemuxer()): PushEvent[] {
  const events: PushEvent[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(random() * maxChunk);
    events.push(...d.push(bytes.subarray(at, at + n)));
    at += n;
  }
  events.push(...d.end());
  return events;
}

/** Top-level box types of a body, in order (the box sequence the report gives). */
function topLevel(bytes: Uint8Array): string[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: string[] = [];
  for (let at = 0; at + 8 <= bytes.length; ) {
    let size = v.getUint32(at);
    if (size === 1) size = Number(v.getBigUint64(at + 8));
    out.push(String.fromCharCode(...bytes.subarray(at + 4, at + 8)));
    at += size;
  }
  return out;
}

/** Per track: the init then its fragments, as one file. */
function files(events: PushEvent[]): Map<number, { init: PushInit; fragments: PushFragment[]; bytes: Uint8Array }> {
  const out = new Map<number, { init: PushInit; fragments: PushFragment[]; bytes: Uint8Array }>();
  for (const e of events) {
    if (e.type === 'init') out.set(e.trackId, { init: e, fragments: [], bytes: new Uint8Array(0) });
    else out.get(e.trackId)!.fragments.push(e);
  }
  for (const t of out.values()) t.bytes = concat(t.init.init, ...t.fragments.map((f) => f.fragment));
  return out;
}

interface Probe {
  codec: string;
  frames: number;
  /** From the first packet's pts to the end of the last packet, in seconds. */
  span: number;
}

async function probe(file: string, stream: string): Promise<Probe> {
  const { stdout } = await run(
    'ffprobe',
    ['-v', 'error', '-count_frames', '-select_streams', stream, '-of', 'json'].concat([
      '-show_entries',
      'stream=codec_name,nb_read_frames:packet=pts_time,duration_time',
      file,
    ]),
    { maxBuffer: 64 << 20 },
  );
  const j = JSON.parse(stdout) as {
    streams: { codec_name: string; nb_read_frames: string }[];
    packets: { pts_time: string; duration_time: string }[];
  };
  const s = j.streams[0]!;
  let first = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;
  for (const p of j.packets) {
    first = Math.min(first, Number(p.pts_time));
    end = Math.max(end, Number(p.pts_time) + (Number(p.duration_time) || 0)); // N/A on a first AAC packet
  }
  return { codec: s.codec_name, frames: Number(s.nb_read_frames), span: end - first };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SmoothcastError) return err.code;
    throw err;
  }
  return 'ok';
}

describe('PushDemuxer: what ffmpeg 5.1 pushes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smoothcast-push-'));
  before(async () => {
    const names = Object.keys(fixtures) as Name[];
    const paths = await Promise.all(names.map((n) => fixtures[n]()));
    names.forEach((n, i) => {
      bodies.set(n, new Uint8Array(readFileSync(paths[i]!)));
    });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('knows the box sequences ffmpeg sends', () => {
    const ismv = topLevel(body('ismv'));
    assert.deepEqual(ismv.slice(0, 4), ['ftyp', 'moov', 'moof', 'mdat']);
    assert.equal(ismv.at(-1), 'mfra');
    assert.deepEqual(topLevel(body('isml')).slice(0, 4), ['ftyp', 'uuid', 'moov', 'moof']);
    assert.deepEqual(topLevel(body('cmafVideo')).slice(0, 3), ['ftyp', 'moov', 'moof']);
  });

  for (const name of ['ismv', 'isml', 'cmafVideo', 'cmafAudio', 'cmafHevc', 'multi'] as const) {
    it(`${name}: random chunks give the same per-track inits and fragments, which decode like the source`, async (t) => {
      const bytes = body(name);
      const whole = demuxBody(bytes);
      const random = prng(bytes.length);
      for (const maxChunk of [1, 7, 1000, 70_000]) {
        const chunked = demuxChunked(bytes, random, maxChunk);
        assert.equal(chunked.length, whole.length, `max chunk ${maxChunk}`);
        chunked.forEach((e, i) => {
          const w = whole[i]!;
          assert.deepEqual(
            e.type === 'init' ? e.init : e.fragment,
            w.type === 'init' ? w.init : w.fragment,
            `event ${i}, max chunk ${maxChunk}`,
          );
        });
      }
      const tracks = files(whole);
      const expected = name === 'ismv' || name === 'isml' || name === 'multi' ? 2 : 1;
      assert.equal(tracks.size, expected);
      const src = join(dir, `${name}.src`);
      writeFileSync(src, bytes);
      const kinds: string[] = [];
      for (const [id, tr] of tracks) {
        // A valid single-track init, and fragments the indexer reads as our own CMAF files.
        assert.equal(parseMoov(tr.init.init.subarray(boxEnd(tr.init.init, 0)), 8, 0).trackId, id);
        const { track, segments } = indexBuffer(tr.bytes);
        assert.equal(track.trackId, id);
        assert.equal(segments.length, tr.fragments.length);
        assert.deepEqual(
          segments.map((s) => s.start),
          tr.fragments.map((f) => f.start),
        );
        for (let i = 1; i < tr.fragments.length; i++) {
          const [a, b] = [tr.fragments[i - 1]!, tr.fragments[i]!];
          assert.equal(b.start, a.start + a.duration, `track ${id}: fragment ${i} follows the previous one`);
        }
        if (tr.init.kind === 'video') assert.ok(tr.fragments.every((f) => f.keyframe));
        const out = join(dir, `${name}-${id}.mp4`);
        writeFileSync(out, tr.bytes);
        await run('ffmpeg', ['-v', 'error', '-xerror', '-i', out, '-f', 'null', '-']);
        const ours = await probe(out, '0');
        const source = await probe(src, tr.init.kind === 'video' ? 'v:0' : 'a:0');
        assert.equal(ours.codec, source.codec);
        assert.equal(ours.frames, source.frames, `${name} track ${id}: frames`);
        assert.ok(Math.abs(ours.span - source.span) < 0.002, `${name} track ${id}: ${ours.span} s vs ${source.span} s`);
        kinds.push(
          `${tr.init.kind} ${tr.init.track.codec} ${ours.frames} frames ${ours.span.toFixed(3)} s in ${tr.fragments.length} fragments`,
        );
      }
      t.diagnostic(
        `${name}: ${bytes.length} bytes, [${topLevel(bytes).slice(0, 5).join(', ')}, …]: ${kinds.join('; ')}`,
      );
    });
  }

  it('ismv: AAC priming (a negative tfxd time) is shifted to 0; times otherwise come from tfxd', () => {
    const events = demuxBody(body('ismv'));
    const firsts = new Map<number, PushFragment>();
    for (const e of events) if (e.type === 'fragment' && !firsts.has(e.trackId)) firsts.set(e.trackId, e);
    assert.equal(firsts.get(1)!.start, 0);
    assert.equal(firsts.get(2)!.start, 0);
    const audio = events.filter((e): e is PushFragment => e.type === 'fragment' && e.trackId === 2);
    // ffmpeg's second audio tfxd is 9520181 (of 10 MHz) after a first one of -232200: shifted by 232200.
    assert.equal(audio[1]!.start, audio[0]!.duration);
  });

  it('multi-track moof: each traf becomes its own fragment, cut out of the shared mdat', () => {
    const events = demuxBody(body('multi'));
    const frags = events.filter((e): e is PushFragment => e.type === 'fragment');
    assert.ok(frags.length >= 8);
    for (const f of frags) {
      const moofSize = new DataView(f.fragment.buffer).getUint32(0);
      const parsed = parseMoof(f.fragment.subarray(0, moofSize), 8, 0, files(events).get(f.trackId)!.init.track, 1e6);
      assert.equal(parsed.dataStart, moofSize + 8);
      assert.equal(parsed.dataEnd, f.fragment.length);
    }
  });

  it('a repeated identical moov gives no second init; a known init takes fragments without a moov', () => {
    const bytes = body('cmafVideo');
    const events = demuxBody(bytes);
    const init = events[0] as PushInit;
    const initLen = boxEnd(bytes, 1);
    const firstFragmentEnd = boxEnd(bytes, 3);
    const again = demuxBody(
      concat(bytes.subarray(0, firstFragmentEnd), bytes.subarray(0, initLen), bytes.subarray(firstFragmentEnd)),
    );
    assert.equal(again.filter((e) => e.type === 'init').length, 1);
    assert.equal(again.length, events.length);
    // DASH-IF ingest may POST each segment on its own: the init comes from an earlier request.
    const segments = bytes.subarray(initLen);
    assert.equal(
      code(() => demuxBody(segments)),
      'LIVE_INIT_MISSING',
    );
    const later = demuxBody(segments, { tracks: [init] });
    assert.deepEqual(
      later.map((e) => (e as PushFragment).fragment),
      events.slice(1).map((e) => (e as PushFragment).fragment),
    );
  });

  it('refuses what it does not take, with stable codes', () => {
    const cmaf = body('cmafVideo');
    const initLen = boxEnd(cmaf, 1);
    assert.equal(
      code(() => demuxBody(body('opus'))),
      'LIVE_MEDIA_UNSUPPORTED',
    );
    assert.equal(
      code(() => demuxBody(body('mp3'))),
      'LIVE_MEDIA_UNSUPPORTED',
    );
    const random = prng(7);
    const noise = Uint8Array.from({ length: 5000 }, () => Math.floor(random() * 256));
    assert.equal(
      code(() => demuxBody(noise)),
      'LIVE_MEDIA_UNSUPPORTED',
    );
    assert.equal(
      code(() => demuxBody(new TextEncoder().encode('hello, this is not an MP4 file at all'))),
      'LIVE_MEDIA_UNSUPPORTED',
    );
    // Encrypted: the sample entry renamed encv.
    const enc = cmaf.slice();
    const at = Buffer.from(enc).indexOf('avc1', 0, 'latin1');
    enc.set(new TextEncoder().encode('encv'), at);
    assert.equal(
      code(() => demuxBody(enc)),
      'LIVE_MEDIA_UNSUPPORTED',
    );
    // 17 tracks.
    const traks = Array.from({ length: 16 }, (_, i) => trak({ trackId: i + 2 }));
    assert.equal(
      code(() => demuxBody(initBox({ extra: traks }))),
      'LIVE_MEDIA_UNSUPPORTED',
    );
    assert.equal(
      code(() => demuxBody(initBox({ extra: traks.slice(1) }))),
      'BMFF_MALFORMED',
    ); // 16: no trex for 2
    // No mvex: not fragmented.
    assert.equal(
      code(() => demuxBody(initBox({ mvex: false }))),
      'LIVE_MEDIA_UNSUPPORTED',
    );
    // Box limits: a moov over the limit, and a header claiming 1 GiB (refused before any of it is held).
    assert.equal(
      code(() => demuxBody(cmaf, { limits: { maxBoxSize: 512 } })),
      'PAYLOAD_TOO_LARGE',
    );
    const huge = concat(cmaf.subarray(0, boxEnd(cmaf, 0)), u32(2 ** 30), [0x6d, 0x6f, 0x6f, 0x76]);
    assert.equal(
      code(() => new PushDemuxer().push(huge)),
      'PAYLOAD_TOO_LARGE',
    );
    // A box of size 0 cannot be streamed.
    assert.equal(
      code(() => demuxBody(concat(u32(0), [0x66, 0x72, 0x65, 0x65]))),
      'LIVE_MEDIA_UNSUPPORTED',
    );
    // A moof followed by something other than its mdat; a fragment of an unknown track.
    const moofEnd = boxEnd(cmaf, 2);
    const bad = concat(cmaf.subarray(0, moofEnd), box('free'), cmaf.subarray(moofEnd));
    assert.equal(
      code(() => demuxBody(bad)),
      'BMFF_MALFORMED',
    );
    const audioInit = body('cmafAudio').subarray(0, boxEnd(body('cmafAudio'), 1));
    const renumbered = concat(audioInit, cmaf.subarray(initLen)).slice();
    const tfhd = Buffer.from(renumbered).indexOf('tfhd', audioInit.length, 'latin1');
    new DataView(renumbered.buffer).setUint32(tfhd + 8, 9);
    assert.equal(
      code(() => demuxBody(renumbered)),
      'LIVE_INIT_MISSING',
    );
    // A pssh in the moov.
    const moov = cmaf.subarray(boxEnd(cmaf, 0), initLen);
    const withPssh = concat(
      cmaf.subarray(0, boxEnd(cmaf, 0)),
      u32(moov.length + 32),
      moov.subarray(4),
      fullBox('pssh', 0, 0, new Uint8Array(20)),
    );
    assert.equal(
      code(() => demuxBody(withPssh)),
      'LIVE_MEDIA_UNSUPPORTED',
    );
  });

  it('a body cut short delivers what was whole, then fails at end(); the first error sticks', () => {
    const bytes = body('cmafVideo');
    const cut = bytes.subarray(0, boxEnd(bytes, 4) + 100); // ftyp moov moof mdat + part of the next moof
    const d = new PushDemuxer();
    const events = d.push(cut);
    assert.deepEqual(
      events.map((e) => e.type),
      ['init', 'fragment'],
    );
    assert.throws(() => d.end(), { code: 'BMFF_MALFORMED' });
    assert.throws(() => d.push(new Uint8Array(1)), { code: 'BMFF_MALFORMED' });
    // Events before damage in the same chunk come back; the error follows on the next call.
    const damaged = concat(bytes.subarray(0, boxEnd(bytes, 3)), u32(3), [0x6d, 0x6f, 0x6f, 0x66]);
    const d2 = new PushDemuxer();
    assert.equal(d2.push(damaged).length, 2);
    assert.equal(d2.error?.code, 'BMFF_MALFORMED');
    assert.throws(() => d2.end(), { code: 'BMFF_MALFORMED' });
  });
});

/** The offset one past the n-th top-level box. */
function boxEnd(bytes: Uint8Array, n: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  for (let i = 0; i <= n; i++) at += v.getUint32(at);
  return at;
}

interface Span {
  start: number;
  end: number;
}

const CONTAINERS: Record<string, number> = {
  moov: 8,
  trak: 8,
  mdia: 8,
  minf: 8,
  stbl: 8,
  mvex: 8,
  moof: 8,
  traf: 8,
  stsd: 16,
  avc1: 86,
  mp4a: 36,
};

function walk(file: Uint8Array, start: number, end: number, out: Span[]): Span[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  for (let pos = start; pos + 8 <= end; ) {
    const size = view.getUint32(pos);
    if (size < 8 || pos + size > end) break;
    const type = String.fromCharCode(...file.subarray(pos + 4, pos + 8));
    out.push({ start: pos, end: pos + size });
    const inner = CONTAINERS[type];
    if (inner !== undefined) walk(file, pos + inner, pos + size, out);
    pos += size;
  }
  return out;
}

describe('PushDemuxer fuzz', () => {
  it(`${FUZZ_CASES} mutated bodies, fed in random chunks, end in events or a stable error within ${CASE_LIMIT_MS} ms`, async (t) => {
    // Small seeds keep a case cheap: 1 s of each kind.
    const small = testSource({ seconds: 1, width: 96, height: 64 });
    const seeds = await Promise.all([
      pipedFixture([...small, ...VIDEO, '-c:a', 'aac', '-f', 'ismv'], 'ismv'),
      pipedFixture(
        [...small, ...VIDEO, '-c:a', 'aac', '-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof'],
        'mp4',
      ),
      pipedFixture([...small, '-map', '0:v', ...VIDEO, ...CMAF], 'cmfv'),
    ]).then((ps) =>
      ps.map((p) => {
        const bytes = new Uint8Array(readFileSync(p));
        const boxes = walk(bytes, 0, bytes.length, []);
        const structural: number[] = [];
        for (const b of boxes) {
          const isMdat = String.fromCharCode(...bytes.subarray(b.start + 4, b.start + 8)) === 'mdat';
          for (let i = b.start; i < (isMdat ? Math.min(b.end, b.start + 16) : b.end); i++) structural.push(i);
        }
        return { bytes, boxes, structural };
      }),
    );
    const random = prng(FUZZ_SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const allowed = new Set(['LIVE_MEDIA_UNSUPPORTED', 'LIVE_INIT_MISSING', 'BMFF_MALFORMED', 'PAYLOAD_TOO_LARGE']);
    const outcomes: Record<string, number> = {};
    let slowest = 0;
    for (let n = 0; n < FUZZ_CASES; n++) {
      const s = pick(seeds);
      let f: Uint8Array = s.bytes.slice();
      const steps: string[] = [];
      for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
        const at = random() < 0.85 ? pick(s.structural) : Math.floor(random() * f.length);
        const b = pick(s.boxes);
        const m = Math.floor(random() * 6);
        const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
        if (m === 0 && at < f.length) {
          f[at]! ^= 1 << Math.floor(random() * 8);
          steps.push(`flip at ${at}`);
        } else if (m === 1 && at + 4 <= f.length) {
          const value = pick([0, 1, 7, 8, 0x7fffffff, 0x80000000, 0xffffffff, Math.floor(random() * 2 ** 32)]);
          v.setUint32(at & ~3, value >>> 0);
          steps.push(`u32 at ${at & ~3} := ${value}`);
        } else if (m === 2 && b.end <= f.length) {
          const size = b.end - b.start;
          const value = pick([0, 1, 8, 9, size - 1, size + 1, size >> 1, 0xffffffff]);
          v.setUint32(b.start, value >>> 0);
          steps.push(`size of box at ${b.start} := ${value}`);
        } else if (m === 3) {
          f = f.subarray(0, at);
          steps.push(`truncate at ${at}`);
        } else if (m === 4 && b.end <= f.length) {
          f = concat(f.subarray(0, b.end), f.subarray(b.start, b.end), f.subarray(b.end));
          steps.push(`duplicate box at ${b.start}`);
        } else if (b.end <= f.length) {
          f = concat(f.subarray(0, b.start), f.subarray(b.end));
          steps.push(`delete box at ${b.start}`);
        }
      }
      const context = `case ${n} (seed ${seeds.indexOf(s)}): ${steps.join('; ')}`;
      const t0 = performance.now();
      let outcome = 'ok';
      try {
        const events = demuxChunked(f, random, pick([1, 50, 4096, 1 << 20]));
        for (const e of events) {
          if (e.type === 'init') assert.equal(parseMoov(e.init.subarray(boxEnd(e.init, 0)), 8, 0).trackId, e.trackId);
        }
      } catch (err) {
        if (!(err instanceof SmoothcastError) || !allowed.has(err.code)) {
          assert.fail(`${context}: threw ${err instanceof Error ? err.stack : String(err)}`);
        }
        outcome = err.code;
      }
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      assert.ok(ms < CASE_LIMIT_MS, `${context}: took ${ms.toFixed(1)} ms`);
    }
    assert.ok(
      (outcomes.ok ?? 0) > FUZZ_CASES / 20 && (outcomes.BMFF_MALFORMED ?? 0) > FUZZ_CASES / 20,
      JSON.stringify(outcomes),
    );
    t.diagnostic(`seed ${FUZZ_SEED}: ${JSON.stringify(outcomes)}, slowest ${slowest.toFixed(1)} ms`);
  });
});
