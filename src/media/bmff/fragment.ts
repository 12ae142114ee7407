// Movie fragment box (ISO/IEC 14496-12 §8.8.4–8.8.8, §8.8.12): what one moof says about its samples, summed up so
// that no per-sample array is ever allocated.
import type { TrackInfo } from '../types.ts';
import { type Box, children, malformed, payloadReader, pick, required, unsupported } from './reader.ts';

/** §8.8.3.1 sample_is_non_sync_sample. */
export const SAMPLE_IS_NON_SYNC = 0x00010000;

export interface Fragment {
  /** mfhd sequence_number (§8.8.5); undefined when the moof has no mfhd. */
  sequence_number: number | undefined;
  /** tfdt baseMediaDecodeTime (§8.8.12) of the first traf. */
  baseMediaDecodeTime: number;
  duration: number;
  samples: number;
  /** Resolved sample_flags of the first sample; undefined when the fragment has no samples. */
  firstSampleFlags: number | undefined;
  /** sample_composition_time_offset of the first sample (signed for trun version 1), 0 when absent. */
  firstCompositionOffset: number;
  /** File offsets [dataStart, dataEnd) spanned by the sample data; equal when there are no samples. */
  dataStart: number;
  dataEnd: number;
}

interface Tfhd {
  flags: number;
  track_ID: number;
  base_data_offset?: number;
  default_sample_duration?: number;
  default_sample_size?: number;
  default_sample_flags?: number;
}

/** §8.8.7 tfhd. */
function parseTfhd(bytes: Uint8Array, box: Box): Tfhd {
  const r = payloadReader(bytes, box);
  const { flags } = r.fullBox();
  const t: Tfhd = { flags, track_ID: r.u32() };
  if (flags & 0x000001) t.base_data_offset = r.u64();
  if (flags & 0x000002) r.skip(4); // sample_description_index
  if (flags & 0x000008) t.default_sample_duration = r.u32();
  if (flags & 0x000010) t.default_sample_size = r.u32();
  if (flags & 0x000020) t.default_sample_flags = r.u32();
  return t;
}

/** §8.8.12 tfdt. */
function parseTfdt(bytes: Uint8Array, box: Box): number {
  const r = payloadReader(bytes, box);
  const { version } = r.fullBox();
  return version === 1 ? r.u64() : r.u32();
}

interface Acc {
  samples: number;
  duration: number;
  firstSampleFlags: number | undefined;
  firstCompositionOffset: number;
  dataStart: number;
  dataEnd: number;
}

/**
 * §8.8.8 trun, added to `acc`; returns the file offset just past this run's data. data_offset is relative to the
 * traf's base; without it the run follows the previous run (`follows`).
 */
function addTrun(
  bytes: Uint8Array,
  box: Box,
  base: number,
  follows: number,
  defaults: { duration: number; size: number; flags: number },
  acc: Acc,
  maxSamples: number,
): number {
  const r = payloadReader(bytes, box);
  const { version, flags } = r.fullBox();
  const sample_count = r.u32();
  const data_offset = flags & 0x000001 ? r.i32() : undefined;
  const first_sample_flags = flags & 0x000004 ? r.u32() : undefined;
  const hasDuration = (flags & 0x000100) !== 0;
  const hasSize = (flags & 0x000200) !== 0;
  const hasFlags = (flags & 0x000400) !== 0;
  const hasCto = (flags & 0x000800) !== 0;
  const perSample = 4 * (+hasDuration + +hasSize + +hasFlags + +hasCto);
  if (perSample > 0 && sample_count > r.remaining / perSample) {
    throw malformed(`trun sample_count ${sample_count} needs ${sample_count * perSample} bytes, ${r.remaining} left`);
  }
  if (acc.samples + sample_count > maxSamples) {
    throw unsupported(`fragment has more than ${maxSamples} samples`);
  }
  const start = data_offset === undefined ? follows : base + data_offset;
  let size = 0;
  for (let i = 0; i < sample_count; i++) {
    const sample_duration = hasDuration ? r.u32() : defaults.duration;
    const sample_size = hasSize ? r.u32() : defaults.size;
    const sample_flags = hasFlags ? r.u32() : defaults.flags;
    const cto = hasCto ? (version === 0 ? r.u32() : r.i32()) : 0;
    if (acc.samples === 0 && i === 0) {
      acc.firstSampleFlags = first_sample_flags ?? sample_flags;
      acc.firstCompositionOffset = cto;
    }
    if (perSample === 0) {
      // No per-sample fields: every sample takes the defaults, so the sums need no loop.
      acc.duration += sample_count * sample_duration;
      size = sample_count * sample_size;
      break;
    }
    acc.duration += sample_duration;
    size += sample_size;
  }
  acc.samples += sample_count;
  if (sample_count > 0) {
    acc.dataStart = Math.min(acc.dataStart, start);
    acc.dataEnd = Math.max(acc.dataEnd, start + size);
  }
  return start + size;
}

/**
 * `moof` is the whole moof box (header of `headerSize` bytes included) found at `moofOffset` in the file.
 * Sample durations, sizes and flags come from trun, else tfhd defaults, else trex (`track`) defaults (§8.8.7, §8.8.3).
 */
export function parseMoof(
  moof: Uint8Array,
  headerSize: number,
  moofOffset: number,
  track: TrackInfo,
  maxSamples: number,
): Fragment {
  const box: Box = { type: 'moof', start: 0, payload: headerSize, end: moof.length };
  let sequence_number: number | undefined;
  let baseMediaDecodeTime: number | undefined;
  const acc: Acc = {
    samples: 0,
    duration: 0,
    firstSampleFlags: undefined,
    firstCompositionOffset: 0,
    dataStart: Number.POSITIVE_INFINITY,
    dataEnd: Number.NEGATIVE_INFINITY,
  };
  let previousEnd = moofOffset;
  let first = true;
  for (const b of children(moof, box.payload, box.end, 'moof')) {
    if (b.type === 'mfhd') {
      const r = payloadReader(moof, b);
      r.fullBox();
      sequence_number = r.u32();
      continue;
    }
    if (b.type !== 'traf') continue;
    const inTraf = pick(moof, b, ['tfhd', 'tfdt']);
    const tfhd = parseTfhd(moof, required(inTraf, 'tfhd', 'traf'));
    if (tfhd.track_ID !== track.trackId) {
      throw unsupported(`traf for track ${tfhd.track_ID}; only track ${track.trackId} is in the moov`);
    }
    const tfdt = inTraf.get('tfdt');
    if (first) {
      if (!tfdt) {
        throw malformed(
          `moof at ${moofOffset} has no tfdt (ISO/IEC 14496-12 §8.8.12; required by CMAF): cannot place the fragment in time`,
        );
      }
      baseMediaDecodeTime = parseTfdt(moof, tfdt);
    }
    // §8.8.7: base-data-offset, else default-base-is-moof or first traf → moof start, else previous traf's end.
    const base = tfhd.base_data_offset ?? (tfhd.flags & 0x020000 || first ? moofOffset : previousEnd);
    const defaults = {
      duration: tfhd.default_sample_duration ?? track.defaultSampleDuration,
      size: tfhd.default_sample_size ?? track.defaultSampleSize,
      flags: tfhd.default_sample_flags ?? track.defaultSampleFlags,
    };
    let next = base;
    for (const t of children(moof, b.payload, b.end, 'traf')) {
      if (t.type === 'trun') next = addTrun(moof, t, base, next, defaults, acc, maxSamples);
    }
    previousEnd = next;
    first = false;
  }
  if (baseMediaDecodeTime === undefined) throw malformed(`moof at ${moofOffset} has no traf`);
  if (!Number.isSafeInteger(acc.duration) || !Number.isSafeInteger(baseMediaDecodeTime + acc.duration)) {
    throw unsupported(`moof at ${moofOffset}: durations exceed 2^53`);
  }
  const empty = acc.samples === 0;
  return {
    sequence_number,
    baseMediaDecodeTime,
    duration: acc.duration,
    samples: acc.samples,
    firstSampleFlags: acc.firstSampleFlags,
    firstCompositionOffset: acc.firstCompositionOffset,
    dataStart: empty ? moofOffset : acc.dataStart,
    dataEnd: empty ? moofOffset : acc.dataEnd,
  };
}
