// HLS playlists for CMAF renditions: RFC 8216 (and draft-pantos-hls-rfc8216bis), Apple's "HLS Authoring
// Specification for Apple Devices". Pure: plain values in, text out.
import { SmoothcastError } from '../../core/errors.ts';
import type { SingleFileLayout } from '../bmff/single-file.ts';
import type { ManifestRendition, Presentation, Segment, UrlScheme } from '../types.ts';
import { allIndependent, frameRate } from './common.ts';

export interface MediaPlaylistOptions {
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

  if (video.length === 0) {
    // Audio-only presentation: each audio rendition is a variant stream of its own (§4.3.4.2).
    for (const a of byPeakDescending(audio)) {
      lines.push(streamInf(a, [a.track.codec], 0, 0, false), uri(urls.mediaPlaylist(a)));
    }
    return `${lines.join('\n')}\n`;
  }

  audio.forEach((a, i) => {
    // §4.3.4.1: NAME is unique within the group; AUTOSELECT must be YES where DEFAULT is YES.
    const name = audio.length === 1 ? 'Audio' : `Audio ${i + 1}`;
    const attrs = [
      'TYPE=AUDIO',
      `GROUP-ID=${quoted(AUDIO_GROUP)}`,
      `NAME=${quoted(name)}`,
      `DEFAULT=${i === 0 ? 'YES' : 'NO'}`,
      'AUTOSELECT=YES',
      `CHANNELS=${quoted(String(a.track.channels ?? 2))}`,
      `URI=${quoted(urls.mediaPlaylist(a))}`,
    ];
    lines.push(`#EXT-X-MEDIA:${attrs.join(',')}`);
  });

  // §4.3.4.2: BANDWIDTH is the peak segment bit rate of the variant including any rendition it may play with, so
  // add the largest audio peak; likewise the largest audio average for AVERAGE-BANDWIDTH.
  const audioPeak = Math.max(0, ...audio.map((a) => a.peakBitrate));
  const audioAverage = Math.max(0, ...audio.map((a) => a.averageBitrate));
  // §4.3.4.2 CODECS: every format present in any rendition the variant can play, each listed once.
  const audioCodecs = [...new Set(audio.map((a) => a.track.codec))];
  for (const v of video) {
    lines.push(
      streamInf(v, [v.track.codec, ...audioCodecs], audioPeak, audioAverage, audio.length > 0),
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

function formatMicros(us: bigint): string {
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
function quoted(s: string): string {
  if (/["\r\n]/.test(s)) throw new SmoothcastError('INTERNAL', `cannot quote ${JSON.stringify(s)} in a playlist`);
  return `"${s}"`;
}

/** §4.1: a URI line is one line. */
function uri(s: string): string {
  if (/[\r\n]/.test(s) || s === '' || s.startsWith('#')) {
    throw new SmoothcastError('INTERNAL', `invalid playlist URI ${JSON.stringify(s)}`);
  }
  return s;
}
