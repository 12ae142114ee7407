// Segmented WebVTT for HLS subtitle renditions (RFC 8216bis §3.1.4 "WebVTT", §3.5 "WebVTT segments"): the track cut
// into fixed-length pieces of the presentation timeline, each a complete WebVTT file of its own.
import { type CaptionDoc, writeWebVtt } from './cues.ts';

/** 90 kHz MPEG-2 timestamps are 33 bits (ISO/IEC 13818-1 §2.4.3.7). */
const MPEGTS_LIMIT = 2 ** 33;

/** Segments covering `duration` seconds in pieces of `segmentDuration`: ceil(duration / D), at least 1. */
export function subtitleSegmentCount(duration: number, segmentDuration: number): number {
  const [total, each] = micros(duration, segmentDuration);
  return Math.max(1, Math.ceil(total / each));
}

/**
 * Each segment's duration in seconds for EXTINF (RFC 8216bis §4.4.4.1): D for all but the last, which is the
 * remainder. Worked out in whole microseconds, so the values are exact to 1 µs and add up to `duration`.
 */
export function subtitleSegmentDurations(duration: number, segmentDuration: number): number[] {
  const [total, each] = micros(duration, segmentDuration);
  const count = Math.max(1, Math.ceil(total / each));
  const out: number[] = [];
  for (let n = 0; n < count; n++) out.push((Math.min(total, (n + 1) * each) - n * each) / 1e6);
  return out;
}

/**
 * Segment n as a WebVTT file. RFC 8216bis §3.5: "each WebVTT segment MUST contain all subtitle cues that are intended
 * to be displayed during the period indicated by the segment EXTINF duration", so a cue overlapping two segments is
 * in both, with unchanged times (players drop the repeat). The X-TIMESTAMP-MAP header (§3.5) ties cue time 0 to the
 * media timeline: `mpegts` is the 90 kHz value of media time 0, which for our fMP4 renditions is the presentation
 * origin, hence 0 by default. STYLE and REGION blocks go into every segment, since each is parsed on its own.
 */
export function subtitleSegment(
  doc: CaptionDoc,
  n: number,
  duration: number,
  segmentDuration: number,
  mpegts = 0,
): string {
  const [total, each] = micros(duration, segmentDuration);
  const count = Math.max(1, Math.ceil(total / each));
  if (!(Number.isInteger(n) && n >= 0 && n < count)) {
    throw new RangeError(`subtitle segment ${n} is out of range: there are ${count} (0 to ${count - 1})`);
  }
  if (!(Number.isInteger(mpegts) && mpegts >= 0 && mpegts < MPEGTS_LIMIT)) {
    throw new RangeError(`MPEGTS value ${mpegts} is not a 33-bit timestamp`);
  }
  const from = n * each;
  // The last segment runs to the end of the presentation.
  const to = n === count - 1 ? total : (n + 1) * each;
  const cues = doc.cues.filter((c) => Math.round(c.start * 1e6) < to && Math.round(c.end * 1e6) > from);
  return writeWebVtt({ cues, blocks: doc.blocks }, { header: `X-TIMESTAMP-MAP=MPEGTS:${mpegts},LOCAL:00:00:00.000` });
}

function micros(duration: number, segmentDuration: number): [number, number] {
  if (!(Number.isFinite(duration) && duration >= 0)) {
    throw new RangeError(`presentation duration must be a finite number ≥ 0, not ${duration}`);
  }
  const each = Math.round(segmentDuration * 1e6);
  if (!(Number.isFinite(segmentDuration) && each > 0)) {
    throw new RangeError(`segment duration must be a positive number of seconds, not ${segmentDuration}`);
  }
  return [Math.round(duration * 1e6), each];
}
