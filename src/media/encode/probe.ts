// ffprobe arguments and the interpretation of its JSON: validate an upload against the limits and summarize what
// the ladder planner needs. Pure: the worker runs ffprobe and hands us its stdout, parsed.

import { SmoothcastError } from '../../core/errors.ts';
import { inputArgs } from './input.ts';

export interface MediaLimits {
  /** Bytes. */
  maxFileSize: number;
  /** Seconds. */
  maxDuration: number;
  /**
   * Frame size limits, applied to the declared (coded) frame in either orientation: the long side is checked against
   * max(maxWidth, maxHeight) and the short side against the smaller, so a portrait 2160x3840 clip passes a
   * 3840x2160 limit.
   */
  maxWidth: number;
  maxHeight: number;
  /** width × height of one frame; also passed to every decoder as -max_pixels. */
  maxPixels: number;
}

export interface Fraction {
  num: number;
  den: number;
}

export type Rotation = 0 | 90 | 180 | 270;

export interface SourceVideo {
  /** Absolute stream index in the file (what `-map 0:<index>` selects). */
  index: number;
  codec: string;
  profile?: string;
  /** Declared frame size (before rotation and sample aspect ratio). */
  width: number;
  height: number;
  /** What the viewer sees, in square pixels: after the sample aspect ratio, then the rotation. */
  displayWidth: number;
  displayHeight: number;
  /** Degrees CLOCKWISE the decoded picture must be turned for display (the legacy `rotate` tag's meaning). */
  rotation: Rotation;
  /** Sample (pixel) aspect ratio; 1:1 when the file does not say. */
  sar: Fraction;
  /** frameRateFraction as a number. */
  frameRate: number;
  /** Nominal frame rate, snapped to the broadcast rate it denotes (2997/100 → 30000/1001). */
  frameRateFraction: Fraction;
  /** r_frame_rate (the rate all timestamps fit) differs noticeably from avg_frame_rate (frames / duration). */
  variableFrameRate: boolean;
  /** field_order says the frames are interlaced (tt, bb, tb, bt): they must be deinterlaced. */
  interlaced: boolean;
  pixFmt: string;
  /** bits/s, when the container says. */
  bitrate?: number;
}

export interface SourceAudio {
  index: number;
  codec: string;
  channels: number;
  channelLayout?: string;
  sampleRate: number;
  bitrate?: number;
  /** The `language` tag as the file has it (Matroska/MP4: ISO 639-2, e.g. 'eng'); absent when untagged. */
  language?: string;
  /** The `title` tag (e.g. 'Director commentary'). */
  title?: string;
  /** disposition.default: the track a player picks when the viewer has not chosen. */
  default: boolean;
  /** What the disposition says the track is for: 'commentary', 'description' (audio description), 'dub'. */
  role?: 'commentary' | 'description' | 'dub';
}

/** Subtitle codecs ffmpeg can turn into WebVTT text (libavcodec text decoders + the webvtt encoder). */
const TEXT_SUBTITLE_CODECS = new Set([
  'subrip',
  'srt',
  'ass',
  'ssa',
  'webvtt',
  'mov_text',
  'text',
  'microdvd',
  'subviewer',
  'subviewer1',
  'sami',
  'realtext',
  'jacosub',
  'mpl2',
  'pjs',
  'stl',
  'vplayer',
]);

export interface SourceSubtitle {
  index: number;
  codec: string;
  /** A text format ffmpeg converts to WebVTT; image subtitles (PGS, DVB, VobSub) are not. */
  text: boolean;
  language?: string;
  title?: string;
  default: boolean;
  forced: boolean;
  /** disposition.hearing_impaired: captions (sound described too), not plain subtitles. */
  hearingImpaired: boolean;
}

export interface SourceSummary {
  /** ffprobe format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2". */
  container: string;
  /** Seconds: declared by a header, or found by reading every packet (durationFrom says which). */
  duration: number;
  durationFrom: 'header' | 'packets';
  /** Bytes. */
  size: number;
  /** bits/s (the container's, else size / duration). */
  bitrate: number;
  /** Absent for audio-only media (music, podcasts). */
  video?: SourceVideo;
  /** The audio track a player would pick first (flagged default, else the first); also in audioTracks. */
  audio?: SourceAudio;
  /** Every usable audio track, in file order. */
  audioTracks: SourceAudio[];
  subtitles: SourceSubtitle[];
  /** Embedded cover art (ID3 APIC, MP4 covr, Matroska attachment shown as a picture stream). */
  coverArt?: { index: number };
  /** Seconds at which the video stream starts in the source's own timestamps (its start_time), 0 when unknown. */
  startTime: number;
}

/** Arguments for `ffprobe` (without the program name); stdout is one JSON document. */
export function ffprobeArgs(file: string, limits: Pick<MediaLimits, 'maxPixels'>): string[] {
  return [
    '-hide_banner',
    '-v',
    'error',
    '-of',
    'json',
    '-show_format',
    '-show_streams',
    ...inputArgs(file, limits.maxPixels),
  ];
}

/**
 * The error for an ffprobe run that exited non-zero, read from its stderr (ffprobe exits 1 for every cause). The
 * message never repeats stderr (it names server paths); `detail` keeps its tail for the logs.
 */
export function probeFailure(stderr: string, head?: Uint8Array): SmoothcastError {
  const detail = stderr.slice(-4000);
  const fail = (
    code: 'MEDIA_RESOLUTION_TOO_LARGE' | 'MEDIA_NOT_FOUND' | 'MEDIA_TRUNCATED' | 'MEDIA_UNREADABLE',
    m: string,
  ) => new SmoothcastError(code, m, { detail });
  // -max_pixels refused to open the decoder: the codec headers declare a frame larger than allowed.
  if (/exceeds specified max pixel count|Picture size \d+x\d+ is invalid/.test(stderr)) {
    return fail('MEDIA_RESOLUTION_TOO_LARGE', 'the video frame size is larger than allowed');
  }
  if (/No such file or directory/.test(stderr)) return fail('MEDIA_NOT_FOUND', 'the source file is missing');
  // An MP4/MOV whose moov (written last by most encoders) never arrived: an interrupted upload or copy.
  if (/moov atom not found/.test(stderr) && (!head || looksLikeIsoBmff(head))) {
    return fail('MEDIA_TRUNCATED', 'the file is incomplete (its index is missing: an interrupted upload or copy?)');
  }
  if (/not on whitelist/.test(stderr)) {
    return fail(
      'MEDIA_UNREADABLE',
      'the file is not an audio/video container smoothcast accepts (playlist or script?)',
    );
  }
  if (
    /moov atom not found|Invalid data found|could not find codec parameters|EBML header parsing failed|Failed to read/i.test(
      stderr,
    )
  ) {
    return fail('MEDIA_UNREADABLE', 'not a media file ffmpeg can read');
  }
  return new SmoothcastError('PROBE_FAILED', 'ffprobe failed', { detail });
}

/** True when the file starts with an ISO-BMFF box header of a type MP4/MOV files begin with (ISO/IEC 14496-12 §4.2). */
function looksLikeIsoBmff(head: Uint8Array): boolean {
  if (head.length < 8) return false;
  const type = String.fromCharCode(head[4]!, head[5]!, head[6]!, head[7]!);
  return ['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot', 'uuid'].includes(type);
}

type Json = Record<string, unknown>;

function record(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

/** ffprobe prints most numbers as strings, and "N/A" when unknown. */
function num(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
  return Number.isFinite(n) ? n : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' && v !== 'unknown' && v !== 'N/A' ? v : undefined;
}

/** "30000/1001" or "64:45" → fraction; undefined when malformed or zero. */
export function parseFraction(v: unknown): Fraction | undefined {
  if (typeof v !== 'string') return undefined;
  const m = /^(\d+)[/:](\d+)$/.exec(v.trim());
  if (!m) return undefined;
  const num = Number(m[1]);
  const den = Number(m[2]);
  if (!(num > 0 && den > 0)) return undefined;
  const g = gcd(num, den);
  return { num: num / g, den: den / g };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

const value = (f: Fraction) => f.num / f.den;

/** Rates cameras, broadcast and editors use; a measured rate within 0.05% of one is that rate (24 vs 23.976: 0.1%). */
const COMMON_RATES: readonly Fraction[] = [
  [24000, 1001],
  [24, 1],
  [25, 1],
  [30000, 1001],
  [30, 1],
  [48, 1],
  [50, 1],
  [60000, 1001],
  [60, 1],
  [90, 1],
  [100, 1],
  [120000, 1001],
  [120, 1],
  [144, 1],
  [240, 1],
].map(([num, den]) => ({ num: num as number, den: den as number }));

export function snapFrameRate(f: Fraction): Fraction {
  const v = value(f);
  for (const c of COMMON_RATES) if (Math.abs(v - value(c)) / value(c) < 0.0005) return c;
  return f;
}

/** Above this, r_frame_rate is a timebase guess (mkv's 1000/1), not a frame rate. */
const MAX_PLAUSIBLE_RATE = 240;

function frameRates(s: Json): { nominal: Fraction; vfr: boolean } {
  const r = parseFraction(s.r_frame_rate);
  const avg = parseFraction(s.avg_frame_rate);
  const rOk = r && value(r) <= MAX_PLAUSIBLE_RATE ? r : undefined;
  const avgOk = avg && value(avg) <= MAX_PLAUSIBLE_RATE ? avg : undefined;
  if (rOk && avgOk) {
    const rv = value(rOk);
    const av = value(avgOk);
    if (Math.abs(rv - av) / rv <= 0.01) return { nominal: snapFrameRate(rOk), vfr: false };
    // Field-based streams (MPEG-2, H.264 PAFF in TS/DV) report r_frame_rate = field rate = 2 × frame rate.
    if (Math.abs(rv - 2 * av) / rv <= 0.01) return { nominal: snapFrameRate(avgOk), vfr: false };
    return { nominal: snapFrameRate(rOk), vfr: true };
  }
  const only = rOk ?? avgOk;
  if (only) return { nominal: snapFrameRate(only), vfr: false };
  // Nothing usable (e.g. a browser MediaRecorder WebM): treat as variable and let the encoder make it 30 fps CFR.
  return { nominal: { num: 30, den: 1 }, vfr: true };
}

/**
 * Clockwise display rotation. ffprobe ≥ 5.0 prints the display matrix as side data whose `rotation` is
 * av_display_rotation_get(): degrees COUNTER-clockwise (libavutil/display.h), so a phone's portrait clip shows
 * -90 (or 270) there; older builds and some demuxers give the legacy `rotate` tag, which is clockwise.
 * Verified with ffmpeg 5.1: the displaymatrix rotation and ffmpeg's autorotate (transpose) agree on this sign.
 */
function rotationOf(s: Json): Rotation {
  const sides = Array.isArray(s.side_data_list) ? s.side_data_list : [];
  for (const sd of sides) {
    const r = record(sd);
    const ccw = num(r?.rotation);
    if (r && r.side_data_type === 'Display Matrix' && ccw !== undefined) return quarterTurn(-ccw);
  }
  const tag = num(record(s.tags)?.rotate);
  return tag === undefined ? 0 : quarterTurn(tag);
}

function quarterTurn(deg: number): Rotation {
  return ((((Math.round(deg / 90) * 90) % 360) + 360) % 360) as Rotation;
}

function unreadable(message: string): SmoothcastError {
  return new SmoothcastError('MEDIA_UNREADABLE', message);
}

/** Single-picture and text "formats" ffmpeg can open but that are not video. */
const NOT_VIDEO_FORMAT = /^(image2|tty|.*_pipe)$/;

/**
 * The first positive duration the container or an audio/video stream declares; undefined when none does (a
 * browser MediaRecorder WebM, Matroska written to a pipe): the worker then reads the packets to find it (see
 * duration.ts) and passes it to interpretProbe.
 */
export function declaredDuration(json: unknown): number | undefined {
  const root = record(json);
  const format = record(root?.format);
  const streams = (Array.isArray(root?.streams) ? root.streams : []).map(record).filter((x) => x !== undefined);
  const usable = streams.filter((x) => isVideo(x) || x.codec_type === 'audio');
  return [num(format?.duration), ...usable.map((x) => num(x.duration))].find((d) => d !== undefined && d > 0);
}

/**
 * Validates ffprobe's JSON (from ffprobeArgs) against the limits and summarizes it.
 * @param fileSize the upload's size on disk, in bytes (trusted; format.size is not).
 * @param scannedDuration seconds found by reading the packets (when declaredDuration found none).
 * @throws SmoothcastError MEDIA_TOO_LARGE, MEDIA_UNREADABLE, MEDIA_NO_VIDEO, MEDIA_RESOLUTION_TOO_LARGE,
 *   MEDIA_TOO_LONG — checked in that order, the frame size before anything that would need decoding.
 */
export function interpretProbe(
  json: unknown,
  limits: MediaLimits,
  fileSize: number,
  scannedDuration?: number,
): SourceSummary {
  if (fileSize > limits.maxFileSize) {
    throw new SmoothcastError(
      'MEDIA_TOO_LARGE',
      `the file is ${fileSize} bytes; at most ${limits.maxFileSize} allowed`,
    );
  }
  const root = record(json);
  const format = record(root?.format);
  const container = str(format?.format_name);
  if (!root || !format || !container) throw unreadable('ffprobe found no container format in the file');
  const streams = (Array.isArray(root.streams) ? root.streams : []).map(record).filter((s) => s !== undefined);

  if (NOT_VIDEO_FORMAT.test(container)) {
    throw new SmoothcastError('MEDIA_NO_VIDEO', 'the file is a still image or text, not a video');
  }
  const audioTracks = audioStreams(streams);
  const subtitles = subtitleStreams(streams);
  const cover = streams.find((x) => x.codec_type === 'video' && record(x.disposition)?.attached_pic === 1);
  const v = streams.find(isVideo);
  if (!v && audioTracks.length === 0) {
    throw new SmoothcastError('MEDIA_NO_VIDEO', 'the file has no decodable video or audio stream');
  }
  // The frame size first: refused from the header before the duration (or anything else) matters.
  const video = v ? interpretVideo(v, limits) : undefined;
  const timed = streams.filter((x) => isVideo(x) || x.codec_type === 'audio');
  const duration = checkDuration([v ?? {}, ...timed.filter((x) => x !== v)], format, limits, scannedDuration);
  const size = num(format.size) ?? fileSize;
  const summary: SourceSummary = {
    container,
    duration: duration.seconds,
    durationFrom: duration.from,
    size,
    bitrate: num(format.bit_rate) ?? Math.round((size * 8) / duration.seconds),
    audioTracks,
    subtitles,
    startTime: num(v?.start_time) ?? num(audioStart(streams, audioTracks)) ?? num(format.start_time) ?? 0,
  };
  if (video) summary.video = video;
  const a = audioTracks.find((x) => x.default) ?? audioTracks[0];
  if (a) summary.audio = a;
  if (cover) summary.coverArt = { index: num(cover.index) ?? 0 };
  return summary;
}

/** start_time of the default audio track (what audio-only media is timed from). */
function audioStart(streams: Json[], tracks: readonly SourceAudio[]): unknown {
  const a = tracks.find((t) => t.default) ?? tracks[0];
  return a ? streams.find((s) => num(s.index) === a.index)?.start_time : undefined;
}

function checkDuration(
  streams: Json[],
  format: Json,
  limits: MediaLimits,
  scanned: number | undefined,
): { seconds: number; from: 'header' | 'packets' } {
  const declared = [num(format.duration), ...streams.map((s) => num(s.duration))].find((d) => d !== undefined && d > 0);
  const seconds = scanned !== undefined && scanned > 0 ? scanned : declared;
  if (seconds === undefined) {
    throw unreadable('no frame could be read to find how long the file is (no duration in any header, no packets)');
  }
  if (seconds > limits.maxDuration) {
    throw new SmoothcastError(
      'MEDIA_TOO_LONG',
      `the media lasts ${seconds.toFixed(1)} s; at most ${limits.maxDuration} s allowed`,
    );
  }
  return { seconds, from: scanned !== undefined && scanned > 0 ? 'packets' : 'header' };
}

function interpretVideo(v: Json, limits: MediaLimits): SourceVideo {
  const width = num(v.width) ?? 0;
  const height = num(v.height) ?? 0;
  if (!(width > 0 && height > 0)) throw unreadable('the video stream declares no frame size');
  const long = Math.max(width, height);
  const short = Math.min(width, height);
  if (
    long > Math.max(limits.maxWidth, limits.maxHeight) ||
    short > Math.min(limits.maxWidth, limits.maxHeight) ||
    width * height > limits.maxPixels
  ) {
    throw new SmoothcastError(
      'MEDIA_RESOLUTION_TOO_LARGE',
      `the video is ${width}x${height}; at most ${limits.maxWidth}x${limits.maxHeight} (${limits.maxPixels} pixels) allowed`,
    );
  }

  const sar = parseFraction(v.sample_aspect_ratio) ?? { num: 1, den: 1 };
  const rotation = rotationOf(v);
  const sarWidth = Math.max(1, Math.round((width * sar.num) / sar.den));
  const quarter = rotation === 90 || rotation === 270;
  const { nominal, vfr } = frameRates(v);
  const video: SourceVideo = {
    index: num(v.index) ?? 0,
    codec: str(v.codec_name) ?? 'unknown',
    width,
    height,
    displayWidth: quarter ? height : sarWidth,
    displayHeight: quarter ? sarWidth : height,
    rotation,
    sar,
    frameRate: value(nominal),
    frameRateFraction: nominal,
    variableFrameRate: vfr,
    interlaced: ['tt', 'bb', 'tb', 'bt'].includes(String(v.field_order)),
    pixFmt: str(v.pix_fmt) ?? 'unknown',
  };
  const profile = str(v.profile);
  if (profile) video.profile = profile;
  const vBitrate = num(v.bit_rate);
  if (vBitrate && vBitrate > 0) video.bitrate = vBitrate;
  return video;
}

function isVideo(s: Json): boolean {
  const disp = record(s.disposition);
  // Cover art (ID3 APIC, MP4 covr, Matroska attachments) is a one-picture "video" stream flagged attached_pic.
  return (
    s.codec_type === 'video' &&
    str(s.codec_name) !== undefined &&
    disp?.attached_pic !== 1 &&
    disp?.timed_thumbnails !== 1 &&
    disp?.still_image !== 1
  );
}

/** Every usable audio track in file order; when none is flagged default, the first is (ffmpeg's -map 0:a:0). */
function audioStreams(streams: Json[]): SourceAudio[] {
  const usable = streams.filter(
    (s) => s.codec_type === 'audio' && str(s.codec_name) && (num(s.channels) ?? 0) > 0 && (num(s.sample_rate) ?? 0) > 0,
  );
  const flagged = usable.findIndex((x) => record(x.disposition)?.default === 1);
  return usable.map((s, i): SourceAudio => {
    const disp = record(s.disposition);
    const tags = record(s.tags);
    const audio: SourceAudio = {
      index: num(s.index) ?? 0,
      codec: str(s.codec_name) ?? 'unknown',
      channels: num(s.channels) ?? 0,
      sampleRate: num(s.sample_rate) ?? 0,
      default: i === Math.max(0, flagged),
    };
    const layout = str(s.channel_layout);
    if (layout) audio.channelLayout = layout;
    const bitrate = num(s.bit_rate);
    if (bitrate && bitrate > 0) audio.bitrate = bitrate;
    const language = str(tags?.language);
    if (language) audio.language = language;
    const title = str(tags?.title);
    if (title) audio.title = title.slice(0, 200);
    if (disp?.comment === 1) audio.role = 'commentary';
    else if (disp?.visual_impaired === 1 || disp?.descriptions === 1) audio.role = 'description';
    else if (disp?.dub === 1) audio.role = 'dub';
    return audio;
  });
}

function subtitleStreams(streams: Json[]): SourceSubtitle[] {
  return streams
    .filter((s) => s.codec_type === 'subtitle')
    .map((s): SourceSubtitle => {
      const disp = record(s.disposition);
      const tags = record(s.tags);
      const codec = str(s.codec_name) ?? 'unknown';
      const sub: SourceSubtitle = {
        index: num(s.index) ?? 0,
        codec,
        text: TEXT_SUBTITLE_CODECS.has(codec),
        default: disp?.default === 1,
        forced: disp?.forced === 1,
        hearingImpaired: disp?.hearing_impaired === 1 || disp?.captions === 1,
      };
      const language = str(tags?.language);
      if (language) sub.language = language;
      const title = str(tags?.title);
      if (title) sub.title = title.slice(0, 200);
      return sub;
    });
}
