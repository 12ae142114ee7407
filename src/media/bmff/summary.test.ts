import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Segment, TrackInfo } from '../types.ts';
import { summarizeIndex } from './index.ts';

const track = (kind: 'video' | 'audio'): TrackInfo => ({
  trackId: 1,
  kind,
  timescale: 30000,
  sampleEntry: kind === 'video' ? 'avc1' : 'mp4a',
  codec: kind === 'video' ? 'avc1.64001F' : 'mp4a.40.2',
  codecConfig: new Uint8Array(0),
  defaultSampleDuration: 0,
  defaultSampleSize: 0,
  defaultSampleFlags: 0,
  initSize: 800,
});

function segment(start: number, duration: number, size: number, samples: number): Segment {
  return { start, duration, offset: 0, size, samples, startsWithKeyframe: true, presentationStart: start };
}

describe('summarizeIndex', () => {
  it('duration, average and peak bitrate, frame rate', () => {
    // 29.97 fps: 60 frames of 1001 units at 30000 units/s per 2.002 s segment.
    const segments = [
      segment(0, 60060, 500_000, 60),
      segment(60060, 60060, 250_000, 60),
      segment(120120, 30030, 1000, 30),
    ];
    const s = summarizeIndex(track('video'), segments);
    assert.equal(s.duration, 5.005);
    assert.equal(s.segmentCount, 3);
    assert.equal(s.maxSegmentDuration, 2.002);
    assert.equal(s.averageBitrate, Math.round((751_000 * 8) / 5.005));
    assert.equal(s.peakBitrate, Math.ceil((500_000 * 8) / 2.002));
    assert.ok(Math.abs((s.frameRate ?? 0) - 30000 / 1001) < 1e-9);
  });
  it('peak per RFC 8216 §4.3.4.2: a short last segment with one big frame is judged with its neighbour', () => {
    // 2 s segments at 1 Mb/s, then a 1-frame 0.033 s tail of 60 kB (alone it would claim 14.5 Mb/s).
    const tail = segment(180000, 1001, 60_000, 1);
    const s = summarizeIndex(track('video'), [
      segment(0, 60060, 250_000, 60),
      segment(60060, 60060, 250_000, 60),
      segment(120120, 60060, 250_000, 60),
      tail,
    ]);
    assert.ok(s.peakBitrate < 1_300_000, String(s.peakBitrate));
    assert.equal(s.peakBitrate, Math.ceil(((250_000 + 60_000) * 8 * 30000) / (60060 + 1001)));
    // A segment twice as dense as the rest still sets the peak.
    const dense = summarizeIndex(track('video'), [segment(0, 60060, 250_000, 60), segment(60060, 60060, 500_000, 60)]);
    assert.equal(dense.peakBitrate, Math.ceil((500_000 * 8) / 2.002));
  });
  it('audio has no frame rate; empty and zero-length indexes give zeros', () => {
    assert.equal(summarizeIndex(track('audio'), [segment(0, 30000, 100, 10)]).frameRate, undefined);
    assert.deepEqual(summarizeIndex(track('video'), []), {
      duration: 0,
      averageBitrate: 0,
      peakBitrate: 0,
      segmentCount: 0,
      maxSegmentDuration: 0,
    });
    const zero = summarizeIndex(track('video'), [segment(0, 0, 100, 0)]);
    assert.deepEqual([zero.peakBitrate, zero.averageBitrate, zero.frameRate], [0, 0, undefined]);
  });
});
