// FragmentIndexer on hand-built files: every box rule it relies on (ISO/IEC 14496-12 §4.2, §8.8) and every refusal.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import { FragmentIndexer, indexBuffer } from './index.ts';
import {
  ascii,
  box,
  concat,
  fragment,
  fullBox,
  init,
  largeBox,
  type SampleSpec,
  trak,
  u32,
  visualEntry,
} from './testing.ts';

const SYNC = 0x02000000; // sample_depends_on = 2 (I picture), sync
const NON_SYNC = 0x01010000; // sample_depends_on = 1, sample_is_non_sync_sample

function bmffError(code: string, message?: RegExp) {
  return (err: unknown) =>
    err instanceof SmoothcastError && err.code === code && (!message || message.test(err.message));
}

function sizeAt(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at);
}

/** [moof, mdat] of a fragment(). */
function split(f: Uint8Array): [Uint8Array, Uint8Array] {
  const n = sizeAt(f, 0);
  return [f.subarray(0, n), f.subarray(n)];
}

function gop(n: number, duration = 3000): SampleSpec[] {
  return Array.from({ length: n }, (_, i) => ({ duration, size: 100 + i, flags: i === 0 ? SYNC : NON_SYNC }));
}

describe('indexBuffer on synthetic files', () => {
  it('reads the track and each fragment', () => {
    const head = init({ timescale: 90000 });
    const f1 = fragment({ sequence: 1, tfdt: 0, samples: gop(4) });
    const f2 = fragment({ sequence: 2, tfdt: 12000, samples: gop(3) });
    const { track, segments } = indexBuffer(concat(head, f1, f2));
    assert.equal(track.kind, 'video');
    assert.equal(track.codec, 'avc1.64001F');
    assert.deepEqual([track.width, track.height, track.timescale, track.initSize], [640, 360, 90000, head.length]);
    assert.deepEqual(segments, [
      {
        start: 0,
        duration: 12000,
        offset: head.length,
        size: f1.length,
        samples: 4,
        startsWithKeyframe: true,
        presentationStart: 0,
      },
      {
        start: 12000,
        duration: 9000,
        offset: head.length + f1.length,
        size: f2.length,
        samples: 3,
        startsWithKeyframe: true,
        presentationStart: 12000,
      },
    ]);
  });

  it('prefers the AudioSpecificConfig over the audio sample entry', () => {
    const { track } = indexBuffer(init({ kind: 'audio', timescale: 48000 }));
    assert.deepEqual([track.kind, track.codec, track.sampleRate, track.channels], ['audio', 'mp4a.40.2', 48000, 2]);
    assert.deepEqual([...track.codecConfig], [0x11, 0x90]);
  });

  it('takes durations and flags from trun, else tfhd, else trex (§8.8.7)', () => {
    const head = init({ trex: { duration: 1000, size: 50, flags: NON_SYNC } });
    const trexOnly = fragment({ tfdt: 0, samples: [{ size: 50 }, { size: 50 }] });
    const tfhd = fragment({ tfdt: 2000, samples: [{ size: 10 }, { size: 10 }], tfhd: { duration: 1500, flags: SYNC } });
    const first = fragment({
      tfdt: 5000,
      samples: gop(2).map((s) => ({ ...s, flags: NON_SYNC })),
      firstSampleFlags: SYNC,
    });
    const { segments } = indexBuffer(concat(head, trexOnly, tfhd, first));
    assert.deepEqual(
      segments.map((s) => [s.duration, s.startsWithKeyframe]),
      [
        [2000, false],
        [3000, true],
        [6000, true],
      ],
    );
  });

  it('composition offsets: signed in trun version 1, unsigned in version 0', () => {
    const head = init();
    const v1 = fragment({ tfdt: 9000, trunVersion: 1, samples: [{ size: 10, cto: -1024 }] });
    const v0 = fragment({ tfdt: 9000, trunVersion: 0, samples: [{ size: 10, cto: 1024 }] });
    assert.equal(indexBuffer(concat(head, v1)).segments[0]?.presentationStart, 9000 - 1024);
    assert.equal(indexBuffer(concat(head, v0)).segments[0]?.presentationStart, 9000 + 1024);
  });

  it('64-bit largesize boxes and a final mdat of size 0', () => {
    const head = init();
    const large = fragment({ tfdt: 0, samples: gop(2), mdat: 'large' });
    const zero = fragment({ tfdt: 6000, samples: gop(2), mdat: 'zero' });
    const { segments } = indexBuffer(concat(head, large, zero));
    assert.deepEqual(
      segments.map((s) => [s.offset, s.size, s.samples]),
      [
        [head.length, large.length, 2],
        [head.length + large.length, zero.length, 2],
      ],
    );
    // A largesize moov.
    const ftypSize = sizeAt(head, 0);
    const bigMoov = concat(head.subarray(0, ftypSize), largeBox('moov', head.subarray(ftypSize + 8)), large);
    assert.equal(indexBuffer(bigMoov).segments.length, 1);
    // A moov of size 0 ends the file: a track, no fragments.
    const zeroMoov = concat(head.subarray(0, ftypSize), u32(0), head.subarray(ftypSize + 4));
    const onlyMoov = indexBuffer(zeroMoov);
    assert.deepEqual([onlyMoov.track.initSize, onlyMoov.segments.length], [head.length, 0]);
    // After a final mdat of size 0 the whole file is indexed.
    const ix = new FragmentIndexer();
    const file = concat(head, large, zero);
    for (let r = ix.next(file.length); r; r = ix.next(file.length)) ix.push(r.offset, file.subarray(r.offset));
    assert.equal(ix.position, file.length);
    assert.equal(ix.next(file.length + 100), null);
  });

  it('counts styp/prft/emsg right before a moof into its segment; skips sidx, free, mfra and unknown boxes', () => {
    const head = init();
    const sidx = fullBox('sidx', 0, 0, u32(1), u32(90000), u32(0), u32(0), u32(0));
    const styp = box('styp', ascii('msdh'), u32(0), ascii('msdh'));
    const prft = fullBox('prft', 1, 0, u32(1), u32(0), u32(0), u32(0), u32(0));
    const emsg = fullBox('emsg', 0, 0, [0], [0], u32(90000), u32(0), u32(0), u32(1));
    const f1 = fragment({ tfdt: 0, samples: gop(2) });
    const f2 = fragment({ tfdt: 6000, samples: gop(2) });
    const free = box('free', [1, 2, 3]);
    const mfra = box('mfra', fullBox('mfro', 0, 0, u32(16)));
    const file = concat(head, sidx, styp, prft, emsg, f1, free, box('abcd'), styp, f2, mfra);
    const { segments } = indexBuffer(file);
    const first = head.length + sidx.length;
    assert.deepEqual(
      segments.map((s) => [s.offset, s.size]),
      [
        [first, styp.length + prft.length + emsg.length + f1.length],
        [file.length - mfra.length - f2.length - styp.length, styp.length + f2.length],
      ],
    );
  });

  it('sums samples over several trafs and truns of the one track', () => {
    const head = init({ trex: { duration: 1000, flags: SYNC } });
    const trun = (n: number, offset: number) =>
      fullBox('trun', 0, 0x201, u32(n), u32(offset), ...Array(n).fill(u32(4)));
    const tfhd = fullBox('tfhd', 0, 0x020000, u32(1));
    const tfdt = fullBox('tfdt', 0, 0, u32(7));
    const moofLength = box(
      'moof',
      box('traf', tfhd, tfdt, trun(2, 0), trun(1, 0)),
      box('traf', tfhd, trun(3, 0)),
    ).length;
    const base = moofLength + 8;
    const moof = box(
      'moof',
      box('traf', tfhd, tfdt, trun(2, base), trun(1, base + 8)),
      box('traf', tfhd, trun(3, base + 12)),
    );
    const file = concat(head, moof, box('mdat', new Uint8Array(24)));
    assert.deepEqual(indexBuffer(file).segments[0], {
      start: 7,
      duration: 6000,
      offset: head.length,
      size: moof.length + 32,
      samples: 6,
      startsWithKeyframe: true,
      presentationStart: 7,
    });
  });
});

describe('indexBuffer refusals', () => {
  const head = init();
  const ok = fragment({ tfdt: 0, samples: gop(2) });
  const cases: [string, () => unknown, string, RegExp?][] = [
    ['a second trak', () => indexBuffer(init({ extra: [trak({ trackId: 2 })] })), 'BMFF_UNSUPPORTED', /single-track/],
    ['no mvex', () => indexBuffer(init({ mvex: false })), 'BMFF_UNSUPPORTED', /fragmented/],
    [
      'a moof without tfdt',
      () => indexBuffer(concat(head, fragment({ tfdt: undefined, samples: gop(2) }))),
      'BMFF_MALFORMED',
      /no tfdt/,
    ],
    ['a moof before the moov', () => indexBuffer(concat(ok, head)), 'BMFF_MALFORMED', /before the moov/],
    ['no moov at all', () => indexBuffer(box('ftyp', ascii('iso6'), u32(0))), 'BMFF_MALFORMED', /no moov/],
    [
      'a traf of another track',
      () => indexBuffer(concat(head, fragment({ tfdt: 0, trackId: 2, samples: gop(1) }))),
      'BMFF_UNSUPPORTED',
    ],
    [
      'a moof not followed by mdat',
      () => indexBuffer(concat(head, split(ok)[0], box('free'), split(ok)[1])),
      'BMFF_UNSUPPORTED',
      /not by an mdat/,
    ],
    [
      'bytes that are not ISO-BMFF (an MPEG-TS packet)',
      () => indexBuffer(Uint8Array.from([0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xb0, 0x0d, ...new Uint8Array(180)])),
      'BMFF_MALFORMED',
      /not an ISO-BMFF box/,
    ],
    ['a box of size 4', () => indexBuffer(concat(head, u32(4), ascii('free'))), 'BMFF_MALFORMED', /size 4/],
    [
      'an unsupported sample entry',
      () => indexBuffer(init({ entry: box('vp09', new Uint8Array(78)) })),
      'BMFF_UNSUPPORTED',
      /vp09/,
    ],
    [
      'an encrypted sample entry',
      () => indexBuffer(init({ entry: visualEntry('encv', new Uint8Array(4)) })),
      'BMFF_UNSUPPORTED',
      /encrypted/,
    ],
    [
      'hvc1 without hvcC',
      () => indexBuffer(init({ entry: visualEntry('hvc1', new Uint8Array(4)) })),
      'BMFF_MALFORMED',
      /hvcC/,
    ],
    ['a moov over maxBoxSize', () => indexBuffer(head, { maxBoxSize: 100 }), 'BMFF_UNSUPPORTED', /limit/],
    [
      'more segments than maxSegments',
      () => indexBuffer(concat(head, ok, ok), { maxSegments: 1 }),
      'BMFF_UNSUPPORTED',
      /segments/,
    ],
    [
      'more samples than maxSamplesPerFragment',
      () => indexBuffer(concat(head, ok), { maxSamplesPerFragment: 1 }),
      'BMFF_UNSUPPORTED',
      /samples/,
    ],
  ];
  for (const [name, run, code, message] of cases) {
    it(name, () => assert.throws(run, bmffError(code, message)));
  }

  it('a trun claiming more samples than its bytes hold', () => {
    const bad = fragment({ tfdt: 0, samples: gop(2) });
    const trun = bad.findIndex((_, i) => String.fromCharCode(...bad.subarray(i, i + 4)) === 'trun');
    bad.set(u32(0x40000000), trun + 8); // sample_count
    assert.throws(() => indexBuffer(concat(head, bad)), bmffError('BMFF_MALFORMED', /sample_count/));
  });

  it('sample data outside the mdat', () => {
    const bad = fragment({ tfdt: 0, samples: gop(2) });
    const trun = bad.findIndex((_, i) => String.fromCharCode(...bad.subarray(i, i + 4)) === 'trun');
    bad.set(u32(4), trun + 12); // data_offset into the moof itself
    assert.throws(() => indexBuffer(concat(head, bad)), bmffError('BMFF_MALFORMED', /outside the mdat/));
  });
});

describe('FragmentIndexer protocol', () => {
  const head = init();
  const f1 = fragment({ tfdt: 0, samples: gop(2) });
  const file = concat(head, f1);

  it('push() must answer the last next()', () => {
    const ix = new FragmentIndexer();
    assert.throws(() => ix.push(0, file), bmffError('INTERNAL'));
    const r = ix.next(file.length);
    assert.ok(r);
    assert.throws(() => ix.push(r.offset + 1, file), bmffError('INTERNAL'));
  });

  it('after a short read it asks again only once the file has grown', () => {
    const ix = new FragmentIndexer();
    let r = ix.next(file.length);
    assert.ok(r);
    ix.push(r.offset, file.subarray(0, 4)); // the file was shorter than its reported size
    assert.equal(ix.next(file.length), null);
    r = ix.next(file.length + 1);
    assert.deepEqual(r, { offset: 0, length: 16 });
  });

  it('a failure is sticky', () => {
    const ix = new FragmentIndexer();
    const bad = concat(u32(3), ascii('ftyp'));
    const r = ix.next(bad.length);
    assert.ok(r);
    assert.throws(() => ix.push(r.offset, bad), bmffError('BMFF_MALFORMED'));
    assert.throws(() => ix.next(bad.length), bmffError('BMFF_MALFORMED'));
  });

  it('reads box headers and moov/moof bodies only, two reads per fragment', () => {
    const frags = [0, 1, 2, 3].map((i) => fragment({ tfdt: i * 6000, samples: gop(2) }));
    const whole = concat(head, ...frags);
    const ix = new FragmentIndexer();
    const reads: [number, number][] = [];
    for (let r = ix.next(whole.length); r; r = ix.next(whole.length)) {
      reads.push([r.offset, r.length]);
      ix.push(r.offset, whole.subarray(r.offset, r.offset + r.length));
    }
    assert.equal(ix.segments.length, 4);
    assert.equal(ix.position, whole.length);
    // ftyp header, moov header, moov body, then per fragment: moof header, moof body (+ mdat header).
    assert.equal(reads.length, 3 + 2 * 4);
    const read = reads.reduce((n, [, l]) => n + l, 0);
    const moofs = frags.reduce((n, f) => n + split(f)[0].length, 0);
    assert.ok(read <= 16 * 3 + head.length + moofs + 32 * 4, `read ${read} bytes`);
  });
});
