// Low-Latency HLS media playlists of a live rendition (draft-pantos-hls-rfc8216bis-13: §4.4.3.7 EXT-X-PART-INF,
// §4.4.3.8 EXT-X-SERVER-CONTROL, §4.4.4.9 EXT-X-PART, §4.4.5.2 EXT-X-SKIP, §4.4.5.3 EXT-X-PRELOAD-HINT, §4.4.5.4
// EXT-X-RENDITION-REPORT, §6.2.5 delivery directives). Players that are not LL-capable ignore the LL tags and play
// the same playlist at normal latency. Pure: a timeline in, text out.

import { SmoothcastError } from '../../core/errors.ts';
import type { LiveSegment, PartAddress } from '../live/parts.ts';
import type { TrackInfo } from '../types.ts';
import { formatMicros, quoted, uri } from './hls.ts';

/** Every URL of a live media playlist, relative to it (one place for layout and tokens, as UrlScheme). */
export interface LiveUrlScheme {
  init(): string;
  segment(msn: number): string;
  part(msn: number, index: number): string;
}

/** What the writer needs of a timeline (LiveTimeline has it). Durations in ticks of `timescale`. */
export interface LiveTimelineView {
  readonly timescale: number;
  readonly ended: boolean;
  readonly maxPartDuration: number;
  readonly maxSegmentDuration: number;
  readonly segments: readonly LiveSegment[];
  window(dvrSeconds: number, minSeconds?: number): readonly LiveSegment[];
  lastPart(): PartAddress | undefined;
  nextPart(): PartAddress | undefined;
}

/** A sibling rendition's newest part (§4.4.5.4), with the URI of its media playlist relative to this one. */
export interface RenditionReport {
  uri: string;
  lastMsn: number;
  lastPart: number;
}

export interface LivePlaylistOptions {
  /** Seconds of media the playlist lists back from the live edge; 0 = the whole event. */
  dvrSeconds: number;
  /** Wall clock (ms since the epoch) of media time 0: EXT-X-PROGRAM-DATE-TIME = this + media time. */
  ingestStartWallClockMs: number;
  /** Nominal segment and part durations (seconds) the encoder was set to: floors, so the values never change. */
  targetDuration?: number;
  partTarget?: number;
  /** The request asked for a delta update (`_HLS_skip=YES` or `v2`; we write no date ranges, so they agree). */
  skip?: boolean;
  /** Byte-range addressing: parts and segments as ranges of the growing file at `uri` (§4.4.4.2, §4.4.4.9). */
  byteRange?: { uri: string };
  renditionReports?: readonly RenditionReport[];
}

export interface BlockingRequest {
  msn?: number;
  part?: number;
  skip?: 'YES' | 'v2';
}

/**
 * EXT-X-TARGETDURATION (§4.4.3.1): every EXTINF rounded to the nearest integer is at most it. From the longest
 * complete segment so far (never the window's: §6.2.1 forbids the value to change as old segments leave).
 */
export function liveTargetDuration(t: LiveTimelineView, nominal?: number): number {
  const ts = BigInt(t.timescale);
  const rounded = Number((2n * BigInt(t.maxSegmentDuration) + ts) / (2n * ts));
  return Math.max(1, rounded, nominal !== undefined && nominal > 0 ? Math.ceil(nominal) : 1);
}

/** PART-TARGET (§4.4.3.7) in units of 10 µs: the longest part so far rounded up, so every part fits under it. */
export function partTargetUnits(t: LiveTimelineView, nominal?: number): number {
  const ts = BigInt(t.timescale);
  const longest = Number((BigInt(t.maxPartDuration) * 100_000n + ts - 1n) / ts);
  const floor = nominal !== undefined && nominal > 0 ? Math.ceil(Math.round(nominal * 1e6) / 10) : 0;
  return Math.max(1, longest, floor);
}

export function writeLivePlaylist(
  r: { id: string; track: Pick<TrackInfo, 'timescale' | 'initSize'> },
  t: LiveTimelineView,
  urls: LiveUrlScheme,
  opts: LivePlaylistOptions,
): string {
  const ts = t.timescale;
  if (r.track.timescale !== ts) throw new SmoothcastError('INTERNAL', `rendition ${r.id}: timeline timescale differs`);
  if (!Number.isFinite(opts.ingestStartWallClockMs)) throw new SmoothcastError('INTERNAL', 'no ingest wall clock');
  const target = liveTargetDuration(t, opts.targetDuration);
  const pt = partTargetUnits(t, opts.partTarget);
  // §6.2.2: a live playlist never gets shorter than three target durations.
  const segs = t.window(opts.dvrSeconds, 3 * target);
  const last = segs.at(-1);
  if (!last) throw new SmoothcastError('ASSET_NOT_PLAYABLE', `rendition ${r.id} has no media yet`);
  const first = segs[0]!;
  const edge = last.start + last.duration;
  const skipUntil = 6 * target; // §4.4.3.8: CAN-SKIP-UNTIL at least six target durations
  const control = [
    ...(t.ended ? [] : ['CAN-BLOCK-RELOAD=YES']),
    `CAN-SKIP-UNTIL=${skipUntil}`,
    // §4.4.3.8: PART-HOLD-BACK at least twice PART-TARGET; three times, as the draft recommends.
    `PART-HOLD-BACK=${format10us(3 * pt)}`,
  ];
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:9', // §8: EXT-X-SKIP needs version 9
    `#EXT-X-TARGETDURATION:${target}`,
    `#EXT-X-SERVER-CONTROL:${control.join(',')}`,
    `#EXT-X-PART-INF:PART-TARGET=${format10us(pt)}`,
    `#EXT-X-MEDIA-SEQUENCE:${first.msn}`,
    // §4.4.3.3: the number of the first segment; it carries its own EXT-X-DISCONTINUITY when it has one.
    `#EXT-X-DISCONTINUITY-SEQUENCE:${first.discontinuitySequence - (first.discontinuity ? 1 : 0)}`,
  ];
  if (segs.every((s) => s.parts[0]?.independent)) lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  const br = opts.byteRange;
  lines.push(
    br ? `#EXT-X-MAP:URI=${quoted(br.uri)},BYTERANGE="${r.track.initSize}@0"` : `#EXT-X-MAP:URI=${quoted(urls.init())}`,
  );

  // §6.2.5.1: a delta update replaces the segments older than the Skip Boundary by one EXT-X-SKIP.
  let skipped = 0;
  if (opts.skip) {
    const boundary = edge - skipUntil * ts;
    while (skipped < segs.length - 1 && segs[skipped]!.complete && end(segs[skipped]!) <= boundary) skipped++;
    if (skipped > 0) lines.push(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skipped}`);
  }
  // §4.4.4.9: parts more than three target durations from the end may go; so they do, a segment at a time.
  const partsFrom = edge - 3 * target * ts;
  for (let i = skipped; i < segs.length; i++) {
    const s = segs[i]!;
    if (s.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (i === skipped || s.discontinuity) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${dateTime(s.start, ts, opts)}`);
    if (!s.complete || end(s) > partsFrom) {
      for (const p of s.parts) {
        const where = br
          ? `URI=${quoted(br.uri)},BYTERANGE="${p.size}@${p.offset}"`
          : `URI=${quoted(urls.part(s.msn, p.index))}`;
        lines.push(
          `#EXT-X-PART:DURATION=${formatMicros(micros(p.duration, ts))},${where}${p.independent ? ',INDEPENDENT=YES' : ''}`,
        );
      }
    }
    if (!s.complete) continue;
    // EXTINF exact to the microsecond from integer ticks: their running sum stays within 1 µs of media time.
    lines.push(`#EXTINF:${formatMicros(micros(end(s), ts) - micros(s.start, ts))},`);
    if (br) lines.push(`#EXT-X-BYTERANGE:${s.size}@${s.offset}`, uri(br.uri));
    else lines.push(uri(urls.segment(s.msn)));
  }
  if (!t.ended) {
    const next = t.nextPart();
    const lastPart = last.parts.at(-1)!;
    if (br)
      lines.push(
        `#EXT-X-PRELOAD-HINT:TYPE=PART,URI=${quoted(br.uri)},BYTERANGE-START=${lastPart.offset + lastPart.size}`,
      );
    else if (next) lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI=${quoted(urls.part(next.msn, next.index))}`);
  }
  for (const rr of opts.renditionReports ?? []) {
    lines.push(`#EXT-X-RENDITION-REPORT:URI=${quoted(rr.uri)},LAST-MSN=${rr.lastMsn},LAST-PART=${rr.lastPart}`);
  }
  if (t.ended) lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}

/** The report of a sibling rendition's timeline for EXT-X-RENDITION-REPORT; undefined while it has no part. */
export function renditionReport(uri: string, t: LiveTimelineView): RenditionReport | undefined {
  const p = t.lastPart();
  return p ? { uri, lastMsn: p.msn, lastPart: p.index } : undefined;
}

const DIRECTIVES = ['_HLS_msn', '_HLS_part', '_HLS_skip'] as const;

/**
 * The delivery directives of a playlist request (§6.2.5): `_HLS_msn`, `_HLS_part` (decimal-integers; a part
 * without an msn is a bad request), `_HLS_skip` (YES or v2). Other query parameters are left to the caller.
 * Throws BAD_REQUEST (400) for anything malformed.
 */
export function parseBlockingRequest(
  query: URLSearchParams | Readonly<Record<string, string | readonly string[] | undefined>>,
): BlockingRequest {
  const get = (k: string): string | undefined => {
    const all =
      query instanceof URLSearchParams ? query.getAll(k) : ([] as (string | undefined)[]).concat(query[k] ?? []);
    if (all.length > 1) throw bad(`${k} is given more than once`);
    const v = all[0];
    if (v !== undefined && typeof v !== 'string') throw bad(`${k} is not a string`);
    return v;
  };
  const [msnText, partText, skipText] = DIRECTIVES.map(get);
  const out: BlockingRequest = {};
  if (msnText !== undefined) out.msn = decimalInteger('_HLS_msn', msnText);
  if (partText !== undefined) {
    if (out.msn === undefined) throw bad('_HLS_part needs _HLS_msn (RFC 8216bis §6.2.5.2)');
    out.part = decimalInteger('_HLS_part', partText);
  }
  if (skipText !== undefined) {
    if (skipText !== 'YES' && skipText !== 'v2') throw bad('_HLS_skip must be YES or v2');
    out.skip = skipText;
  }
  return out;
}

/**
 * Answer a playlist request now, hold it until the timeline has what it asks for, or refuse it (§6.2.5.2): an msn
 * more than two beyond the last segment, or a part further ahead than the Advance Part Limit, is a bad request. A
 * timeline that has ended never makes anyone wait.
 */
export function blockingDecision(req: BlockingRequest, t: LiveTimelineView): 'now' | 'wait' | 'bad-request' {
  const { msn, part } = req;
  if (msn === undefined) return part === undefined ? 'now' : 'bad-request';
  if (!Number.isSafeInteger(msn) || msn < 0 || (part !== undefined && !(Number.isSafeInteger(part) && part >= 0))) {
    return 'bad-request';
  }
  if (t.ended) return 'now';
  const segs = t.segments;
  const lastSeg = segs.at(-1);
  const lastComplete = lastSeg ? (lastSeg.complete ? lastSeg.msn : lastSeg.msn - 1) : -1;
  if (msn > lastComplete + 2) return 'bad-request';
  const lp = t.lastPart();
  if (part !== undefined) {
    // Advance Part Limit: 3 / PART-TARGET below one second, else 3 (§6.2.5.2).
    const ptSeconds = t.maxPartDuration / t.timescale;
    const limit = ptSeconds > 0 && ptSeconds < 1 ? 3 / ptSeconds : 3;
    const ahead = !lp || msn > lp.msn ? part + 1 : msn === lp.msn ? part - lp.index : 0;
    if (ahead > limit) return 'bad-request';
    return lp && (lp.msn > msn || (lp.msn === msn && lp.index >= part)) ? 'now' : 'wait';
  }
  return lastComplete >= msn ? 'now' : 'wait';
}

function bad(message: string): SmoothcastError {
  return new SmoothcastError('BAD_REQUEST', message);
}

/** §4.2 decimal-integer, within what a Number holds exactly. */
function decimalInteger(name: string, s: string): number {
  if (!/^[0-9]{1,16}$/.test(s)) throw bad(`${name} must be a decimal integer`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw bad(`${name} is too large`);
  return n;
}

function end(x: { start: number; duration: number }): number {
  return x.start + x.duration;
}

/** Ticks → microseconds, rounded half up, in integers. */
function micros(ticks: number, ts: number): bigint {
  return (2n * BigInt(ticks) * 1_000_000n + BigInt(ts)) / (2n * BigInt(ts));
}

/** A count of 10 µs as seconds with five decimals. */
function format10us(n: number): string {
  return `${Math.floor(n / 100_000)}.${String(n % 100_000).padStart(5, '0')}`;
}

/** §4.4.4.6: ISO 8601 with milliseconds. */
function dateTime(ticks: number, ts: number, opts: LivePlaylistOptions): string {
  return new Date(Math.round(opts.ingestStartWallClockMs + (ticks * 1000) / ts)).toISOString();
}
