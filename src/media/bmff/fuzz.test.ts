// Mutated and truncated CMAF files: every parse must end in success or a BMFF_* SmoothcastError, quickly, whatever
// the bytes say. Deterministic (seeded); a failure prints the case number and the mutations that made it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { cmafFixture } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import {
  codecStringAvc,
  codecStringHevc,
  codecStringMp4a,
  FragmentIndexer,
  indexBuffer,
  parseAudioSpecificConfig,
  summarizeIndex,
} from './index.ts';
import { ascii, box, concat, fragment, fullBox, init, prng, u32 } from './testing.ts';

// SMOOTHCAST_FUZZ_CASES / SMOOTHCAST_FUZZ_SEED widen a run by hand; the defaults keep `npm test` at about 2 s.
const CASES = Number(process.env.SMOOTHCAST_FUZZ_CASES ?? 20_000);
const SEED = Number(process.env.SMOOTHCAST_FUZZ_SEED ?? 0x5eed);
const CASE_LIMIT_MS = 200;

/** Bytes from a box's start to its first child, for the boxes the walk descends into. */
const CONTAINERS: Record<string, number> = {
  moov: 8,
  trak: 8,
  mdia: 8,
  minf: 8,
  dinf: 8,
  stbl: 8,
  mvex: 8,
  edts: 8,
  moof: 8,
  traf: 8,
  mfra: 8,
  stsd: 16,
  avc1: 86,
  hvc1: 86,
  mp4a: 36,
};

interface Span {
  start: number;
  end: number;
}

/** Every box of a well-formed seed (size 0 only at top level), depth first. */
function walk(file: Uint8Array, start: number, end: number, out: Span[]): Span[] {
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

interface Seed {
  bytes: Uint8Array;
  boxes: Span[];
  /** Offsets of box headers and of every byte outside mdat payloads: where mutations matter. */
  structural: number[];
}

function seed(bytes: Uint8Array): Seed {
  const boxes = walk(bytes, 0, bytes.length, []);
  const structural: number[] = [];
  for (const b of boxes) {
    const isMdat = String.fromCharCode(...bytes.subarray(b.start + 4, b.start + 8)) === 'mdat';
    const last = isMdat ? Math.min(b.end, b.start + 16) : b.end;
    for (let i = b.start; i < last; i++) structural.push(i);
  }
  return { bytes, boxes, structural: [...new Set(structural)] };
}

function synthetic(): Uint8Array {
  const SYNC = 0x02000000;
  const NON_SYNC = 0x01010000;
  const samples = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ duration: 1000, size: 20, flags: i ? NON_SYNC : SYNC, cto: i % 3 }));
  return concat(
    init({ trex: { duration: 1000, size: 10, flags: NON_SYNC } }),
    fullBox('sidx', 0, 0, u32(1), u32(90000), u32(0), u32(0), u32(0)),
    box('styp', ascii('msdh'), u32(0)),
    fragment({ tfdt: 0, samples: samples(5), mdat: 'large', trunVersion: 1 }),
    box('free', [0, 0, 0, 0]),
    fragment({ tfdt: 5000, samples: [{ size: 10 }, { size: 10 }], tfhd: { duration: 500, flags: SYNC } }),
    fragment({ tfdt: 6000, samples: samples(3), firstSampleFlags: SYNC, mdat: 'zero' }),
  );
}

type Mutation = (file: Uint8Array, s: Seed, random: () => number, others: Seed[]) => [Uint8Array, string];

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
    const v = pickOf(random, [0, 1, 4, 7, 8, 9, size - 1, size + 1, size + 8, size >> 1, 0x7fffffff, 0xffffffff, -1]);
    const value = v < 0 ? Math.floor(random() * 2 ** 32) : v;
    putU32(f, b.start, value);
    return [f, `size of box at ${b.start} := ${value}`];
  },
  (f, s, random) => {
    const at = where(s, random, f.length) & ~3;
    const value = pickOf(random, [0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, Math.floor(random() * 2 ** 32)]);
    putU32(f, at, value);
    return [f, `u32 at ${at} := ${value}`];
  },
  (f, s, random) => {
    const at = where(s, random, f.length);
    return [f.subarray(0, at), `truncate at ${at}`];
  },
  (f, s, random) => {
    const b = pickOf(random, s.boxes);
    return [concat(f.subarray(0, b.end), f.subarray(b.start, b.end), f.subarray(b.end)), `duplicate box at ${b.start}`];
  },
  (f, s, random) => {
    const b = pickOf(random, s.boxes);
    return [concat(f.subarray(0, b.start), f.subarray(b.end)), `delete box at ${b.start}`];
  },
  (f, s, random, others) => {
    const donor = pickOf(random, others);
    const d = pickOf(random, donor.boxes);
    const b = pickOf(random, s.boxes);
    const replace = random() < 0.5;
    const spliced = concat(
      f.subarray(0, b.start),
      donor.bytes.subarray(d.start, d.end),
      f.subarray(replace ? b.end : b.start),
    );
    return [spliced, `${replace ? 'replace' : 'insert before'} box at ${b.start} with donor box at ${d.start}`];
  },
];

function isBmffError(err: unknown): boolean {
  return err instanceof SmoothcastError && err.code.startsWith('BMFF_');
}

/** The incremental path over the same bytes, revealed in a few random steps. */
function incrementally(file: Uint8Array, random: () => number): void {
  const ix = new FragmentIndexer();
  let size = 0;
  let rounds = 0;
  while (size < file.length) {
    size = Math.min(file.length, size + 1 + Math.floor(random() * (file.length / 3)));
    for (let r = ix.next(size); r; r = ix.next(size)) {
      assert.ok(++rounds < 10_000, 'the indexer keeps asking');
      assert.ok(r.offset >= 0 && r.length > 0 && r.offset + r.length <= size, `bad request ${r.offset}+${r.length}`);
      ix.push(r.offset, file.subarray(r.offset, r.offset + r.length));
    }
  }
}

describe('fuzz', () => {
  const seeds: Seed[] = [];
  before(async () => {
    seeds.push(seed(new Uint8Array(readFileSync(await cmafFixture('video')))));
    seeds.push(seed(new Uint8Array(readFileSync(await cmafFixture('audio')))));
    seeds.push(seed(synthetic()));
  });

  it('the seeds themselves index cleanly', () => {
    for (const s of seeds) assert.ok(indexBuffer(s.bytes).segments.length >= 3);
  });

  it(`${CASES} mutated files end in a result or a BMFF_* error, each within ${CASE_LIMIT_MS} ms`, (t) => {
    const random = prng(SEED);
    const outcomes = { ok: 0, BMFF_MALFORMED: 0, BMFF_UNSUPPORTED: 0 };
    let slowest = 0;
    for (let n = 0; n < CASES; n++) {
      const s = pickOf(random, seeds);
      let file: Uint8Array = s.bytes.slice();
      const steps: string[] = [];
      const count = 1 + Math.floor(random() * 3);
      for (let i = 0; i < count; i++) {
        const [next, what] = pickOf(random, mutations)(file, s, random, seeds);
        file = next;
        steps.push(what);
      }
      const context = `case ${n} (seed ${seeds.indexOf(s)}): ${steps.join('; ')}`;
      const t0 = performance.now();
      try {
        const { track, segments } = indexBuffer(file);
        summarizeIndex(track, segments);
        for (const g of segments) assert.ok(g.offset >= 0 && g.offset + g.size <= file.length, context);
        outcomes.ok++;
      } catch (err) {
        if (!isBmffError(err)) assert.fail(`${context}: threw ${err instanceof Error ? err.stack : String(err)}`);
        outcomes[(err as SmoothcastError).code as 'BMFF_MALFORMED']++;
      }
      if (n % 8 === 0) {
        try {
          incrementally(file, random);
        } catch (err) {
          if (!isBmffError(err))
            assert.fail(`${context} (incremental): threw ${err instanceof Error ? err.stack : err}`);
        }
      }
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      assert.ok(ms < CASE_LIMIT_MS, `${context}: took ${ms.toFixed(1)} ms`);
    }
    // Each outcome must actually occur, or the mutations are not reaching the parser.
    assert.ok(outcomes.ok > CASES / 20 && outcomes.BMFF_MALFORMED > CASES / 20, JSON.stringify(outcomes));
    assert.ok(outcomes.BMFF_UNSUPPORTED > 0, JSON.stringify(outcomes));
    t.diagnostic(`seed ${SEED}: ${JSON.stringify(outcomes)}, slowest case ${slowest.toFixed(1)} ms`);
  });

  it('codec configuration parsers take random bytes', () => {
    const random = prng(SEED + 1);
    const parsers = [
      (b: Uint8Array) => codecStringAvc(b),
      (b: Uint8Array) => codecStringHevc(b, 'hvc1'),
      (b: Uint8Array) => codecStringMp4a(b),
      (b: Uint8Array) => parseAudioSpecificConfig(b),
    ];
    for (let n = 0; n < 20_000; n++) {
      const bytes = Uint8Array.from({ length: Math.floor(random() * 40) }, () => Math.floor(random() * 256));
      // Plausible starts reach deeper: configurationVersion 1, an esds FullBox then an ES_Descriptor tag.
      if (bytes.length > 5 && random() < 0.5) bytes.set([1], 0);
      if (bytes.length > 5 && random() < 0.3) bytes.set([0, 0, 0, 0, 3], 0);
      for (const parse of parsers) {
        try {
          parse(bytes);
        } catch (err) {
          if (!isBmffError(err)) assert.fail(`${Buffer.from(bytes).toString('hex')}: ${err}`);
        }
      }
    }
  });
});
