// Parts and segments of a growing CMAF file, for LL-HLS (draft-pantos-hls-rfc8216bis-13 §3.2 Partial Segments,
// §4.4.4.9 EXT-X-PART) and the other live manifests. Every moof+mdat of the file is one PART (whole frames, about
// 1/3 s); a SEGMENT is the contiguous run of parts from one independent part to the next. Audio, where every part
// is independent, is cut on the video rendition's segment boundaries instead, so that audio segment n covers the
// same time as video segment n (and the two renditions' Media Sequence Numbers line up for EXT-X-RENDITION-REPORT).
// Pure: plain values in, plain values out; nothing is copied, every part and segment is a byte range of the file.
import { SmoothcastError } from '../../core/errors.ts';
import type { Segment } from '../types.ts';

export interface LivePart {
  /** Position in its segment, 0-based: the Part Index of `_HLS_part` (§6.2.5.2). */
  index: number;
  /** Decode time (tfdt) and duration in the track timescale. */
  start: number;
  duration: number;
  /** Byte range of the moof+mdat in the file. */
  offset: number;
  size: number;
  /** Starts with a sync sample: EXT-X-PART INDEPENDENT=YES. Every audio part is. */
  independent: boolean;
  /** Samples (frames) in the part. */
  samples: number;
}

export interface LiveSegment {
  /** Media Sequence Number (RFC 8216bis §4.4.3.2); contiguous from one segment to the next. */
  msn: number;
  start: number;
  duration: number;
  offset: number;
  size: number;
  /** Samples in its parts. */
  samples: number;
  parts: readonly LivePart[];
  /** False for the last segment while more parts may join it (no EXTINF for it yet). */
  complete: boolean;
  /** The media before this segment is not continuous with it (EXT-X-DISCONTINUITY before it, §4.4.4.3). */
  discontinuity: boolean;
  /** Its Discontinuity Sequence Number (§4.4.3.3): the number of discontinuities at or before it. */
  discontinuitySequence: number;
}

/**
 * Where segments begin, in seconds of media time, ascending: the video rendition's segment starts. `knownUntil`
 * says up to when the list is final (no boundary before it is still to come); Infinity once the source has ended.
 */
export interface BoundarySource {
  readonly boundaryCount: number;
  boundary(n: number): number;
  readonly knownUntil: number;
}

export interface TimelineOptions {
  timescale: number;
  /** Cut segments on these boundaries (audio) instead of on independent parts (video). */
  boundaries?: BoundarySource | readonly number[];
  /** Media times (seconds) at which the event resumed: the first fragment starting at or after each one begins a
   * discontinuity. A jump in tfdt larger than `gapTolerance` is one in any case. */
  discontinuities?: readonly number[];
  /** Ticks of tfdt jitter that still count as continuous (default: 1 ms). */
  gapTolerance?: number;
}

export interface PartAddress {
  msn: number;
  index: number;
}

interface OpenSegment extends LiveSegment {
  parts: LivePart[];
  /** Boundaries mode: the boundary this segment was aligned to. */
  boundaryIndex: number;
}

interface Pending {
  part: Omit<LivePart, 'index'>;
  discontinuity: boolean;
}

const invalid = (m: string) => new SmoothcastError('LIVE_TIMELINE_INVALID', m);

/** Segment boundaries on a fixed grid (every `seconds`) for a rendition that has no video to follow. */
export function gridBoundaries(seconds: number): BoundarySource {
  if (!(seconds > 0 && Number.isFinite(seconds))) throw new SmoothcastError('INTERNAL', `bad grid ${seconds}`);
  return {
    boundaryCount: Number.POSITIVE_INFINITY,
    boundary: (n) => n * seconds,
    knownUntil: Number.POSITIVE_INFINITY,
  };
}

function arrayBoundaries(list: readonly number[]): BoundarySource {
  for (let i = 1; i < list.length; i++) {
    if (!(list[i]! > list[i - 1]!)) throw new SmoothcastError('INTERNAL', 'segment boundaries must ascend');
  }
  return { boundaryCount: list.length, boundary: (n) => list[n]!, knownUntil: Number.POSITIVE_INFINITY };
}

/**
 * The parts and segments of a rendition, kept up to date as its indexer finds fragments. `append` costs O(new
 * fragments); `window` is two binary searches and a slice. As a BoundarySource it gives its segment starts to the
 * audio renditions that follow it.
 */
export class LiveTimeline implements BoundarySource {
  readonly timescale: number;
  readonly #segments: OpenSegment[] = [];
  readonly #source: BoundarySource | undefined;
  readonly #tolerance: number;
  /** Resume times (ticks) not reached yet, ascending. */
  readonly #resumes: number[];
  #markNext = false;
  #fragments = 0;
  #end: number | undefined;
  #ended = false;
  #maxPart = 0;
  #maxSegment = 0;
  /** Boundaries mode: parts waiting until the boundaries around them are final. */
  #pending: Pending[] = [];
  #pendingHead = 0;

  constructor(opts: TimelineOptions) {
    const ts = opts.timescale;
    if (!(Number.isSafeInteger(ts) && ts > 0)) throw new SmoothcastError('INTERNAL', `bad timescale ${ts}`);
    this.timescale = ts;
    const b = opts.boundaries;
    this.#source = b === undefined ? undefined : Array.isArray(b) ? arrayBoundaries(b) : (b as BoundarySource);
    this.#tolerance = opts.gapTolerance ?? Math.max(1, Math.round(ts / 1000));
    this.#resumes = [...(opts.discontinuities ?? [])].map((s) => Math.round(s * ts)).sort((a, b) => a - b);
  }

  /** Fragments consumed so far: pass `indexer.segments.slice(timeline.fragmentCount)` to append. */
  get fragmentCount(): number {
    return this.#fragments;
  }

  get ended(): boolean {
    return this.#ended;
  }

  get segments(): readonly LiveSegment[] {
    this.#drain();
    return this.#segments;
  }

  /** Longest part so far and longest complete segment so far, in ticks (they never decrease: §6.2.1). */
  get maxPartDuration(): number {
    this.#drain();
    return this.#maxPart;
  }

  get maxSegmentDuration(): number {
    this.#drain();
    return this.#maxSegment;
  }

  /** Media time (ticks) at the end of the last part placed: the live edge. */
  get edge(): number {
    this.#drain();
    const last = this.#segments.at(-1);
    return last ? last.start + last.duration : 0;
  }

  get boundaryCount(): number {
    return this.segments.length;
  }

  boundary(n: number): number {
    const s = this.#segments[n];
    if (!s) throw new SmoothcastError('INTERNAL', `no segment ${n}`);
    return s.start / this.timescale;
  }

  /** Every segment start before this time is known: a later keyframe part starts at or after the edge. */
  get knownUntil(): number {
    return this.#ended ? Number.POSITIVE_INFINITY : this.edge / this.timescale;
  }

  /** The fragment appended next begins a discontinuity (the publisher reconnected, the encoder restarted). */
  markDiscontinuity(): void {
    this.#markNext = true;
  }

  append(fragments: readonly Segment[]): void {
    if (this.#ended) throw new SmoothcastError('INTERNAL', 'append to a live timeline that has ended');
    for (const f of fragments) {
      if (![f.start, f.duration, f.offset, f.size].every((n) => Number.isSafeInteger(n) && n >= 0)) {
        throw invalid(`fragment ${this.#fragments}: bad numbers`);
      }
      let discontinuity = this.#markNext;
      if (this.#end !== undefined) {
        if (f.start < this.#end - this.#tolerance) {
          throw invalid(`fragment ${this.#fragments} starts at ${f.start}, before the previous end ${this.#end}`);
        }
        if (f.start > this.#end + this.#tolerance) discontinuity = true;
      }
      while (this.#resumes.length > 0 && this.#resumes[0]! <= f.start + this.#tolerance) {
        this.#resumes.shift();
        if (this.#end !== undefined) discontinuity = true;
      }
      this.#markNext = false;
      this.#end = f.start + f.duration;
      this.#fragments++;
      const part = { start: f.start, duration: f.duration, offset: f.offset, size: f.size, samples: f.samples };
      if (this.#source) {
        this.#pending.push({ part: { ...part, independent: true }, discontinuity });
      } else {
        this.#place({ ...part, independent: f.startsWithKeyframe }, discontinuity, f.startsWithKeyframe, 0);
      }
    }
    this.#drain();
  }

  /** The stream is over: the last segment is complete, pending audio is placed on the boundaries known. */
  end(): void {
    this.#ended = true;
    this.#drain();
    const last = this.#segments.at(-1);
    if (last && !last.complete) this.#complete(last);
  }

  /** The last part placed. */
  lastPart(): PartAddress | undefined {
    const last = this.segments.at(-1);
    return last ? { msn: last.msn, index: last.parts.length - 1 } : undefined;
  }

  /**
   * Where the next part will most likely be (EXT-X-PRELOAD-HINT, §4.4.5.3): a new segment once the open one has
   * as many parts as the one before it (fixed GOPs cut into equal parts), else the next index in the open one. A
   * wrong guess costs one part of latency: the hinted part either never exists or comes one part later.
   */
  nextPart(): PartAddress | undefined {
    if (this.#ended) return undefined;
    const segs = this.segments;
    const last = segs.at(-1);
    if (!last) return { msn: 0, index: 0 };
    const prev = segs.at(-2);
    if (prev && last.parts.length >= prev.parts.length) return { msn: last.msn + 1, index: 0 };
    return { msn: last.msn, index: last.parts.length };
  }

  /**
   * The segments inside the DVR window: those ending within `dvrSeconds` of the live edge (0: the whole event), and
   * complete ones adding up to at least `minSeconds` (RFC 8216bis §6.2.2: a live playlist keeps three target
   * durations). Their msn are kept; the first may begin up to one segment before the window.
   */
  window(dvrSeconds: number, minSeconds = 0): readonly LiveSegment[] {
    const segs = this.segments;
    if (!(dvrSeconds > 0 && Number.isFinite(dvrSeconds)) || segs.length === 0) return segs.slice();
    const edge = this.edge;
    const from = edge - dvrSeconds * this.timescale;
    // First segment ending after `from`.
    let first = lowerBound(segs.length, (i) => segs[i]!.start + segs[i]!.duration > from);
    // §6.2.2 counts the playlist's duration (its EXTINFs, not the media time a gap spans): walk back over complete
    // segments until they add up to minSeconds. That is a few segments, so this stays cheap.
    let sum = 0;
    let i = segs.length;
    while (i > 0 && sum < minSeconds * this.timescale) {
      i--;
      if (segs[i]!.complete) sum += segs[i]!.duration;
    }
    first = Math.min(first, i);
    return segs.slice(Math.min(first, segs.length - 1));
  }

  /** Places pending audio parts whose boundaries are final: a part joins the segment its midpoint falls in. */
  #drain(): void {
    const src = this.#source;
    if (!src) return;
    while (this.#pendingHead < this.#pending.length) {
      const p = this.#pending[this.#pendingHead]!;
      const mid = (p.part.start + p.part.duration / 2) / this.timescale;
      if (!this.#ended && mid >= src.knownUntil) break;
      const open = this.#segments.at(-1);
      let b = open ? open.boundaryIndex : 0;
      while (b + 1 < src.boundaryCount && src.boundary(b + 1) <= mid) b++;
      const cut = !open || p.discontinuity || b > open.boundaryIndex;
      this.#place(p.part, p.discontinuity, cut, b);
      this.#pendingHead++;
    }
    if (this.#pendingHead > 64 && this.#pendingHead * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#pendingHead);
      this.#pendingHead = 0;
    }
  }

  #place(part: Omit<LivePart, 'index'>, discontinuity: boolean, cut: boolean, boundaryIndex: number): void {
    const open = this.#segments.at(-1);
    if (part.duration > this.#maxPart) this.#maxPart = part.duration;
    if (open && !cut && !discontinuity) {
      const end = open.offset + open.size;
      if (part.offset < end) throw invalid(`part at ${part.offset} overlaps the previous one (ends at ${end})`);
      open.parts.push({ index: open.parts.length, ...part });
      open.duration = part.start + part.duration - open.start;
      open.size = part.offset + part.size - open.offset;
      open.samples += part.samples;
      return;
    }
    if (open) {
      if (part.offset < open.offset + open.size) throw invalid(`part at ${part.offset} overlaps the previous one`);
      this.#complete(open);
    }
    const disc = open !== undefined && discontinuity;
    this.#segments.push({
      // Every rendition counts its segments from 0 (§4.4.3.2: contiguous): segment n of a rendition has the same
      // URL live and in the VOD archive, whose playlists number segments from 0. Audio that starts late is cut on
      // the video's boundaries all the same; its numbers are then behind the video's.
      msn: open ? open.msn + 1 : 0,
      start: part.start,
      duration: part.duration,
      offset: part.offset,
      size: part.size,
      samples: part.samples,
      parts: [{ index: 0, ...part }],
      complete: false,
      discontinuity: disc,
      discontinuitySequence: (open?.discontinuitySequence ?? 0) + (disc ? 1 : 0),
      boundaryIndex,
    });
  }

  #complete(s: OpenSegment): void {
    s.complete = true;
    if (s.duration > this.#maxSegment) this.#maxSegment = s.duration;
  }
}

/** First i in [0, n) with pred(i) true, for a predicate false then true; n when none. */
function lowerBound(n: number, pred: (i: number) => boolean): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (pred(mid)) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** A segment as the VOD writers and summarizeIndex see one: a run of parts from one byte range of the file. */
export function asSegment(s: LiveSegment): Segment {
  return {
    start: s.start,
    duration: s.duration,
    offset: s.offset,
    size: s.size,
    samples: s.samples,
    startsWithKeyframe: s.parts[0]?.independent ?? false,
    presentationStart: s.start,
  };
}

/** One-shot grouping of a list of fragments (what LiveTimeline does incrementally). */
export function groupParts(
  fragments: readonly Segment[],
  opts: TimelineOptions & { ended?: boolean },
): readonly LiveSegment[] {
  const t = new LiveTimeline(opts);
  t.append(fragments);
  if (opts.ended) t.end();
  return t.segments;
}
