// Incremental file-level walk (ISO/IEC 14496-12 §4.2, §8.8): finds the moov, then each moof and the mdat after it,
// reading only box headers and the moov/moof bodies, never sample data. Works on a file that is still growing.
import { SmoothcastError } from '../../core/errors.ts';
import type { Segment, TrackInfo } from '../types.ts';
import { type Fragment, parseMoof, SAMPLE_IS_NON_SYNC } from './fragment.ts';
import { parseMoov } from './movie.ts';
import { malformed, Reader, unsupported } from './reader.ts';

export interface IndexLimits {
  /** Largest moov or moof payload that will be read, in bytes (default 16 MiB). */
  maxBoxSize?: number;
  maxSegments?: number;
  maxSamplesPerFragment?: number;
}

/** A top-level box header; size 0 means the box runs to the end of the file (§4.2). */
interface Header {
  type: string;
  start: number;
  headerSize: number;
  size: number;
}

interface Request {
  offset: number;
  length: number;
  body: boolean;
  fileSize: number;
}

interface PendingFragment {
  /** Segment offset: the moof, or the styp/prft/emsg run just before it. */
  offset: number;
  moof: number;
  fragment: Fragment;
}

// Boxes that may open a segment before its moof (ISO/IEC 14496-12 §8.16 styp/prft, ISO/IEC 23009-1 emsg; CMAF
// fragments carry them the same way).
const SEGMENT_PREFIX = new Set(['styp', 'prft', 'emsg']);
const HEADER_READ = 16; // size + type + largesize

function parseHeader(bytes: Uint8Array, offset: number): Header | undefined {
  if (bytes.length < 8) return undefined;
  const r = new Reader(bytes, `box header at ${offset}`);
  let size = r.u32();
  const type = r.fourcc();
  // Registered box types are printable four-character codes; anything else here is not ISO-BMFF (or is damaged),
  // and waiting for the file to reach a made-up size would never end.
  for (let i = 4; i < 8; i++) {
    const c = bytes[i] ?? 0;
    if (c < 0x20 || c > 0x7e) throw malformed(`not an ISO-BMFF box at ${offset}: type '${type}'`);
  }
  if (size === 1) {
    if (bytes.length < 16) return undefined;
    size = r.u64();
  }
  const headerSize = r.pos;
  if (size !== 0 && size < headerSize) throw malformed(`box '${type}' at ${offset} has size ${size}`);
  if (!Number.isSafeInteger(offset + size)) throw unsupported(`box '${type}' at ${offset} ends past 2^53`);
  return { type, start: offset, headerSize, size };
}

export class FragmentIndexer {
  readonly #maxBoxSize: number;
  readonly #maxSegments: number;
  readonly #maxSamples: number;
  #pos = 0;
  #header: Header | undefined;
  #prefixStart: number | undefined;
  #pending: PendingFragment | undefined;
  #track: TrackInfo | undefined;
  readonly #segments: Segment[] = [];
  #request: Request | undefined;
  /** The fileSize under which the last read came back short; nothing is asked again until the file grows past it. */
  #stalledAt = -1;
  #finished = false;
  #error: SmoothcastError | undefined;

  constructor(limits: IndexLimits = {}) {
    this.#maxBoxSize = limits.maxBoxSize ?? 16 * 1024 * 1024;
    this.#maxSegments = limits.maxSegments ?? 1_000_000;
    this.#maxSamples = limits.maxSamplesPerFragment ?? 1_000_000;
  }

  get track(): TrackInfo | undefined {
    return this.#track;
  }

  get segments(): readonly Segment[] {
    return this.#segments;
  }

  /** Every byte before this offset has been indexed; a fragment still waiting for its mdat is not. */
  get position(): number {
    return this.#pending?.offset ?? this.#prefixStart ?? this.#pos;
  }

  /** The bytes to read next given the file's current size; null: nothing to do until the file grows (or ever). */
  next(fileSize: number): { offset: number; length: number } | null {
    if (!Number.isSafeInteger(fileSize) || fileSize < 0) {
      throw new SmoothcastError('INTERNAL', `FragmentIndexer.next: bad file size ${fileSize}`);
    }
    if (this.#error) throw this.#error;
    this.#request = undefined;
    if (this.#finished || fileSize <= this.#stalledAt) return null;
    try {
      return this.#next(fileSize);
    } catch (err) {
      throw this.#fail(err);
    }
  }

  /** The bytes asked for by the last next(); fewer only where the file turned out shorter. */
  push(offset: number, bytes: Uint8Array): void {
    const req = this.#request;
    if (!req || offset !== req.offset) {
      throw new SmoothcastError('INTERNAL', `FragmentIndexer.push(${offset}) does not answer the last next()`);
    }
    this.#request = undefined;
    try {
      this.#push(req, bytes.length > req.length ? bytes.subarray(0, req.length) : bytes);
    } catch (err) {
      throw this.#fail(err);
    }
  }

  /** Keeps the first failure; anything but a SmoothcastError is a bug here and is reported as INTERNAL. */
  #fail(err: unknown): SmoothcastError {
    this.#error = err instanceof SmoothcastError ? err : new SmoothcastError('INTERNAL', String(err), { cause: err });
    return this.#error;
  }

  #ask(offset: number, length: number, body: boolean, fileSize: number) {
    this.#request = { offset, length, body, fileSize };
    return { offset, length };
  }

  /** Moves to the next top-level box; `last` after a box of size 0, which nothing can follow. */
  #advance(end: number, last = false): void {
    this.#header = undefined;
    this.#pos = end;
    this.#finished = last;
  }

  #next(fileSize: number): { offset: number; length: number } | null {
    for (;;) {
      const h = this.#header;
      if (!h) {
        const available = fileSize - this.#pos;
        return available < 8 ? null : this.#ask(this.#pos, Math.min(HEADER_READ, available), false, fileSize);
      }
      const end = h.size === 0 ? undefined : h.start + h.size;
      if (this.#pending) {
        if (!this.#completeFragment(this.#pending, h, end, fileSize)) return null;
        if (this.#finished) return null;
        continue;
      }
      if (h.type === 'moov' || h.type === 'moof') {
        if (h.type === 'moov' && this.#track) throw malformed(`second moov at ${h.start}`);
        if (h.type === 'moof' && !this.#track) throw malformed(`moof at ${h.start} comes before the moov`);
        if (end === undefined && h.type === 'moof') throw malformed(`moof at ${h.start} has size 0: no mdat follows`);
        const size = end === undefined ? fileSize - h.start : h.size;
        if (size - h.headerSize > this.#maxBoxSize) {
          throw unsupported(`${h.type} at ${h.start} is ${size} bytes, over the ${this.#maxBoxSize}-byte limit`);
        }
        if (h.start + size > fileSize) return null;
        // With a moof, also read the following box header (normally the mdat's) to save a round trip.
        const length = h.type === 'moof' ? Math.min(size + HEADER_READ, fileSize - h.start) : size;
        return this.#ask(h.start, length, true, fileSize);
      }
      // Everything else at file level is skipped unread: ftyp, styp, sidx, free, skip, mfra, emsg, prft, meta, uuid,
      // and an mdat that no moof refers to.
      if (SEGMENT_PREFIX.has(h.type)) this.#prefixStart ??= h.start;
      else this.#prefixStart = undefined;
      if (end !== undefined && end > fileSize) return null;
      this.#advance(end ?? fileSize, end === undefined);
      if (this.#finished) return null;
    }
  }

  /** The box after a moof: checks it is the mdat holding the fragment's samples; true once it is whole. */
  #completeFragment(p: PendingFragment, h: Header, end: number | undefined, fileSize: number): boolean {
    if (h.type !== 'mdat') throw unsupported(`moof at ${p.moof} is followed by '${h.type}', not by an mdat`);
    const f = p.fragment;
    const payload = h.start + h.headerSize;
    if (f.samples > 0 && (f.dataStart < payload || (end !== undefined && f.dataEnd > end))) {
      throw malformed(
        `moof at ${p.moof}: sample data [${f.dataStart}, ${f.dataEnd}) lies outside the mdat [${payload}, ${end})`,
      );
    }
    // An mdat of size 0 runs to the end of the file: the fragment is whole once its sample data is.
    const segmentEnd = end ?? Math.max(f.dataEnd, payload);
    if (segmentEnd > fileSize) return false;
    if (this.#segments.length >= this.#maxSegments) throw unsupported(`more than ${this.#maxSegments} segments`);
    this.#segments.push({
      start: f.baseMediaDecodeTime,
      duration: f.duration,
      offset: p.offset,
      size: segmentEnd - p.offset,
      samples: f.samples,
      startsWithKeyframe: f.firstSampleFlags !== undefined && (f.firstSampleFlags & SAMPLE_IS_NON_SYNC) === 0,
      presentationStart: f.baseMediaDecodeTime + f.firstCompositionOffset,
    });
    this.#pending = undefined;
    this.#prefixStart = undefined;
    this.#advance(segmentEnd, end === undefined);
    return true;
  }

  #push(req: Request, bytes: Uint8Array): void {
    if (!req.body) {
      const h = parseHeader(bytes, req.offset);
      if (h) this.#header = h;
      else this.#stalledAt = req.fileSize;
      return;
    }
    const h = this.#header;
    if (!h) throw new SmoothcastError('INTERNAL', 'FragmentIndexer: body read without a header');
    const size = h.size === 0 ? req.length : h.size;
    if (bytes.length < size) {
      this.#stalledAt = req.fileSize;
      return;
    }
    const box = bytes.subarray(0, size);
    if (h.type === 'moov') {
      this.#track = parseMoov(box, h.headerSize, h.start);
      this.#prefixStart = undefined;
      this.#advance(h.start + size, h.size === 0);
      return;
    }
    const track = this.#track;
    if (!track) throw new SmoothcastError('INTERNAL', 'FragmentIndexer: moof read before the moov');
    const fragment = parseMoof(box, h.headerSize, h.start, track, this.#maxSamples);
    this.#pending = { offset: this.#prefixStart ?? h.start, moof: h.start, fragment };
    this.#advance(h.start + size);
    const following = parseHeader(bytes.subarray(size), h.start + size);
    if (following) this.#header = following;
  }
}

/** Indexes a whole file held in memory. Trailing bytes that do not make a whole fragment are left out. */
export function indexBuffer(buf: Uint8Array, limits?: IndexLimits): { track: TrackInfo; segments: Segment[] } {
  const ix = new FragmentIndexer(limits);
  for (let r = ix.next(buf.length); r; r = ix.next(buf.length)) {
    ix.push(r.offset, buf.subarray(r.offset, r.offset + r.length));
  }
  if (!ix.track) throw malformed('no moov box found');
  return { track: ix.track, segments: [...ix.segments] };
}
