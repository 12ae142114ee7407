// mergeFragments and shiftTfdt against readers we did not write: ffmpeg/ffprobe 5.1 decode and list the packets of
// init + rewritten fragments exactly as they do for init + the originals, codem-isoboxer (dash.js's box parser) reads
// the rewritten boxes, and our own indexer (fragment.ts) still finds the segments. Then seeded mutations of valid
// inputs: each ends in a valid result or a BMFF_* SmoothcastError, quickly.
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
import { indexBuffer } from './indexer.ts';
import { iso } from './isoboxer-testing.ts';
import { MAX_MERGED_SAMPLES, mergeFragments, shiftTfdt } from './merge.ts';
import { ascii, avcC, box, concat, fullBox, init, largeBox, prng, u32, u64, visualEntry } from './testing.ts';

const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------------
// References: ffprobe / ffmpeg and codem-isoboxer

/** ffprobe's packets (pts, dts, duration, size, flags, MD5 of the data), one CSV line each. */
async function packets(file: string, strict = true): Promise<string[]> {
  const r = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      '0',
      '-show_entries',
      'packet=pts,dts,duration,size,flags,data_hash',
      '-show_data_hash',
      'md5',
      '-of',
      'csv=p=0',
      file,
    ],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  // Hand-built files carry no decodable media: ffprobe's complaints about the payload are expected there.
  if (strict) assert.equal(r.stderr.trim(), '', `ffprobe ${file}`);
  return r.stdout.trim().split('\n');
}

/** ffmpeg's decoded frames (pts, dts, duration, size, MD5 of each frame). */
async function frames(file: string): Promise<string[]> {
  const r = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'framemd5', '-'], { maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.stderr.trim(), '', `ffmpeg ${file}`);
  return r.stdout.trim().split('\n');
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

const CMAF = ['-movflags', '+frag_keyframe+empty_moov+default_base_moof+cmaf', '-f', 'mp4'];
/** Live-like parts: ~1/3 s fragments (10 video frames, 15 AAC frames), keyframes every 2 s. */
const PARTS = ['-frag_duration', '316667'];

function videoFixture(): Promise<string> {
  return ffmpegFixture(
    [
      ...testSource({ seconds: 4, width: 320, height: 240, rate: '30', audio: false }),
      ...['-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-bf', '2'],
      ...['-g', '60', '-keyint_min', '60', '-sc_threshold', '0'],
      ...PARTS,
      ...CMAF,
    ],
    'mp4',
  );
}

function audioFixture(): Promise<string> {
  return ffmpegFixture(
    [
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=4'],
      ...['-c:a', 'aac', '-ac', '2', '-ar', '48000'],
      ...PARTS,
      ...CMAF,
    ],
    'mp4',
  );
}

interface Media {
  buf: Uint8Array;
  track: TrackInfo;
  segments: Segment[];
  init: Uint8Array;
  part: (s: Segment) => Uint8Array;
  /** Runs of consecutive parts making one 2 s fragment: video from keyframe to keyframe, audio every 2 s. */
  groups: Segment[][];
}

function media(path: string): Media {
  const buf = new Uint8Array(readFileSync(path));
  const { track, segments } = indexBuffer(buf);
  const groups: Segment[][] = [];
  for (const s of segments) {
    const g = groups[groups.length - 1];
    const starts =
      !g || (track.kind === 'video' ? s.startsWithKeyframe : s.start >= (g[0]?.start ?? 0) + 2 * track.timescale);
    if (starts) groups.push([s]);
    else g.push(s);
  }
  return {
    buf,
    track,
    segments,
    init: buf.subarray(0, track.initSize),
    part: (s) => buf.subarray(s.offset, s.offset + s.size),
    groups,
  };
}

let dir = '';
const fixtures: { video?: Media; audio?: Media } = {};
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sc-merge-'));
  fixtures.video = media(await videoFixture());
  fixtures.audio = media(await audioFixture());
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, ...parts: Uint8Array[]): string {
  const path = join(dir, name);
  writeFileSync(path, concat(...parts));
  return path;
}

function code(c: 'BMFF_MALFORMED' | 'BMFF_UNSUPPORTED') {
  return (err: unknown) => err instanceof SmoothcastError && err.code === c;
}

// ---------------------------------------------------------------------------------------------------------------
// Hand-built fragments: several trafs and truns, tfdt version 0, gaps in the mdat, distinct payload bytes.

const SYNC = 0x02000000;
const NON_SYNC = 0x01010000;

interface SampleSpec {
  duration?: number;
  size?: number;
  flags?: number;
  cto?: number;
}

interface RunSpec {
  samples: SampleSpec[];
  /** Where the run's data starts in the mdat payload; undefined: no data_offset (the run follows the last one). */
  at?: number;
  version?: 0 | 1;
  firstSampleFlags?: number;
}

interface TrafSpec {
  trackId?: number;
  /** undefined leaves the tfdt out. */
  tfdt: number | undefined;
  tfdtVersion?: 0 | 1;
  defaults?: { duration?: number; size?: number; flags?: number };
  /** false: no default-base-is-moof flag (the first traf's base is then still the moof; later ones follow). */
  baseIsMoof?: boolean;
  runs: RunSpec[];
  extra?: Uint8Array[];
}

interface PartSpec {
  sequence?: number;
  trafs: TrafSpec[];
  /** Bytes of the mdat payload; made distinct (seeded) when left out. */
  payload?: Uint8Array;
  payloadSize?: number;
  prefix?: Uint8Array[];
  mdat?: 'normal' | 'large';
}

function bytesOf(n: number, seed: number): Uint8Array {
  const random = prng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(random() * 256));
}

function trun(run: RunSpec, dataOffset: number | undefined): Uint8Array {
  const has = (k: keyof SampleSpec) => run.samples.some((s) => s[k] !== undefined);
  const flags =
    (dataOffset !== undefined ? 0x001 : 0) |
    (run.firstSampleFlags !== undefined ? 0x004 : 0) |
    (has('duration') ? 0x100 : 0) |
    (has('size') ? 0x200 : 0) |
    (has('flags') ? 0x400 : 0) |
    (has('cto') ? 0x800 : 0);
  return fullBox(
    'trun',
    run.version ?? 0,
    flags,
    u32(run.samples.length),
    dataOffset !== undefined ? u32(dataOffset) : [],
    run.firstSampleFlags !== undefined ? u32(run.firstSampleFlags) : [],
    run.samples.flatMap((s) => [
      ...(flags & 0x100 ? u32(s.duration ?? 0) : []),
      ...(flags & 0x200 ? u32(s.size ?? 0) : []),
      ...(flags & 0x400 ? u32(s.flags ?? 0) : []),
      ...(flags & 0x800 ? u32(s.cto ?? 0) : []),
    ]),
  );
}

function traf(t: TrafSpec, dataStart: number): Uint8Array {
  const d = t.defaults ?? {};
  const tfhdFlags =
    (t.baseIsMoof === false ? 0 : 0x020000) |
    (d.duration !== undefined ? 0x08 : 0) |
    (d.size !== undefined ? 0x10 : 0) |
    (d.flags !== undefined ? 0x20 : 0);
  const tfhd = fullBox(
    'tfhd',
    0,
    tfhdFlags,
    u32(t.trackId ?? 1),
    d.duration !== undefined ? u32(d.duration) : [],
    d.size !== undefined ? u32(d.size) : [],
    d.flags !== undefined ? u32(d.flags) : [],
  );
  const tfdt =
    t.tfdt === undefined
      ? new Uint8Array(0)
      : t.tfdtVersion === 0
        ? fullBox('tfdt', 0, 0, u32(t.tfdt))
        : fullBox('tfdt', 1, 0, u64(t.tfdt));
  const runs = t.runs.map((r) => trun(r, r.at === undefined ? undefined : dataStart + r.at));
  return box('traf', tfhd, tfdt, ...runs, ...(t.extra ?? []));
}

/** moof (+ mdat) with data offsets relative to the moof; `payloadSize` defaults to the end of the last run. */
function part(p: PartSpec): Uint8Array {
  let size = p.payloadSize ?? 0;
  if (p.payloadSize === undefined) {
    for (const t of p.trafs) {
      let at = 0;
      for (const r of t.runs) {
        at = (r.at ?? at) + r.samples.reduce((n, s) => n + (s.size ?? t.defaults?.size ?? 0), 0);
        size = Math.max(size, at);
      }
    }
  }
  const payload = p.payload ?? bytesOf(size, 7 * size + (p.sequence ?? 1));
  const header = p.mdat === 'large' ? 16 : 8;
  const moof = (start: number) =>
    box('moof', fullBox('mfhd', 0, 0, u32(p.sequence ?? 1)), ...p.trafs.map((t) => traf(t, start)));
  const m = moof(moof(0).length + header);
  return concat(...(p.prefix ?? []), m, p.mdat === 'large' ? largeBox('mdat', payload) : box('mdat', payload));
}

/**
 * Init segments for hand-built fragments: `index` (avc1) for our indexer, `probe` for ffprobe, which lists the packets
 * of an 's263' track without running the H.264 parser (that one recomputes the key flags from the bytes).
 */
function syntheticInit(trex: { duration?: number; size?: number; flags?: number } = {}) {
  return {
    index: init({ timescale: 1000, trex }),
    probe: init({ timescale: 1000, trex, entry: visualEntry('s263', avcC(0x64, 0, 0x1f)) }),
  };
}

function moofEnd(f: Uint8Array): number {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  let at = 0;
  while (String.fromCharCode(...f.subarray(at + 4, at + 8)) !== 'moof') at += v.getUint32(at);
  return at + v.getUint32(at);
}

// ---------------------------------------------------------------------------------------------------------------

describe('mergeFragments', () => {
  for (const kind of ['video', 'audio'] as const) {
    it(`${kind}: the 1/3 s parts of each 2 s run merge into one moof+mdat that ffmpeg reads like the parts`, async () => {
      const m = fixtures[kind] as Media;
      assert.ok(
        m.groups.length >= 2 && m.groups.every((g) => g.length >= 5),
        `groups ${m.groups.map((g) => g.length)}`,
      );
      const merged = m.groups.map((g) => mergeFragments(g.map(m.part), m.track));
      const original = file(`${kind}.mp4`, m.init, ...m.segments.map(m.part));
      const joined = file(`${kind}-merged.mp4`, m.init, ...merged);
      // Packet for packet (timestamps, sizes, key flags, the bytes themselves) and frame for frame once decoded.
      const [pa, pb] = await Promise.all([packets(original), packets(joined)]);
      assert.equal(
        pa.length,
        m.segments.reduce((n, s) => n + s.samples, 0),
      );
      assert.deepEqual(pb, pa);
      const [fa, fb] = await Promise.all([frames(original), frames(joined)]);
      assert.ok(fa.length > pa.length / 2);
      assert.deepEqual(fb, fa);

      // Our index of the merged file: one segment per 2 s run, starting where its first part did.
      const again = indexBuffer(readFileSync(joined)).segments;
      assert.deepEqual(
        again.map((s) => [s.start, s.duration, s.samples, s.startsWithKeyframe, s.presentationStart]),
        m.groups.map((g) => [
          g[0]!.start,
          g.reduce((n, s) => n + s.duration, 0),
          g.reduce((n, s) => n + s.samples, 0),
          g[0]!.startsWithKeyframe,
          g[0]!.presentationStart,
        ]),
      );
      if (kind === 'video') {
        assert.ok(again.every((s) => s.startsWithKeyframe));
        assert.equal(again[1]!.start, 2 * m.track.timescale);
      }

      // The boxes, as codem-isoboxer (dash.js) reads them.
      merged.forEach((bytes, i) => {
        const f = iso(bytes);
        assert.deepEqual(
          f.boxes.map((b) => b.type),
          ['moof', 'mdat'],
        );
        assert.equal(f.fetchAll('traf').length, 1);
        const runs = f.fetchAll('trun');
        assert.equal(runs.length, 1);
        const t = runs[0]!;
        const group = m.groups[i]!;
        const firstPart = iso(m.part(group[0]!));
        assert.equal(f.fetch('mfhd')?.sequence_number, firstPart.fetch('mfhd')?.sequence_number);
        assert.equal(f.fetch('tfdt')?.version, 1);
        assert.equal(f.fetch('tfdt')?.baseMediaDecodeTime, group[0]!.start);
        const tfhd = f.fetch('tfhd')!;
        assert.equal((tfhd.flags ?? 0) & 0x030001, 0x020000, 'default-base-is-moof, no base_data_offset');
        assert.equal(tfhd.track_ID, m.track.trackId);
        assert.equal(
          t.sample_count,
          group.reduce((n, s) => n + s.samples, 0),
        );
        assert.equal(t.data_offset, f.boxes[0]!.size + 8, 'data_offset: first byte of the mdat payload');
        assert.equal((t.flags ?? 0) & 0x700, 0x700, 'explicit duration, size and flags');
        const samples = t.samples as { sample_size: number; sample_composition_time_offset?: number }[];
        assert.equal(
          samples.reduce((n, s) => n + s.sample_size, 0),
          f.boxes[1]!.size - 8,
        );
        if (kind === 'video') {
          // libx264 with B-frames under +cmaf: negative composition offsets, hence trun version 1.
          assert.equal(t.version, 1);
          assert.ok(samples.some((s) => (s.sample_composition_time_offset ?? 0) < 0));
          // ffmpeg's tfhd defaults: the duration holds for every frame (kept), the size and the non-sync flags of
          // the first part's samples do not (dropped: the keyframe differs).
          assert.equal(tfhd.default_sample_duration, 512);
          assert.equal(tfhd.default_sample_size, undefined);
          assert.equal(tfhd.default_sample_flags, undefined);
        } else {
          assert.equal((t.flags ?? 0) & 0x800, 0, 'no composition offsets in AAC parts');
        }
      });
      // A merged fragment merges into itself.
      for (const bytes of merged) assert.deepEqual(mergeFragments([bytes], m.track), bytes);
    });
  }

  it('resolves each sample from trun, then tfhd defaults, then trex defaults; largesize mdats, prefixes dropped', async () => {
    const trex = { duration: 40, size: 3, flags: NON_SYNC };
    const parts = [
      // tfhd defaults for duration and flags, explicit first_sample_flags; trex has nothing to add.
      part({
        sequence: 5,
        prefix: [box('styp', ascii('msdh'), u32(0), ascii('msdhmsix')), fullBox('prft', 1, 0, u32(1), u64(7), u64(0))],
        trafs: [
          {
            tfdt: 1000,
            defaults: { duration: 33, flags: NON_SYNC },
            runs: [{ at: 0, firstSampleFlags: SYNC, samples: [{ size: 10 }, { size: 11 }, { size: 12 }] }],
          },
        ],
      }),
      // No tfhd defaults: durations and flags from trex; per-sample sizes; a largesize mdat.
      part({
        sequence: 6,
        mdat: 'large',
        trafs: [{ tfdt: 1099, runs: [{ at: 0, samples: [{ size: 7 }, { size: 8 }] }] }],
      }),
      // Everything per sample, composition offsets (negative: trun version 1).
      part({
        sequence: 7,
        trafs: [
          {
            tfdt: 1179,
            runs: [
              {
                at: 0,
                version: 1,
                samples: [
                  { duration: 20, size: 5, flags: SYNC, cto: 40 },
                  { duration: 20, size: 6, flags: NON_SYNC, cto: -20 },
                  { duration: 25, size: 9, flags: NON_SYNC, cto: 0 },
                ],
              },
            ],
          },
        ],
      }),
      // Sizes from tfhd, durations from trex, no per-sample field at all.
      part({ sequence: 8, trafs: [{ tfdt: 1244, defaults: { size: 4 }, runs: [{ at: 0, samples: [{}, {}] }] }] }),
    ];
    const track = {
      defaultSampleDuration: trex.duration,
      defaultSampleSize: trex.size,
      defaultSampleFlags: trex.flags,
    };
    const merged = mergeFragments(parts, track);
    const inits = syntheticInit(trex);
    const [pa, pb] = await Promise.all([
      packets(file('syn.mp4', inits.probe, ...parts), false),
      packets(file('syn-merged.mp4', inits.probe, merged), false),
    ]);
    assert.equal(pa.length, 10);
    assert.deepEqual(pb, pa);
    const f = iso(merged);
    assert.equal(f.fetch('mfhd')?.sequence_number, 5);
    const t = f.fetch('trun')!;
    assert.equal(t.version, 1);
    const samples = t.samples as Record<string, number>[];
    assert.deepEqual(
      samples.map((s) => [s.sample_duration, s.sample_size, s.sample_flags, s.sample_composition_time_offset]),
      [
        [33, 10, SYNC, 0],
        [33, 11, NON_SYNC, 0],
        [33, 12, NON_SYNC, 0],
        [40, 7, NON_SYNC, 0],
        [40, 8, NON_SYNC, 0],
        [20, 5, SYNC, 40],
        [20, 6, NON_SYNC, -20],
        [25, 9, NON_SYNC, 0],
        [40, 4, NON_SYNC, 0],
        [40, 4, NON_SYNC, 0],
      ],
    );
    // The first part's tfhd duration (33) does not hold for every sample; its flags do not either.
    assert.equal(f.fetch('tfhd')?.flags, 0x020000);
    const [segment] = indexBuffer(concat(inits.index, merged)).segments;
    assert.deepEqual(
      [segment?.start, segment?.duration, segment?.samples, segment?.startsWithKeyframe],
      [1000, 324, 10, true],
    );
  });

  it('takes several truns per part, runs that skip bytes or hold nothing, and a tfdt of version 0', async () => {
    const ones = (n: number) => Array.from({ length: n }, () => ({ size: 1 }));
    const parts = [
      part({
        trafs: [
          {
            tfdt: 0,
            tfdtVersion: 0,
            defaults: { duration: 10 },
            runs: [
              {
                at: 3,
                samples: [
                  { size: 4, flags: SYNC },
                  { size: 5, flags: NON_SYNC },
                ],
              },
              { at: 12, samples: [{ size: 6 }] },
              { at: 40, samples: [{ size: 2 }, { size: 3 }] }, // bytes 18..40 belong to no sample
              { at: 50, samples: [] },
              { at: 50, samples: [{ size: 4 }] },
            ],
          },
        ],
        payloadSize: 64,
      }),
      part({
        sequence: 2,
        trafs: [{ tfdt: 60, defaults: { duration: 10, flags: NON_SYNC }, runs: [{ at: 0, samples: ones(4) }] }],
      }),
    ];
    const track = { defaultSampleDuration: 0, defaultSampleSize: 0, defaultSampleFlags: 0 };
    const merged = mergeFragments(parts, track);
    const inits = syntheticInit();
    const [pa, pb] = await Promise.all([
      packets(file('runs.mp4', inits.probe, ...parts), false),
      packets(file('runs-merged.mp4', inits.probe, merged), false),
    ]);
    assert.equal(pa.length, 10);
    assert.deepEqual(pb, pa);
    const f = iso(merged);
    assert.equal(f.fetchAll('trun').length, 1);
    assert.equal(f.boxes[1]!.size, 8 + 4 + 5 + 6 + 2 + 3 + 4 + 4, 'mdat holds the sample bytes only');
    // Every sample takes 10 ticks: the first part's tfhd default duration is kept; sizes and flags vary.
    assert.equal(f.fetch('tfhd')?.default_sample_duration, 10);
    assert.equal(f.fetch('tfhd')?.flags, 0x020008);
  });

  it('places a trun without data_offset right after the previous run (ISO/IEC 14496-12 §8.8.8), as parseMoof does', () => {
    // ffmpeg 5.1 reads such a run from the traf's base instead (mov_read_trun), so it is no reference here: the
    // expectation is the spec's, checked against our indexer's reading of the same part.
    const payload = bytesOf(64, 99);
    const p = part({
      payload,
      trafs: [
        {
          tfdt: 0,
          defaults: { duration: 10 },
          runs: [
            { at: 3, samples: [{ size: 4 }, { size: 5 }] },
            { samples: [{ size: 6 }] }, // 12..18
            { at: 40, samples: [] },
            { samples: [{ size: 2 }] }, // 40..42: an empty run still sets where the next one starts
          ],
        },
      ],
    });
    const track = { defaultSampleDuration: 0, defaultSampleSize: 0, defaultSampleFlags: 0 };
    const merged = mergeFragments([p], track);
    const f = iso(merged);
    const data = f.fetch('mdat')?.data as Uint8Array;
    assert.deepEqual([...data], [...payload.subarray(3, 18), ...payload.subarray(40, 42)]);
    const initBytes = syntheticInit().index;
    const [s] = indexBuffer(concat(initBytes, p)).segments;
    assert.deepEqual([s?.samples, s?.duration], [4, 40]);
    assert.equal(f.fetch('trun')?.sample_count, 4);
  });

  it('refuses what it cannot merge faithfully', () => {
    const track = { defaultSampleDuration: 0, defaultSampleSize: 0, defaultSampleFlags: 0 };
    const simple = (o: Partial<TrafSpec> = {}, payloadSize?: number) =>
      part({ trafs: [{ tfdt: 0, runs: [{ at: 0, samples: [{ size: 4, duration: 10 }] }], ...o }], payloadSize });
    const malformed: [string, Uint8Array[]][] = [
      ['no parts', []],
      ['different track_IDs', [simple(), simple({ trackId: 2, tfdt: 10 })]],
      ['a gap in time', [simple(), simple({ tfdt: 11 })]],
      ['an overlap in time', [simple(), simple({ tfdt: 9 })]],
      ['no tfdt', [simple({ tfdt: undefined })]],
      ['no mdat', [simple().subarray(0, moofEnd(simple()))]],
      ['trun data past the mdat', [simple({ runs: [{ at: 2, samples: [{ size: 4 }] }] }, 5)]],
      ['trun data inside the moof', [simple({ runs: [{ at: -20, samples: [{ size: 4 }] }] })]],
      ['first trun without data_offset', [simple({ runs: [{ samples: [{ size: 4 }] }] })]],
      [
        'runs overlapping',
        [
          simple({
            runs: [
              { at: 0, samples: [{ size: 4 }] },
              { at: 2, samples: [{ size: 2 }] },
            ],
          }),
        ],
      ],
      ['sample_count beyond the trun', [mutateU32(simple(), 'trun', 12, 1000)]],
      [
        'two trafs',
        [
          part({
            trafs: [
              { tfdt: 0, runs: [] },
              { tfdt: 0, runs: [] },
            ],
          }),
        ],
      ],
      ['no moof', [box('mdat', [1, 2, 3])]],
      ['a truncated box', [simple().subarray(0, 30)]],
    ];
    for (const [what, parts] of malformed) {
      assert.throws(() => mergeFragments(parts, track), code('BMFF_MALFORMED'), what);
    }
    // A trun of `count` samples without per-sample fields (size 0 from the tfhd): cheap to build, costly to read.
    const many = (count: number) =>
      mutateU32(
        part({ trafs: [{ tfdt: 0, defaults: { size: 0 }, runs: [{ at: 0, samples: [] }] }] }),
        'trun',
        12,
        count,
      );
    const senc = fullBox('senc', 0, 0, u32(0));
    const unsupported: [string, Uint8Array[]][] = [
      [`more than ${MAX_MERGED_SAMPLES} samples in one trun`, [many(MAX_MERGED_SAMPLES + 1)]],
      ['more than the limit over two parts', [many(60_000), many(60_000)]],
      ['an emsg before the moof', [concat(fullBox('emsg', 0, 0, [0, 0]), simple())]],
      ['encryption boxes in the traf', [simple({ extra: [senc] })]],
      ['a box after the mdat', [concat(simple(), box('free'))]],
      [
        'composition offsets both negative and above 2^31',
        [
          simple({ runs: [{ at: 0, version: 1, samples: [{ size: 4, duration: 10, cto: -1 }] }] }),
          simple({ tfdt: 10, runs: [{ at: 0, version: 0, samples: [{ size: 4, duration: 10, cto: 0x80000000 }] }] }),
        ],
      ],
      ['an absolute base_data_offset', [setTfhdFlag(simple(), 0x000001)]],
    ];
    for (const [what, parts] of unsupported) {
      assert.throws(() => mergeFragments(parts, track), code('BMFF_UNSUPPORTED'), what);
    }
    // The 60 000-sample part alone is fine: the bound is on the merged fragment.
    assert.equal(iso(mergeFragments([many(60_000)], track)).fetch('trun')?.sample_count, 60_000);
  });
});

/** `f` with the u32 at `offset` bytes into its first `type` box set to `value`. */
function mutateU32(f: Uint8Array, type: string, offset: number, value: number): Uint8Array {
  const out = f.slice();
  const at = Buffer.from(out).indexOf(type) - 4;
  assert.ok(at >= 0);
  new DataView(out.buffer).setUint32(at + offset, value >>> 0);
  return out;
}

/** `f` with `flag` set in its tfhd and the 8-byte field it announces inserted (base_data_offset = 0). */
function setTfhdFlag(f: Uint8Array, flag: number): Uint8Array {
  const at = Buffer.from(f).indexOf('tfhd') - 4;
  const out = concat(f.subarray(0, at + 16), new Uint8Array(8), f.subarray(at + 16));
  const v = new DataView(out.buffer);
  v.setUint32(at + 8, v.getUint32(at + 8) | flag);
  for (const type of ['moof', 'traf', 'tfhd']) {
    const b = Buffer.from(out).indexOf(type) - 4;
    v.setUint32(b, v.getUint32(b) + 8);
  }
  return out;
}

describe('shiftTfdt', () => {
  for (const kind of ['video', 'audio'] as const) {
    it(`${kind}: ffprobe sees every packet's dts and pts moved by exactly the delta`, async () => {
      const m = fixtures[kind] as Media;
      for (const delta of [3 * m.track.timescale + 1, 2 ** 33 + 7]) {
        const shifted = m.segments.map((s) => shiftTfdt(m.part(s), delta));
        assert.deepEqual(
          shifted.map((b) => b.length),
          m.segments.map((s) => s.size),
          'tfdt is already version 1',
        );
        const [pa, pb] = await Promise.all([
          packets(file(`${kind}.mp4`, m.init, ...m.segments.map(m.part))),
          packets(file(`${kind}-shifted.mp4`, m.init, ...shifted)),
        ]);
        const move = (line: string) => {
          const [pts, dts, ...rest] = line.split(',');
          return [Number(pts) + delta, Number(dts) + delta, ...rest].join(',');
        };
        assert.equal(
          pa.length,
          m.segments.reduce((n, s) => n + s.samples, 0),
        );
        assert.deepEqual(pb, pa.map(move));
        const again = indexBuffer(concat(m.init, ...shifted)).segments;
        assert.deepEqual(
          again.map((s) => [s.start, s.duration, s.samples]),
          m.segments.map((s) => [s.start + delta, s.duration, s.samples]),
        );
      }
    });
  }

  it('turns a version-0 tfdt that outgrows 32 bits into version 1, moving the data offsets by 4 per traf', async () => {
    const one = part({
      prefix: [box('styp', ascii('msdh'), u32(0))],
      trafs: [
        {
          tfdt: 0xfffffff0,
          tfdtVersion: 0,
          runs: [
            {
              at: 2,
              samples: [
                { size: 5, duration: 10, flags: SYNC },
                { size: 6, duration: 10, cto: 3 },
              ],
            },
          ],
        },
      ],
    });
    const delta = 0x20;
    const out = shiftTfdt(one, delta);
    assert.equal(out.length, one.length + 4);
    const before = iso(one);
    const after = iso(out);
    assert.equal(after.fetch('moof')?.size, (before.fetch('moof')?.size ?? 0) + 4);
    assert.equal(after.fetch('traf')?.size, (before.fetch('traf')?.size ?? 0) + 4);
    assert.equal(after.fetch('tfdt')?.version, 1);
    assert.equal(after.fetch('tfdt')?.baseMediaDecodeTime, 0xfffffff0 + delta);
    assert.equal(after.fetch('trun')?.data_offset, (before.fetch('trun')?.data_offset as number) + 4);
    assert.deepEqual(after.fetch('mdat')?.data, before.fetch('mdat')?.data);
    assert.deepEqual(out.subarray(0, 16), one.subarray(0, 16), 'the styp');
    const inits = syntheticInit();
    const [pa, pb] = await Promise.all([
      packets(file('v0.mp4', inits.probe, one), false),
      packets(file('v0-shifted.mp4', inits.probe, out), false),
    ]);
    assert.equal(pa.length, 2);
    assert.deepEqual(
      pb,
      pa.map((l) => {
        const [pts, dts, ...rest] = l.split(',');
        return [Number(pts) + delta, Number(dts) + delta, ...rest].join(',');
      }),
    );
    // Still version 0 while the time fits: same bytes but the time.
    const small = shiftTfdt(
      part({ trafs: [{ tfdt: 5, tfdtVersion: 0, runs: [{ at: 0, samples: [{ size: 1 }] }] }] }),
      9,
    );
    assert.equal(iso(small).fetch('tfdt')?.version, 0);
    assert.equal(iso(small).fetch('tfdt')?.baseMediaDecodeTime, 14);

    // Two trafs of the track in one moof: both grow, the moof by 8; the first traf's runs are moof-relative (+8),
    // the second traf (no default-base-is-moof, no data_offset) follows the first one's data and needs nothing.
    const two = part({
      trafs: [
        { tfdt: 0xffffffff, tfdtVersion: 0, runs: [{ at: 0, samples: [{ size: 3, duration: 5, flags: SYNC }] }] },
        { tfdt: 0xffffffff, tfdtVersion: 0, baseIsMoof: false, runs: [{ samples: [{ size: 4, duration: 5 }] }] },
      ],
      payloadSize: 7,
    });
    const shifted = shiftTfdt(two, 1);
    assert.equal(shifted.length, two.length + 8);
    const a = iso(two);
    const b = iso(shifted);
    assert.deepEqual(
      b.fetchAll('tfdt').map((t) => [t.version, t.baseMediaDecodeTime]),
      [
        [1, 2 ** 32],
        [1, 2 ** 32],
      ],
    );
    assert.deepEqual(
      b.fetchAll('trun').map((t) => t.data_offset),
      a.fetchAll('trun').map((t) => (t.data_offset === undefined ? undefined : (t.data_offset as number) + 8)),
    );
    const [ia, ib] = [indexBuffer(concat(inits.index, two)), indexBuffer(concat(inits.index, shifted))];
    assert.deepEqual(
      ib.segments.map((s) => [s.start, s.duration, s.samples, s.size]),
      ia.segments.map((s) => [s.start + 1, s.duration, s.samples, s.size + 8]),
    );
    const [qa, qb] = await Promise.all([
      packets(file('two.mp4', inits.probe, two), false),
      packets(file('two-shifted.mp4', inits.probe, shifted), false),
    ]);
    assert.equal(qa.length, 2);
    assert.deepEqual(
      qb.map((l) => l.split(',').slice(2)),
      qa.map((l) => l.split(',').slice(2)),
      'same sizes, flags and bytes',
    );
  });

  it('shifts a moof alone, leaves everything but the tfdt as it was, and refuses what it cannot shift', () => {
    const f = part({ trafs: [{ tfdt: 0xfffffffe, tfdtVersion: 0, runs: [{ at: 0, samples: [{ size: 3 }] }] }] });
    const moof = f.subarray(0, moofEnd(f));
    const whole = shiftTfdt(f, 10);
    assert.deepEqual(shiftTfdt(moof, 10), whole.subarray(0, moof.length + 4));
    assert.deepEqual(shiftTfdt(f, 0), f);
    const m = fixtures.video as Media;
    const p = m.part(m.segments[1]!);
    const q = shiftTfdt(p, 1234);
    const diff = [...p.keys()].filter((i) => p[i] !== q[i]);
    const tfdtAt = Buffer.from(p).indexOf('tfdt') - 4;
    assert.ok(diff.length > 0 && diff.every((i) => i >= tfdtAt + 12 && i < tfdtAt + 20), 'only the tfdt time');

    for (const delta of [-1, 0.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => shiftTfdt(f, delta), code('BMFF_UNSUPPORTED'), `delta ${delta}`);
    }
    const late = part({ trafs: [{ tfdt: 2 ** 53 - 10, runs: [{ at: 0, samples: [{ size: 3 }] }] }] });
    assert.throws(() => shiftTfdt(late, 10), code('BMFF_UNSUPPORTED'), 'past 2^53');
    assert.throws(() => shiftTfdt(setTfhdFlag(f, 0x000001), 2 ** 32), code('BMFF_UNSUPPORTED'), 'base_data_offset');
    assert.doesNotThrow(() => shiftTfdt(setTfhdFlag(f, 0x000001), 1), 'no growth: base_data_offset stays right');
    const noTfdt = part({ trafs: [{ tfdt: undefined, runs: [{ at: 0, samples: [{ size: 3 }] }] }] });
    assert.throws(() => shiftTfdt(noTfdt, 1), code('BMFF_MALFORMED'), 'no tfdt');
    assert.throws(() => shiftTfdt(box('mdat', [1]), 1), code('BMFF_MALFORMED'), 'no moof');
    assert.throws(() => shiftTfdt(part({ trafs: [] }), 1), code('BMFF_MALFORMED'), 'no traf');
    assert.throws(() => shiftTfdt(concat(f, f), 1), code('BMFF_UNSUPPORTED'), 'two fragments');
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Fuzz

const CASES = Number(process.env.SMOOTHCAST_FUZZ_CASES ?? 3000);
const SEED = Number(process.env.SMOOTHCAST_FUZZ_SEED ?? 0x3e76e);
// Generous: a pathological input (a quadratic walk, 100k samples read again and again) takes seconds, while a loaded
// machine (the whole suite runs files in parallel) can stall one ordinary case past 200 ms.
const CASE_LIMIT_MS = 1000;

/** Offsets of every byte of the boxes of `f` outside mdat payloads (where a mutation changes the structure). */
function structure(f: Uint8Array): number[] {
  const v = new DataView(f.buffer, f.byteOffset, f.byteLength);
  const out: number[] = [];
  const walk = (start: number, end: number) => {
    end = Math.min(end, f.length);
    for (let at = start; at + 8 <= end; ) {
      const size = v.getUint32(at);
      const type = String.fromCharCode(...f.subarray(at + 4, at + 8));
      const largesize = at + 16 <= end ? Number(v.getBigUint64(at + 8)) : 0;
      // A damaged size (0 and 1 resolved) below a header's 8 bytes: take the rest as one box.
      const realSize = Math.max(size === 1 ? largesize : size || end - at, 8);
      const last = type === 'mdat' ? at + 16 : at + realSize;
      for (let i = at; i < Math.min(last, end); i++) out.push(i);
      if (type === 'moof' || type === 'traf') walk(at + 8, at + realSize);
      at += realSize;
    }
  };
  walk(0, f.length);
  return out;
}

type Mutation = (f: Uint8Array, random: () => number) => Uint8Array;
const pick = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;

const mutations: Mutation[] = [
  (f, random) => {
    const at = pick(random, structure(f));
    f[at] = (f[at] ?? 0) ^ (1 << Math.floor(random() * 8));
    return f;
  },
  (f, random) => {
    const at = pick(random, structure(f)) & ~3;
    const value = pick(random, [0, 1, 4, 8, 0x7fffffff, 0x80000000, 0xffffffff, Math.floor(random() * 2 ** 32)]);
    if (at + 4 <= f.length) new DataView(f.buffer, f.byteOffset).setUint32(at, value >>> 0);
    return f;
  },
  (f, random) => {
    const at = pick(random, structure(f));
    const delta = pick(random, [-8, -4, -1, 1, 4, 8, 16]);
    if (at + 4 <= f.length) {
      const v = new DataView(f.buffer, f.byteOffset);
      v.setUint32(at, (v.getUint32(at) + delta) >>> 0);
    }
    return f;
  },
  (f, random) => f.subarray(0, Math.floor(random() * f.length)),
  (f, random) => {
    const at = pick(random, structure(f));
    const n = 1 + Math.floor(random() * 12);
    return random() < 0.5 ? concat(f.subarray(0, at), f.subarray(at + n)) : concat(f.subarray(0, at), f.subarray(at));
  },
];

function mutate(f: Uint8Array, random: () => number): Uint8Array {
  let out = f.slice();
  const count = 1 + Math.floor(random() * 3);
  for (let i = 0; i < count && structure(out).length > 0; i++) out = pick(random, mutations)(out, random).slice();
  return out;
}

/** Indexes init + parts when that works: the input is then valid for our reader too. */
function indexed(initBytes: Uint8Array, parts: Uint8Array[]): Segment[] | undefined {
  try {
    const { segments } = indexBuffer(concat(initBytes, ...parts));
    return segments.length === parts.length ? segments : undefined;
  } catch {
    return undefined;
  }
}

function expectBmff(err: unknown, context: string): 'BMFF_MALFORMED' | 'BMFF_UNSUPPORTED' {
  if (err instanceof SmoothcastError && (err.code === 'BMFF_MALFORMED' || err.code === 'BMFF_UNSUPPORTED')) {
    return err.code;
  }
  assert.fail(`${context}: threw ${err instanceof Error ? err.stack : String(err)}`);
}

describe('fuzz', () => {
  interface Seed {
    init: Uint8Array;
    track: TrackInfo;
    parts: Uint8Array[];
  }
  const seeds: Seed[] = [];
  before(() => {
    for (const m of [fixtures.video, fixtures.audio] as Media[]) {
      seeds.push({ init: m.init, track: m.track, parts: m.groups[0]!.slice(0, 3).map(m.part) });
    }
    const initBytes = syntheticInit({ duration: 7, size: 2, flags: NON_SYNC }).index;
    seeds.push({
      init: initBytes,
      track: indexBuffer(initBytes).track,
      parts: [
        part({
          trafs: [
            {
              tfdt: 100,
              tfdtVersion: 0,
              defaults: { duration: 10 },
              runs: [{ at: 1, samples: [{ size: 3, flags: SYNC }, { size: 4 }] }, { samples: [{ size: 2 }] }],
            },
          ],
        }),
        part({ sequence: 2, mdat: 'large', trafs: [{ tfdt: 130, runs: [{ at: 0, samples: [{}, {}, {}] }] }] }),
      ],
    });
  });

  it(`${CASES} mutated inputs to mergeFragments and shiftTfdt end in a valid result or a BMFF_* error`, (t) => {
    const random = prng(SEED);
    const outcomes = { merged: 0, shifted: 0, BMFF_MALFORMED: 0, BMFF_UNSUPPORTED: 0 };
    let slowest = 0;
    for (let n = 0; n < CASES; n++) {
      const s = pick(random, seeds);
      const parts = s.parts.slice();
      const victim = Math.floor(random() * parts.length);
      parts[victim] = mutate(parts[victim]!, random);
      const context = `case ${n} (seed ${seeds.indexOf(s)}, part ${victim})`;
      const t0 = performance.now();
      const valid = indexed(s.init, parts);

      let merged: Uint8Array | undefined;
      try {
        merged = mergeFragments(parts, s.track);
        outcomes.merged++;
      } catch (err) {
        outcomes[expectBmff(err, `${context} merge`)]++;
      }
      if (merged) {
        // A merged fragment is a fixed point of the merge, and indexes as one segment covering every part.
        assert.deepEqual(mergeFragments([merged], s.track), merged, `${context}: merge of the merge`);
        if (valid) {
          const [g, ...rest] = indexBuffer(concat(s.init, merged)).segments;
          assert.ok(g && rest.length === 0, context);
          assert.deepEqual(
            [g.start, g.duration, g.samples, g.startsWithKeyframe],
            [
              valid[0]!.start,
              valid.reduce((a, v) => a + v.duration, 0),
              valid.reduce((a, v) => a + v.samples, 0),
              valid[0]!.startsWithKeyframe,
            ],
            context,
          );
        }
      }

      const delta = pick(random, [0, 1, 2 ** 32, Math.floor(random() * 2 ** 40)]);
      try {
        const shifted = shiftTfdt(parts[victim]!, delta);
        outcomes.shifted++;
        const before = valid?.[victim];
        if (before) {
          const [g] = indexBuffer(concat(s.init, shifted)).segments;
          assert.deepEqual(
            [g?.start, g?.duration, g?.samples],
            [before.start + delta, before.duration, before.samples],
            `${context}: shift by ${delta}`,
          );
        }
      } catch (err) {
        outcomes[expectBmff(err, `${context} shift`)]++;
      }
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      assert.ok(ms < CASE_LIMIT_MS, `${context}: took ${ms.toFixed(1)} ms`);
    }
    // Each outcome must occur, or the mutations are not reaching the code.
    const all = JSON.stringify(outcomes);
    assert.ok(outcomes.merged > CASES / 50 && outcomes.shifted > CASES / 20, all);
    assert.ok(outcomes.BMFF_MALFORMED > CASES / 20 && outcomes.BMFF_UNSUPPORTED > CASES / 300, all);
    t.diagnostic(`seed ${SEED}: ${JSON.stringify(outcomes)}, slowest case ${slowest.toFixed(1)} ms`);
  });
});
