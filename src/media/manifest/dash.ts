// DASH MPD for CMAF renditions: ISO/IEC 23009-1 (4th ed.) live profile with SegmentTemplate + SegmentTimeline,
// following DASH-IF IOP. Pure: plain values in, text out.
import { SmoothcastError } from '../../core/errors.ts';
import type { SingleFileLayout } from '../bmff/single-file.ts';
import type { ManifestRendition, Presentation, Segment, TextRendition, UrlScheme } from '../types.ts';
import { allIndependent, frameRate } from './common.ts';

export interface MpdOptions {
  /**
   * Single-file addressing (§5.3.9.2 SegmentBase, the on-demand profile §8.3): each Representation is one file at
   * `uri(r)` (its BaseURL) whose sidx at `layout(r)` indexes the segments, instead of a SegmentTemplate.
   */
  segmentBase?: { uri(r: ManifestRendition): string; layout(r: ManifestRendition): SingleFileLayout };
  /**
   * MPD@minBufferTime in seconds (ISO/IEC 23009-1 §5.3.1.2, §5.3.5.2). Default: the longest segment duration, which
   * is what makes `bandwidth` (the peak per-segment bit rate) a sufficient delivery rate.
   */
  minBufferTime?: number;
  /**
   * ContentProtection elements (§5.8.4.1) put into every audio and video AdaptationSet of an encrypted
   * presentation; the MPD then declares the cenc and dashif namespaces they use.
   */
  contentProtection?: readonly string[];
}

/** One `<S>` element of a SegmentTimeline (§5.3.9.6): t only where the timeline is not contiguous. */
export interface TimelineEntry {
  t?: number;
  d: number;
  r?: number;
}

/**
 * A static MPD (§5.4: type="static") for a complete presentation. A dynamic MPD needs a wall-clock anchor
 * (MPD@availabilityStartTime) that a pure writer has no business inventing, and the origin serves the MPD only once
 * the encode has finished, so an incomplete presentation is refused.
 */
export function writeMpd(p: Presentation, urls: UrlScheme, opts: MpdOptions = {}): string {
  if (!p.complete) {
    throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'a DASH MPD is written only for a complete presentation');
  }
  const video = byBandwidth(p.renditions.filter((r) => r.track.kind === 'video'));
  const audio = byBandwidth(p.renditions.filter((r) => r.track.kind === 'audio'));
  if (video.length === 0 && audio.length === 0) {
    throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'presentation has no renditions');
  }
  // §5.3.9.4.4: without $Number$ or $Time$ every segment of a Representation would have the same URL.
  if (!opts.segmentBase && !/\$(Number|Time)(%0\d+d)?\$/.test(urls.dashMediaTemplate)) {
    throw new SmoothcastError('INTERNAL', 'dashMediaTemplate needs $Number$ or $Time$');
  }
  for (const r of p.renditions) checkTiming(r);

  // mediaPresentationDuration: the caller's duration, but never shorter than the timelines themselves, or the last
  // segment would reach past the end of the Period (§5.3.2.1).
  const durationMs = Math.max(secondsToMs(p.duration), ...p.renditions.map(timelineEndMs));
  const minBufferMs =
    opts.minBufferTime !== undefined
      ? secondsToMs(opts.minBufferTime)
      : Math.max(1, ...p.renditions.flatMap((r) => r.segments.map((s) => ticksToMs(s.duration, r.track.timescale))));

  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<MPD${attrs({
      xmlns: 'urn:mpeg:dash:schema:mpd:2011',
      'xmlns:cenc': opts.contentProtection ? 'urn:mpeg:cenc:2013' : undefined,
      'xmlns:dashif': opts.contentProtection ? 'https://dashif.org/CPS' : undefined,
      profiles: opts.segmentBase
        ? 'urn:mpeg:dash:profile:isoff-on-demand:2011'
        : 'urn:mpeg:dash:profile:isoff-live:2011',
      type: 'static',
      mediaPresentationDuration: xsDuration(durationMs),
      minBufferTime: xsDuration(minBufferMs),
    })}>`,
    `  <Period${attrs({ id: '0', start: 'PT0S' })}>`,
  ];
  let setId = 0;
  const addressing: Addressing = opts.segmentBase
    ? { shared: false, of: (r, indent) => segmentBase(r, opts.segmentBase!, indent) }
    : { shared: true, of: (r, indent) => segmentTemplate(r, urls, indent) };
  const cp = opts.contentProtection ?? [];
  if (video.length > 0) out.push(...withProtection(videoSet(setId++, video, addressing), cp));
  // One AdaptationSet per audio track (language / role): they are alternatives a viewer picks, not a switching
  // set a player adapts across (§5.3.3.1: Representations of one AdaptationSet are perceptually equivalent).
  for (const group of audioGroups(audio)) out.push(...withProtection(audioSet(setId++, group, addressing), cp));
  for (const t of p.text ?? []) out.push(...textSet(setId++, t, urls));
  out.push('  </Period>', '</MPD>');
  return `${out.join('\n')}\n`;
}

/** An AdaptationSet's lines with ContentProtection elements right after its opening tag (their place in §5.3.3.2). */
function withProtection(set: string[], cp: readonly string[]): string[] {
  return cp.length === 0 ? set : [set[0]!, ...cp, ...set.slice(1)];
}

/**
 * The opening tag of a video AdaptationSet (VOD and live): the largest size and frame rate of its Representations
 * and, when they all have the same one, their picture aspect ratio.
 */
export function videoSetTag(
  id: number,
  reps: readonly Pick<ManifestRendition, 'width' | 'height' | 'track'>[],
  rates: readonly (number | undefined)[],
  startWithSap1: boolean,
): string {
  const sizes = reps.map(displaySize);
  const maxRate = Math.max(...rates.filter((x) => x !== undefined));
  // §5.3.3.2 par: the picture aspect ratio, stated only when every Representation has the same one (426x240 is not
  // exactly 16:9, and with sar 1:1 a single par would then contradict width/height).
  const pars = new Set(sizes.map(({ w, h }) => ratio(w, h)));
  return `    <AdaptationSet${attrs({
    id: String(id),
    contentType: 'video',
    mimeType: 'video/mp4',
    // The ladders (VOD and live) force keyframes at the same instants in every rendition (§5.3.3.2).
    segmentAlignment: 'true',
    // §5.3.3.2 / ISO/IEC 14496-12 Annex I: an IDR that no frame precedes in presentation order is SAP type 1.
    startWithSAP: startWithSap1 ? '1' : undefined,
    maxWidth: String(Math.max(...sizes.map((s) => s.w))),
    maxHeight: String(Math.max(...sizes.map((s) => s.h))),
    maxFrameRate: Number.isFinite(maxRate) ? frameRateFraction(maxRate) : undefined,
    par: pars.size === 1 ? [...pars][0] : undefined,
  })}>`;
}

type VideoRep = Pick<ManifestRendition, 'id' | 'width' | 'height' | 'track' | 'peakBitrate'>;

function displaySize(r: Pick<ManifestRendition, 'width' | 'height' | 'track'>): { w: number; h: number } {
  return { w: r.width ?? r.track.width ?? 0, h: r.height ?? r.track.height ?? 0 };
}

/** A video Representation's start tag, left open (the caller closes it, or adds its addressing). */
export function videoRepHead(r: VideoRep, rate: number | undefined): string {
  const { w, h } = displaySize(r);
  return `      <Representation${attrs({
    id: r.id,
    bandwidth: String(Math.ceil(r.peakBitrate)),
    codecs: r.track.codec,
    width: String(w),
    height: String(h),
    frameRate: rate === undefined ? undefined : frameRateFraction(rate),
    sar: '1:1',
  })}`;
}

/** How a Representation's segments are addressed: a (possibly shared) SegmentTemplate, or its own SegmentBase. */
interface Addressing {
  /** Whether one element at AdaptationSet level may serve every Representation with the same timeline. */
  shared: boolean;
  of(r: ManifestRendition, indent: string): string[];
}

function videoSet(id: number, reps: readonly ManifestRendition[], addressing: Addressing): string[] {
  const shared = addressing.shared && sharedTimeline(reps);
  const rates = reps.map(frameRate);
  const out = [videoSetTag(id, reps, rates, reps.every(allIndependent))];
  if (shared) out.push(...addressing.of(reps[0]!, '      '));
  reps.forEach((r, i) => {
    const head = videoRepHead(r, rates[i]);
    if (shared) out.push(`${head}/>`);
    else out.push(`${head}>`, ...addressing.of(r, '        '), '      </Representation>');
  });
  out.push('    </AdaptationSet>');
  return out;
}

/** Audio renditions grouped by track: same language, label and roles (our ladder has one rendition per track). */
function audioGroups(audio: readonly ManifestRendition[]): ManifestRendition[][] {
  const groups = new Map<string, ManifestRendition[]>();
  for (const r of audio) {
    const key = JSON.stringify([r.language ?? 'und', r.label ?? '', r.roles ?? []]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  // The default track first: players that take the first AdaptationSet of a type then start with it.
  return [...groups.values()].sort((a, b) => Number(b.some((r) => r.default)) - Number(a.some((r) => r.default)));
}

const ROLE_SCHEME = 'urn:mpeg:dash:role:2011';

/** §5.8.4.2 Label and §5.8.5.5 Role (urn:mpeg:dash:role:2011), in the schema's order (Label is in the
 * RepresentationBase group, which precedes Role). */
export function labelAndRoles(label: string | undefined, roles: readonly string[], indent: string): string[] {
  const out: string[] = [];
  if (label) out.push(`${indent}<Label>${escapeXml(label)}</Label>`);
  for (const value of roles) out.push(`${indent}<Role${attrs({ schemeIdUri: ROLE_SCHEME, value })}/>`);
  return out;
}

/**
 * A text track: one Representation that is the whole WebVTT file (§5.3.9.2 with only a BaseURL; DASH-IF IOP
 * §6.4.5 "sidecar" WebVTT), which Shaka and dash.js both load.
 */
export function textSet(id: number, t: TextRendition, urls: Pick<UrlScheme, 'textFile'>): string[] {
  const file = urls.textFile?.(t);
  if (!file) throw new SmoothcastError('INTERNAL', 'text tracks need a textFile URL');
  const roles = [t.kind === 'captions' ? 'caption' : 'subtitle', ...(t.forced ? ['forced-subtitle'] : [])];
  return [
    `    <AdaptationSet${attrs({ id: String(id), contentType: 'text', mimeType: 'text/vtt', lang: t.language })}>`,
    ...labelAndRoles(t.label, roles, '      '),
    `      <Representation${attrs({ id: t.id, bandwidth: '256' })}>`,
    `        <BaseURL>${escapeXml(file)}</BaseURL>`,
    '      </Representation>',
    '    </AdaptationSet>',
  ];
}

function audioSet(id: number, reps: readonly ManifestRendition[], addressing: Addressing): string[] {
  const shared = addressing.shared && sharedTimeline(reps);
  const first = reps[0]!;
  const out = [
    `    <AdaptationSet${attrs({
      id: String(id),
      contentType: 'audio',
      mimeType: 'audio/mp4',
      lang: first.language ?? 'und',
      segmentAlignment: shared ? 'true' : undefined,
      startWithSAP: reps.every(allIndependent) ? '1' : undefined,
    })}>`,
    ...labelAndRoles(first.label, first.roles?.length ? first.roles : ['main'], '      '),
  ];
  if (shared) out.push(...addressing.of(reps[0]!, '      '));
  for (const r of reps) {
    out.push(
      `      <Representation${attrs({
        id: r.id,
        bandwidth: String(Math.ceil(r.peakBitrate)),
        codecs: r.track.codec,
        audioSamplingRate: r.track.sampleRate === undefined ? undefined : String(r.track.sampleRate),
      })}>`,
      // §5.8.4.7 with the ISO/IEC 23003-3 scheme: the value is the channel count. Elements of the common
      // RepresentationBase group come before SegmentTemplate in the schema.
      `        <AudioChannelConfiguration${attrs({
        schemeIdUri: 'urn:mpeg:dash:23003:3:audio_channel_configuration:2011',
        value: String(r.track.channels ?? 2),
      })}/>`,
    );
    if (!shared) out.push(...addressing.of(r, '        '));
    out.push('      </Representation>');
  }
  out.push('    </AdaptationSet>');
  return out;
}

/**
 * §5.3.9.2 SegmentBase: the file's Initialization range (ftyp+moov) and the sidx's indexRange; the BaseURL
 * (§5.6) names the file. BaseURL precedes SegmentBase in the Representation's content model.
 */
function segmentBase(r: ManifestRendition, sb: NonNullable<MpdOptions['segmentBase']>, indent: string): string[] {
  const l = sb.layout(r);
  return [
    `${indent}<BaseURL>${escapeXml(sb.uri(r))}</BaseURL>`,
    `${indent}<SegmentBase${attrs({
      timescale: String(r.track.timescale),
      indexRange: `${l.initSize}-${l.initSize + l.sidx.length - 1}`,
      indexRangeExact: 'true',
    })}>`,
    `${indent}  <Initialization${attrs({ range: `0-${l.initSize - 1}` })}/>`,
    `${indent}</SegmentBase>`,
  ];
}

/** §5.3.9.4 SegmentTemplate with a §5.3.9.6 SegmentTimeline; segment n is $Number$ = n (startNumber 0). */
function segmentTemplate(r: ManifestRendition, urls: UrlScheme, indent: string): string[] {
  const entries = runLengthTimeline(r.segments);
  return [
    `${indent}<SegmentTemplate${attrs({
      timescale: String(r.track.timescale),
      initialization: urls.dashInitTemplate,
      media: urls.dashMediaTemplate,
      startNumber: '0',
    })}>`,
    `${indent}  <SegmentTimeline>`,
    ...entries.map(
      (e) =>
        `${indent}    <S${attrs({
          t: e.t === undefined ? undefined : String(e.t),
          d: String(e.d),
          r: e.r === undefined ? undefined : String(e.r),
        })}/>`,
    ),
    `${indent}  </SegmentTimeline>`,
    `${indent}</SegmentTemplate>`,
  ];
}

/**
 * §5.3.9.6: S@t is the MPD start time of the segment, i.e. its earliest presentation time (our fMP4 has no edit
 * list, and DASH-IF IOP asks S@t to match the segment's EPT). S@d is its duration and S@r repeats an entry for
 * consecutive segments of equal duration; t is written for the first entry and wherever a segment does not start
 * where the previous one ended (a gap or an overlap).
 */
export function runLengthTimeline(segments: readonly Segment[]): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  let last: TimelineEntry | undefined;
  let end = 0;
  for (const s of segments) {
    const t = s.presentationStart;
    if (last !== undefined && t === end && s.duration === last.d) {
      last.r = (last.r ?? 0) + 1;
    } else {
      last = t === end && last !== undefined ? { d: s.duration } : { t, d: s.duration };
      out.push(last);
    }
    end = t + s.duration;
  }
  return out;
}

/**
 * A frame rate as the FrameRateType of §5.3.12.2 ("N" or "N/M"): integers as-is, NTSC rates as N000/1001, anything
 * else as the closest fraction with a denominator up to 1001.
 */
export function frameRateFraction(rate: number): string {
  if (!(Number.isFinite(rate) && rate > 0)) throw new SmoothcastError('INTERNAL', `invalid frame rate ${rate}`);
  const whole = Math.round(rate);
  if (whole > 0 && Math.abs(rate - whole) < 1e-3) return String(whole);
  const ntsc = Math.round(rate * 1.001);
  if (ntsc > 0 && Math.abs(rate - (ntsc * 1000) / 1001) < 5e-3) return `${ntsc * 1000}/1001`;
  // Best rational approximation by continued fractions (convergents), denominators up to 1001.
  let [h0, h1, k0, k1] = [0, 1, 1, 0];
  let x = rate;
  for (let i = 0; i < 32; i++) {
    const a = Math.floor(x);
    const [h2, k2] = [a * h1 + h0, a * k1 + k0];
    if (k2 > 1001) break;
    [h0, h1, k0, k1] = [h1, h2, k1, k2];
    if (Math.abs(x - a) < 1e-9) break;
    x = 1 / (x - a);
  }
  return k1 === 1 ? String(h1) : `${h1}/${k1}`;
}

/** True when every Representation has the same timescale and the same (t, d) sequence: one template serves all. */
function sharedTimeline(reps: readonly ManifestRendition[]): boolean {
  const [first, ...rest] = reps;
  if (first === undefined) return false;
  return rest.every(
    (r) =>
      r.track.timescale === first.track.timescale &&
      r.segments.length === first.segments.length &&
      r.segments.every((s, i) => {
        const f = first.segments[i]!;
        return s.presentationStart === f.presentationStart && s.duration === f.duration;
      }),
  );
}

function byBandwidth(rs: readonly ManifestRendition[]): ManifestRendition[] {
  return [...rs].sort((a, b) => a.peakBitrate - b.peakBitrate || (a.height ?? 0) - (b.height ?? 0));
}

function checkTiming(r: ManifestRendition): void {
  const ts = r.track.timescale;
  if (!(Number.isSafeInteger(ts) && ts > 0)) {
    throw new SmoothcastError('INTERNAL', `rendition ${r.id}: invalid timescale ${ts}`);
  }
  for (const s of r.segments) {
    if (!(Number.isSafeInteger(s.duration) && s.duration >= 0 && Number.isSafeInteger(s.presentationStart))) {
      throw new SmoothcastError('INTERNAL', `rendition ${r.id}: invalid segment timing`);
    }
  }
}

export function ratio(w: number, h: number): string {
  const g = gcd(w, h) || 1;
  return `${w / g}:${h / g}`;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** End of a rendition's timeline in whole milliseconds, rounded up (integer arithmetic). */
function timelineEndMs(r: ManifestRendition): number {
  const last = r.segments.at(-1);
  return last === undefined ? 0 : ticksToMs(last.presentationStart + last.duration, r.track.timescale);
}

export function ticksToMs(ticks: number, timescale: number): number {
  const ts = BigInt(timescale);
  return Number((BigInt(ticks) * 1000n + ts - 1n) / ts);
}

/** Seconds to whole milliseconds, rounded up but forgiving float noise below a microsecond (6.006 * 1000). */
export function secondsToMs(seconds: number): number {
  if (!(Number.isFinite(seconds) && seconds >= 0)) throw new SmoothcastError('INTERNAL', `invalid duration ${seconds}`);
  return Math.max(0, Math.ceil(seconds * 1000 - 1e-3));
}

/** xs:duration (XML Schema Part 2 §3.2.6) in seconds with millisecond precision: PT6.006S. */
export function xsDuration(ms: number): string {
  const frac = String(ms % 1000)
    .padStart(3, '0')
    .replace(/0+$/, '');
  return `PT${Math.floor(ms / 1000)}${frac === '' ? '' : `.${frac}`}S`;
}

/** Attributes in the given order, leaving out undefined ones; values XML-escaped (XML 1.0 §2.4, §3.3.3). */
export function attrs(a: Record<string, string | undefined>): string {
  let s = '';
  for (const [k, v] of Object.entries(a)) if (v !== undefined) s += ` ${k}="${escapeXml(v)}"`;
  return s;
}

const XML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  // Character references survive attribute-value normalization (XML 1.0 §3.3.3), raw whitespace would not.
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

export function escapeXml(s: string): string {
  return s.replace(/[&<>"'\t\n\r]/g, (c) => XML_ESCAPES[c]!);
}
