// The Smooth Streaming client manifest of a live event ([MS-SSTR] §2.2.2.1 with IsLive="TRUE"): the StreamIndex and
// QualityLevel elements of the VOD writer, and a chunk list of the fragments in the DVR window. A Smooth fragment is
// one of our SEGMENTS (DESIGN.md: Smooth wants one moof per fragment, so the origin merges a segment's parts into one
// moof when it serves it), so chunk t/d are the segment's tfdt and duration in the track's TimeScale, and a fragment
// URL (…/Fragments(video={start time})) names the segment by its tfdt. When the event is over the manifest is the
// VOD one of the whole event (writeSmoothManifest). Pure: plain values in, text out.
import { SmoothcastError } from '../../core/errors.ts';
import type { LiveSegment } from '../live/parts.ts';
import type { Presentation } from '../types.ts';
import { attrs } from './dash.ts';
import type { LiveManifestRendition, LiveSegmentsView } from './dash-live.ts';
import {
  audioQualityLevel,
  smoothAudioNames,
  smoothUrlTemplate,
  videoQualityLevel,
  videoStreamIndex,
  writeSmoothManifest,
} from './smooth.ts';

export interface LiveSmoothOptions {
  /** Seconds of media listed back from the live edge ([MS-SSTR] §2.2.2.1 DVRWindowLength); 0 = the whole event. */
  dvrSeconds: number;
  /**
   * LookaheadCount: how many following fragments each fragment's tfrf box announces. Default 0: our fragments carry
   * no tfrf, and a client learns of new fragments by reloading the manifest. dash.js's MSS support does not reload a
   * live manifest and fails a live fragment without tfrf (MSS_NO_TFRF), so it needs the origin to add tfrf and this
   * set to match.
   */
  lookaheadCount?: number;
  /** Appended to the fragment URLs (signed playback, viewer sessions). */
  query?: string;
  /** The event is over: the VOD manifest of the whole event. */
  ended?: boolean;
}

/** SmoothStreamingMedia@TimeScale (100 ns): Duration, DVRWindowLength. Chunks use their StreamIndex@TimeScale. */
const MANIFEST_TIMESCALE = 10_000_000;

export function writeLiveSmoothManifest(
  renditions: readonly LiveManifestRendition[],
  timelines: ReadonlyMap<string, LiveSegmentsView>,
  bitrates: ReadonlyMap<string, number>,
  opts: LiveSmoothOptions,
): string {
  if (!(Number.isFinite(opts.dvrSeconds) && opts.dvrSeconds >= 0)) {
    throw new SmoothcastError('INTERNAL', 'invalid dvrSeconds');
  }
  const video = renditions.filter((r) => r.track.kind === 'video');
  const audio = renditions.filter((r) => r.track.kind === 'audio');
  if (video.length === 0 && audio.length === 0) throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'no renditions');
  for (const r of renditions) bitrate(bitrates, r.id);
  const listed = new Map(renditions.map((r) => [r.id, listFragments(r, timelines.get(r.id), opts)]));
  if (opts.ended) return writeSmoothManifest(archive(renditions, listed), bitrates);
  for (const r of video) {
    if (!['avc1', 'avc3'].includes(r.track.sampleEntry)) {
      throw new SmoothcastError(
        'BMFF_UNSUPPORTED',
        `Smooth Streaming here carries H.264 only, not ${r.track.sampleEntry}`,
      );
    }
  }
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<SmoothStreamingMedia${attrs({
      MajorVersion: '2',
      MinorVersion: '2',
      TimeScale: String(MANIFEST_TIMESCALE),
      // §2.2.2.1: 0 while the duration of a live presentation is not known.
      Duration: '0',
      IsLive: 'TRUE',
      // The documented name is LookaheadCount; IIS and Azure Media Services write LookAheadFragmentCount. Both,
      // so that readers of either see that no fragment carries a tfrf.
      LookaheadCount: String(opts.lookaheadCount ?? 0),
      LookAheadFragmentCount: String(opts.lookaheadCount ?? 0),
      // 0 = an unbounded DVR window, which is the whole event.
      DVRWindowLength: String(Math.round(opts.dvrSeconds * MANIFEST_TIMESCALE)),
    })}>`,
  ];
  if (video.length > 0) {
    const ref = video[0]!;
    // One chunk list serves every QualityLevel of the StreamIndex: the fragments every video rendition has complete
    // (the ladder's rungs share the keyframe grid, so their tfdt are the same; one rung may lag by a fragment).
    const common = video.slice(1).reduce((keep, r) => {
      const starts = new Set(listed.get(r.id)!.map((s) => s.start));
      return keep.filter((s) => starts.has(s.start));
    }, listed.get(ref.id)!);
    if (common.length === 0) throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'no fragment is in every video rendition');
    out.push(videoStreamIndex(video, common.length, opts.query ?? ''));
    video.forEach((r, i) => {
      out.push(videoQualityLevel(r, i, bitrate(bitrates, r.id)));
    });
    out.push(...chunks(common), '  </StreamIndex>');
  }
  // The same StreamIndex names as the VOD manifest, so fragment URLs do not change when the event ends.
  const names = smoothAudioNames(audio.map((r) => ({ ...r, segments: [] })));
  for (const r of audio) {
    const frags = listed.get(r.id)!;
    out.push(
      `  <StreamIndex${attrs({
        Type: 'audio',
        Name: names.get(r.id)!,
        Language: r.language ?? 'und',
        Chunks: String(frags.length),
        QualityLevels: '1',
        Url: smoothUrlTemplate(names.get(r.id)!, opts.query ?? ''),
        TimeScale: String(r.track.timescale),
      })}>`,
      audioQualityLevel(r, bitrate(bitrates, r.id)),
      ...chunks(frags),
      '  </StreamIndex>',
    );
  }
  out.push('</SmoothStreamingMedia>');
  return `${out.join('\n')}\n`;
}

/** The complete segments of a rendition's DVR window (all of them once the event is over). */
function listFragments(
  r: LiveManifestRendition,
  t: LiveSegmentsView | undefined,
  opts: LiveSmoothOptions,
): readonly LiveSegment[] {
  if (!t) throw new SmoothcastError('INTERNAL', `rendition ${r.id} has no timeline`);
  if (t.timescale !== r.track.timescale) throw new SmoothcastError('INTERNAL', `rendition ${r.id}: timescale differs`);
  const segs = t.window(opts.ended ? 0 : opts.dvrSeconds).filter((s) => s.complete);
  if (segs.length === 0) throw new SmoothcastError('ASSET_NOT_PLAYABLE', `rendition ${r.id} has no complete segment`);
  return segs;
}

/** The whole event as a complete presentation for the VOD writer: one Segment per live segment. */
function archive(
  renditions: readonly LiveManifestRendition[],
  listed: Map<string, readonly LiveSegment[]>,
): Presentation {
  let duration = 0;
  const reps = renditions.map((r) => {
    const segs = listed.get(r.id)!;
    const first = segs[0]!;
    const last = segs.at(-1)!;
    duration = Math.max(duration, (last.start + last.duration - first.start) / r.track.timescale);
    return {
      ...r,
      segments: segs.map((s) => ({
        start: s.start,
        duration: s.duration,
        offset: s.offset,
        size: s.size,
        samples: 0,
        startsWithKeyframe: s.parts[0]?.independent ?? false,
        presentationStart: s.start,
      })),
    };
  });
  return { complete: true, duration, renditions: reps };
}

/** `c` elements (§2.2.2.6): t on the first and wherever a fragment does not start where the previous one ended. */
function chunks(segs: readonly LiveSegment[]): string[] {
  let next = -1;
  return segs.map((s) => {
    const line = `    <c${attrs({ t: s.start === next ? undefined : String(s.start), d: String(s.duration) })}/>`;
    next = s.start + s.duration;
    return line;
  });
}

function bitrate(bitrates: ReadonlyMap<string, number>, id: string): number {
  const b = bitrates.get(id);
  if (b === undefined) throw new SmoothcastError('INTERNAL', `no Smooth bitrate for rendition ${id}`);
  return b;
}
