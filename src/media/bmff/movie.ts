// The movie box of a fragmented file (ISO/IEC 14496-12 §8.2–8.5, §8.8.1–8.8.3): one trak, its timescale and sample
// description, and the trex defaults that movie fragments fall back on.
import type { TrackInfo } from '../types.ts';
import { type Box, children, malformed, payloadReader, pick, required, unsupported } from './reader.ts';
import { handlerKind, parseStsd } from './sampleentry.ts';

/** §8.3.2 tkhd → track_ID. */
function parseTkhd(bytes: Uint8Array, box: Box): number {
  const r = payloadReader(bytes, box);
  const { version } = r.fullBox();
  r.skip(version === 1 ? 16 : 8); // creation_time, modification_time
  const track_ID = r.u32();
  if (track_ID === 0) throw malformed('tkhd track_ID is 0');
  return track_ID;
}

/** §8.4.2 mdhd → timescale. */
function parseMdhd(bytes: Uint8Array, box: Box): number {
  const r = payloadReader(bytes, box);
  const { version } = r.fullBox();
  r.skip(version === 1 ? 16 : 8); // creation_time, modification_time
  const timescale = r.u32();
  if (timescale === 0) throw malformed('mdhd timescale is 0');
  return timescale;
}

/** §8.4.3 hdlr → handler_type. */
function parseHdlr(bytes: Uint8Array, box: Box): string {
  const r = payloadReader(bytes, box);
  r.fullBox();
  r.skip(4); // pre_defined
  return r.fourcc();
}

export interface Trex {
  track_ID: number;
  default_sample_description_index: number;
  default_sample_duration: number;
  default_sample_size: number;
  default_sample_flags: number;
}

/** §8.8.3 trex. */
function parseTrex(bytes: Uint8Array, box: Box): Trex {
  const r = payloadReader(bytes, box);
  r.fullBox();
  return {
    track_ID: r.u32(),
    default_sample_description_index: r.u32(),
    default_sample_duration: r.u32(),
    default_sample_size: r.u32(),
    default_sample_flags: r.u32(),
  };
}

/**
 * `moov` is the whole moov box (header of `headerSize` bytes included) found at `fileOffset` in the file. Only
 * single-track fragmented files are supported: a second trak, or a moov without mvex, is BMFF_UNSUPPORTED.
 */
export function parseMoov(moov: Uint8Array, headerSize: number, fileOffset: number): TrackInfo {
  const box: Box = { type: 'moov', start: 0, payload: headerSize, end: moov.length };
  let trak: Box | undefined;
  let mvex: Box | undefined;
  for (const b of children(moov, box.payload, box.end, 'moov')) {
    if (b.type === 'trak') {
      if (trak) throw unsupported('more than one trak: only single-track files are supported');
      trak = b;
    } else if (b.type === 'mvex') {
      if (mvex) throw malformed("'moov' holds more than one 'mvex'");
      mvex = b;
    }
  }
  if (!trak) throw malformed('moov has no trak');
  if (!mvex) throw unsupported('moov has no mvex: not a fragmented MP4 file');

  const inTrak = pick(moov, trak, ['tkhd', 'mdia']);
  const trackId = parseTkhd(moov, required(inTrak, 'tkhd', 'trak'));
  const mdia = pick(moov, required(inTrak, 'mdia', 'trak'), ['mdhd', 'hdlr', 'minf']);
  const timescale = parseMdhd(moov, required(mdia, 'mdhd', 'mdia'));
  const kind = handlerKind(parseHdlr(moov, required(mdia, 'hdlr', 'mdia')));
  const stbl = required(pick(moov, required(mdia, 'minf', 'mdia'), ['stbl']), 'stbl', 'minf');
  const description = parseStsd(moov, required(pick(moov, stbl, ['stsd']), 'stsd', 'stbl'));
  if (description.kind !== kind) {
    throw malformed(`'${description.sampleEntry}' sample entry in a ${kind} track`);
  }

  let trex: Trex | undefined;
  for (const b of children(moov, mvex.payload, mvex.end, 'mvex')) {
    if (b.type !== 'trex') continue;
    const t = parseTrex(moov, b);
    if (t.track_ID !== trackId) continue;
    if (trex) throw malformed(`more than one trex for track ${trackId}`);
    trex = t;
  }
  if (!trex) throw malformed(`mvex has no trex for track ${trackId}`);

  return {
    trackId,
    kind,
    timescale,
    sampleEntry: description.sampleEntry,
    codec: description.codec,
    codecConfig: description.codecConfig,
    ...(kind === 'video'
      ? { width: description.width, height: description.height }
      : { sampleRate: description.sampleRate, channels: description.channels }),
    defaultSampleDuration: trex.default_sample_duration,
    defaultSampleSize: trex.default_sample_size,
    defaultSampleFlags: trex.default_sample_flags,
    initSize: fileOffset + moov.length,
  };
}
