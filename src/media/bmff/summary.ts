// Per-rendition figures derived from a segment index (what HLS BANDWIDTH/AVERAGE-BANDWIDTH, RFC 8216 §4.3.4.2, and
// DASH Representation @bandwidth/@frameRate, ISO/IEC 23009-1, are built from).
import type { IndexSummary, Segment, TrackInfo } from '../types.ts';

/**
 * duration: sum of segment durations; averageBitrate: all segment bytes × 8 / duration (rounded); peakBitrate: the
 * peak segment bit rate of RFC 8216 §4.3.4.2 — the largest bit rate of any run of contiguous segments whose total
 * duration is 0.5–1.5 × the target duration (the longest segment, rounded up), rounded up, and never below the
 * average — so a short last segment holding one big frame does not claim a peak the stream never needs; frameRate
 * (video): samples / duration. Segments of zero duration add bytes but cannot set a peak on their own.
 */
export function summarizeIndex(track: TrackInfo, segments: readonly Segment[]): IndexSummary {
  let units = 0;
  let bytes = 0;
  let samples = 0;
  let longest = 0;
  for (const s of segments) {
    units += s.duration;
    bytes += s.size;
    samples += s.samples;
    longest = Math.max(longest, s.duration);
  }
  const duration = units / track.timescale;
  const average = duration > 0 ? (bytes * 8) / duration : 0;
  const summary: IndexSummary = {
    duration,
    averageBitrate: Math.round(average),
    peakBitrate: Math.ceil(Math.max(peakSegmentBitrate(segments, track.timescale, longest), average)),
    segmentCount: segments.length,
    maxSegmentDuration: longest / track.timescale,
  };
  if (track.kind === 'video' && units > 0) summary.frameRate = (samples * track.timescale) / units;
  return summary;
}

/** RFC 8216 §4.3.4.2: the highest bits/s over runs of contiguous segments lasting 0.5–1.5 × the target duration. */
function peakSegmentBitrate(segments: readonly Segment[], timescale: number, longest: number): number {
  if (longest <= 0) return 0;
  const target = Math.ceil(longest / timescale - 1e-9) * timescale;
  let peak = 0;
  for (let i = 0; i < segments.length; i++) {
    let units = 0;
    let size = 0;
    for (let j = i; j < segments.length; j++) {
      units += segments[j]!.duration;
      size += segments[j]!.size;
      if (units > 1.5 * target) break;
      if (units >= 0.5 * target) peak = Math.max(peak, (size * 8 * timescale) / units);
    }
  }
  return peak;
}
