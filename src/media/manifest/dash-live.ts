// The DASH MPD of a live event: ISO/IEC 23009-1 (4th ed.) §5.4 type="dynamic", DASH-IF IOP live profile with
// SegmentTemplate + SegmentTimeline. MPD@availabilityStartTime is the ingest wall clock of media time 0 (as
// EXT-X-PROGRAM-DATE-TIME in the LL-HLS playlists), the one Period starts at PT0S with no presentationTimeOffset, so a
// segment's presentation time is its tfdt. Segments are addressed by $Number$ = the segment's msn (LiveSegment.msn,
// the number the origin serves for it, the same as in the LL-HLS playlists); startNumber is the msn of the first
// segment listed. When the event is over (opts.ended) the same writer gives a static MPD of the whole event with the
// same numbers and Period id, so a player that followed it live carries on (§5.4: an MPD update may turn dynamic
// into static). Pure: plain values in, text out; the caller passes the clock.
//
// Media time must keep to the wall clock: players place the live edge at now - availabilityStartTime, so a publisher
// that resumes after a pause must continue at the tfdt of the time it resumes (a gap in the timeline, written as an
// explicit S@t), not at the old edge; a timeline that falls behind the clock would need a new Period instead.
import { SmoothcastError } from '../../core/errors.ts';
import type { LiveSegment } from '../live/parts.ts';
import type { ManifestRendition, Segment, TextRendition, UrlScheme } from '../types.ts';
import {
  attrs,
  labelAndRoles,
  runLengthTimeline,
  secondsToMs,
  type TimelineEntry,
  textSet,
  ticksToMs,
  videoRepHead,
  videoSetTag,
  xsDuration,
} from './dash.ts';

/** A live rendition as the live writers need it: a ManifestRendition whose segments come from its timeline. */
export type LiveManifestRendition = Omit<ManifestRendition, 'segments'>;

/** What the writer needs of a rendition's timeline (LiveTimeline has it). Durations in ticks of `timescale`. */
export interface LiveSegmentsView {
  readonly timescale: number;
  /** Longest complete segment so far (never decreases). */
  readonly maxSegmentDuration: number;
  /** The segments ending within `dvrSeconds` of the live edge; 0 = all of them. */
  window(dvrSeconds: number): readonly LiveSegment[];
}

/** ServiceDescription latency (ISO/IEC 23009-1 Annex K.4.2.2; DASH-IF low-latency), in seconds. */
export interface LatencyTargets {
  target: number;
  min: number;
  max: number;
  /** K.4.2.3 PlaybackRate: the rates a player may use to stay at `target` (absolute, e.g. 0.96 and 1.04). */
  playbackRate?: { min: number; max: number };
}

export type LiveDashUrls = Pick<UrlScheme, 'dashInitTemplate' | 'dashMediaTemplate' | 'textFile'>;

export interface LiveMpdOptions {
  /** Seconds of media listed back from the live edge (MPD@timeShiftBufferDepth); 0 = the whole event. */
  dvrSeconds: number;
  /**
   * Wall clock (ms since the epoch) of media time 0: MPD@availabilityStartTime. Media time 0, not the first
   * fragment: with a first tfdt above 0 it is the wall clock of the first fragment less that tfdt.
   */
  ingestStartWallClockMs: number;
  /** The clock now (ms since the epoch): MPD@publishTime, and the event's age when dvrSeconds is 0. */
  nowMs: number;
  /** Our time endpoint for UTCTiming (urn:mpeg:dash:utc:http-iso:2014: it answers an ISO 8601 date-time). */
  utcTimingUrl: string;
  /** MPD@minimumUpdatePeriod in seconds. Default: the longest segment so far (a new one appears about that often). */
  minimumUpdatePeriod?: number;
  /** MPD@minBufferTime in seconds. Default: the longest segment so far. */
  minBufferTime?: number;
  /** Written as a ServiceDescription, with MPD@suggestedPresentationDelay = target for players that read only that. */
  latency?: LatencyTargets;
  /**
   * SegmentTemplate@availabilityTimeOffset (§5.3.9.5.3) in seconds, with availabilityTimeComplete="false": a client
   * may ask for a segment that long before its end and get it by chunked transfer as its parts land. Only useful
   * once the origin also lists the segment in production; the timeline here lists complete segments only, so leave
   * it unset until then.
   */
  availabilityTimeOffset?: number;
  /** The event is over: a static MPD of the whole event (every complete segment; call LiveTimeline.end() first). */
  ended?: boolean;
  text?: readonly TextRendition[];
}

/**
 * Latency targets for a stream with segments of `segmentSeconds` whose MPD is reloaded every `updateSeconds`.
 * Segment n is listed once complete and a player learns of it at the next reload, so the buffer ahead of a player at
 * latency L runs dry unless L exceeds a segment plus an update period; 'low' adds a second of margin for encoding and
 * fetching, 'standard' keeps three segments as HLS does (RFC 8216bis §6.3.3).
 */
export function latencyTargets(
  mode: 'low' | 'standard',
  segmentSeconds: number,
  updateSeconds = segmentSeconds,
): LatencyTargets {
  if (!(segmentSeconds > 0 && updateSeconds > 0)) throw new SmoothcastError('INTERNAL', 'bad latency inputs');
  if (mode === 'low') {
    const target = segmentSeconds + updateSeconds + 1;
    return {
      target,
      min: segmentSeconds + 0.5,
      max: target + 2 * segmentSeconds,
      playbackRate: { min: 0.95, max: 1.05 },
    };
  }
  const target = 3 * segmentSeconds + updateSeconds;
  return { target, min: 2 * segmentSeconds, max: target + 3 * segmentSeconds };
}

/** A rendition with the segments it lists: the complete ones of its window. */
interface Listed {
  readonly r: LiveManifestRendition;
  segs: readonly LiveSegment[];
  readonly maxSegmentMs: number;
}

export function writeLiveMpd(
  renditions: readonly LiveManifestRendition[],
  timelines: ReadonlyMap<string, LiveSegmentsView>,
  urls: LiveDashUrls,
  opts: LiveMpdOptions,
): string {
  for (const k of ['ingestStartWallClockMs', 'nowMs', 'dvrSeconds'] as const) {
    if (!(Number.isFinite(opts[k]) && opts[k] >= 0)) throw new SmoothcastError('INTERNAL', `invalid ${k}`);
  }
  if (!opts.ended && !opts.utcTimingUrl) throw new SmoothcastError('INTERNAL', 'a dynamic MPD needs a UTCTiming URL');
  // §5.3.9.4.4: without $Number$ or $Time$ every segment of a Representation would have the same URL.
  if (!/\$(Number|Time)(%0\d+d)?\$/.test(urls.dashMediaTemplate)) {
    throw new SmoothcastError('INTERNAL', 'dashMediaTemplate needs $Number$ or $Time$');
  }
  const listed = renditions.map((r) => listSegments(r, timelines.get(r.id), opts));
  const video = byBandwidth(listed.filter((l) => l.r.track.kind === 'video'));
  const audio = byBandwidth(listed.filter((l) => l.r.track.kind === 'audio'));
  if (video.length === 0 && audio.length === 0) throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'no renditions');

  const maxSegmentMs = Math.max(1, ...listed.map((l) => l.maxSegmentMs));
  const edgeMs = Math.max(...listed.map((l) => ticksToMs(end(l.segs.at(-1)!), l.r.track.timescale)));
  const head: Record<string, string | undefined> = {
    xmlns: 'urn:mpeg:dash:schema:mpd:2011',
    profiles: 'urn:mpeg:dash:profile:isoff-live:2011',
    type: opts.ended ? 'static' : 'dynamic',
    availabilityStartTime: isoDateTime(opts.ingestStartWallClockMs),
    publishTime: isoDateTime(opts.nowMs),
  };
  if (opts.ended) {
    head.mediaPresentationDuration = xsDuration(edgeMs);
  } else {
    const age = Math.max(opts.nowMs - opts.ingestStartWallClockMs, edgeMs);
    head.minimumUpdatePeriod = xsDuration(secondsToMs(opts.minimumUpdatePeriod ?? maxSegmentMs / 1000));
    // §5.3.1.2: segments stay available this long after their end. 0 = the whole event: its age, in whole seconds
    // (left out, the depth would be infinite, which reaches back before the event began).
    const depthMs = opts.dvrSeconds > 0 ? secondsToMs(opts.dvrSeconds) : Math.ceil(age / 1000) * 1000;
    head.timeShiftBufferDepth = xsDuration(depthMs);
    if (opts.latency) head.suggestedPresentationDelay = xsDuration(secondsToMs(opts.latency.target));
    // The window above is reckoned from the media edge, availability (§5.3.9.5.3) from the wall clock: a segment
    // whose availability ended before publishTime (it ends more than the depth before now) is not listed.
    for (const l of listed) {
      const ts = l.r.track.timescale;
      l.segs = l.segs.filter((s) => opts.ingestStartWallClockMs + ticksToMs(end(s), ts) + depthMs >= opts.nowMs);
      if (l.segs.length === 0) {
        throw new SmoothcastError('ASSET_NOT_PLAYABLE', `rendition ${l.r.id}: nothing in the DVR window is available`);
      }
    }
  }
  head.maxSegmentDuration = xsDuration(maxSegmentMs);
  head.minBufferTime = xsDuration(opts.minBufferTime !== undefined ? secondsToMs(opts.minBufferTime) : maxSegmentMs);

  const out = ['<?xml version="1.0" encoding="UTF-8"?>', `<MPD${attrs(head)}>`];
  // The MPD's children in the schema's order: ServiceDescription before Period, UTCTiming after it.
  if (!opts.ended && opts.latency) out.push(...serviceDescription(opts.latency));
  out.push(`  <Period${attrs({ id: '0', start: 'PT0S' })}>`);
  const tpl = (l: Listed, indent: string) => segmentTemplate(l, urls, opts.ended ? undefined : opts, indent);
  let setId = 0;
  if (video.length > 0) out.push(...videoSet(setId++, video, tpl));
  // One AdaptationSet per audio track (language / role), as in the static MPD (§5.3.3.1).
  for (const group of audioGroups(audio)) out.push(...audioSet(setId++, group, tpl));
  for (const t of opts.text ?? []) out.push(...textSet(setId++, t, urls));
  out.push('  </Period>');
  if (!opts.ended) {
    // §5.8.5.7 UTCTiming: players sync their clock to ours, so segment availability is computed on our time.
    out.push(`  <UTCTiming${attrs({ schemeIdUri: 'urn:mpeg:dash:utc:http-iso:2014', value: opts.utcTimingUrl })}/>`);
  }
  out.push('</MPD>');
  return `${out.join('\n')}\n`;
}

function listSegments(r: LiveManifestRendition, t: LiveSegmentsView | undefined, opts: LiveMpdOptions): Listed {
  if (!t) throw new SmoothcastError('INTERNAL', `rendition ${r.id} has no timeline`);
  if (t.timescale !== r.track.timescale) throw new SmoothcastError('INTERNAL', `rendition ${r.id}: timescale differs`);
  // Only complete segments: a listed segment is one the origin can serve whole (§5.3.9.6: S@d is its duration).
  const segs = t.window(opts.ended ? 0 : opts.dvrSeconds).filter((s) => s.complete);
  if (segs.length === 0) throw new SmoothcastError('ASSET_NOT_PLAYABLE', `rendition ${r.id} has no complete segment`);
  const longest = Math.max(t.maxSegmentDuration, ...segs.map((s) => s.duration));
  return { r, segs, maxSegmentMs: ticksToMs(longest, t.timescale) };
}

function serviceDescription(l: LatencyTargets): string[] {
  const ms = (s: number) => String(secondsToMs(s));
  const out = [
    `  <ServiceDescription${attrs({ id: '0' })}>`,
    `    <Latency${attrs({ target: ms(l.target), min: ms(l.min), max: ms(l.max) })}/>`,
  ];
  const rate = l.playbackRate;
  if (rate) out.push(`    <PlaybackRate${attrs({ min: String(rate.min), max: String(rate.max) })}/>`);
  out.push('  </ServiceDescription>');
  return out;
}

type Template = (l: Listed, indent: string) => string[];

function videoSet(id: number, reps: readonly Listed[], tpl: Template): string[] {
  const shared = sharedTimeline(reps);
  const rates = reps.map(({ r }) => (r.frameRate !== undefined && r.frameRate > 0 ? r.frameRate : undefined));
  const out = [
    videoSetTag(
      id,
      reps.map(({ r }) => r),
      rates,
      reps.every(independent),
    ),
  ];
  if (shared) out.push(...tpl(reps[0]!, '      '));
  reps.forEach((l, i) => {
    const head = videoRepHead(l.r, rates[i]);
    if (shared) out.push(`${head}/>`);
    else out.push(`${head}>`, ...tpl(l, '        '), '      </Representation>');
  });
  out.push('    </AdaptationSet>');
  return out;
}

function audioSet(id: number, reps: readonly Listed[], tpl: Template): string[] {
  const shared = sharedTimeline(reps);
  const first = reps[0]!.r;
  const out = [
    `    <AdaptationSet${attrs({
      id: String(id),
      contentType: 'audio',
      mimeType: 'audio/mp4',
      lang: first.language ?? 'und',
      segmentAlignment: shared ? 'true' : undefined,
      startWithSAP: reps.every(independent) ? '1' : undefined,
    })}>`,
    ...labelAndRoles(first.label, first.roles?.length ? first.roles : ['main'], '      '),
  ];
  if (shared) out.push(...tpl(reps[0]!, '      '));
  for (const l of reps) {
    out.push(
      `      <Representation${attrs({
        id: l.r.id,
        bandwidth: String(Math.ceil(l.r.peakBitrate)),
        codecs: l.r.track.codec,
        audioSamplingRate: l.r.track.sampleRate === undefined ? undefined : String(l.r.track.sampleRate),
      })}>`,
      `        <AudioChannelConfiguration${attrs({
        schemeIdUri: 'urn:mpeg:dash:23003:3:audio_channel_configuration:2011',
        value: String(l.r.track.channels ?? 2),
      })}/>`,
    );
    if (!shared) out.push(...tpl(l, '        '));
    out.push('      </Representation>');
  }
  out.push('    </AdaptationSet>');
  return out;
}

/** §5.3.9.4 SegmentTemplate, $Number$ = msn from startNumber, with its §5.3.9.6 SegmentTimeline. */
function segmentTemplate(l: Listed, urls: LiveDashUrls, live: LiveMpdOptions | undefined, indent: string): string[] {
  const ato = live?.availabilityTimeOffset;
  const chunked = ato !== undefined && ato > 0;
  return [
    `${indent}<SegmentTemplate${attrs({
      timescale: String(l.r.track.timescale),
      initialization: urls.dashInitTemplate,
      media: urls.dashMediaTemplate,
      startNumber: String(l.segs[0]!.msn),
      availabilityTimeOffset: chunked ? String(ato) : undefined,
      availabilityTimeComplete: chunked ? 'false' : undefined,
    })}>`,
    `${indent}  <SegmentTimeline>`,
    ...liveTimeline(l.segs).map(
      (e) => `${indent}    <S${attrs({ t: e.t?.toString(), d: String(e.d), r: e.r?.toString() })}/>`,
    ),
    `${indent}  </SegmentTimeline>`,
    `${indent}</SegmentTemplate>`,
  ];
}

/**
 * The S entries of a run of segments: runLengthTimeline (t where a segment does not start where the previous one
 * ended) over each stretch between discontinuities, so every segment after a discontinuity gets an explicit S@t
 * even when its tfdt happens to continue. S@t is the segment's tfdt: its earliest presentation time, as the live
 * ladder has no B-frames (no composition offset on the first sample).
 */
export function liveTimeline(segs: readonly LiveSegment[]): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  let run: Segment[] = [];
  for (const s of segs) {
    if (s.discontinuity && run.length > 0) {
      out.push(...runLengthTimeline(run));
      run = [];
    }
    run.push({ ...s, samples: 0, startsWithKeyframe: s.parts[0]?.independent ?? false, presentationStart: s.start });
  }
  out.push(...runLengthTimeline(run));
  return out;
}

/** Audio renditions grouped by track (language, label, roles), the default one first, as in the static MPD. */
function audioGroups(audio: readonly Listed[]): Listed[][] {
  const groups = new Map<string, Listed[]>();
  for (const l of audio) {
    const key = JSON.stringify([l.r.language ?? 'und', l.r.label ?? '', l.r.roles ?? []]);
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  return [...groups.values()].sort((a, b) => Number(b.some((l) => l.r.default)) - Number(a.some((l) => l.r.default)));
}

/** One template serves every Representation listing the same timescale, msn, starts and durations. */
function sharedTimeline(reps: readonly Listed[]): boolean {
  const key = (l: Listed) =>
    JSON.stringify([l.r.track.timescale, l.segs.map((s) => [s.msn, s.start, s.duration, s.discontinuity])]);
  const first = reps[0];
  return first !== undefined && reps.every((l) => l === first || key(l) === key(first));
}

function independent(l: Listed): boolean {
  return l.segs.every((s) => s.parts[0]?.independent === true);
}

function byBandwidth(ls: readonly Listed[]): Listed[] {
  return [...ls].sort((a, b) => a.r.peakBitrate - b.r.peakBitrate || (a.r.height ?? 0) - (b.r.height ?? 0));
}

function end(s: { start: number; duration: number }): number {
  return s.start + s.duration;
}

/** xs:dateTime in UTC with milliseconds (§5.3.1.2 availabilityStartTime, publishTime). */
function isoDateTime(ms: number): string {
  return new Date(Math.round(ms)).toISOString();
}
