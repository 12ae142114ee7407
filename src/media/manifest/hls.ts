// HLS playlists for CMAF renditions: RFC 8216 (and draft-pantos-hls-rfc8216bis), Apple's "HLS Authoring
// Specification for Apple Devices". Pure: plain values in, text out.
import { SmoothcastError } from '../../core/errors.ts';
import type { SingleFileLayout } from '../bmff/single-file.ts';
import { subtitleSegmentDurations } from '../captions/index.ts';
import type { ManifestRendition, Presentation, Segment, TextRendition, UrlScheme } from '../types.ts';
import { allIndependent, frameRate } from './common.ts';

export interface MediaPlaylistOptions {
  /**
   * An EXT-X-KEY line (§4.3.2.4) for every segment, written after EXT-X-MAP so the init segment stays clear
   * (§4.3.2.5: a key applies to the Media Initialization Sections declared after it).
   */
  keyLine?: string;
  /**
   * Byte-range addressing (RFC 8216 §4.3.2.2 EXT-X-BYTERANGE, §4.3.2.5 EXT-X-MAP BYTERANGE): every segment is a
   * range of the one single file at `uri` laid out as `layout` says, instead of a URL of its own.
   */
  byteRange?: { uri: string; layout: SingleFileLayout };
  /**
   * Nominal segment duration in seconds the encoder was configured with (the forced keyframe interval). Used as a
   * floor for EXT-X-TARGETDURATION so the value does not have to change while a playlist grows (RFC 8216 §6.2.1).
   */
  targetDuration?: number;
}

const AUDIO_GROUP = 'audio';
const SUBTITLE_GROUP = 'subs';

/** HLS CHARACTERISTICS (RFC 8216bis §4.4.6.1; Apple's UTIs) of a rendition that serves accessibility needs. */
const DESCRIBES_VIDEO = 'public.accessibility.describes-video';
const CAPTIONS = 'public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound';

/** NAME must be unique within a group (§4.4.6.1): a repeated label gets its position appended. */
function uniqueNames(labels: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return labels.map((l) => {
    const clean = l.replace(/["\r\n]/g, "'");
    const n = (seen.get(clean) ?? 0) + 1;
    seen.set(clean, n);
    return n === 1 ? clean : `${clean} (${n})`;
  });
}

/** EXT-X-MEDIA lines of the audio group: one per audio rendition, exactly one DEFAULT=YES. */
function audioMedia(audio: readonly ManifestRendition[], urls: UrlScheme): string[] {
  const names = uniqueNames(audio.map((a, i) => a.label ?? (audio.length === 1 ? 'Audio' : `Audio ${i + 1}`)));
  const def = Math.max(
    0,
    audio.findIndex((a) => a.default),
  );
  return audio.map((a, i) => {
    const roles = a.roles ?? [];
    // §4.4.6.1: AUTOSELECT must be YES where DEFAULT is YES; a commentary is only ever chosen on purpose.
    const auto = i === def || !roles.includes('commentary');
    const attrs = [
      'TYPE=AUDIO',
      `GROUP-ID=${quoted(AUDIO_GROUP)}`,
      ...(a.language && a.language !== 'und' ? [`LANGUAGE=${quoted(a.language)}`] : []),
      `NAME=${quoted(names[i]!)}`,
      `DEFAULT=${i === def ? 'YES' : 'NO'}`,
      `AUTOSELECT=${auto ? 'YES' : 'NO'}`,
      ...(roles.includes('description') ? [`CHARACTERISTICS=${quoted(DESCRIBES_VIDEO)}`] : []),
      `CHANNELS=${quoted(String(a.track.channels ?? 2))}`,
      `URI=${quoted(urls.mediaPlaylist(a))}`,
    ];
    return `#EXT-X-MEDIA:${attrs.join(',')}`;
  });
}

/** EXT-X-MEDIA lines of the subtitles group (§4.4.6.1 TYPE=SUBTITLES: URI required, FORCED only for them). */
function subtitleMedia(text: readonly TextRendition[], urls: UrlScheme): string[] {
  const playlist = urls.textPlaylist;
  if (!playlist) throw new SmoothcastError('INTERNAL', 'text tracks need a textPlaylist URL');
  const names = uniqueNames(text.map((t) => t.label));
  return text.map((t, i) => {
    const attrs = [
      'TYPE=SUBTITLES',
      `GROUP-ID=${quoted(SUBTITLE_GROUP)}`,
      ...(t.language !== 'und' ? [`LANGUAGE=${quoted(t.language)}`] : []),
      `NAME=${quoted(names[i]!)}`,
      // Captions are never on unless chosen (or the source flagged the track default); forced ones play when the
      // viewer has no subtitles on (translations of foreign-language dialogue), so they must be autoselectable.
      `DEFAULT=${t.default ? 'YES' : 'NO'}`,
      'AUTOSELECT=YES',
      `FORCED=${t.forced ? 'YES' : 'NO'}`,
      ...(t.kind === 'captions' ? [`CHARACTERISTICS=${quoted(CAPTIONS)}`] : []),
      `URI=${quoted(playlist(t))}`,
    ];
    return `#EXT-X-MEDIA:${attrs.join(',')}`;
  });
}

/** The multivariant ("master") playlist: RFC 8216 §4.3.4. */
export function writeMultivariantPlaylist(p: Presentation, urls: UrlScheme): string {
  const video = byPeakDescending(p.renditions.filter((r) => r.track.kind === 'video'));
  const audio = p.renditions.filter((r) => r.track.kind === 'audio');
  if (video.length === 0 && audio.length === 0) {
    throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'presentation has no renditions');
  }
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7'];
  // §4.3.5.1: the tag promises every segment of every media playlist decodes without earlier segments.
  if (p.renditions.every(allIndependent)) lines.push('#EXT-X-INDEPENDENT-SEGMENTS');

  const text = p.complete ? (p.text ?? []) : [];
  if (text.length > 0) lines.push(...subtitleMedia(text, urls));

  if (video.length === 0) {
    if (audio.length === 1) {
      // Audio-only presentation: the audio rendition is the variant stream (§4.3.4.2).
      const a = audio[0]!;
      lines.push(streamInf(a, [a.track.codec], 0, 0, false, text.length > 0), uri(urls.mediaPlaylist(a)));
      return `${lines.join('\n')}\n`;
    }
    // Several languages: one variant (the default track) with every language as an alternative rendition, so a
    // player switches language by choice, never by bandwidth.
    lines.push(...audioMedia(audio, urls));
    const a = audio.find((x) => x.default) ?? audio[0]!;
    lines.push(streamInf(a, [a.track.codec], 0, 0, true, text.length > 0), uri(urls.mediaPlaylist(a)));
    return `${lines.join('\n')}\n`;
  }

  lines.push(...audioMedia(audio, urls));

  // §4.3.4.2: BANDWIDTH is the peak segment bit rate of the variant including any rendition it may play with, so
  // add the largest audio peak; likewise the largest audio average for AVERAGE-BANDWIDTH.
  const audioPeak = Math.max(0, ...audio.map((a) => a.peakBitrate));
  const audioAverage = Math.max(0, ...audio.map((a) => a.averageBitrate));
  // §4.3.4.2 CODECS: every format present in any rendition the variant can play, each listed once.
  const audioCodecs = [...new Set(audio.map((a) => a.track.codec))];
  for (const v of video) {
    lines.push(
      streamInf(v, [v.track.codec, ...audioCodecs], audioPeak, audioAverage, audio.length > 0, text.length > 0),
      uri(urls.mediaPlaylist(v)),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A media playlist for one rendition: RFC 8216 §4.3.3, fMP4 segments per §3.3 with EXT-X-MAP (§4.3.2.5). */
export function writeMediaPlaylist(
  r: ManifestRendition,
  p: Presentation,
  urls: UrlScheme,
  opts: MediaPlaylistOptions = {},
): string {
  const ts = checkTiming(r);
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${targetDuration(r.segments, ts, opts.targetDuration)}`,
    '#EXT-X-MEDIA-SEQUENCE:0',
    // §4.3.3.5: VOD = the playlist cannot change; EVENT = segments are only ever appended (an encode in progress).
    `#EXT-X-PLAYLIST-TYPE:${p.complete ? 'VOD' : 'EVENT'}`,
  ];
  if (allIndependent(r)) lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  const br = opts.byteRange;
  if (br) {
    if (!p.complete) throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'byte-range playlists describe complete files');
    lines.push(`#EXT-X-MAP:URI=${quoted(br.uri)},BYTERANGE="${br.layout.initSize}@0"`);
  } else {
    lines.push(`#EXT-X-MAP:URI=${quoted(urls.hlsInit(r))}`);
  }
  if (opts.keyLine) lines.push(opts.keyLine);
  const durations = extinfDurations(r.segments, ts);
  r.segments.forEach((_, n) => {
    if (br) {
      const range = br.layout.segment(n);
      lines.push(`#EXTINF:${durations[n]},`, `#EXT-X-BYTERANGE:${range.size}@${range.offset}`, uri(br.uri));
    } else {
      lines.push(`#EXTINF:${durations[n]},`, uri(urls.hlsSegment(r, n)));
    }
  });
  if (p.complete) lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}

/**
 * The media playlist of a text track (RFC 8216bis §3.1.4 WebVTT segments): the presentation cut into windows of
 * `segmentDuration` — or, with `single`, one segment that is the whole WebVTT file (static hosting, byte-range
 * variant). Only complete presentations carry text tracks.
 */
export function writeTextPlaylist(
  t: TextRendition,
  p: Presentation,
  urls: UrlScheme,
  opts: { segmentDuration: number; single?: boolean },
): string {
  if (!p.complete) throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'text tracks are published with the VOD playlists');
  const durations = opts.single ? [p.duration] : subtitleSegmentDurations(p.duration, opts.segmentDuration);
  const target = Math.max(1, ...durations.map((d) => Math.round(d)), opts.single ? 1 : Math.ceil(opts.segmentDuration));
  const lines = [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    `#EXT-X-TARGETDURATION:${target}`,
    '#EXT-X-MEDIA-SEQUENCE:0',
    '#EXT-X-PLAYLIST-TYPE:VOD',
  ];
  durations.forEach((d, n) => {
    const u = opts.single ? urls.textFile?.(t) : urls.textSegment?.(t, n);
    if (!u) throw new SmoothcastError('INTERNAL', 'text tracks need textSegment/textFile URLs');
    lines.push(`#EXTINF:${formatMicros(BigInt(Math.round(d * 1e6)))},`, uri(u));
  });
  lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}

/**
 * EXT-X-TARGETDURATION (RFC 8216 §4.3.3.1): "The EXTINF duration of each Media Segment, when rounded to the nearest
 * integer, MUST be less than or equal to the target duration", so the value is the largest rounded EXTINF.
 *
 * §6.2.1 also says the value MUST NOT change while the playlist lives. A growing (EVENT) playlist cannot know its
 * future segments, so the configured nominal duration, rounded up, is a floor that every forced-keyframe segment
 * already fits under; the value only grows if a segment really is longer than that (a gap in the source), because
 * growing it is the lesser evil next to breaking §4.3.3.1 for a listed segment. Both terms are monotone in the list
 * (segments are only appended and never change), so the value never decreases from one reload to the next. The
 * floor applies to the complete (VOD) playlist too, so the EVENT→VOD transition does not lower it either; callers
 * that never served the growing playlist may leave the option out to get the tightest value.
 */
export function targetDuration(segments: readonly Segment[], timescale: number, nominal?: number): number {
  let target = 1; // a decimal-integer; 0 would make players reload in a busy loop
  if (nominal !== undefined) {
    if (!(Number.isFinite(nominal) && nominal > 0)) {
      throw new SmoothcastError('INTERNAL', `invalid nominal target duration ${nominal}`);
    }
    target = Math.max(target, Math.ceil(nominal));
  }
  const ts = BigInt(timescale);
  for (const s of segments) {
    // Round half up, in integers: floor((2d + ts) / 2ts).
    const rounded = Number((2n * BigInt(s.duration) + ts) / (2n * ts));
    if (rounded > target) target = rounded;
  }
  return target;
}

/**
 * EXTINF values (§4.3.2.1) exact to the microsecond. Each is the difference of the rounded cumulative end times, so
 * no value is off by more than 1 µs and their running sum (what a player takes as the segment start) never drifts
 * by more than 0.5 µs from the media timeline, however many segments there are.
 */
export function extinfDurations(segments: readonly Segment[], timescale: number): string[] {
  const ts = BigInt(timescale);
  const out: string[] = [];
  let ticks = 0n;
  let prevMicros = 0n;
  for (const s of segments) {
    ticks += BigInt(s.duration);
    const micros = (2n * ticks * 1_000_000n + ts) / (2n * ts);
    out.push(formatMicros(micros - prevMicros));
    prevMicros = micros;
  }
  return out;
}

/** Microseconds as decimal seconds, trailing zeros dropped (EXTINF, PART DURATION). */
export function formatMicros(us: bigint): string {
  const whole = us / 1_000_000n;
  const frac = (us % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
  return frac === '' ? whole.toString() : `${whole}.${frac}`;
}

function streamInf(
  r: ManifestRendition,
  codecs: readonly string[],
  audioPeak: number,
  audioAverage: number,
  withAudioGroup: boolean,
  withSubtitles = false,
): string {
  // §4.3.4.2: BANDWIDTH and AVERAGE-BANDWIDTH are decimal-integers; round up so they stay upper bounds.
  const attrs = [
    `BANDWIDTH=${Math.ceil(r.peakBitrate + audioPeak)}`,
    `AVERAGE-BANDWIDTH=${Math.ceil(r.averageBitrate + audioAverage)}`,
    `CODECS=${quoted(codecs.join(','))}`,
  ];
  const width = r.width ?? r.track.width;
  const height = r.height ?? r.track.height;
  if (width !== undefined && height !== undefined) attrs.push(`RESOLUTION=${width}x${height}`);
  const rate = frameRate(r);
  // §4.3.4.2 FRAME-RATE: decimal-floating-point; Apple's authoring spec asks for three decimals.
  if (rate !== undefined) attrs.push(`FRAME-RATE=${rate.toFixed(3)}`);
  if (withAudioGroup) attrs.push(`AUDIO=${quoted(AUDIO_GROUP)}`);
  if (withSubtitles) attrs.push(`SUBTITLES=${quoted(SUBTITLE_GROUP)}`);
  return `#EXT-X-STREAM-INF:${attrs.join(',')}`;
}

function byPeakDescending(rs: readonly ManifestRendition[]): ManifestRendition[] {
  return [...rs].sort((a, b) => b.peakBitrate - a.peakBitrate || (b.height ?? 0) - (a.height ?? 0));
}

function checkTiming(r: ManifestRendition): number {
  const ts = r.track.timescale;
  if (!(Number.isSafeInteger(ts) && ts > 0)) {
    throw new SmoothcastError('INTERNAL', `rendition ${r.id}: invalid timescale ${ts}`);
  }
  for (const s of r.segments) {
    if (!(Number.isSafeInteger(s.duration) && s.duration >= 0)) {
      throw new SmoothcastError('INTERNAL', `rendition ${r.id}: invalid segment duration ${s.duration}`);
    }
  }
  return ts;
}

/** §4.2 quoted-string: no double quote, CR or LF inside. */
export function quoted(s: string): string {
  if (/["\r\n]/.test(s)) throw new SmoothcastError('INTERNAL', `cannot quote ${JSON.stringify(s)} in a playlist`);
  return `"${s}"`;
}

/** §4.1: a URI line is one line. */
export function uri(s: string): string {
  if (/[\r\n]/.test(s) || s === '' || s.startsWith('#')) {
    throw new SmoothcastError('INTERNAL', `invalid playlist URI ${JSON.stringify(s)}`);
  }
  return s;
}
