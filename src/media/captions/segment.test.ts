import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CaptionDoc,
  parseWebVtt,
  subtitleSegment,
  subtitleSegmentCount,
  subtitleSegmentDurations,
} from './index.ts';

const doc: CaptionDoc = {
  blocks: ['STYLE\n::cue { color: yellow; }'],
  cues: [
    { start: 0.5, end: 1.5, text: 'first' },
    { start: 3.5, end: 4.5, text: 'across the 4 s boundary', id: 'x' },
    { start: 4, end: 5, text: 'starts at the boundary' },
    { start: 7.9, end: 8, text: 'ends at the boundary' },
    { start: 9, end: 11, text: 'runs past the end' },
  ],
};

const texts = (vtt: string) => parseWebVtt(vtt).cues.map((c) => c.text);

describe('subtitle segments', () => {
  it('counts ceil(duration / D), at least 1', () => {
    assert.equal(subtitleSegmentCount(10, 4), 3);
    assert.equal(subtitleSegmentCount(8, 4), 2);
    assert.equal(subtitleSegmentCount(8.000001, 4), 3);
    assert.equal(subtitleSegmentCount(0, 4), 1);
    assert.equal(subtitleSegmentCount(0.3, 0.1), 3, 'no float error: 0.3 / 0.1 is 2.9999999999999996');
  });

  it('gives each segment D and the last the remainder, summing to the duration', () => {
    assert.deepEqual(subtitleSegmentDurations(10, 4), [4, 4, 2]);
    assert.deepEqual(subtitleSegmentDurations(8, 4), [4, 4]);
    assert.deepEqual(subtitleSegmentDurations(0, 6), [0]);
    const d = subtitleSegmentDurations(3600.0333, 6.006);
    assert.equal(d.length, 600);
    assert.ok(d.slice(0, -1).every((x) => x === 6.006));
    assert.equal(d.at(-1), 2.4393);
    assert.ok(Math.abs(d.reduce((a, b) => a + b, 0) - 3600.0333) < 1e-6);
  });

  it('puts every overlapping cue in a segment, a cue across a boundary in both, times unchanged', () => {
    assert.deepEqual(texts(subtitleSegment(doc, 0, 10, 4)), ['first', 'across the 4 s boundary']);
    assert.deepEqual(texts(subtitleSegment(doc, 1, 10, 4)), [
      'across the 4 s boundary',
      'starts at the boundary',
      'ends at the boundary',
    ]);
    // The last segment is [8, 10): shorter, and a cue ending at 8 is not in it.
    assert.deepEqual(texts(subtitleSegment(doc, 2, 10, 4)), ['runs past the end']);
    const again = parseWebVtt(subtitleSegment(doc, 1, 10, 4)).cues[0];
    assert.deepEqual(again, doc.cues[1]);
  });

  it('starts with the X-TIMESTAMP-MAP header and repeats the STYLE blocks', () => {
    const seg = subtitleSegment(doc, 2, 10, 4);
    assert.ok(seg.startsWith('WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\nSTYLE\n'), seg);
    assert.ok(
      subtitleSegment(doc, 0, 10, 4, 900_000).startsWith(
        'WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000\n\n',
      ),
    );
    assert.deepEqual(parseWebVtt(seg).blocks, doc.blocks);
  });

  it('is a valid empty file for a segment without cues', () => {
    const seg = subtitleSegment({ cues: [], blocks: [] }, 0, 4, 4);
    assert.equal(seg, 'WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n');
  });

  it('throws RangeError for a segment out of range or bad arguments', () => {
    for (const n of [-1, 3, 1.5, Number.NaN])
      assert.throws(() => subtitleSegment(doc, n, 10, 4), RangeError, String(n));
    assert.throws(() => subtitleSegment(doc, 0, 10, 4, -1), RangeError);
    assert.throws(() => subtitleSegment(doc, 0, 10, 4, 2 ** 33), RangeError);
    assert.throws(() => subtitleSegmentCount(10, 0), RangeError);
    assert.throws(() => subtitleSegmentCount(-1, 4), RangeError);
    assert.throws(() => subtitleSegmentDurations(Number.POSITIVE_INFINITY, 4), RangeError);
  });
});
