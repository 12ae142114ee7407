// The single-file layout for byte-range addressing (HLS EXT-X-BYTERANGE, DASH SegmentBase): a rendition's CMAF file
// with a Segment Index box (sidx, ISO/IEC 14496-12 §8.16.3) inserted between the moov and the first moof:
//
//   [0, initSize)                 ftyp + moov, as stored
//   [initSize, initSize + sidx)   the sidx built here from our index
//   [initSize + sidx, size)       the stored fragments, shifted by the sidx's size
//
// Nothing in a fragment depends on its absolute position (default-base-is-moof, CMAF §7.5.16), so shifting them is
// safe. The origin serves this layout as a virtual file, the export writes it as a real one.
import type { Segment, TrackInfo } from '../types.ts';

export interface SingleFileLayout {
  /** Bytes of ftyp+moov at the start (the Initialization range). */
  initSize: number;
  /** The sidx box. */
  sidx: Uint8Array;
  /** Stored bytes [initSize, storedEnd) follow the sidx: the fragments up to the end of the last mdat. */
  storedEnd: number;
  /** Total size of the single file. */
  size: number;
  /** Segment n's byte range in the single file. */
  segment(n: number): { offset: number; size: number };
}

const SIDX_HEADER = 8 + 4 + 4 + 4 + 8 + 8 + 2 + 2; // box header, version/flags, reference_ID, timescale, v1 times, reserved, count
const SIDX_REFERENCE = 12;

/**
 * A version-1 sidx indexing every segment as one subsegment (reference_type 0), in the track's timescale. Segments
 * must start right after the init segment and follow one another (as our encoder writes them): each
 * referenced_size is the distance to the next segment, the last one's its own size.
 */
export function buildSidx(track: TrackInfo, segments: readonly Segment[]): Uint8Array {
  if (segments.length === 0) throw new RangeError('a sidx needs at least one segment');
  if (segments.length > 0xffff) throw new RangeError(`too many segments for one sidx: ${segments.length}`);
  if (segments[0]!.offset !== track.initSize) {
    throw new RangeError(`the first segment starts at ${segments[0]!.offset}, not right after the init segment`);
  }
  const size = SIDX_HEADER + SIDX_REFERENCE * segments.length;
  const buf = new Uint8Array(size);
  const v = new DataView(buf.buffer);
  v.setUint32(0, size);
  buf.set([0x73, 0x69, 0x64, 0x78], 4); // 'sidx'
  v.setUint32(8, 0x01000000); // version 1, flags 0
  v.setUint32(12, track.trackId); // reference_ID: the stream this indexes
  v.setUint32(16, track.timescale);
  v.setBigUint64(20, BigInt(segments[0]!.presentationStart)); // earliest_presentation_time
  v.setBigUint64(28, 0n); // first_offset: the first subsegment starts right after this box
  v.setUint16(36, 0); // reserved
  v.setUint16(38, segments.length);
  let p = SIDX_HEADER;
  segments.forEach((s, i) => {
    const next = segments[i + 1];
    const referenced = next ? next.offset - s.offset : s.size;
    if (referenced < s.size || referenced >= 2 ** 31) {
      throw new RangeError(`segment ${i} at ${s.offset} (${s.size} bytes) overlaps the next or is too large`);
    }
    if (s.duration >= 2 ** 32) throw new RangeError(`segment ${i} is too long for a sidx entry`);
    v.setUint32(p, referenced); // reference_type 0 (media) in the top bit
    v.setUint32(p + 4, s.duration); // subsegment_duration
    // starts_with_SAP, SAP_type 1 (an IDR no frame precedes in presentation order), SAP_delta_time 0.
    v.setUint32(p + 8, s.startsWithKeyframe ? 0x90000000 : 0);
    p += SIDX_REFERENCE;
  });
  return buf;
}

export function singleFileLayout(track: TrackInfo, segments: readonly Segment[]): SingleFileLayout {
  const sidx = buildSidx(track, segments);
  const last = segments.at(-1)!;
  const storedEnd = last.offset + last.size;
  return {
    initSize: track.initSize,
    sidx,
    storedEnd,
    size: storedEnd + sidx.length,
    segment(n) {
      const s = segments[n];
      if (!s) throw new RangeError(`no segment ${n}`);
      return { offset: s.offset + sidx.length, size: s.size };
    },
  };
}

/**
 * Maps a byte range of the single file onto its sources: pieces of the stored file and of the sidx, in order.
 * A range inside the fragments is one piece, i.e. one positioned read of the stored file.
 */
export function mapRange(
  layout: SingleFileLayout,
  offset: number,
  length: number,
): ({ from: 'stored'; offset: number; length: number } | { from: 'sidx'; start: number; end: number })[] {
  const out: ({ from: 'stored'; offset: number; length: number } | { from: 'sidx'; start: number; end: number })[] = [];
  const end = Math.min(offset + length, layout.size);
  const sidxEnd = layout.initSize + layout.sidx.length;
  let at = offset;
  if (at < layout.initSize && at < end) {
    const n = Math.min(end, layout.initSize) - at;
    out.push({ from: 'stored', offset: at, length: n });
    at += n;
  }
  if (at < sidxEnd && at < end) {
    const n = Math.min(end, sidxEnd) - at;
    out.push({ from: 'sidx', start: at - layout.initSize, end: at - layout.initSize + n });
    at += n;
  }
  if (at < end) out.push({ from: 'stored', offset: at - layout.sidx.length, length: end - at });
  return out;
}
