// Mutated and truncated real segments and init segments: every trackInfo / encryptInit / encryptSegment call must end
// in a result or in SmoothcastError('ENCRYPTION_UNSUPPORTED'), quickly (never a RangeError, a hang or a runaway
// allocation), and whatever is accepted must decrypt back to the (mutated) clear samples with the reference decryptor
// of cenc-testing.ts. Deterministic (seeded); a failure prints the case number and the mutations that made it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { ffmpegFixture } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { indexBuffer } from '../bmff/index.ts';
import { concat, prng } from '../bmff/testing.ts';
import { type CencParams, type CencScheme, encryptInit, encryptSegment, type TrackInfo, trackInfo } from './cenc.ts';
import { decryptSamples, readProtection, sampleRanges } from './cenc-testing.ts';
import { psshBox, SYSTEM_IDS } from './pssh.ts';

// SMOOTHCAST_FUZZ_CASES / SMOOTHCAST_FUZZ_SEED widen a run by hand; the defaults keep this file at a few seconds.
const CASES = Number(process.env.SMOOTHCAST_FUZZ_CASES ?? 10_000);
const SEED = Number(process.env.SMOOTHCAST_FUZZ_SEED ?? 0xc3e7c);
const INIT_CASES = Math.floor(CASES / 3);
const CASE_LIMIT_MS = 250;
/** Accepted cases checked against the reference decryptor (it is slower than the code under test). */
const CHECK_EVERY = 3;

const KEY = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const KID = Buffer.from('ffeeddccbbaa99887766554433221100', 'hex');
const MOVFLAGS = '+frag_keyframe+empty_moov+default_base_moof';

const CONTAINERS: Record<string, number> = { moov: 8, trak: 8, mdia: 8, minf: 8, stbl: 8, mvex: 8, moof: 8, traf: 8 };
CONTAINERS.stsd = 16;
CONTAINERS.avc1 = 86;
CONTAINERS.mp4a = 36;

interface Seed {
  name: string;
  bytes: Uint8Array;
  info: TrackInfo;
  init: Uint8Array;
  /** Box header offsets, bytes outside mdat payloads, and NAL length prefixes: where mutations matter most. */
  structural: number[];
  boxes: { start: number; end: number }[];
}

function walk(file: Uint8Array, start: number, end: number, out: { start: number; end: number }[]) {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  for (let pos = start; pos + 8 <= end; ) {
    let size = view.getUint32(pos);
    const type = String.fromCharCode(...file.subarray(pos + 4, pos + 8));
    if (size === 1) size = Number(view.getBigUint64(pos + 8));
    if (size === 0) size = end - pos;
    out.push({ start: pos, end: pos + size });
    const inner = CONTAINERS[type];
    if (inner !== undefined) walk(file, pos + inner, pos + size, out);
    pos += size;
  }
  return out;
}

function seedOf(name: string, bytes: Uint8Array, init: Uint8Array, info: TrackInfo): Seed {
  const boxes = walk(bytes, 0, bytes.length, []);
  const structural = new Set<number>();
  for (const b of boxes) {
    const isMdat = String.fromCharCode(...bytes.subarray(b.start + 4, b.start + 8)) === 'mdat';
    for (let i = b.start; i < (isMdat ? Math.min(b.end, b.start + 16) : b.end); i++) structural.add(i);
  }
  if (info.kind === 'video' && bytes !== init) {
    // The NAL length prefixes (and NAL header bytes) of every sample.
    for (const s of sampleRanges(bytes, info.defaultSampleSize)) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let p = s.start; p + 4 <= s.start + s.size; ) {
        for (let i = 0; i < 5; i++) structural.add(p + i);
        p += 4 + view.getUint32(p);
      }
    }
  }
  return { name, bytes, info, init, structural: [...structural], boxes };
}

type Mutation = (f: Uint8Array, s: Seed, random: () => number) => [Uint8Array, string];

const pickOf = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
const where = (s: Seed, random: () => number, size: number) =>
  random() < 0.85 ? pickOf(random, s.structural) : Math.floor(random() * size);
const putU32 = (f: Uint8Array, at: number, v: number) => {
  if (at >= 0 && at + 4 <= f.length) new DataView(f.buffer, f.byteOffset).setUint32(at, v >>> 0);
};

const mutations: Mutation[] = [
  (f, s, random) => {
    const at = where(s, random, f.length);
    const bit = Math.floor(random() * 8);
    f[at] = (f[at] ?? 0) ^ (1 << bit);
    return [f, `flip bit ${bit} at ${at}`];
  },
  (f, s, random) => {
    const at = where(s, random, f.length);
    const n = 1 + Math.floor(random() * 4);
    const v = pickOf(random, [0x00, 0xff, -1]);
    for (let i = at; i < Math.min(f.length, at + n); i++) f[i] = v < 0 ? Math.floor(random() * 256) : v;
    return [f, `overwrite ${n} bytes at ${at} with ${v}`];
  },
  (f, s, random) => {
    const b = pickOf(random, s.boxes);
    const size = b.end - b.start;
    const v = pickOf(random, [0, 1, 7, 8, 9, size - 1, size + 1, size + 16, size >> 1, 0x7fffffff, 0xffffffff, -1]);
    const value = v < 0 ? Math.floor(random() * 2 ** 32) : v;
    putU32(f, b.start, value);
    return [f, `size of box at ${b.start} := ${value}`];
  },
  (f, s, random) => {
    const at = where(s, random, f.length);
    const value = pickOf(random, [0, 1, 2, 16, 0x7fffffff, 0x80000000, 0xffffffff, Math.floor(random() * 2 ** 32)]);
    putU32(f, at, value);
    return [f, `u32 at ${at} := ${value}`];
  },
  (f, s, random) => {
    const at = where(s, random, f.length);
    return [f.subarray(0, at), `truncate at ${at}`];
  },
  (f, s, random) => {
    const b = pickOf(random, s.boxes);
    const end = Math.min(b.end, f.length);
    if (b.start >= end) return [f, 'nothing'];
    return [concat(f.subarray(0, b.start), f.subarray(end)), `remove box at ${b.start}`];
  },
  (f, s, random) => {
    const b = pickOf(random, s.boxes);
    const end = Math.min(b.end, f.length);
    if (b.start >= end) return [f, 'nothing'];
    return [concat(f.subarray(0, end), f.subarray(b.start, end), f.subarray(end)), `duplicate box at ${b.start}`];
  },
];

function mutate(s: Seed, random: () => number): [Uint8Array, string[]] {
  let f: Uint8Array = new Uint8Array(s.bytes); // a copy (Buffer.slice would be a view of the seed)
  const steps: string[] = [];
  const n = 1 + Math.floor(random() * 3);
  for (let i = 0; i < n; i++) {
    const [g, what] = pickOf(random, mutations)(f, s, random);
    f = g;
    steps.push(what);
  }
  return [f, steps];
}

function expectClean(work: () => void, what: string): boolean {
  try {
    work();
    return true;
  } catch (err) {
    if (!(err instanceof SmoothcastError) || err.code !== 'ENCRYPTION_UNSUPPORTED') {
      assert.fail(`${what}: ${err instanceof SmoothcastError ? `${err.code} ${err.message}` : String(err)}`);
    }
    return false;
  }
}

let segments: Seed[] = [];
let inits: Seed[] = [];

before(async () => {
  const [v, a] = await Promise.all([
    ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=2', '-c:v', 'libx264', '-preset', 'veryfast'],
        ...['-pix_fmt', 'yuv420p', '-g', '25', '-slices', '2', '-frag_duration', '500000'],
        ...['-movflags', `${MOVFLAGS}+cmaf`, '-f', 'mp4'],
      ],
      'mp4',
    ),
    ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'sine=frequency=300:sample_rate=48000:duration=2', '-c:a', 'aac'],
        ...['-frag_duration', '500000', '-movflags', MOVFLAGS, '-f', 'mp4'],
      ],
      'mp4',
    ),
  ]);
  for (const [name, file] of [
    ['video', v],
    ['audio', a],
  ] as const) {
    const bytes = new Uint8Array(readFileSync(file));
    const { track, segments: index } = indexBuffer(bytes);
    const init = bytes.subarray(0, track.initSize);
    const info = trackInfo(init);
    inits.push(seedOf(`${name} init`, init, init, info));
    const one = index[1]!;
    const two = index.slice(2, 4);
    segments.push(seedOf(`${name} segment`, bytes.subarray(one.offset, one.offset + one.size), init, info));
    const from = two[0]!.offset;
    const to = two[1]!.offset + two[1]!.size;
    segments.push(seedOf(`${name} 2-part segment`, bytes.subarray(from, to), init, info));
  }
  segments = segments.filter((s) => s.bytes.length > 0);
  inits = inits.filter((s) => s.bytes.length > 0);
});

describe('CENC fuzz: mutated segments and init segments', () => {
  it(`${CASES} mutated segments: a result that decrypts back, or ENCRYPTION_UNSUPPORTED, each quickly`, (t) => {
    const random = prng(SEED);
    let accepted = 0;
    let checked = 0;
    let slowest = 0;
    let slowestCase = '';
    for (let n = 0; n < CASES; n++) {
      const s = pickOf(random, segments);
      const [bytes, steps] = mutate(s, random);
      const scheme: CencScheme = random() < 0.5 ? 'cenc' : 'cbcs';
      const p: CencParams = { scheme, kid: KID, key: KEY, ivTag: n & 0xff };
      const what = `case ${n} (${s.name}, ${scheme}, seed ${SEED}): ${steps.join('; ')}`;
      let out: Buffer | undefined;
      const t0 = performance.now();
      const ok = expectClean(() => {
        out = encryptSegment(bytes, s.info, p, n);
      }, what);
      const ms = performance.now() - t0;
      if (ms > slowest) {
        slowest = ms;
        slowestCase = `${n}: ${steps.join('; ')}`;
      }
      assert.ok(ms < CASE_LIMIT_MS, `${what}: took ${ms.toFixed(0)} ms`);
      if (!ok || !out) continue;
      accepted++;
      if (accepted % CHECK_EVERY !== 0) continue;
      // Whatever was accepted is encrypted reversibly, sample for sample.
      try {
        const prot = readProtection(encryptInit(s.init, p, []));
        const size = s.info.defaultSampleSize;
        const clear = sampleRanges(bytes, size).map((r) => bytes.subarray(r.start, r.start + r.size));
        const back = decryptSamples(out, prot, KEY, size);
        assert.equal(back.length, clear.length);
        for (let i = 0; i < back.length; i++) assert.ok(back[i]!.equals(clear[i]!), `sample ${i} differs`);
      } catch (err) {
        assert.fail(`${what}: accepted, but ${String(err)}`);
      }
      checked++;
    }
    t.diagnostic(
      `${accepted} of ${CASES} accepted, ${checked} decrypted back; slowest case ${slowest.toFixed(1)} ms (${slowestCase})`,
    );
    assert.ok(accepted > CASES / 25 && accepted < CASES, 'the mutations reach both outcomes');
  });

  it(`${INIT_CASES} mutated init segments: trackInfo and encryptInit give a result or ENCRYPTION_UNSUPPORTED`, (t) => {
    const random = prng(SEED + 1);
    const pssh = [psshBox(SYSTEM_IDS.common, [KID])];
    let accepted = 0;
    for (let n = 0; n < INIT_CASES; n++) {
      const s = pickOf(random, inits);
      const [bytes, steps] = mutate(s, random);
      const p: CencParams = { scheme: random() < 0.5 ? 'cenc' : 'cbcs', kid: KID, key: KEY, ivTag: 1 };
      const what = `init case ${n} (${s.name}, seed ${SEED + 1}): ${steps.join('; ')}`;
      const t0 = performance.now();
      let info: TrackInfo | undefined;
      let enc: Buffer | undefined;
      const ok =
        expectClean(() => {
          info = trackInfo(bytes);
        }, what) &&
        expectClean(() => {
          enc = encryptInit(bytes, p, pssh);
        }, what);
      assert.ok(performance.now() - t0 < CASE_LIMIT_MS, `${what}: too slow`);
      if (!ok || !info || !enc) continue;
      accepted++;
      // An accepted init is still one the encrypted-init reader understands, with the scheme asked for.
      try {
        const prot = readProtection(enc);
        assert.equal(prot.scheme, p.scheme);
        assert.equal(prot.entryType, info.kind === 'video' ? 'encv' : 'enca');
        assert.deepEqual(prot.pssh, pssh);
      } catch (err) {
        assert.fail(`${what}: accepted, but ${String(err)}`);
      }
    }
    t.diagnostic(`${accepted} of ${INIT_CASES} accepted`);
    assert.ok(accepted > 0 && accepted < INIT_CASES);
  });
});
