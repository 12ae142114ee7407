// Rewriting movie fragments (ISO/IEC 14496-12 §8.8.4–8.8.8, §8.8.12) of our single-track CMAF files, in memory:
//  - mergeFragments joins consecutive moof+mdat parts into one moof+mdat (Smooth Streaming clients want one moof
//    per 2 s fragment; the live files hold ~1/3 s parts);
//  - shiftTfdt moves a fragment along the timeline (the live ingest continues an event when a new encoder run
//    starts again at tfdt 0);
//  - editMoof, shared with piff.ts, inserts or replaces bytes inside trafs and fixes the sizes of the enclosing boxes
//    and the trun data offsets that the move invalidates.
// Pure functions: bytes in, bytes out. Every size and offset read is checked, so bad input ends in a
// SmoothcastError (BMFF_MALFORMED / BMFF_UNSUPPORTED), never in a RangeError or a wrong result.
import type { TrackInfo } from '../types.ts';
import {
  TFHD_BASE_DATA_OFFSET,
  TFHD_DEFAULT_BASE_IS_MOOF,
  TFHD_DEFAULT_DURATION,
  TFHD_DEFAULT_FLAGS,
  TFHD_DEFAULT_SIZE,
  TFHD_DURATION_IS_EMPTY,
  TFHD_SAMPLE_DESCRIPTION_INDEX,
  TRUN_CTO,
  TRUN_DATA_OFFSET,
  TRUN_DURATION,
  TRUN_FIRST_SAMPLE_FLAGS,
  TRUN_FLAGS,
  TRUN_SIZE,
} from './flags.ts';
import { type Box, children, malformed, payloadReader, Reader, unsupported } from './reader.ts';

/** Most samples one merged fragment may hold (a 2 s fragment has ~100 at most; this only bounds the work). */
export const MAX_MERGED_SAMPLES = 100_000;

const U32_MAX = 0xffffffff;
const I32_MAX = 0x7fffffff;

/** PIFF boxes that describe a whole fragment's timing ([MS-SSTR] §2.2.4.4–5): stale once fragments are joined. */
const PIFF_TIMING_UUIDS = new Set(['6d1d9b0542d544e680e2141daff757b2', 'd4807ef2ca3946958e5426cb9e46a79f']);

// ---------------------------------------------------------------------------------------------------------------
// Layout of one fragment: [prefix boxes] moof [mdat]

export interface FragmentLayout {
  /** Top-level boxes before the moof (styp, prft, emsg, free, …). */
  prefix: Box[];
  moof: Box;
  /** The mdat right after the moof, when there is one (its end resolved for size 0, "to the end"). */
  mdat: Box | undefined;
}

/** Top-level boxes of `bytes` (§4.2): size 1 → largesize, size 0 → to the end (so only the last box). */
function topLevel(bytes: Uint8Array): Box[] {
  const out: Box[] = [];
  const r = new Reader(bytes, 'fragment');
  while (r.pos < bytes.length) {
    const start = r.pos;
    let size = r.u32();
    const type = r.fourcc();
    if (size === 1) size = r.u64();
    else if (size === 0) size = bytes.length - start;
    if (type === 'uuid') r.skip(16);
    const payload = r.pos;
    if (size < payload - start || size > bytes.length - start) {
      throw malformed(`box '${type}' at ${start} has size ${size}, ${bytes.length - start} bytes available`);
    }
    out.push({ type, start, payload, end: start + size });
    r.pos = start + size;
  }
  return out;
}

/** Splits a fragment into its prefix boxes, its one moof and the mdat that follows it (if any). */
export function fragmentLayout(bytes: Uint8Array): FragmentLayout {
  const boxes = topLevel(bytes);
  const i = boxes.findIndex((b) => b.type === 'moof');
  if (i < 0) throw malformed('no moof in fragment');
  const moof = boxes[i] as Box;
  const prefix = boxes.slice(0, i);
  const after = boxes.slice(i + 1);
  for (const b of prefix) {
    if (b.type === 'mdat') throw unsupported(`mdat at ${b.start} comes before the moof`);
  }
  const mdat = after[0];
  if (mdat && mdat.type !== 'mdat') throw unsupported(`moof is followed by '${mdat.type}', not by an mdat`);
  if (after.length > 1) throw unsupported(`'${after[1]?.type}' after the mdat: expected one moof+mdat`);
  return { prefix, moof, mdat };
}

// ---------------------------------------------------------------------------------------------------------------
// Box parsing shared by the rewrites

interface Tfhd {
  flags: number;
  track_ID: number;
  /** Index of the base_data_offset field, when present. */
  baseDataOffsetAt: number | undefined;
  sample_description_index: number | undefined;
  default_sample_duration: number | undefined;
  default_sample_size: number | undefined;
  default_sample_flags: number | undefined;
}

/** §8.8.7 tfhd. */
function parseTfhd(bytes: Uint8Array, box: Box): Tfhd {
  const r = payloadReader(bytes, box);
  const { flags } = r.fullBox();
  const track_ID = r.u32();
  let baseDataOffsetAt: number | undefined;
  if (flags & TFHD_BASE_DATA_OFFSET) {
    baseDataOffsetAt = r.pos;
    r.u64();
  }
  return {
    flags,
    track_ID,
    baseDataOffsetAt,
    sample_description_index: flags & TFHD_SAMPLE_DESCRIPTION_INDEX ? r.u32() : undefined,
    default_sample_duration: flags & TFHD_DEFAULT_DURATION ? r.u32() : undefined,
    default_sample_size: flags & TFHD_DEFAULT_SIZE ? r.u32() : undefined,
    default_sample_flags: flags & TFHD_DEFAULT_FLAGS ? r.u32() : undefined,
  };
}

/** §8.8.12 tfdt, read the way parseMoof reads it (version 1: 64 bits, anything else: 32 bits). */
function parseTfdt(bytes: Uint8Array, box: Box): { version: number; time: number } {
  const r = payloadReader(bytes, box);
  const { version } = r.fullBox();
  return { version, time: version === 1 ? r.u64() : r.u32() };
}

/** The one box of `type` among `boxes`; none or several is malformed. */
function only(boxes: readonly Box[], type: string, parent: string): Box {
  const found = boxes.filter((b) => b.type === type);
  if (found.length !== 1) throw malformed(`'${parent}' holds ${found.length} '${type}' boxes, expected one`);
  return found[0] as Box;
}

function uuidOf(bytes: Uint8Array, box: Box): string {
  let hex = '';
  for (let i = box.payload - 16; i < box.payload; i++) hex += (bytes[i] ?? 0).toString(16).padStart(2, '0');
  return hex;
}

/** Writes a box's new size into its header (32-bit size, or largesize; a size-0 box still runs to the end). */
function setBoxSize(view: DataView, start: number, size: number, type: string): void {
  const field = view.getUint32(start);
  if (field === 0) return;
  if (field === 1) view.setBigUint64(start + 8, BigInt(size));
  else if (size > U32_MAX) throw unsupported(`'${type}' would grow past 4 GiB`);
  else view.setUint32(start, size);
}

// ---------------------------------------------------------------------------------------------------------------
// editMoof: byte edits inside trafs, with the sizes and data offsets they move

export interface TrafEdit {
  /** The traf (as found in the moof) the edit lies in. */
  traf: Box;
  /** Index in the fragment of the first byte replaced; between traf.payload and traf.end. */
  at: number;
  /** Bytes replaced (0 for a pure insertion). */
  remove: number;
  insert: Uint8Array;
}

/**
 * Applies `edits` (sorted, not overlapping, each inside its traf) to the moof of `bytes`, then fixes what moved:
 * the sizes of the moof and of each edited traf, and the data offsets of every traf whose sample data follows the
 * moof at a moof-relative place (§8.8.7: default-base-is-moof, or the first traf without base-data-offset), since
 * the mdat now starts that much later. A traf based on the previous traf's data needs nothing: both moved alike.
 * An absolute base_data_offset cannot be followed when the moof changes size, and is BMFF_UNSUPPORTED.
 */
export function editMoof(bytes: Uint8Array, layout: FragmentLayout, edits: readonly TrafEdit[]): Uint8Array {
  const { moof } = layout;
  const growth = edits.reduce((n, e) => n + e.insert.length - e.remove, 0);
  let last = moof.payload;
  for (const e of edits) {
    if (e.at < last || e.at < e.traf.payload || e.at + e.remove > e.traf.end || e.traf.end > moof.end) {
      throw malformed('editMoof: edits out of order or outside their traf');
    }
    last = e.at + e.remove;
  }
  // Trun data_offset fields to move (indexes in `bytes`), checked before anything is written.
  const offsets: number[] = [];
  if (growth !== 0) {
    let first = true;
    for (const traf of children(bytes, moof.payload, moof.end, 'moof')) {
      if (traf.type !== 'traf') continue;
      const inTraf = [...children(bytes, traf.payload, traf.end, 'traf')];
      const tfhd = parseTfhd(bytes, only(inTraf, 'tfhd', 'traf'));
      const moofBased = tfhd.flags & TFHD_DEFAULT_BASE_IS_MOOF || first;
      first = false;
      if (tfhd.baseDataOffsetAt !== undefined) {
        throw unsupported('tfhd with an absolute base_data_offset: the sample data cannot be moved');
      }
      if (!moofBased) continue;
      let firstRun = true;
      for (const b of inTraf) {
        if (b.type !== 'trun') continue;
        const r = payloadReader(bytes, b);
        const { flags } = r.fullBox();
        r.u32(); // sample_count
        if (flags & TRUN_DATA_OFFSET) {
          const at = r.pos;
          const data_offset = r.i32();
          // The sample data lies in the mdat after the moof: an offset into the moof itself cannot be moved.
          if (data_offset < moof.end - moof.start) {
            throw malformed(`trun data_offset ${data_offset} points inside the ${moof.end - moof.start}-byte moof`);
          }
          if (data_offset + growth > I32_MAX || data_offset + growth < 0) {
            throw unsupported(`trun data_offset ${data_offset} cannot move by ${growth}`);
          }
          offsets.push(at);
        } else if (firstRun) {
          throw malformed('first trun of a moof-based traf has no data_offset: its data would start in the moof');
        }
        firstRun = false;
      }
    }
  }
  if (!Number.isSafeInteger(bytes.length + growth) || bytes.length + growth < 0)
    throw unsupported('fragment too large');
  const out = new Uint8Array(bytes.length + growth);
  /** Where a byte of `bytes` (outside the replaced ranges) lands in `out`. */
  const moved = (pos: number) => {
    let d = 0;
    for (const e of edits) if (e.at + e.remove <= pos) d += e.insert.length - e.remove;
    return pos + d;
  };
  let from = 0;
  let to = 0;
  for (const e of edits) {
    out.set(bytes.subarray(from, e.at), to);
    to += e.at - from;
    out.set(e.insert, to);
    to += e.insert.length;
    from = e.at + e.remove;
  }
  out.set(bytes.subarray(from), to);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  setBoxSize(view, moof.start, moof.end - moof.start + growth, 'moof');
  const trafs = [...new Set(edits.map((e) => e.traf))];
  for (const traf of trafs) {
    const g = edits.filter((e) => e.traf === traf).reduce((n, e) => n + e.insert.length - e.remove, 0);
    setBoxSize(view, moved(traf.start), traf.end - traf.start + g, 'traf');
  }
  for (const at of offsets) {
    const to = moved(at);
    view.setInt32(to, view.getInt32(to) + growth);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// shiftTfdt

/** §8.8.12 tfdt box; version 1 always, or version 0 when asked and the time fits 32 bits. */
function tfdtBox(time: number, version0: boolean): Uint8Array {
  const v0 = version0 && time <= U32_MAX;
  const out = new Uint8Array(v0 ? 16 : 20);
  const view = new DataView(out.buffer);
  view.setUint32(0, out.length);
  out.set([0x74, 0x66, 0x64, 0x74], 4); // 'tfdt'
  view.setUint32(8, v0 ? 0 : 0x01000000);
  if (v0) view.setUint32(12, time);
  else view.setBigUint64(12, BigInt(time));
  return out;
}

/**
 * `fragment` (a moof, or moof+mdat, possibly after styp/prft) with every traf's tfdt baseMediaDecodeTime increased
 * by `deltaTicks`. A version-0 tfdt whose new time does not fit 32 bits becomes version 1: the moof and traf grow
 * by 4 bytes and the trun data offsets follow the mdat.
 */
export function shiftTfdt(fragment: Uint8Array, deltaTicks: number): Uint8Array {
  if (!Number.isSafeInteger(deltaTicks) || deltaTicks < 0) {
    throw unsupported(`shiftTfdt: delta ${deltaTicks} is not a non-negative safe integer`);
  }
  const layout = fragmentLayout(fragment);
  const edits: TrafEdit[] = [];
  for (const traf of children(fragment, layout.moof.payload, layout.moof.end, 'moof')) {
    if (traf.type !== 'traf') continue;
    const tfdt = only([...children(fragment, traf.payload, traf.end, 'traf')], 'tfdt', 'traf');
    const { version, time } = parseTfdt(fragment, tfdt);
    if (version > 1) throw unsupported(`tfdt version ${version}`);
    const shifted = time + deltaTicks;
    if (!Number.isSafeInteger(shifted)) throw unsupported(`tfdt ${time} + ${deltaTicks} exceeds 2^53`);
    edits.push({ traf, at: tfdt.start, remove: tfdt.end - tfdt.start, insert: tfdtBox(shifted, version === 0) });
  }
  if (edits.length === 0) throw malformed('moof has no traf');
  return editMoof(fragment, layout, edits);
}

// ---------------------------------------------------------------------------------------------------------------
// mergeFragments

interface Samples {
  durations: number[];
  sizes: number[];
  flags: number[];
  ctos: number[];
  /** Whether any trun carried composition offsets. */
  hasCto: boolean;
}

interface Part {
  sequence_number: number;
  track_ID: number;
  tfhd: Tfhd;
  time: number;
  duration: number;
  /** [start, end) byte ranges of `bytes` holding the sample data, one per trun, in sample order. */
  ranges: [number, number][];
}

type Defaults = Pick<TrackInfo, 'defaultSampleDuration' | 'defaultSampleSize' | 'defaultSampleFlags'>;

/** Reads one part, appending its resolved samples (trun → tfhd defaults → trex defaults, §8.8.7–8.8.8) to `acc`. */
function readPart(bytes: Uint8Array, n: number, track: Defaults, acc: Samples): Part {
  const what = `part ${n}`;
  const layout = fragmentLayout(bytes);
  for (const b of layout.prefix) {
    if (!['styp', 'prft', 'free', 'skip'].includes(b.type)) throw unsupported(`${what}: '${b.type}' before the moof`);
  }
  const { moof, mdat } = layout;
  if (!mdat) throw malformed(`${what}: no mdat after the moof`);
  const inMoof = [...children(bytes, moof.payload, moof.end, 'moof')];
  for (const b of inMoof) {
    if (!['mfhd', 'traf', 'free', 'skip'].includes(b.type)) throw unsupported(`${what}: '${b.type}' in the moof`);
  }
  const mfhd = payloadReader(bytes, only(inMoof, 'mfhd', 'moof'));
  mfhd.fullBox();
  const sequence_number = mfhd.u32();
  const traf = only(inMoof, 'traf', 'moof');
  const inTraf = [...children(bytes, traf.payload, traf.end, 'traf')];
  for (const b of inTraf) {
    const ok =
      ['tfhd', 'tfdt', 'trun', 'free', 'skip'].includes(b.type) ||
      (b.type === 'uuid' && PIFF_TIMING_UUIDS.has(uuidOf(bytes, b)));
    if (!ok) throw unsupported(`${what}: '${b.type}' in the traf cannot be merged`);
  }
  const tfhd = parseTfhd(bytes, only(inTraf, 'tfhd', 'traf'));
  if (tfhd.baseDataOffsetAt !== undefined) throw unsupported(`${what}: tfhd has an absolute base_data_offset`);
  if (tfhd.flags & TFHD_DURATION_IS_EMPTY) throw unsupported(`${what}: tfhd duration-is-empty`);
  const { time } = parseTfdt(bytes, only(inTraf, 'tfdt', 'traf'));
  const defaults = {
    duration: tfhd.default_sample_duration ?? track.defaultSampleDuration,
    size: tfhd.default_sample_size ?? track.defaultSampleSize,
    flags: tfhd.default_sample_flags ?? track.defaultSampleFlags,
  };
  // §8.8.7: with default-base-is-moof, or as the first (only) traf, the base is the moof's first byte.
  const base = moof.start;
  const ranges: [number, number][] = [];
  let duration = 0;
  let follows = base; // where a trun without data_offset starts (§8.8.8), as parseMoof reads it
  let dataEnd = mdat.payload; // end of the previous run's data
  let first = true;
  for (const b of inTraf) {
    if (b.type !== 'trun') continue;
    const r = payloadReader(bytes, b);
    const { version, flags } = r.fullBox();
    const sample_count = r.u32();
    const data_offset = flags & TRUN_DATA_OFFSET ? r.i32() : undefined;
    const first_sample_flags = flags & TRUN_FIRST_SAMPLE_FLAGS ? r.u32() : undefined;
    const perSample = 4 * [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTO].filter((f) => flags & f).length;
    if (perSample > 0 && sample_count > r.remaining / perSample) {
      throw malformed(`${what}: trun sample_count ${sample_count} needs ${sample_count * perSample} bytes`);
    }
    if (acc.sizes.length + sample_count > MAX_MERGED_SAMPLES) {
      throw unsupported(`merged fragment would hold more than ${MAX_MERGED_SAMPLES} samples`);
    }
    if (flags & TRUN_CTO) acc.hasCto = true;
    const start = data_offset === undefined ? (first ? base : follows) : base + data_offset;
    first = false;
    let size = 0;
    for (let i = 0; i < sample_count; i++) {
      const d = flags & TRUN_DURATION ? r.u32() : defaults.duration;
      const s = flags & TRUN_SIZE ? r.u32() : defaults.size;
      const f = flags & TRUN_FLAGS ? r.u32() : defaults.flags;
      const c = flags & TRUN_CTO ? (version === 0 ? r.u32() : r.i32()) : 0;
      acc.durations.push(d);
      acc.sizes.push(s);
      acc.flags.push(i === 0 && first_sample_flags !== undefined ? first_sample_flags : f);
      acc.ctos.push(c);
      duration += d;
      size += s;
    }
    // Runs must follow each other through the mdat (as every muxer writes them): the merged mdat then never holds
    // more than the parts' mdats did, whatever the truns claim.
    if (sample_count > 0 && (start < dataEnd || start + size > mdat.end)) {
      throw malformed(
        `${what}: trun data [${start}, ${start + size}) is not within [${dataEnd}, ${mdat.end}) ` +
          `(the mdat payload after the previous run)`,
      );
    }
    if (sample_count > 0) {
      ranges.push([start, start + size]);
      dataEnd = start + size;
    }
    follows = start + size;
  }
  return { sequence_number, track_ID: tfhd.track_ID, tfhd, time, duration, ranges };
}

/**
 * Joins consecutive fragments of one track into one moof+mdat (see the file comment). `track` gives the trex
 * defaults the parts' samples may fall back on. The result has the first part's sequence number, track_ID and tfdt,
 * one trun with every sample's duration, size, flags (and composition offset when any part has them; trun version 1
 * when one is negative), and one mdat with the sample data in order.
 */
export function mergeFragments(parts: readonly Uint8Array[], track: Defaults): Uint8Array {
  if (parts.length === 0) throw malformed('no fragments to merge');
  const acc: Samples = { durations: [], sizes: [], flags: [], ctos: [], hasCto: false };
  const read: Part[] = [];
  for (let n = 0; n < parts.length; n++) {
    const p = readPart(parts[n] as Uint8Array, n, track, acc);
    const prev = read[read.length - 1];
    if (prev) {
      if (p.track_ID !== prev.track_ID) throw malformed(`part ${n} is track ${p.track_ID}, not ${prev.track_ID}`);
      if (p.tfhd.sample_description_index !== prev.tfhd.sample_description_index) {
        throw unsupported(`part ${n} changes the sample_description_index`);
      }
      if (p.time !== prev.time + prev.duration) {
        throw malformed(`part ${n} starts at ${p.time}, not at ${prev.time + prev.duration} where part ${n - 1} ends`);
      }
    }
    if (!Number.isSafeInteger(p.time + p.duration)) throw unsupported(`part ${n}: times exceed 2^53`);
    read.push(p);
  }
  const first = read[0] as Part;
  const count = acc.sizes.length;

  // tfhd: default-base-is-moof, the track, and the first part's defaults where every sample agrees with them.
  const keep = (value: number | undefined, all: number[]) =>
    value !== undefined && all.every((v) => v === value) ? value : undefined;
  const sdi = first.tfhd.sample_description_index;
  const defDuration = keep(first.tfhd.default_sample_duration, acc.durations);
  const defSize = keep(first.tfhd.default_sample_size, acc.sizes);
  const defFlags = keep(first.tfhd.default_sample_flags, acc.flags);
  const tfhdFlags =
    TFHD_DEFAULT_BASE_IS_MOOF |
    (sdi !== undefined ? TFHD_SAMPLE_DESCRIPTION_INDEX : 0) |
    (defDuration !== undefined ? TFHD_DEFAULT_DURATION : 0) |
    (defSize !== undefined ? TFHD_DEFAULT_SIZE : 0) |
    (defFlags !== undefined ? TFHD_DEFAULT_FLAGS : 0);
  const tfhdValues = [sdi, defDuration, defSize, defFlags].filter((v) => v !== undefined);
  const tfhdSize = 16 + 4 * tfhdValues.length;

  // trun: version 1 when a composition offset is negative (then none may exceed the signed range).
  const negative = acc.hasCto && acc.ctos.some((c) => c < 0);
  if (negative && acc.ctos.some((c) => c > I32_MAX)) {
    throw unsupported('composition offsets both negative and above 2^31: no trun version holds them');
  }
  const trunFlags = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | (acc.hasCto ? TRUN_CTO : 0);
  const perSample = acc.hasCto ? 16 : 12;
  const trunSize = 20 + perSample * count;
  const trafSize = 8 + tfhdSize + 20 + trunSize;
  const moofSize = 8 + 16 + trafSize;
  const dataSize = acc.sizes.reduce((n, s) => n + s, 0);
  const mdatHeader = 8 + dataSize > U32_MAX ? 16 : 8;
  const total = moofSize + mdatHeader + dataSize;
  if (moofSize + mdatHeader > I32_MAX || !Number.isSafeInteger(total)) throw unsupported('merged fragment too large');

  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  const u32 = (v: number) => {
    view.setUint32(at, v);
    at += 4;
  };
  const header = (size: number, type: string) => {
    u32(size);
    for (let i = 0; i < 4; i++) out[at++] = type.charCodeAt(i);
  };
  header(moofSize, 'moof');
  header(16, 'mfhd');
  u32(0);
  u32(first.sequence_number);
  header(trafSize, 'traf');
  header(tfhdSize, 'tfhd');
  u32(tfhdFlags);
  u32(first.track_ID);
  for (const v of tfhdValues) u32(v);
  header(20, 'tfdt');
  u32(0x01000000);
  view.setBigUint64(at, BigInt(first.time));
  at += 8;
  header(trunSize, 'trun');
  u32(((negative ? 1 : 0) << 24) | trunFlags);
  u32(count);
  u32(moofSize + mdatHeader);
  for (let i = 0; i < count; i++) {
    u32(acc.durations[i] as number);
    u32(acc.sizes[i] as number);
    u32(acc.flags[i] as number);
    if (acc.hasCto) {
      const c = acc.ctos[i] as number;
      if (negative) view.setInt32(at, c);
      else view.setUint32(at, c);
      at += 4;
    }
  }
  if (mdatHeader === 16) {
    header(1, 'mdat');
    view.setBigUint64(at, BigInt(16 + dataSize));
    at += 8;
  } else {
    header(8 + dataSize, 'mdat');
  }
  read.forEach((p, n) => {
    const bytes = parts[n] as Uint8Array;
    for (const [start, end] of p.ranges) {
      out.set(bytes.subarray(start, end), at);
      at += end - start;
    }
  });
  if (at !== total) throw malformed('merged sample data does not add up to the trun sizes');
  return out;
}
