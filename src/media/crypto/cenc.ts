// Common Encryption (ISO/IEC 23001-7) of our clear CMAF renditions, on the fly: the 'cenc' scheme (AES-128-CTR,
// 8-byte per-sample IVs) and the 'cbcs' scheme (AES-128-CBC, 1:9 pattern for video, one constant IV per rendition).
// Nothing is stored twice: the origin keeps one clear fragmented MP4 per rendition (one H.264 or AAC track) and
// calls encryptInit once per rendition and encryptSegment per media segment; both are pure and deterministic (no
// randomness: the same bytes for every viewer, so the caller may cache them).
//
// Init (ISO/IEC 14496-12 §8.12, 23001-7 tenc and pssh): the sample entry avc1/avc3 → encv, mp4a → enca, with a
// sinf at its end holding frma (the original format), schm (scheme, version 0x00010000) and schi/tenc; the given
// pssh boxes go at the end of the moov. Every enclosing size is fixed; an empty moov has no chunk offsets to move.
//
// Segments (23001-7 sample auxiliary information; CMAF): each traf gains, at its end, saiz + saio + senc (in that
// order, as shaka-packager writes them: senc last, saio pointing at its first entry, i.e. senc start + 16, relative
// to the moof's first byte, which is the traf's base under default-base-is-moof). The moof grows, so every moof-based
// trun data_offset moves by the same amount (bmff/merge.ts editMoof). Samples are encrypted in place.
//
// IVs, 'cenc': 8 bytes = ivTag (1 byte, distinct per rendition of an asset) ‖ segment number (3 bytes BE) ‖ sample
// index within the segment (4 bytes BE); the CTR counter block is IV ‖ 0^64, incremented per 16-byte block and
// continued across the protected ranges of one sample. No IV repeats under one key as long as the ivTags of
// the renditions differ and segment numbers stay below 2^24 (larger ones are refused).
// 'cbcs': Per_Sample_IV_Size 0 and a 16-byte default_constant_IV in tenc (cbcs uses constant IVs), derived as
// HMAC-SHA256(key, "smoothcast cbcs constant IV" ‖ ivTag)[0..16): deterministic, different per rendition, and
// telling nothing about the key. The CBC chain restarts from the constant IV at each subsample (23001-7 §10.4) and
// runs over the encrypted blocks of the pattern only; a trailing partial block stays clear.
//
// Subsamples, H.264 (NAL units with a length prefix of avcC's lengthSizeMinusOne+1 bytes):
// a VCL NAL unit (types 1–5) keeps its length prefix and header byte clear, plus as many of its first bytes as make
// the protected part a whole number of 16-byte blocks (a protected size that is a multiple of 16: required for the
// CTR continuity of 'cenc' and never leaving a partial block to the cbcs pattern); for 'cbcs' at least the first 32
// bytes of the NAL unit stay clear (as in Apple's SAMPLE-AES): the slice header is usually inside them; a NAL unit of
// less than one protected block stays clear. Non-VCL NAL units (SEI, SPS, PPS, AUD, …) are clear. Clear runs are
// merged into the next subsample's clear count (split at 65535, the field's limit).
// AAC: 'cenc' encrypts the whole sample (no subsamples, saiz default size 8); 'cbcs' encrypts the sample's whole
// 16-byte blocks from the constant IV (no pattern: tenc crypt/skip 0/0) and leaves the trailing partial block clear.
// Its per-sample auxiliary information is then empty, so (23001-7: it "should be omitted"; shaka-packager does
// the same) the traf gets a senc with its sample count only and no saiz/saio.
//
// Malformed input ends in SmoothcastError('ENCRYPTION_UNSUPPORTED') with the reason; bad parameters from the caller
// (key or KID not 16 bytes, ivTag out of 0..255, a negative segment number) are 'INTERNAL'. Every read is bounds
// checked (bmff/reader.ts) and every loop is bounded by the input size or by MAX_SAMPLES.
import { createCipheriv, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { SmoothcastError } from '../../core/errors.ts';
import {
  TFHD_BASE_DATA_OFFSET,
  TFHD_DEFAULT_BASE_IS_MOOF,
  TFHD_DEFAULT_DURATION,
  TFHD_DEFAULT_FLAGS,
  TFHD_DEFAULT_SIZE,
  TFHD_SAMPLE_DESCRIPTION_INDEX,
  TRUN_CTO,
  TRUN_DATA_OFFSET,
  TRUN_DURATION,
  TRUN_FIRST_SAMPLE_FLAGS,
  TRUN_FLAGS,
  TRUN_SIZE,
} from '../bmff/flags.ts';
import { editMoof, type FragmentLayout, fragmentLayout, type TrafEdit } from '../bmff/merge.ts';
import { parseMoov } from '../bmff/movie.ts';
import { type Box, children, payloadReader, pick, Reader, required } from '../bmff/reader.ts';

export type CencScheme = 'cenc' | 'cbcs';

/** What encryptSegment needs to know about a rendition's track, read once from its clear init segment. */
export interface TrackInfo {
  kind: 'video' | 'audio';
  trackId: number;
  /** Bytes of each NAL unit's length prefix (avcC lengthSizeMinusOne + 1: 1, 2 or 4); 0 for audio. */
  nalLengthSize: number;
  /** 'avc1', 'avc3' or 'mp4a'. */
  sampleEntry: string;
  /** trex default_sample_size (§8.8.3), for truns and tfhds that leave the sample size out. */
  defaultSampleSize: number;
}

export interface CencParams {
  scheme: CencScheme;
  kid: Buffer;
  key: Buffer;
  /** 0..255, distinct per rendition of one asset: makes IVs unique under one key. */
  ivTag: number;
}

/** Most samples one segment may hold (a 2 s segment has ~100; this only bounds the work on lying input). */
export const MAX_SAMPLES = 100_000;
/** Largest segment number a 'cenc' IV holds (3 bytes). */
export const MAX_CENC_SEGMENT = 0xffffff;
/** NAL unit bytes (header byte included) that 'cbcs' keeps clear at least, before the protected blocks. */
export const CBCS_CLEAR_LEAD = 32;

const ENTRIES: Record<string, { kind: 'video' | 'audio'; encrypted: string }> = {
  avc1: { kind: 'video', encrypted: 'encv' },
  avc3: { kind: 'video', encrypted: 'encv' },
  mp4a: { kind: 'audio', encrypted: 'enca' },
};
const SENC_USE_SUBSAMPLES = 0x000002;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
/** The cbcs video pattern (23001-7 §10.4): crypt_byte_block 1, skip_byte_block 9. */
const CRYPT_BLOCKS = 1;
const SKIP_BLOCKS = 9;

function unsupported(message: string): SmoothcastError {
  return new SmoothcastError('ENCRYPTION_UNSUPPORTED', message);
}

function internal(message: string): SmoothcastError {
  return new SmoothcastError('INTERNAL', message);
}

/** Runs `work`, turning the bmff readers' BMFF_* errors into ENCRYPTION_UNSUPPORTED and anything else into INTERNAL. */
function guarded<T>(what: string, work: () => T): T {
  try {
    return work();
  } catch (err) {
    if (err instanceof SmoothcastError) {
      if (err.code === 'BMFF_MALFORMED' || err.code === 'BMFF_UNSUPPORTED') {
        throw new SmoothcastError('ENCRYPTION_UNSUPPORTED', `${what}: ${err.message}`, { cause: err });
      }
      throw err;
    }
    throw new SmoothcastError('INTERNAL', `${what}: ${String(err)}`, { cause: err });
  }
}

function checkParams(p: CencParams): void {
  if (p.scheme !== 'cenc' && p.scheme !== 'cbcs') throw internal(`unknown encryption scheme '${String(p.scheme)}'`);
  if (!(p.kid instanceof Uint8Array) || p.kid.length !== 16) throw internal('a KID is 16 bytes');
  if (!(p.key instanceof Uint8Array) || p.key.length !== 16) throw internal('an AES-128 key is 16 bytes');
  if (!Number.isInteger(p.ivTag) || p.ivTag < 0 || p.ivTag > 255) throw internal(`ivTag ${p.ivTag} is not 0..255`);
}

// ---------------------------------------------------------------------------------------------------------------
// Box writing

function boxOf(type: string, ...parts: Uint8Array[]): Buffer {
  const size = 8 + parts.reduce((n, b) => n + b.length, 0);
  const header = Buffer.alloc(8);
  header.writeUInt32BE(size, 0);
  header.write(type, 4, 'latin1');
  return Buffer.concat([header, ...parts], size);
}

function fullBoxOf(type: string, version: number, flags: number, ...parts: Uint8Array[]): Buffer {
  const vf = Buffer.alloc(4);
  vf.writeUInt32BE(((version << 24) | flags) >>> 0, 0);
  return boxOf(type, vf, ...parts);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

/** Grows the box at `box.start` of `out` by `by` bytes: its 32-bit size or its largesize (size 0: to the end, kept). */
function grow(out: Buffer, box: Box, by: number): void {
  const field = out.readUInt32BE(box.start);
  const size = box.end - box.start + by;
  if (field === 0) return;
  if (field === 1) out.writeBigUInt64BE(BigInt(size), box.start + 8);
  else if (size > U32_MAX) throw unsupported(`'${box.type}' would grow past 4 GiB`);
  else out.writeUInt32BE(size, box.start);
}

/** Top-level boxes of `bytes` (§4.2): size 1 → largesize, size 0 → to the end. */
function topLevel(bytes: Uint8Array, what: string): Box[] {
  const out: Box[] = [];
  const r = new Reader(bytes, what);
  while (r.pos < bytes.length) {
    const start = r.pos;
    let size = r.u32();
    const type = r.fourcc();
    if (size === 1) size = r.u64();
    else if (size === 0) size = bytes.length - start;
    if (type === 'uuid') r.skip(16);
    if (size < r.pos - start || size > bytes.length - start) {
      throw unsupported(`${what}: box '${type}' at ${start} has size ${size}, ${bytes.length - start} bytes available`);
    }
    out.push({ type, start, payload: r.pos, end: start + size });
    r.pos = start + size;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Init segment

interface InitLayout {
  info: TrackInfo;
  moov: Box;
  /** moov, trak, mdia, minf, stbl, stsd, sample entry: the boxes that grow by the sinf. */
  path: Box[];
}

function readInit(init: Uint8Array): InitLayout {
  const moovs = topLevel(init, 'init segment').filter((b) => b.type === 'moov');
  if (moovs.length !== 1) throw unsupported(`init segment holds ${moovs.length} moov boxes, expected one`);
  const moov = moovs[0]!;
  const track = parseMoov(init.subarray(moov.start, moov.end), moov.payload - moov.start, moov.start);
  const entryKind = ENTRIES[track.sampleEntry];
  if (!entryKind) {
    throw unsupported(
      `sample entry '${track.sampleEntry}' (${track.codec}): only H.264 (avc1, avc3) and AAC (mp4a) can be encrypted`,
    );
  }
  let nalLengthSize = 0;
  if (entryKind.kind === 'video') {
    const lengthSizeMinusOne = track.codecConfig[4];
    if (lengthSizeMinusOne === undefined) throw unsupported('avcC is too short to give the NAL unit length size');
    nalLengthSize = (lengthSizeMinusOne & 3) + 1;
    if (nalLengthSize === 3) throw unsupported('avcC gives 3-byte NAL unit lengths (ISO/IEC 14496-15 allows 1, 2, 4)');
  }
  const trak = [...children(init, moov.payload, moov.end, 'moov')].find((b) => b.type === 'trak');
  if (!trak) throw unsupported('moov has no trak');
  const mdia = required(pick(init, trak, ['mdia']), 'mdia', 'trak');
  const minf = required(pick(init, mdia, ['minf']), 'minf', 'mdia');
  const stbl = required(pick(init, minf, ['stbl']), 'stbl', 'minf');
  const inStbl = pick(init, stbl, ['stsd', 'stco', 'co64']);
  const stsd = required(inStbl, 'stsd', 'stbl');
  // Growing the moov moves whatever follows it: chunk offsets into the file would go stale (an empty moov has none).
  for (const type of ['stco', 'co64']) {
    const b = inStbl.get(type);
    if (!b) continue;
    const r = payloadReader(init, b);
    r.fullBox();
    if (r.u32() !== 0)
      throw unsupported(`${type} lists chunks: only fragmented files with an empty moov are supported`);
  }
  const first = children(init, stsd.payload + 8, stsd.end, 'stsd').next();
  if (first.done) throw unsupported('stsd has no sample entry');
  const entry = first.value;
  if (entry.type !== track.sampleEntry) throw unsupported(`stsd entry '${entry.type}' is not '${track.sampleEntry}'`);
  if (track.kind !== entryKind.kind) throw unsupported(`'${entry.type}' sample entry in a ${track.kind} track`);
  return {
    info: {
      kind: entryKind.kind,
      trackId: track.trackId,
      nalLengthSize,
      sampleEntry: track.sampleEntry,
      defaultSampleSize: track.defaultSampleSize,
    },
    moov,
    path: [moov, trak, mdia, minf, stbl, stsd, entry],
  };
}

/**
 * Parsed once per rendition from its clear init segment. Throws ENCRYPTION_UNSUPPORTED for codecs other than
 * avc1/avc3/mp4a.
 */
export function trackInfo(init: Uint8Array): TrackInfo {
  return guarded('init segment', () => readInit(init).info);
}

/** The 'cbcs' default_constant_IV of a rendition: HMAC-SHA256(key, label ‖ ivTag), first 16 bytes. */
export function constantIv(p: Pick<CencParams, 'key' | 'ivTag'>): Buffer {
  return createHmac('sha256', p.key)
    .update('smoothcast cbcs constant IV')
    .update(Uint8Array.of(p.ivTag))
    .digest()
    .subarray(0, 16);
}

/** 23001-7 tenc: version 0 for 'cenc' (8-byte per-sample IVs), version 1 with pattern and constant IV for 'cbcs'. */
function tencBox(kind: 'video' | 'audio', p: CencParams): Buffer {
  if (p.scheme === 'cenc') {
    // reserved, reserved, default_isProtected, default_Per_Sample_IV_Size, default_KID
    return fullBoxOf('tenc', 0, 0, Uint8Array.of(0, 0, 1, 8), p.kid);
  }
  const pattern = kind === 'video' ? (CRYPT_BLOCKS << 4) | SKIP_BLOCKS : 0;
  // reserved, crypt/skip, default_isProtected, Per_Sample_IV_Size 0, KID, default_constant_IV_size, constant IV
  return fullBoxOf('tenc', 1, 0, Uint8Array.of(0, pattern, 1, 0), p.kid, Uint8Array.of(16), constantIv(p));
}

function sinfBox(originalFormat: string, kind: 'video' | 'audio', p: CencParams): Buffer {
  const frma = boxOf('frma', Buffer.from(originalFormat, 'latin1'));
  const schm = fullBoxOf('schm', 0, 0, Buffer.from(p.scheme, 'latin1'), u32(0x00010000));
  return boxOf('sinf', frma, schm, boxOf('schi', tencBox(kind, p)));
}

function checkPssh(b: Uint8Array, i: number): void {
  const ok =
    b.length >= 32 &&
    b[4] === 0x70 && // 'pssh'
    b[5] === 0x73 &&
    b[6] === 0x73 &&
    b[7] === 0x68 &&
    Buffer.from(b.buffer, b.byteOffset, b.length).readUInt32BE(0) === b.length;
  if (!ok) throw internal(`pssh[${i}] is not one whole pssh box`);
}

/**
 * The encrypted init: avc1/avc3 → encv, mp4a → enca with sinf(frma, schm, schi(tenc)) at the end of the sample
 * entry, the `pssh` boxes (whole boxes, e.g. from pssh.ts psshBox) appended inside the moov, every enclosing size
 * fixed.
 */
export function encryptInit(init: Uint8Array, p: CencParams, pssh: readonly Uint8Array[]): Buffer {
  checkParams(p);
  pssh.forEach(checkPssh);
  return guarded('init segment', () => {
    const { info, moov, path } = readInit(init);
    const entry = path[path.length - 1]!;
    const sinf = sinfBox(entry.type, info.kind, p);
    const psshBytes = Buffer.concat(pssh);
    const out = Buffer.concat([
      init.subarray(0, entry.end),
      sinf,
      init.subarray(entry.end, moov.end),
      psshBytes,
      init.subarray(moov.end),
    ]);
    // Both insertions lie at or after the end of every box on the path, so no box start moves.
    for (const b of path) grow(out, b, b === moov ? sinf.length + psshBytes.length : sinf.length);
    out.write(ENTRIES[entry.type]!.encrypted, entry.start + 4, 'latin1');
    return out;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Media segments

interface Context {
  info: TrackInfo;
  p: CencParams;
  segmentNumber: number;
  civ: Buffer | undefined;
  /** Samples seen so far in this segment (the last four bytes of a 'cenc' IV). */
  sampleIndex: number;
  key: KeyObject;
}

/** One traf's samples, encryption layout and the boxes to append to it. */
interface TrafPlan {
  starts: number[];
  sizes: number[];
  /** Per sample: number of subsamples; 0 → whole-sample encryption. */
  subsampleCounts: number[];
  /** (clear, protected) pairs of every sample, in order. */
  subsamples: number[];
  /** Sample index (within the segment) of the first sample. */
  firstIndex: number;
}

/**
 * Appends the (clear, protected) subsamples of one length-prefixed H.264 sample [start, start+size) to `out` and
 * returns their count. Throws when a NAL unit length runs past the sample.
 */
function nalSubsamples(
  bytes: Uint8Array,
  start: number,
  size: number,
  lengthSize: number,
  scheme: CencScheme,
  out: number[],
): number {
  const end = start + size;
  let pos = start;
  let clear = 0;
  let count = 0;
  const add = (c: number, p: number) => {
    while (c > U16_MAX) {
      out.push(U16_MAX, 0);
      c -= U16_MAX;
      count++;
    }
    out.push(c, p);
    count++;
  };
  while (pos < end) {
    if (end - pos < lengthSize) throw unsupported(`NAL unit length field at ${pos} runs past the sample`);
    let n = 0;
    for (let i = 0; i < lengthSize; i++) n = n * 256 + (bytes[pos + i] as number);
    if (n > end - pos - lengthSize) {
      throw unsupported(`NAL unit at ${pos} of ${n} bytes runs past the sample (${end - pos - lengthSize} left)`);
    }
    let protectedSize = 0;
    const type = n > 0 ? (bytes[pos + lengthSize] as number) & 0x1f : 0;
    if (type >= 1 && type <= 5) {
      const lead = scheme === 'cenc' ? 1 : CBCS_CLEAR_LEAD;
      if (n > lead) protectedSize = Math.floor((n - lead) / 16) * 16;
    }
    clear += lengthSize + n - protectedSize;
    if (protectedSize > 0) {
      add(clear, protectedSize);
      clear = 0;
    }
    pos += lengthSize + n;
  }
  if (clear > 0 || count === 0) add(clear, 0);
  if (count > U16_MAX) throw unsupported(`a sample at ${start} would need ${count} subsamples (at most 65535)`);
  return count;
}

interface Tfhd {
  flags: number;
  track_ID: number;
  hasBaseDataOffset: boolean;
  default_sample_size: number | undefined;
}

/** §8.8.7 tfhd. */
function parseTfhd(bytes: Uint8Array, box: Box): Tfhd {
  const r = payloadReader(bytes, box);
  const { flags } = r.fullBox();
  const track_ID = r.u32();
  if (flags & TFHD_BASE_DATA_OFFSET) r.skip(8);
  if (flags & TFHD_SAMPLE_DESCRIPTION_INDEX) r.skip(4);
  if (flags & TFHD_DEFAULT_DURATION) r.skip(4);
  const default_sample_size = flags & TFHD_DEFAULT_SIZE ? r.u32() : undefined;
  if (flags & TFHD_DEFAULT_FLAGS) r.skip(4);
  return { flags, track_ID, hasBaseDataOffset: (flags & TFHD_BASE_DATA_OFFSET) !== 0, default_sample_size };
}

/** Where one fragment's samples may lie, and how far the previous one reached (samples never overlap). */
interface DataBounds {
  payload: number;
  end: number;
  last: number;
}

function planTraf(bytes: Uint8Array, moof: Box, traf: Box, first: boolean, data: DataBounds, ctx: Context): TrafPlan {
  const inTraf = [...children(bytes, traf.payload, traf.end, 'traf')];
  const tfhds = inTraf.filter((b) => b.type === 'tfhd');
  if (tfhds.length !== 1) throw unsupported(`traf holds ${tfhds.length} tfhd boxes, expected one`);
  for (const b of inTraf) {
    if (b.type === 'senc' || b.type === 'saiz' || b.type === 'saio') {
      throw unsupported(`traf already holds '${b.type}': the fragment is encrypted already`);
    }
  }
  const tfhd = parseTfhd(bytes, tfhds[0]!);
  if (tfhd.track_ID !== ctx.info.trackId) {
    throw unsupported(`traf for track ${tfhd.track_ID}; the init segment describes track ${ctx.info.trackId}`);
  }
  if (tfhd.hasBaseDataOffset) throw unsupported('tfhd with an absolute base_data_offset');
  // 14496-12 §8.8.7: default-base-is-moof (CMAF) or the first traf: the base is the moof's first byte. The saio
  // offsets (§8.7.9) are relative to the same base.
  if (!(tfhd.flags & TFHD_DEFAULT_BASE_IS_MOOF) && !first) {
    throw unsupported("a second traf based on the previous traf's data (no default-base-is-moof)");
  }
  const base = moof.start;
  const defaultSize = tfhd.default_sample_size ?? ctx.info.defaultSampleSize;
  const plan: TrafPlan = { starts: [], sizes: [], subsampleCounts: [], subsamples: [], firstIndex: ctx.sampleIndex };
  let follows = base;
  for (const b of inTraf) {
    if (b.type !== 'trun') continue;
    const r = payloadReader(bytes, b);
    const { flags } = r.fullBox();
    const sample_count = r.u32();
    const data_offset = flags & TRUN_DATA_OFFSET ? r.i32() : undefined;
    if (flags & TRUN_FIRST_SAMPLE_FLAGS) r.skip(4);
    const before = flags & TRUN_DURATION ? 4 : 0;
    const after = (flags & TRUN_FLAGS ? 4 : 0) + (flags & TRUN_CTO ? 4 : 0);
    const hasSize = (flags & TRUN_SIZE) !== 0;
    const perSample = before + (hasSize ? 4 : 0) + after;
    if (perSample > 0 && sample_count > r.remaining / perSample) {
      throw unsupported(
        `trun sample_count ${sample_count} needs ${sample_count * perSample} bytes, ${r.remaining} left`,
      );
    }
    if (ctx.sampleIndex + sample_count > MAX_SAMPLES) throw unsupported(`segment has more than ${MAX_SAMPLES} samples`);
    let pos = data_offset === undefined ? follows : base + data_offset;
    for (let i = 0; i < sample_count; i++) {
      r.skip(before);
      const size = hasSize ? r.u32() : defaultSize;
      r.skip(after);
      if (pos < data.payload || pos < data.last || size > data.end - pos) {
        throw unsupported(
          `sample ${i} of a trun at [${pos}, ${pos + size}) lies outside the mdat payload [${Math.max(data.payload, data.last)}, ${data.end})`,
        );
      }
      plan.starts.push(pos);
      plan.sizes.push(size);
      if (ctx.info.kind === 'video') {
        plan.subsampleCounts.push(
          nalSubsamples(bytes, pos, size, ctx.info.nalLengthSize, ctx.p.scheme, plan.subsamples),
        );
      } else {
        plan.subsampleCounts.push(0);
      }
      pos += size;
      data.last = pos;
      ctx.sampleIndex++;
    }
    follows = pos;
  }
  return plan;
}

/** The 8-byte 'cenc' IV of sample `index` of the segment. */
function cencIv(ctx: Context, index: number, out: Buffer, at: number): void {
  out.writeUInt8(ctx.p.ivTag, at);
  out.writeUIntBE(ctx.segmentNumber, at + 1, 3);
  out.writeUInt32BE(index, at + 4);
}

/**
 * saiz + saio + senc for one traf, to be inserted `insertAt` bytes after the moof's first byte: saio's offset is then
 * insertAt + saiz + saio + the senc's 16 bytes of header and sample_count, i.e. the senc's first entry.
 */
function auxiliaryBoxes(plan: TrafPlan, ctx: Context, insertAt: number): Buffer {
  const ivSize = ctx.p.scheme === 'cenc' ? 8 : 0;
  const video = ctx.info.kind === 'video';
  const n = plan.sizes.length;
  const infoSizes = plan.subsampleCounts.map((c) => ivSize + (video ? 2 + 6 * c : 0));
  const sencSize = 16 + infoSizes.reduce((a, b) => a + b, 0);
  const senc = Buffer.alloc(sencSize);
  senc.writeUInt32BE(sencSize, 0);
  senc.write('senc', 4, 'latin1');
  senc.writeUInt32BE(video ? SENC_USE_SUBSAMPLES : 0, 8);
  senc.writeUInt32BE(n, 12);
  let at = 16;
  let pair = 0;
  for (let i = 0; i < n; i++) {
    if (ivSize) {
      cencIv(ctx, plan.firstIndex + i, senc, at);
      at += ivSize;
    }
    if (video) {
      const count = plan.subsampleCounts[i]!;
      senc.writeUInt16BE(count, at);
      at += 2;
      for (let j = 0; j < count; j++, pair += 2) {
        senc.writeUInt16BE(plan.subsamples[pair]!, at);
        senc.writeUInt32BE(plan.subsamples[pair + 1]!, at + 2);
        at += 6;
      }
    }
  }
  // 'cbcs' audio: no per-sample information at all, so no saiz/saio (see the file comment; as shaka-packager does).
  if (infoSizes.every((s) => s === 0)) return senc;
  const uniform = infoSizes.every((s) => s === infoSizes[0]);
  if (infoSizes.some((s) => s > 255)) throw unsupported('a sample has more subsamples than saiz can describe');
  const saiz = Buffer.alloc(17 + (uniform ? 0 : n));
  saiz.writeUInt32BE(saiz.length, 0);
  saiz.write('saiz', 4, 'latin1');
  saiz.writeUInt32BE(0, 8); // version 0, flags 0: no aux_info_type, so it is the scheme's
  saiz.writeUInt8(uniform ? infoSizes[0]! : 0, 12);
  saiz.writeUInt32BE(n, 13);
  if (!uniform) saiz.set(infoSizes, 17);
  const saio = Buffer.alloc(20);
  saio.writeUInt32BE(20, 0);
  saio.write('saio', 4, 'latin1');
  saio.writeUInt32BE(0, 8); // version 0 (32-bit offsets), flags 0
  saio.writeUInt32BE(1, 12); // entry_count
  const sencData = insertAt + saiz.length + saio.length + 16;
  if (sencData > U32_MAX) throw unsupported('saio offset past 4 GiB');
  saio.writeUInt32BE(sencData, 16);
  return Buffer.concat([saiz, saio, senc]);
}

// Ciphers: one node:crypto cipher per sample ('cenc': AES-CTR from IV ‖ 0^64, one update per protected range, the
// stream continuing across them) or per chain ('cbcs': AES-CBC from the constant IV over a subsample's pattern blocks
// gathered into one buffer, or over an audio frame's whole blocks). They are made from one KeyObject per segment:
// createCipheriv with a raw key costs ~10–30 µs here (Node 24, mostly the key import), with a KeyObject ~1 µs.

/** The protected ranges of sample `i` of `plan` as (index in out, length) pairs; `pair` is its first subsample. */
function protectedRanges(plan: TrafPlan, i: number, pair: number, shift: number): number[] {
  const start = plan.starts[i]! + shift;
  const count = plan.subsampleCounts[i]!;
  if (count === 0) return plan.sizes[i]! > 0 ? [start, plan.sizes[i]!] : [];
  const ranges: number[] = [];
  let pos = start;
  for (let j = 0; j < count; j++) {
    pos += plan.subsamples[pair + 2 * j]!;
    const p = plan.subsamples[pair + 2 * j + 1]!;
    if (p > 0) ranges.push(pos, p);
    pos += p;
  }
  return ranges;
}

/** Encrypts the samples of `plan` in `out`, where each lies `shift` bytes later than in the clear fragment. */
function encryptSamples(out: Buffer, plan: TrafPlan, shift: number, ctx: Context): void {
  const key = ctx.key;
  const iv = Buffer.alloc(16);
  const stride = 16 * (CRYPT_BLOCKS + SKIP_BLOCKS);
  let pair = 0;
  for (let i = 0; i < plan.sizes.length; i++) {
    const count = plan.subsampleCounts[i]!;
    const ranges = protectedRanges(plan, i, pair, shift);
    pair += 2 * count;
    if (ranges.length === 0) continue;
    if (ctx.p.scheme === 'cenc') {
      cencIv(ctx, plan.firstIndex + i, iv, 0); // counter block IV ‖ 0^64
      const c = createCipheriv('aes-128-ctr', key, iv);
      for (let r = 0; r < ranges.length; r += 2) {
        const at = ranges[r]!;
        out.set(c.update(out.subarray(at, at + ranges[r + 1]!)), at);
      }
      continue;
    }
    const civ = ctx.civ!;
    for (let r = 0; r < ranges.length; r += 2) {
      const at = ranges[r]!;
      const size = ranges[r + 1]!;
      if (count === 0) {
        // Audio: every whole block of the sample, one chain; the trailing partial block stays clear.
        const whole = size - (size % 16);
        if (whole === 0) continue;
        const c = createCipheriv('aes-128-cbc', key, civ).setAutoPadding(false);
        out.set(c.update(out.subarray(at, at + whole)), at);
        continue;
      }
      // Video: the first block of every ten (1:9) of the subsample's protected range, one chain from the IV.
      const blocks = size < 16 ? 0 : Math.floor((size - 16) / stride) + 1;
      if (blocks === 0) continue;
      const gathered = Buffer.allocUnsafe(16 * blocks);
      for (let k = 0; k < blocks; k++) out.copy(gathered, 16 * k, at + stride * k, at + stride * k + 16);
      const enc = createCipheriv('aes-128-cbc', key, civ).setAutoPadding(false).update(gathered);
      for (let k = 0; k < blocks; k++) enc.copy(out, at + stride * k, 16 * k, 16 * k + 16);
    }
  }
}

/** One moof+mdat (after optional styp/prft/…): the encrypted fragment. */
function encryptFragment(bytes: Uint8Array, ctx: Context): Buffer {
  const layout: FragmentLayout = fragmentLayout(bytes);
  const { moof, mdat } = layout;
  if (!mdat) throw unsupported('moof without an mdat');
  const data: DataBounds = { payload: mdat.payload, end: mdat.end, last: 0 };
  const plans: TrafPlan[] = [];
  const edits: TrafEdit[] = [];
  let growth = 0;
  let first = true;
  for (const traf of children(bytes, moof.payload, moof.end, 'moof')) {
    if (traf.type !== 'traf') continue;
    const plan = planTraf(bytes, moof, traf, first, data, ctx);
    first = false;
    if (plan.sizes.length === 0) continue;
    const insert = auxiliaryBoxes(plan, ctx, traf.end + growth - moof.start);
    edits.push({ traf, at: traf.end, remove: 0, insert });
    growth += insert.length;
    plans.push(plan);
  }
  if (first) throw unsupported('moof has no traf');
  const edited = editMoof(bytes, layout, edits);
  const out = Buffer.from(edited.buffer, edited.byteOffset, edited.byteLength);
  for (const plan of plans) encryptSamples(out, plan, growth, ctx);
  return out;
}

/** [start, end) of each [prefix boxes] moof mdat run of a segment. */
function fragmentsOf(segment: Uint8Array): [number, number][] {
  const boxes = topLevel(segment, 'segment');
  const out: [number, number][] = [];
  let from = 0;
  for (let i = 0; i < boxes.length; i++) {
    const b = boxes[i]!;
    if (b.type === 'mdat') throw unsupported(`mdat at ${b.start} has no moof before it`);
    if (b.type !== 'moof') continue;
    const next = boxes[i + 1];
    if (next?.type !== 'mdat') throw unsupported(`moof at ${b.start} is not followed by an mdat`);
    out.push([from, next.end]);
    from = next.end;
    i++;
  }
  if (out.length === 0) throw unsupported('segment has no moof');
  if (from !== segment.length) throw unsupported(`bytes after the last mdat (at ${from})`);
  return out;
}

/**
 * One segment (1..N moof+mdat, each optionally after styp/prft/emsg): samples encrypted in place, each traf with
 * saiz + saio + senc appended (for 'cbcs' audio a senc only), trun data_offsets fixed for the grown moof.
 * `segmentNumber` is the 0-based segment index, part of every 'cenc' IV (below 2^24).
 */
export function encryptSegment(segment: Uint8Array, info: TrackInfo, p: CencParams, segmentNumber: number): Buffer {
  checkParams(p);
  if (!Number.isSafeInteger(segmentNumber) || segmentNumber < 0) throw internal(`bad segment number ${segmentNumber}`);
  if (p.scheme === 'cenc' && segmentNumber > MAX_CENC_SEGMENT) {
    throw unsupported(`segment number ${segmentNumber} does not fit the 3 bytes of a 'cenc' IV`);
  }
  if (info.kind === 'video' && ![1, 2, 4].includes(info.nalLengthSize)) {
    throw internal(`bad NAL length size ${info.nalLengthSize}`);
  }
  return guarded(`segment ${segmentNumber}`, () => {
    const ctx: Context = {
      info,
      p,
      segmentNumber,
      civ: p.scheme === 'cbcs' ? constantIv(p) : undefined,
      sampleIndex: 0,
      key: createSecretKey(p.key),
    };
    const parts = fragmentsOf(segment).map(([s, e]) => encryptFragment(segment.subarray(s, e), ctx));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  });
}
