// HTTP push ingest of fragmented MP4 (pure part): a streaming demuxer for what an encoder POSTs — Smooth Streaming
// push (`ffmpeg -f ismv http://…/Streams(x)`: ftyp, an optional "live server manifest" uuid box, ONE moov with
// several tracks, then moof+mdat, one track per moof) and DASH-IF Live Media Ingest interface 1 (one single-track
// CMAF stream per path: ftyp+moov, then moof+mdat, optionally with styp). Fed body chunks split anywhere, it gives
// per track a single-track init (ftyp + a moov rebuilt with mvhd, that one trak and mvex with its trex) and
// single-track moof+mdat fragments (ISO/IEC 14496-12 §8.8) that the rest of smoothcast reads like its own CMAF files.
//
// Every fragment is rebuilt: a moof with several trafs is split into one fragment per track (their sample data cut
// out of the shared mdat); the tfhd becomes default-base-is-moof with no base_data_offset; a tfdt (version 1) is
// written from the tfdt, else the Smooth tfxd uuid box ([MS-SSTR] §2.2.4.4: ffmpeg's ismv has no tfdt), else the
// end of the track's previous fragment; traf uuid boxes (tfxd, tfrf) are dropped, the origin adds its own; every
// trun gets a data_offset right for the new mdat. The result is checked with the same parseMoof the indexer uses.
//
// Only whole boxes the demuxer needs are held (ftyp, moov, moof and the mdat after a moof), each at most
// maxBoxSize; anything else at file level (uuid, free, styp, sidx, prft, emsg, mfra, …) is skipped as it streams
// by, unbuffered. Errors are SmoothcastErrors: LIVE_MEDIA_UNSUPPORTED (not fragmented MP4, a codec other than
// H.264/HEVC/AAC, encryption, too many tracks), LIVE_INIT_MISSING (a fragment of a track with no init),
// PAYLOAD_TOO_LARGE (a box over the limit) and BMFF_MALFORMED (damaged structure). The first error is kept.
import { SmoothcastError } from '../../core/errors.ts';
import { parseMoof, SAMPLE_IS_NON_SYNC } from '../bmff/fragment.ts';
import { parseMoov } from '../bmff/movie.ts';
import { type Box, children, fourcc, malformed, payloadReader, Reader } from '../bmff/reader.ts';
import type { TrackInfo, TrackKind } from '../types.ts';

export interface PushLimits {
  /** Largest box read whole (moov, moof, an mdat, ftyp), header included. Default 32 MiB. */
  maxBoxSize?: number;
  /** Tracks known at once (in one moov, or over several). Default 16. */
  maxTracks?: number;
  /** Samples in one track fragment. Default 1,000,000. */
  maxSamplesPerFragment?: number;
}

export const PUSH_DEFAULTS = {
  maxBoxSize: 32 * 1024 * 1024,
  maxTracks: 16,
  maxSamplesPerFragment: 1_000_000,
} as const satisfies Required<PushLimits>;

export interface PushInit {
  type: 'init';
  trackId: number;
  kind: TrackKind;
  /** ftyp + a moov holding only this track: a valid single-track initialization segment. */
  init: Uint8Array;
  /** parseMoov of `init`. */
  track: TrackInfo;
}

export interface PushFragment {
  type: 'fragment';
  trackId: number;
  /** moof + mdat of this track alone; trun data_offset relative to the moof (default-base-is-moof). */
  fragment: Uint8Array;
  /** tfdt baseMediaDecodeTime, track timescale. */
  start: number;
  duration: number;
  samples: number;
  /** The first sample is a sync sample. */
  keyframe: boolean;
  /** mfhd sequence_number of the moof it came from (0 when it had none). */
  sequenceNumber: number;
}

export type PushEvent = PushInit | PushFragment;

export interface PushDemuxerOptions {
  limits?: PushLimits;
  /**
   * Inits already known for this stream (from an earlier request on the same path: DASH-IF ingest may POST the
   * init and each segment separately). Their tracks take fragments without a moov in this body.
   */
  tracks?: Iterable<PushInit>;
}

// File-level boxes a fragmented MP4 stream may begin with; anything else first is not one (415, not 400).
const STREAM_START = new Set([
  'ftyp',
  'styp',
  'moov',
  'moof',
  'free',
  'skip',
  'wide',
  'uuid',
  'sidx',
  'prft',
  'emsg',
  'pdin',
  'meta',
]);
const TFXD = '6d1d9b0542d544e680e2141daff757b2';
const PIFF_SAMPLE_ENCRYPTION = 'a2394f525a9b4f14a2446c427c648df4';
const DEFAULT_FTYP = box('ftyp', ascii('iso6'), u32(0), ascii('iso6'), ascii('isom'));
const HEADER_MAX = 16;

function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A box with a 32-bit size (everything built here is under maxBoxSize, far below 4 GiB). */
function box(type: string, ...parts: Uint8Array[]): Uint8Array {
  let n = 8;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  new DataView(out.buffer).setUint32(0, n);
  out.set(ascii(type), 4);
  let at = 8;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

function unsupported(message: string): SmoothcastError {
  return new SmoothcastError('LIVE_MEDIA_UNSUPPORTED', message);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Errors of the bmff readers as this ingest's codes; anything not a SmoothcastError is a bug (INTERNAL). */
function pushError(err: unknown): SmoothcastError {
  if (err instanceof SmoothcastError) {
    return err.code === 'BMFF_UNSUPPORTED'
      ? new SmoothcastError('LIVE_MEDIA_UNSUPPORTED', err.message, { cause: err })
      : err;
  }
  return new SmoothcastError('INTERNAL', `push demuxer: ${String(err)}`, { cause: err });
}

/** §8.3.2 tkhd track_ID. */
function tkhdTrackId(bytes: Uint8Array, tkhd: Box): number {
  const r = payloadReader(bytes, tkhd);
  const { version } = r.fullBox();
  r.skip(version === 1 ? 16 : 8);
  const id = r.u32();
  if (id === 0) throw malformed('tkhd track_ID is 0');
  return id;
}

/** The track kinds and codecs this ingest takes: H.264/HEVC video (parseStsd refuses the rest), AAC audio. */
function checkCodec(track: TrackInfo): void {
  if (track.kind === 'audio' && !track.codec.startsWith('mp4a.40.')) {
    throw unsupported(`audio track ${track.trackId} is '${track.codec}': only AAC (mp4a.40.x) is taken`);
  }
}

interface Tfhd {
  flags: number;
  trackId: number;
  baseDataOffset: number | undefined;
  sampleDescriptionIndex: number | undefined;
  defaultDuration: number | undefined;
  defaultSize: number | undefined;
  defaultFlags: number | undefined;
}

interface Run {
  version: number;
  flags: number;
  sampleCount: number;
  firstSampleFlags: number | undefined;
  /** The per-sample table, as it was. */
  table: Uint8Array;
  /** Offset of the run's sample data from the moof's first byte. */
  dataStart: number;
  dataSize: number;
}

interface TrafPlan {
  trackId: number;
  track: PushInit;
  tfhd: Tfhd;
  /** tfdt, else tfxd time; undefined: follows the track's previous fragment. */
  time: number | undefined;
  /** Children after tfhd/tfdt in their order: runs (by index) and boxes kept as they are (sdtp, sbgp, sgpd, subs). */
  body: (Run | Uint8Array)[];
  samples: number;
}

interface PendingMoof {
  bytes: Uint8Array;
  start: number;
  sequenceNumber: number;
  trafs: TrafPlan[];
}

/** A box being received: `buf` grows by doubling (never past `size`), so memory follows what has arrived. */
interface OpenBox {
  type: string;
  start: number;
  size: number;
  got: number;
  buf: Uint8Array;
}

const FIRST_BUFFER = 64 * 1024;

function parseTfhd(bytes: Uint8Array, b: Box): Tfhd {
  const r = payloadReader(bytes, b);
  const { flags } = r.fullBox();
  const trackId = r.u32();
  return {
    flags,
    trackId,
    baseDataOffset: flags & 0x000001 ? r.u64() : undefined,
    sampleDescriptionIndex: flags & 0x000002 ? r.u32() : undefined,
    defaultDuration: flags & 0x000008 ? r.u32() : undefined,
    defaultSize: flags & 0x000010 ? r.u32() : undefined,
    defaultFlags: flags & 0x000020 ? r.u32() : undefined,
  };
}

/**
 * A 64-bit time. Values of 2^63 and more are taken as negative (two's complement): ffmpeg's ismv writes the AAC
 * priming (-1024 samples) as tfxd time 2^64 - 232200. Values past ±2^53 cannot be held exactly and are refused.
 */
function time64(r: Reader): number {
  r.need(8);
  const v = new DataView(r.bytes.buffer, r.bytes.byteOffset + r.pos, 8).getBigInt64(0);
  r.pos += 8;
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw unsupported(`${r.what}: 64-bit time ${BigInt.asUintN(64, v)} is too large`);
  }
  return Number(v);
}

/** §8.8.12 tfdt, and [MS-SSTR] §2.2.4.4 TfxdBox (version, flags, fragment absolute time, duration): the time. */
function parseTime(bytes: Uint8Array, b: Box): number {
  const r = payloadReader(bytes, b);
  const { version } = r.fullBox();
  return version === 1 ? time64(r) : r.u32();
}

/** Rebuilt single-track tfhd: default-base-is-moof, no base_data_offset, the same defaults. */
function writeTfhd(t: Tfhd): Uint8Array {
  const flags = (t.flags & ~0x000001) | 0x020000;
  const fields = [u32(flags & 0xffffff), u32(t.trackId)];
  if (t.sampleDescriptionIndex !== undefined) fields.push(u32(t.sampleDescriptionIndex));
  if (t.defaultDuration !== undefined) fields.push(u32(t.defaultDuration));
  if (t.defaultSize !== undefined) fields.push(u32(t.defaultSize));
  if (t.defaultFlags !== undefined) fields.push(u32(t.defaultFlags));
  return box('tfhd', ...fields);
}

function writeTfdt(time: number): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x01000000);
  v.setBigUint64(4, BigInt(time));
  return box('tfdt', b);
}

/** The trun with a data_offset (placeholder, patched later at `offsetAt` from the trun's start). */
function writeTrun(run: Run): { bytes: Uint8Array; offsetAt: number } {
  const head = new Uint8Array(12 + (run.firstSampleFlags !== undefined ? 4 : 0));
  const v = new DataView(head.buffer);
  v.setUint32(0, ((run.version & 0xff) << 24) | ((run.flags | 0x000001) & 0xffffff));
  v.setUint32(4, run.sampleCount);
  if (run.firstSampleFlags !== undefined) v.setUint32(12, run.firstSampleFlags);
  return { bytes: box('trun', head, run.table), offsetAt: 16 };
}

export class PushDemuxer {
  readonly #maxBoxSize: number;
  readonly #maxTracks: number;
  readonly #maxSamples: number;
  readonly #tracks = new Map<number, PushInit>();
  /** Where each track's next fragment starts when it says nothing of its time. */
  readonly #next = new Map<number, number>();
  /** Added to a track's times: what made its first time 0 when it was negative. */
  readonly #shift = new Map<number, number>();
  #ftyp: Uint8Array | undefined;
  #offset = 0;
  readonly #head = new Uint8Array(HEADER_MAX);
  #headLen = 0;
  #box: OpenBox | undefined;
  #skip = 0;
  #boxes = 0;
  #pending: PendingMoof | undefined;
  #out: PushEvent[] = [];
  #error: SmoothcastError | undefined;
  #ended = false;

  constructor(options: PushDemuxerOptions = {}) {
    const l = { ...PUSH_DEFAULTS, ...options.limits };
    for (const [k, v] of Object.entries(l)) {
      if (!(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`PushDemuxer: limits.${k} must be > 0, not ${v}`);
    }
    this.#maxBoxSize = l.maxBoxSize;
    this.#maxTracks = l.maxTracks;
    this.#maxSamples = l.maxSamplesPerFragment;
    for (const t of options.tracks ?? []) this.#tracks.set(t.trackId, t);
    if (this.#tracks.size > this.#maxTracks) throw unsupported(`more than ${this.#maxTracks} tracks`);
  }

  /** The tracks known so far (last init of each). */
  get tracks(): PushInit[] {
    return [...this.#tracks.values()];
  }

  /** Body bytes consumed. */
  get bytes(): number {
    return this.#offset;
  }

  /** The error that stopped the demuxer, if any. */
  get error(): SmoothcastError | undefined {
    return this.#error;
  }

  /**
   * Takes the next chunk; returns the inits and fragments it completed, in stream order. When the chunk holds an
   * error after some complete events, those events are returned and the error is thrown by the next call.
   */
  push(chunk: Uint8Array): PushEvent[] {
    if (this.#error) throw this.#error;
    if (this.#ended) throw new SmoothcastError('INTERNAL', 'PushDemuxer.push after end()');
    this.#out = [];
    try {
      this.#feed(chunk);
    } catch (err) {
      this.#error = pushError(err);
      if (this.#out.length === 0) throw this.#error;
    }
    return this.#out;
  }

  /** The body is over: throws if it stopped inside a box, or a moof had no mdat. */
  end(): PushEvent[] {
    if (this.#error) throw this.#error;
    this.#ended = true;
    const box = this.#box;
    let problem: string | undefined;
    if (box) problem = `the body ended inside '${box.type}' at ${box.start} (${box.got} of ${box.size} bytes)`;
    else if (this.#skip > 0) problem = `the body ended ${this.#skip} bytes before the end of a box`;
    else if (this.#headLen > 0) problem = `the body ended inside a box header at ${this.#offset - this.#headLen}`;
    else if (this.#pending) problem = `moof at ${this.#pending.start} has no mdat`;
    if (problem) {
      this.#error = malformed(problem);
      throw this.#error;
    }
    return [];
  }

  #feed(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      const left = chunk.length - i;
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, left);
        this.#skip -= n;
        this.#offset += n;
        i += n;
        continue;
      }
      const open = this.#box;
      if (open) {
        const n = Math.min(open.size - open.got, left);
        if (open.got + n > open.buf.length) {
          const grown = new Uint8Array(Math.min(open.size, Math.max(open.buf.length * 2, open.got + n)));
          grown.set(open.buf.subarray(0, open.got));
          open.buf = grown;
        }
        open.buf.set(chunk.subarray(i, i + n), open.got);
        open.got += n;
        this.#offset += n;
        i += n;
        if (open.got === open.size) this.#complete(open);
        continue;
      }
      // A box header: 8 bytes, 16 with a largesize.
      const want = this.#headLen >= 8 && this.#sizeField() === 1 ? 16 : 8;
      const n = Math.min(want - this.#headLen, left);
      this.#head.set(chunk.subarray(i, i + n), this.#headLen);
      this.#headLen += n;
      this.#offset += n;
      i += n;
      if (this.#headLen < 8 || (this.#sizeField() === 1 && this.#headLen < 16)) continue;
      this.#header();
    }
  }

  #sizeField(): number {
    return new DataView(this.#head.buffer).getUint32(0);
  }

  #header(): void {
    const headerSize = this.#headLen;
    const start = this.#offset - headerSize;
    const r = new Reader(this.#head, `box header at ${start}`, 0, headerSize);
    let size = r.u32();
    const type = r.fourcc();
    const first = this.#boxes++ === 0;
    let printable = true;
    for (let i = 4; i < 8; i++) {
      const c = this.#head[i] ?? 0;
      if (c < 0x20 || c > 0x7e) printable = false;
    }
    if (first && (!printable || !STREAM_START.has(type))) {
      throw unsupported(`not a fragmented MP4 stream: it begins with '${fourcc(this.#head, 4)}'`);
    }
    if (!printable) throw malformed(`not an ISO-BMFF box at ${start}: type '${type}'`);
    if (size === 1) size = r.u64();
    else if (size === 0) throw unsupported(`box '${type}' at ${start} has size 0 (to the end of the stream)`);
    if (size < headerSize) throw malformed(`box '${type}' at ${start} has size ${size}`);
    this.#headLen = 0;
    if (this.#pending && type !== 'mdat') {
      throw malformed(`moof at ${this.#pending.start} is followed by '${type}', not by its mdat`);
    }
    const keep = type === 'ftyp' || type === 'moov' || type === 'moof' || (type === 'mdat' && !!this.#pending);
    if (!keep) {
      this.#skip = size - headerSize;
      return;
    }
    if (type === 'moof' && this.#tracks.size === 0) {
      throw new SmoothcastError('LIVE_INIT_MISSING', `moof at ${start} comes before any init (ftyp+moov)`);
    }
    if (size > this.#maxBoxSize) {
      throw new SmoothcastError(
        'PAYLOAD_TOO_LARGE',
        `'${type}' at ${start} is ${size} bytes, over the ${this.#maxBoxSize}-byte box limit`,
      );
    }
    const open: OpenBox = { type, start, size, got: headerSize, buf: new Uint8Array(Math.min(size, FIRST_BUFFER)) };
    open.buf.set(this.#head.subarray(0, headerSize));
    if (open.got === size) this.#complete(open);
    else this.#box = open;
  }

  #complete(open: OpenBox): void {
    this.#box = undefined;
    const bytes = open.buf;
    const headerSize = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0) === 1 ? 16 : 8;
    if (open.type === 'ftyp') {
      if (bytes.length < headerSize + 8) throw malformed(`ftyp at ${open.start} is ${bytes.length} bytes`);
      this.#ftyp = bytes;
    } else if (open.type === 'moov') this.#moov(bytes, headerSize);
    else if (open.type === 'moof') this.#pending = this.#moof(bytes, headerSize, open.start);
    else this.#mdat(bytes, headerSize);
  }

  /** One init per trak: mvhd, the trak, mvex with mehd (if any) and that track's trex. */
  #moov(moov: Uint8Array, headerSize: number): void {
    let mvhd: Box | undefined;
    let mvex: Box | undefined;
    const traks: Box[] = [];
    for (const b of children(moov, headerSize, moov.length, 'moov')) {
      if (b.type === 'mvhd') {
        if (mvhd) throw malformed("'moov' holds more than one 'mvhd'");
        mvhd = b;
      } else if (b.type === 'mvex') {
        if (mvex) throw malformed("'moov' holds more than one 'mvex'");
        mvex = b;
      } else if (b.type === 'trak') {
        traks.push(b);
        if (traks.length > this.#maxTracks) throw unsupported(`moov has more than ${this.#maxTracks} tracks`);
      } else if (b.type === 'pssh') throw unsupported('encrypted media (pssh) is not taken');
    }
    if (!mvhd) throw malformed("'moov' has no 'mvhd'");
    if (traks.length === 0) throw malformed("'moov' has no 'trak'");
    if (!mvex) throw unsupported('moov has no mvex: not a fragmented MP4 stream');
    let mehd: Box | undefined;
    const trex = new Map<number, Box>();
    for (const b of children(moov, mvex.payload, mvex.end, 'mvex')) {
      if (b.type === 'mehd') mehd = b;
      if (b.type !== 'trex') continue;
      const r = payloadReader(moov, b);
      r.fullBox();
      const id = r.u32();
      if (trex.has(id)) throw malformed(`more than one trex for track ${id}`);
      trex.set(id, b);
    }
    const ftyp = this.#ftyp ?? DEFAULT_FTYP;
    const bytesOf = (b: Box) => moov.subarray(b.start, b.end);
    const inits: PushInit[] = [];
    const seen = new Set<number>();
    for (const trak of traks) {
      const tkhd = [...children(moov, trak.payload, trak.end, 'trak')].find((b) => b.type === 'tkhd');
      if (!tkhd) throw malformed("'trak' has no 'tkhd'");
      const trackId = tkhdTrackId(moov, tkhd);
      if (seen.has(trackId)) throw malformed(`two traks have track_ID ${trackId}`);
      seen.add(trackId);
      const x = trex.get(trackId);
      if (!x) throw malformed(`mvex has no trex for track ${trackId}`);
      const mvexOut = box('mvex', ...(mehd ? [bytesOf(mehd)] : []), bytesOf(x));
      const moovOut = box('moov', bytesOf(mvhd), bytesOf(trak), mvexOut);
      const track = parseMoov(moovOut, 8, ftyp.length);
      checkCodec(track);
      inits.push({ type: 'init', trackId, kind: track.kind, init: concat([ftyp, moovOut]), track });
    }
    const known = new Set([...this.#tracks.keys(), ...seen]);
    if (known.size > this.#maxTracks) throw unsupported(`more than ${this.#maxTracks} tracks`);
    for (const init of inits) {
      const old = this.#tracks.get(init.trackId);
      if (old && sameBytes(old.init, init.init)) continue;
      this.#tracks.set(init.trackId, init);
      this.#out.push(init);
    }
  }

  /** Reads a moof's trafs (nothing is written until its mdat is here). */
  #moof(moof: Uint8Array, headerSize: number, moofStart: number): PendingMoof {
    let sequenceNumber = 0;
    let mfhd = false;
    const trafs: TrafPlan[] = [];
    let previousEnd = 0;
    for (const b of children(moof, headerSize, moof.length, 'moof')) {
      if (b.type === 'mfhd') {
        if (mfhd) throw malformed("'moof' holds more than one 'mfhd'");
        mfhd = true;
        const r = payloadReader(moof, b);
        r.fullBox();
        sequenceNumber = r.u32();
      } else if (b.type === 'pssh') throw unsupported('encrypted media (pssh) is not taken');
      else if (b.type === 'traf') {
        const plan = this.#traf(moof, b, moofStart, trafs.length === 0, previousEnd);
        if (trafs.some((t) => t.trackId === plan.plan.trackId)) {
          throw unsupported(`moof at ${moofStart} has two trafs for track ${plan.plan.trackId}`);
        }
        trafs.push(plan.plan);
        previousEnd = plan.end;
      }
    }
    if (trafs.length === 0) throw malformed(`moof at ${moofStart} has no traf`);
    return { bytes: moof, start: moofStart, sequenceNumber, trafs };
  }

  #traf(
    moof: Uint8Array,
    traf: Box,
    moofStart: number,
    first: boolean,
    previousEnd: number,
  ): { plan: TrafPlan; end: number } {
    let tfhd: Tfhd | undefined;
    let tfdt: number | undefined;
    let tfxd: number | undefined;
    const boxes: Box[] = [];
    for (const b of children(moof, traf.payload, traf.end, 'traf')) {
      if (b.type === 'tfhd') {
        if (tfhd) throw malformed("'traf' holds more than one 'tfhd'");
        tfhd = parseTfhd(moof, b);
      } else if (b.type === 'tfdt') {
        if (tfdt !== undefined) throw malformed("'traf' holds more than one 'tfdt'");
        tfdt = parseTime(moof, b);
      } else if (b.type === 'uuid') {
        const usertype = hex(moof.subarray(b.payload - 16, b.payload));
        if (usertype === TFXD) tfxd = parseTime(moof, b);
        else if (usertype === PIFF_SAMPLE_ENCRYPTION) throw unsupported('encrypted media (PIFF) is not taken');
        // Other uuid boxes (tfrf, …) are Smooth delivery details the origin writes itself.
      } else if (b.type === 'senc' || b.type === 'saiz' || b.type === 'saio') {
        throw unsupported(`encrypted media ('${b.type}') is not taken`);
      } else boxes.push(b);
    }
    if (!tfhd) throw malformed("'traf' has no 'tfhd'");
    const track = this.#tracks.get(tfhd.trackId);
    if (!track) {
      throw new SmoothcastError(
        'LIVE_INIT_MISSING',
        `fragment of track ${tfhd.trackId} at ${moofStart}, whose init has not been received`,
      );
    }
    // §8.8.7: base-data-offset, else the moof (default-base-is-moof, or the first traf), else the previous traf's end.
    const base =
      tfhd.baseDataOffset !== undefined
        ? tfhd.baseDataOffset - moofStart
        : tfhd.flags & 0x020000 || first
          ? 0
          : previousEnd;
    const defaultSize = tfhd.defaultSize ?? track.track.defaultSampleSize;
    const body: (Run | Uint8Array)[] = [];
    let follows = base;
    let samples = 0;
    for (const b of boxes) {
      if (b.type !== 'trun') {
        body.push(moof.subarray(b.start, b.end));
        continue;
      }
      const r = payloadReader(moof, b);
      const { version, flags } = r.fullBox();
      const sampleCount = r.u32();
      const dataOffset = flags & 0x000001 ? r.i32() : undefined;
      const firstSampleFlags = flags & 0x000004 ? r.u32() : undefined;
      const hasSize = (flags & 0x000200) !== 0;
      const perSample =
        4 * (+((flags & 0x000100) !== 0) + +hasSize + +((flags & 0x000400) !== 0) + +((flags & 0x000800) !== 0));
      if (perSample > 0 && sampleCount > r.remaining / perSample) {
        throw malformed(`trun sample_count ${sampleCount} needs ${sampleCount * perSample} bytes, ${r.remaining} left`);
      }
      samples += sampleCount;
      if (samples > this.#maxSamples) throw unsupported(`track fragment has more than ${this.#maxSamples} samples`);
      const table = moof.subarray(r.pos, r.pos + sampleCount * perSample);
      let dataSize = 0;
      if (hasSize) {
        const sizes = new Reader(moof, 'trun', r.pos, r.pos + sampleCount * perSample);
        const skip = flags & 0x000100 ? 4 : 0;
        for (let i = 0; i < sampleCount; i++) {
          sizes.pos = r.pos + i * perSample + skip;
          dataSize += sizes.u32();
          if (dataSize > this.#maxBoxSize)
            throw malformed(`trun at ${moofStart + b.start} holds more data than an mdat`);
        }
      } else {
        dataSize = sampleCount * defaultSize;
        if (dataSize > this.#maxBoxSize) throw malformed(`trun at ${moofStart + b.start} holds more data than an mdat`);
      }
      const dataStart = dataOffset === undefined ? follows : base + dataOffset;
      follows = dataStart + dataSize;
      body.push({ version, flags, sampleCount, firstSampleFlags, table, dataStart, dataSize });
    }
    return {
      plan: { trackId: tfhd.trackId, track, tfhd, time: tfdt ?? tfxd, body, samples },
      end: follows,
    };
  }

  /**
   * The tfdt to write: the fragment's own time, else the end of the track's previous fragment. A track whose first
   * time is negative is shifted to start at 0 (all its later fragments by the same amount): tfdt is unsigned.
   */
  #time(t: TrafPlan): number {
    const next = this.#next.get(t.trackId);
    if (t.time === undefined) return next ?? 0;
    let shift = this.#shift.get(t.trackId);
    if (shift === undefined) {
      shift = t.time < 0 ? -t.time : 0;
      this.#shift.set(t.trackId, shift);
    }
    const time = t.time + shift;
    if (time < 0) throw malformed(`track ${t.trackId}: fragment time ${t.time} is before the track's first fragment`);
    return time;
  }

  /** The mdat after the pending moof: one single-track fragment per traf. */
  #mdat(mdat: Uint8Array, mdatHeader: number): void {
    const p = this.#pending;
    this.#pending = undefined;
    if (!p) throw new SmoothcastError('INTERNAL', 'PushDemuxer: mdat kept without a moof');
    const payloadStart = p.bytes.length + mdatHeader;
    const payloadEnd = p.bytes.length + mdat.length;
    const mfhd = box('mfhd', u32(0), u32(p.sequenceNumber));
    for (const t of p.trafs) {
      if (t.samples === 0) continue; // a traf with no samples says nothing a player needs
      const time = this.#time(t);
      const parts: Uint8Array[] = [writeTfhd(t.tfhd), writeTfdt(time)];
      const data: Uint8Array[] = [];
      const patches: { at: number; offset: number }[] = [];
      let trafSize = 8 + parts[0]!.length + parts[1]!.length;
      let dataSize = 0;
      for (const item of t.body) {
        if (item instanceof Uint8Array) {
          parts.push(item);
          trafSize += item.length;
          continue;
        }
        if (item.dataSize > 0 && (item.dataStart < payloadStart || item.dataStart + item.dataSize > payloadEnd)) {
          throw malformed(
            `moof at ${p.start}: track ${t.trackId} sample data [${item.dataStart}, ${item.dataStart + item.dataSize}) ` +
              `lies outside its mdat [${payloadStart}, ${payloadEnd})`,
          );
        }
        const trun = writeTrun(item);
        patches.push({ at: trafSize + trun.offsetAt, offset: dataSize });
        parts.push(trun.bytes);
        trafSize += trun.bytes.length;
        const from = item.dataStart - p.bytes.length;
        data.push(mdat.subarray(from, from + item.dataSize));
        dataSize += item.dataSize;
      }
      const moofSize = 8 + mfhd.length + trafSize;
      const total = moofSize + 8 + dataSize;
      const out = new Uint8Array(total);
      const v = new DataView(out.buffer);
      v.setUint32(0, moofSize);
      out.set(ascii('moof'), 4);
      out.set(mfhd, 8);
      const trafAt = 8 + mfhd.length;
      v.setUint32(trafAt, trafSize);
      out.set(ascii('traf'), trafAt + 4);
      let at = trafAt + 8;
      for (const part of parts) {
        out.set(part, at);
        at += part.length;
      }
      for (const patch of patches) v.setInt32(trafAt + patch.at, moofSize + 8 + patch.offset);
      v.setUint32(moofSize, 8 + dataSize);
      out.set(ascii('mdat'), moofSize + 4);
      at = moofSize + 8;
      for (const d of data) {
        out.set(d, at);
        at += d.length;
      }
      // The same reading as the indexer's: what comes out must index like our own CMAF files.
      const f = parseMoof(out.subarray(0, moofSize), 8, 0, t.track.track, this.#maxSamples);
      if (f.samples > 0 && (f.dataStart < moofSize + 8 || f.dataEnd > total)) {
        throw new SmoothcastError('INTERNAL', `rebuilt fragment of track ${t.trackId} points outside its mdat`);
      }
      this.#next.set(t.trackId, f.baseMediaDecodeTime + f.duration);
      this.#out.push({
        type: 'fragment',
        trackId: t.trackId,
        fragment: out,
        start: f.baseMediaDecodeTime,
        duration: f.duration,
        samples: f.samples,
        keyframe: f.firstSampleFlags !== undefined && (f.firstSampleFlags & SAMPLE_IS_NON_SYNC) === 0,
        sequenceNumber: p.sequenceNumber,
      });
    }
  }
}

/** Demuxes a whole body held in memory (tests, tools). */
export function demuxBody(body: Uint8Array, options?: PushDemuxerOptions): PushEvent[] {
  const d = new PushDemuxer(options);
  return [...d.push(body), ...d.end()];
}
