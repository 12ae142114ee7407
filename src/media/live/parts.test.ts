import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import type { Segment } from '../types.ts';
import { type BoundarySource, gridBoundaries, groupParts, type LiveSegment, LiveTimeline } from './parts.ts';
import { fragments, ladderAudio, ladderVideo, rng } from './testing.ts';

const V = 15360; // video timescale
const A = 48000;

describe('groupParts: video', () => {
  it('makes a segment of each run from one keyframe part to the next; the last stays open', () => {
    const segs = groupParts(ladderVideo(3), { timescale: V });
    assert.deepEqual(
      segs.map((s) => [s.msn, s.start, s.duration, s.parts.length, s.complete]),
      [
        [0, 0, 30720, 6, true],
        [1, 30720, 30720, 6, true],
        [2, 61440, 30720, 6, false],
      ],
    );
    const s1 = segs[1]!;
    assert.deepEqual(s1.parts[0], {
      index: 0,
      start: 30720,
      duration: 5632,
      offset: 6800,
      size: 1000,
      independent: true,
      samples: s1.parts[0]!.samples,
    });
    assert.equal(
      s1.samples,
      s1.parts.reduce((n, p) => n + p.samples, 0),
    );
    assert.deepEqual(
      s1.parts.map((p) => [p.index, p.independent]),
      [0, 1, 2, 3, 4, 5].map((i) => [i, i === 0]),
    );
    assert.equal(s1.offset, 6800);
    assert.equal(s1.size, 6000);
    assert.equal(s1.discontinuity, false);
    assert.equal(groupParts(ladderVideo(3), { timescale: V, ended: true }).at(-1)!.complete, true);
  });

  it('closes a segment only when the next keyframe part arrives', () => {
    const t = new LiveTimeline({ timescale: V });
    const f = ladderVideo(2);
    t.append(f.slice(0, 6));
    assert.equal(t.segments.length, 1);
    assert.equal(t.segments[0]!.complete, false);
    assert.equal(t.maxSegmentDuration, 0);
    t.append(f.slice(6, 7));
    assert.equal(t.segments[0]!.complete, true);
    assert.equal(t.maxSegmentDuration, 30720);
    assert.equal(t.maxPartDuration, 5632);
    assert.deepEqual(t.lastPart(), { msn: 1, index: 0 });
    assert.equal(t.fragmentCount, 7);
    t.end();
    assert.equal(t.segments[1]!.complete, true);
    assert.equal(t.nextPart(), undefined);
    assert.throws(() => t.append(f.slice(7)), SmoothcastError);
  });

  it('gives the same result appended one fragment at a time as all at once', () => {
    const f = ladderVideo(5);
    const t = new LiveTimeline({ timescale: V });
    for (const x of f) t.append([x]);
    assert.deepEqual(t.segments, groupParts(f, { timescale: V }));
  });

  it('predicts the next part: a new segment once the open one has as many parts as the last one', () => {
    const t = new LiveTimeline({ timescale: V });
    assert.deepEqual(t.nextPart(), { msn: 0, index: 0 });
    const f = ladderVideo(3);
    t.append(f.slice(0, 9));
    assert.deepEqual(t.nextPart(), { msn: 1, index: 3 });
    t.append(f.slice(9, 12));
    assert.deepEqual(t.nextPart(), { msn: 2, index: 0 });
  });

  it('refuses media time that goes backwards or parts that overlap', () => {
    const f = ladderVideo(1);
    const t = new LiveTimeline({ timescale: V });
    t.append(f);
    assert.throws(
      () => t.append([{ ...f[0]!, start: 100, offset: 99_999 }]),
      (e: unknown) => e instanceof SmoothcastError && e.code === 'LIVE_TIMELINE_INVALID',
    );
    const u = new LiveTimeline({ timescale: V });
    u.append(f.slice(0, 2));
    assert.throws(() => u.append([{ ...f[2]!, offset: f[1]!.offset }]), /overlaps/);
  });
});

describe('discontinuities', () => {
  it('marks the first segment after a tfdt jump and counts the discontinuity sequence', () => {
    const f = [...ladderVideo(2), ...ladderVideo(2, 90 * V).map((s) => ({ ...s, offset: s.offset + 12_000 }))];
    const segs = groupParts(f, { timescale: V });
    assert.deepEqual(
      segs.map((s) => [s.msn, s.discontinuity, s.discontinuitySequence]),
      [
        [0, false, 0],
        [1, false, 0],
        [2, true, 1],
        [3, false, 1],
      ],
    );
    assert.equal(segs[1]!.complete, true, 'the segment before a jump closes at the jump');
  });

  it('starts a segment at a listed resume time or after markDiscontinuity, even without a tfdt jump', () => {
    const f = ladderVideo(4);
    const listed = groupParts(f, { timescale: V, discontinuities: [4] });
    assert.deepEqual(
      listed.map((s) => s.discontinuity),
      [false, false, true, false],
    );
    const t = new LiveTimeline({ timescale: V });
    t.markDiscontinuity(); // before the first fragment: nothing to be discontinuous with
    t.append(f.slice(0, 9));
    t.markDiscontinuity();
    t.append(f.slice(9)); // a non-keyframe part: the discontinuity still opens a segment
    assert.deepEqual(
      t.segments.map((s) => [s.msn, s.discontinuity, s.parts.length]),
      [
        [0, false, 6],
        [1, false, 3],
        [2, true, 3],
        [3, false, 6],
        [4, false, 6],
      ],
    );
  });

  it('treats tfdt jitter within the tolerance as continuous', () => {
    const f = fragments([
      { duration: 5632, key: true },
      { duration: 5632, key: false, gap: 3 },
    ]);
    assert.equal(groupParts(f, { timescale: V }).length, 1);
    assert.equal(groupParts(f, { timescale: V, gapTolerance: 1 }).length, 2);
  });
});

describe('groupParts: audio on the video boundaries', () => {
  const boundaries = [0, 2, 4, 6, 8, 10];
  it('starts audio segment n at the part nearest to video boundary n, with the same msn', () => {
    const segs = groupParts(ladderAudio(30), { timescale: A, boundaries, ended: true });
    const half = 16384 / A / 2;
    for (const s of segs) {
      assert.ok(Math.abs(s.start / A - boundaries[s.msn]!) <= half + 1e-9, `segment ${s.msn} starts at ${s.start / A}`);
      assert.ok(s.parts.every((p) => p.independent));
    }
    assert.deepEqual(
      segs.map((s) => s.msn),
      [0, 1, 2, 3, 4, 5],
    );
  });

  it('cuts audio that starts late on the boundaries all the same, numbering its own segments from 0', () => {
    const segs = groupParts(ladderAudio(12, 3.1 * A), { timescale: A, boundaries });
    assert.deepEqual(
      segs.map((s) => s.msn),
      [0, 1, 2],
    );
    // The first one ends on the boundary at 4 s (its parts start at 3.1 s).
    assert.ok(Math.abs(segs[1]!.start / A - 4) < 0.33, `second segment starts at ${segs[1]!.start / A} s`);
  });

  it('holds audio parts back until the video timeline has passed them', () => {
    const video = new LiveTimeline({ timescale: V });
    const audio = new LiveTimeline({ timescale: A, boundaries: video });
    const vf = ladderVideo(3);
    const af = ladderAudio(17);
    audio.append(af.slice(0, 4)); // 0 – 1.37 s; video has nothing yet
    assert.equal(audio.segments.length, 0);
    video.append(vf.slice(0, 4)); // video edge 1.47 s
    assert.equal(audio.segments[0]!.parts.length, 4);
    audio.append(af.slice(4, 12)); // up to 4.1 s
    assert.equal(audio.segments.length, 1, 'the boundary at 2 s is not known yet');
    video.append(vf.slice(4, 13)); // edge 4.37 s: boundaries 0, 2, 4
    assert.deepEqual(
      audio.segments.map((s) => [s.msn, s.parts.length, s.complete]),
      [
        [0, 6, true],
        [1, 6, false],
      ],
    );
    video.end();
    audio.append(af.slice(12));
    audio.end();
    assert.deepEqual(audio.segments, groupParts(af, { timescale: A, boundaries: [0, 2, 4], ended: true }));
  });

  it('cuts audio-only renditions on a fixed grid', () => {
    const segs = groupParts(ladderAudio(18), { timescale: A, boundaries: gridBoundaries(2), ended: true });
    assert.deepEqual(
      segs.map((s) => [s.msn, s.parts.length]),
      [
        [0, 6],
        [1, 6],
        [2, 6],
      ],
    );
  });

  it('looks each boundary up a bounded number of times (appending stays O(new))', () => {
    let calls = 0;
    const src: BoundarySource = {
      boundaryCount: 10_000,
      boundary: (n) => {
        calls++;
        return 2 * n;
      },
      knownUntil: Number.POSITIVE_INFINITY,
    };
    const t = new LiveTimeline({ timescale: A, boundaries: src });
    const af = ladderAudio(30_000);
    for (let i = 0; i < af.length; i += 3) t.append(af.slice(i, i + 3));
    assert.ok(calls < 2 * af.length, `${calls} lookups for ${af.length} parts`);
    assert.equal(t.segments.length, Math.ceil((30_000 * 16384) / A / 2));
  });
});

describe('window', () => {
  const t = new LiveTimeline({ timescale: V });
  t.append(ladderVideo(10).slice(0, 57)); // 9 complete segments and 3 parts of the tenth
  it('lists the segments ending within the DVR window, keeping their msn', () => {
    const w = t.window(5);
    assert.deepEqual(
      w.map((s) => s.msn),
      [7, 8, 9],
    );
    assert.deepEqual(
      t.window(0).map((s) => s.msn),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.equal(t.window(1000).length, 10);
  });
  it('keeps at least minSeconds of media', () => {
    assert.deepEqual(
      t.window(1, 6).map((s) => s.msn),
      [6, 7, 8, 9],
    );
  });
});

/** Random fragments: keyframe runs of random length, random part durations, now and then a tfdt jump. */
function randomFragments(r: () => number, n: number): Segment[] {
  return fragments(
    Array.from({ length: n }, (_, i) => {
      // A restarted encoder begins with a keyframe.
      const gap = r() < 0.03 ? 100 + Math.floor(r() * 200_000) : 0;
      return {
        duration: 1 + Math.floor(r() * 9000),
        key: i === 0 || gap > 0 || r() < 0.2,
        gap,
        size: 1 + Math.floor(r() * 5000),
      };
    }),
    Math.floor(r() * 1e6),
  );
}

function checkInvariants(segs: readonly LiveSegment[], f: readonly Segment[], ended: boolean): void {
  assert.equal(
    segs.reduce((n, s) => n + s.parts.length, 0),
    f.length,
    'every fragment is one part',
  );
  let k = 0;
  segs.forEach((s, i) => {
    if (i > 0) assert.equal(s.msn, segs[i - 1]!.msn + 1, 'msn contiguous');
    assert.equal(s.complete, ended || i < segs.length - 1);
    s.parts.forEach((p, j) => {
      const x = f[k++]!;
      assert.deepEqual([p.index, p.start, p.duration, p.offset, p.size], [j, x.start, x.duration, x.offset, x.size]);
      if (j > 0) assert.equal(p.start, s.parts[j - 1]!.start + s.parts[j - 1]!.duration, 'no jump inside a segment');
    });
    const last = s.parts.at(-1)!;
    assert.equal(s.start, s.parts[0]!.start);
    assert.equal(s.duration, last.start + last.duration - s.start);
    assert.equal(s.size, last.offset + last.size - s.offset);
  });
}

describe('properties over random fragment sequences', () => {
  it('video: segments start with an independent part, msn contiguous, every fragment one part', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const r = rng(seed);
      const f = randomFragments(r, 1 + Math.floor(r() * 300));
      const t = new LiveTimeline({ timescale: V });
      for (let i = 0; i < f.length; ) {
        const n = 1 + Math.floor(r() * 7);
        t.append(f.slice(i, i + n));
        i += n;
      }
      const ended = r() < 0.5;
      if (ended) t.end();
      checkInvariants(t.segments, f, ended);
      for (const s of t.segments) assert.ok(s.parts[0]!.independent, `seed ${seed}: msn ${s.msn}`);
      assert.deepEqual(t.segments, groupParts(f, { timescale: V, ended }), `seed ${seed}: incremental = one-shot`);
      const longest = Math.max(...f.map((x) => x.duration));
      assert.equal(t.maxPartDuration, longest);
      // The window never holds more than dvr + one segment of media.
      const dvr = r() * 20;
      const w = t.window(dvr);
      const span = (t.edge - w[0]!.start) / V;
      assert.ok(span < dvr + w[0]!.duration / V + 1e-9, `seed ${seed}: ${span} s for a ${dvr} s window`);
      assert.equal(w.at(-1), t.segments.at(-1));
      if (w.length > 1) assert.ok((t.edge - w[1]!.start) / V <= dvr, `seed ${seed}: the window starts too early`);
    }
  });

  it('audio: the same invariants on random boundaries', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const r = rng(seed * 7919);
      const f = randomFragments(r, 1 + Math.floor(r() * 200)).map((x) => ({ ...x, startsWithKeyframe: false }));
      const bounds: number[] = [];
      for (let b = f[0]!.start / A - 1; bounds.length < 100; b += 0.1 + r() * 3) bounds.push(b);
      const segs = groupParts(f, { timescale: A, boundaries: bounds, ended: true });
      checkInvariants(segs, f, true);
      assert.ok(segs.every((s) => s.parts.every((p) => p.independent)));
    }
  });
});
