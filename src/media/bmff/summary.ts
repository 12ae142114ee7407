// Per-rendition figures derived from a segment index (what HLS BANDWIDTH/AVERAGE-BANDWIDTH, RFC 8216 §4.3.4.2, and
// DASH Representation @bandwidth/@frameRate, ISO/IEC 23009-1, are built from).
import type { IndexSummary, Segment, TrackInfo } from '../types.ts';

/**
 * duration: sum of segment durations; averageBitrate: all segment bytes × 8 / duration (rounded); peakBitrate: the
 * highest segment size × 8 / segment duration (rounded up, since it is an upper bound); frameRate (video): samples /
 * duration. Segments of zero duration add bytes but cannot set a peak.
 */
export function summarizeIndex(track: TrackInfo, segments: readonly Segment[]): IndexSummary {
  let units = 0;
  let bytes = 0;
  let samples = 0;
  let peak = 0;
  let longest = 0;
  for (const s of segments) {
    units += s.duration;
    bytes += s.size;
    samples += s.samples;
    longest = Math.max(longest, s.duration);
    if (s.duration > 0) peak = Math.max(peak, (s.size * 8 * track.timescale) / s.duration);
  }
  const duration = units / track.timescale;
  const summary: IndexSummary = {
    duration,
    averageBitrate: duration > 0 ? Math.round((bytes * 8) / duration) : 0,
    peakBitrate: Math.ceil(peak),
    segmentCount: segments.length,
    maxSegmentDuration: longest / track.timescale,
  };
  if (track.kind === 'video' && units > 0) summary.frameRate = (samples * track.timescale) / units;
  return summary;
}
