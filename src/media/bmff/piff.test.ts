// The PIFF tfxd/tfrf rewrites against readers we did not write: codem-isoboxer (the box parser dash.js's Smooth
// Streaming support uses) reads the boxes back, ffprobe reads init + rewritten fragments packet for packet like the
// originals, and our indexer still finds the same samples in the same bytes. Then seeded mutations.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ffmpegFixture, testSource } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import type { Segment, TrackInfo } from '../types.ts';
import { parseMoof } from './fragment.ts';
import { indexBuffer } from './indexer.ts';
import { ISOBoxer, iso } from './isoboxer-testing.ts';
import { addTfrf, addTfxd, TFRF_MAX_ENTRIES, TFXD_SIZE, tfrfSize } from './piff.ts';
import { ascii, box, concat, fragment, fullBox, init, prng, u32, u64 } from './testing.ts';

const run = promisify(execFile);

// codem-isoboxer (a dependency of the dashjs devDependency, untyped), with the uuid processor dash.js's
// MssFragmentProcessor registers: it names the PIFF boxes 'tfxd'/'tfrf' and reads their fields.
interface Processor {
  type: string;
  version: number;
  usertype: number[];
  _parsing: boolean;
  _procFullBox(): void;
  _procField(name: string, type: string, bits: number): void;
  _procEntries(name: string, count: number, each: (this: Processor, entry: object) => void): void;
  _procEntryField(entry: object, name: string, type: string, bits: number): void;
  fragment_count: number;
}
const TFXD_USERTYPE = [0x6d, 0x1d, 0x9b, 0x05, 0x42, 0xd5, 0x44, 0xe6, 0x80, 0xe2, 0x14, 0x1d, 0xaf, 0xf7, 0x57, 0xb2];
const TFRF_USERTYPE = [0xd4, 0x80, 0x7e, 0xf2, 0xca, 0x39, 0x46, 0x95, 0x8e, 0x54, 0x26, 0xcb, 0x9e, 0x46, 0xa7, 0x9f];
ISOBoxer.addBoxProcessor('uuid', function (this: Processor) {
  const is = (u: number[]) => u.every((b, i) => this.usertype[i] === b);
  if (is(TFXD_USERTYPE)) {
    this._procFullBox();
    if (this._parsing) this.type = 'tfxd';
    this._procField('fragment_absolute_time', 'uint', this.version === 1 ? 64 : 32);
    this._procField('fragment_duration', 'uint', this.version === 1 ? 64 : 32);
  }
  if (is(TFRF_USERTYPE)) {
    this._procFullBox();
    if (this._parsing) this.type = 'tfrf';
    this._procField('fragment_count', 'uint', 8);
    this._procEntries('entry', this.fragment_count, function (this: Processor, entry: object) {
      this._procEntryField(entry, 'fragment_absolute_time', 'uint', this.version === 1 ? 64 : 32);
      this._procEntryField(entry, 'fragment_duration', 'uint', this.version === 1 ? 64 : 32);
    });
  }
});

/** ffprobe's packets (pts, dts, duration, size, flags, MD5 of the data), one CSV line each. */
async function packets(file: string): Promise<string[]> {
  const r = await run(
    'ffprobe',
    [
      ...['-v', 'error', '-select_streams', '0', '-show_entries', 'packet=pts,dts,duration,size,flags,data_hash'],
      ...['-show_data_hash', 'md5', '-of', 'csv=p=0', file],
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  assert.equal(r.stderr.trim(), '', `ffprobe ${file}`);
  return r.stdout.trim().split('\n');
}

const CMAF = ['-movflags', '+frag_keyframe+empty_moov+default_base_moof+cmaf', '-f', 'mp4'];

interface Media {
  track: TrackInfo;
  segments: Segment[];
  init: Uint8Array;
  part: (s: Segment) => Uint8Array;
}

async function media(args: string[]): Promise<Media> {
  const buf = new Uint8Array(readFileSync(await ffmpegFixture([...args, '-frag_duration', '316667', ...CMAF], 'mp4')));
  const { track, segments } = indexBuffer(buf);
  return {
    track,
    segments,
    init: buf.subarray(0, track.initSize),
    part: (s) => buf.subarray(s.offset, s.offset + s.size),
  };
}

let dir = '';
const fixtures: Media[] = [];
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sc-piff-test-'));
  fixtures.push(
    await media([
      ...testSource({ seconds: 4, width: 320, height: 240, rate: '30', audio: false }),
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-bf', '2'],
      ...['-g', '60', '-keyint_min', '60', '-sc_threshold', '0'],
    ]),
    await media([
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=4'],
      ...['-c:a', 'aac', '-ac', '2', '-ar', '48000'],
    ]),
  );
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, ...parts: Uint8Array[]): string {
  const path = join(dir, name);
  writeFileSync(path, concat(...parts));
  return path;
}

const code = (c: 'BMFF_MALFORMED' | 'BMFF_UNSUPPORTED') => (err: unknown) =>
  err instanceof SmoothcastError && err.code === c;

/** The next `n` fragments after segment i, as a tfrf lists them. */
const lookahead = (m: Media, i: number, n: number) =>
  m.segments.slice(i + 1, i + 1 + n).map((s) => ({ time: s.start, duration: s.duration }));

/** Bytes of the sample data parseMoof finds in the moof+mdat starting at `at` in `file`. */
function sampleData(file: Uint8Array, at: number, track: TrackInfo): Uint8Array {
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  while (String.fromCharCode(...file.subarray(at + 4, at + 8)) !== 'moof') at += v.getUint32(at);
  const moof = file.subarray(at, at + v.getUint32(at));
  const f = parseMoof(moof, 8, at, track, 1_000_000);
  return file.subarray(f.dataStart, f.dataEnd);
}

describe('addTfrf', () => {
  it('writes the MS-SSTR TfrfBox (version 1, 8-bit count, 64-bit entries) as the last box of the traf', () => {
    const m = fixtures[0]!;
    const f = m.part(m.segments[0]!);
    const next = lookahead(m, 0, 2);
    const out = addTfrf(f, next);
    const size = tfrfSize(2);
    assert.equal(size, 8 + 16 + 4 + 1 + 32);
    assert.equal(out.length, f.length + size);
    // The raw bytes, read at the end of the traf.
    const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const trafAt = Buffer.from(out).indexOf('traf') - 4;
    const at = trafAt + v.getUint32(trafAt) - size;
    assert.equal(v.getUint32(at), size);
    assert.equal(ascii('uuid').join(), [...out.subarray(at + 4, at + 8)].join());
    assert.equal(Buffer.from(out.subarray(at + 8, at + 24)).toString('hex'), 'd4807ef2ca3946958e5426cb9e46a79f');
    assert.equal(v.getUint32(at + 24), 0x01000000, 'version 1, flags 0');
    assert.equal(v.getUint8(at + 28), 2);
    assert.deepEqual(
      [v.getBigUint64(at + 29), v.getBigUint64(at + 37), v.getBigUint64(at + 45), v.getBigUint64(at + 53)],
      next.flatMap((e) => [BigInt(e.time), BigInt(e.duration)]),
    );
    // As dash.js reads it.
    const traf = iso(out).fetch('traf')!;
    const tfrf = traf.boxes!.at(-1)!;
    assert.equal(tfrf.type, 'tfrf');
    assert.equal(tfrf.version, 1);
    assert.equal(tfrf.fragment_count, 2);
    assert.deepEqual(
      tfrf.entry,
      next.map((e) => ({ fragment_absolute_time: e.time, fragment_duration: e.duration })),
    );
    // The moof, the traf and the trun data offset grew by the box's size; everything else is unchanged.
    const a = iso(f);
    const b = iso(out);
    assert.equal(b.fetch('moof')?.size, (a.fetch('moof')?.size ?? 0) + size);
    assert.equal(b.fetch('traf')?.size, (a.fetch('traf')?.size ?? 0) + size);
    assert.equal(b.fetch('trun')?.data_offset, (a.fetch('trun')?.data_offset as number) + size);
    assert.deepEqual(out.subarray(at + size), f.subarray(at), 'the mdat');
    const masked = (x: Uint8Array) => {
      const c = x.slice(0, at);
      const trun = Buffer.from(c).indexOf('trun') - 4;
      for (const field of [0, trafAt, trun + 16]) c.fill(0, field, field + 4);
      return c;
    };
    assert.deepEqual(masked(out), masked(f), 'the moof but for the sizes and the data offset');
  });

  for (const order of ['tfxd then tfrf', 'tfrf then tfxd'] as const) {
    it(`composes with addTfxd (${order}): ffprobe and our index read the same samples from the same bytes`, async () => {
      for (const [k, m] of fixtures.entries()) {
        const out = m.segments.map((s, i) => {
          const next = lookahead(m, i, 2);
          const piff =
            order === 'tfxd then tfrf'
              ? addTfrf(addTfxd(m.part(s), s.start, s.duration), next)
              : addTfxd(addTfrf(m.part(s), next), s.start, s.duration);
          assert.equal(piff.length, s.size + TFXD_SIZE + tfrfSize(next.length));
          const f = iso(piff);
          assert.deepEqual(
            f.fetch('traf')?.boxes?.map((b) => b.type),
            order === 'tfxd then tfrf'
              ? ['tfhd', 'tfdt', 'trun', 'tfxd', 'tfrf']
              : ['tfhd', 'tfdt', 'trun', 'tfrf', 'tfxd'],
          );
          const tfxd = f.fetch('tfxd')!;
          assert.deepEqual([tfxd.fragment_absolute_time, tfxd.fragment_duration], [s.start, s.duration]);
          assert.equal(f.fetch('tfrf')?.fragment_count, next.length);
          return piff;
        });
        const rewritten = concat(m.init, ...out);
        const again = indexBuffer(rewritten).segments;
        assert.deepEqual(
          again.map((s) => [s.start, s.duration, s.samples, s.startsWithKeyframe, s.presentationStart]),
          m.segments.map((s) => [s.start, s.duration, s.samples, s.startsWithKeyframe, s.presentationStart]),
        );
        const original = concat(m.init, ...m.segments.map(m.part));
        again.forEach((s, i) => {
          const before = sampleData(original, m.segments[i]!.offset, m.track);
          assert.ok(before.length > 0);
          assert.deepEqual(sampleData(rewritten, s.offset, m.track), before, `segment ${i} sample bytes`);
        });
        const [pa, pb] = await Promise.all([
          packets(file(`orig-${k}.mp4`, original)),
          packets(file(`piff-${k}-${order.length}.mp4`, rewritten)),
        ]);
        assert.equal(
          pa.length,
          m.segments.reduce((n, s) => n + s.samples, 0),
        );
        assert.deepEqual(pb, pa);
      }
    });
  }

  it('takes 0 to 255 entries, a styp before the moof and a largesize mdat; refuses what it cannot write', () => {
    const SYNC = 0x02000000;
    const initBytes = init({ trex: { duration: 10 } });
    const f = concat(
      box('styp', ascii('msdh'), u32(0)),
      fragment({ tfdt: 2 ** 40, samples: [{ size: 3, flags: SYNC }, { size: 4 }], mdat: 'large' }),
    );
    for (const n of [0, 1, TFRF_MAX_ENTRIES]) {
      const next = Array.from({ length: n }, (_, i) => ({ time: 2 ** 40 + 20 * (i + 1), duration: 2 ** 33 + i }));
      const out = addTfrf(f, next);
      assert.equal(out.length, f.length + tfrfSize(n));
      const tfrf = iso(out).fetch('tfrf')!;
      assert.equal(tfrf.fragment_count, n);
      assert.deepEqual(
        tfrf.entry,
        next.map((e) => ({ fragment_absolute_time: e.time, fragment_duration: e.duration })),
      );
      const [s] = indexBuffer(concat(initBytes, out)).segments;
      assert.deepEqual([s?.start, s?.duration, s?.samples, s?.startsWithKeyframe], [2 ** 40, 20, 2, true]);
      const data = sampleData(concat(initBytes, out), initBytes.length, indexBuffer(initBytes).track);
      assert.deepEqual(data, sampleData(concat(initBytes, f), initBytes.length, indexBuffer(initBytes).track));
      assert.equal(data.length, 7);
    }
    const one = [{ time: 0, duration: 1 }];
    assert.throws(() => addTfrf(f, Array(TFRF_MAX_ENTRIES + 1).fill(one[0])), code('BMFF_UNSUPPORTED'), '256 entries');
    for (const bad of [-1, 0.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => addTfrf(f, [{ time: bad, duration: 1 }]), code('BMFF_UNSUPPORTED'), `time ${bad}`);
      assert.throws(() => addTfrf(f, [{ time: 0, duration: bad }]), code('BMFF_UNSUPPORTED'), `duration ${bad}`);
      assert.throws(() => addTfxd(f, bad, 1), code('BMFF_UNSUPPORTED'), `tfxd time ${bad}`);
    }
    const traf = fullBox('tfhd', 0, 0x020000, u32(1));
    const twoTrafs = concat(
      box('moof', fullBox('mfhd', 0, 0, u32(1)), box('traf', traf), box('traf', traf)),
      box('mdat'),
    );
    assert.throws(() => addTfrf(twoTrafs, one), code('BMFF_UNSUPPORTED'), 'two trafs');
    assert.throws(() => addTfrf(box('mdat', [1, 2]), one), code('BMFF_MALFORMED'), 'no moof');
    assert.throws(() => addTfrf(f.subarray(0, 40), one), code('BMFF_MALFORMED'), 'truncated');
    const absolute = concat(
      box('moof', fullBox('mfhd', 0, 0, u32(1)), box('traf', fullBox('tfhd', 0, 0x000001, u32(1), u64(0)))),
      box('mdat'),
    );
    assert.throws(() => addTfrf(absolute, one), code('BMFF_UNSUPPORTED'), 'base_data_offset');
  });
});

// ---------------------------------------------------------------------------------------------------------------

const CASES = Number(process.env.SMOOTHCAST_FUZZ_CASES ?? 3000);
const SEED = Number(process.env.SMOOTHCAST_FUZZ_SEED ?? 0x71f);
// Generous: a pathological input (a quadratic walk, 100k samples read again and again) takes seconds, while a loaded
// machine (the whole suite runs files in parallel) can stall one ordinary case past 200 ms.
const CASE_LIMIT_MS = 1000;

describe('fuzz', () => {
  it(`${CASES} mutated fragments given a tfxd and a tfrf end in a valid result or a BMFF_* error`, (t) => {
    const random = prng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    const seeds = fixtures.flatMap((m) => m.segments.slice(0, 3).map((s) => ({ m, s, bytes: m.part(s) })));
    const outcomes = { ok: 0, BMFF_MALFORMED: 0, BMFF_UNSUPPORTED: 0 };
    let slowest = 0;
    for (let n = 0; n < CASES; n++) {
      const { m, s, bytes } = pick(seeds);
      let f: Uint8Array = bytes.slice();
      const steps: string[] = [];
      for (let k = 1 + Math.floor(random() * 3); k > 0; k--) {
        // Mostly the moof (where the structure is), sometimes anywhere.
        const moofSize = new DataView(f.buffer, f.byteOffset).getUint32(0);
        const at = Math.floor(random() * (random() < 0.9 ? Math.min(moofSize + 16, f.length) : f.length));
        const what = Math.floor(random() * 4);
        if (what === 0) f[at] = (f[at] ?? 0) ^ (1 << Math.floor(random() * 8));
        else if (what === 1 && at + 4 <= f.length) {
          const value = pick([0, 1, 7, 8, 0x7fffffff, 0xffffffff, Math.floor(random() * 2 ** 32)]);
          new DataView(f.buffer, f.byteOffset).setUint32(at & ~3, value >>> 0);
        } else if (what === 2) f = f.slice(0, at);
        else f = concat(f.subarray(0, at), f.subarray(at + 1 + Math.floor(random() * 8)));
        steps.push(`${what}@${at}`);
        if (f.length < 8) break;
      }
      const context = `case ${n}: ${steps.join(' ')}`;
      const t0 = performance.now();
      let valid: Segment | undefined;
      try {
        const segments = indexBuffer(concat(m.init, f)).segments;
        if (segments.length === 1) valid = segments[0];
      } catch {}
      try {
        const out = addTfrf(addTfxd(f, s.start, s.duration), [{ time: s.start + s.duration, duration: s.duration }]);
        outcomes.ok++;
        assert.equal(out.length, f.length + TFXD_SIZE + tfrfSize(1), context);
        if (valid) {
          const [g] = indexBuffer(concat(m.init, out)).segments;
          assert.deepEqual([g?.start, g?.duration, g?.samples], [valid.start, valid.duration, valid.samples], context);
        }
      } catch (err) {
        if (!(err instanceof SmoothcastError) || !(err.code === 'BMFF_MALFORMED' || err.code === 'BMFF_UNSUPPORTED')) {
          assert.fail(`${context}: threw ${err instanceof Error ? err.stack : String(err)}`);
        }
        outcomes[err.code]++;
      }
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      assert.ok(ms < CASE_LIMIT_MS, `${context}: took ${ms.toFixed(1)} ms`);
    }
    // Each outcome must occur, or the mutations are not reaching the code.
    const all = JSON.stringify(outcomes);
    assert.ok(outcomes.ok > CASES / 20 && outcomes.BMFF_MALFORMED > CASES / 20, all);
    assert.ok(outcomes.BMFF_UNSUPPORTED > CASES / 300, all);
    t.diagnostic(`seed ${SEED}: ${JSON.stringify(outcomes)}, slowest case ${slowest.toFixed(1)} ms`);
  });
});
