// Ladder planning: which renditions to encode from one source. Pure.
//
// The table follows Apple's "HLS Authoring Specification for Apple Devices", recommended 16:9 H.264 variants
// (a subset: one rung per frame height). Bitrates are averages for ≤ 30 fps; above 30 fps they are × 1.5.
//
//   id*  short side  16:9 frame   kb/s ≤30fps  kb/s >30fps  profile  level (30 fps / 60 fps, computed)
//   v0   1080        1920x1080    6000         9000         high     4.0 / 4.2
//   v1    720        1280x720     3000         4500         high     3.1 / 3.2
//   v2    540         960x540     2000         3000         main     3.1 / 3.2
//   v3    432         768x432     1100         1650         main     3.0 / 3.1
//   v4    360         640x360      730         1095         main     3.0 / 3.1
//   v5    234         416x234      145          218         main     1.3 / 3.0
//   (* ids for a ≥ 1080p source; ids are always v0 = highest, counting down the rungs actually planned)
//
// Rules (and why):
// - Rungs are chosen by the SHORT side of the displayed picture (after sample aspect ratio and rotation), so a
//   portrait 1080x1920 phone clip gets 1080x1920, 720x1280, … and an anamorphic 720x576 (SAR 64:45) DVD is planned
//   from its 1024x576 display size. Every rung has square pixels and even dimensions (4:2:0 chroma).
// - Never upscale: rungs larger than the source are dropped. A source between two table rungs gets its own size as
//   the top rung (replacing the rung just below it when within 15%, where two rungs would be near-duplicates);
//   a source smaller than the smallest rung still gets one rung, at its own size. The top is capped at 1080 short
//   side (Apple §"Video": H.264 at most High Profile Level 4.2, which 1080p60 needs).
// - Bitrate for any frame size is interpolated from the table by pixel count (log-log between rows), so 4:3,
//   ultra-wide and portrait rungs get what their area needs. When the source's own video bitrate is known, the
//   whole ladder is scaled down (never up) to what keeping that quality needs: re-encoding a 2 Mb/s 1080p H.264 at
//   6 Mb/s only wastes storage. Allowance: source bits × codec efficiency vs H.264 × 1.5 for generation loss.
// - maxrate = 1.1 × bitrate, bufsize = min(2, 0.9 × segmentDuration) × bitrate: with x264's VBV a segment can
//   exceed maxrate by at most bufsize / segmentDuration, so a segment's bitrate stays ≤ 2 × the average — Apple's
//   "peak bit rate SHOULD be no more than 200% of the average bit rate" for VOD — and the HLS BANDWIDTH (peak)
//   stays close to AVERAGE-BANDWIDTH so players pick rungs by realistic figures.
// - Frame rate: kept when ≤ 60 (29.97 stays 30000/1001; Apple: "natural frame rate", nothing above 60 fps);
//   above 60 it is divided by the smallest integer that brings it to ≤ 60 (120 → 60, 100 → 50, 119.88 → 59.94), so
//   frames are dropped evenly. Variable-frame-rate sources are made constant at their nominal rate, so every
//   segment boundary falls on a frame at exactly n × segmentDuration.
// - H.264 level: the lowest in ITU-T H.264 Table A-1 whose MaxFS, MaxMBPS, MaxBR and MaxCPB fit the rung (Apple:
//   "SHOULD NOT use a higher level than required"). Profile High from 720 up, Main below (older, low-end decoders).
// - Audio: one AAC-LC stereo 48 kHz rendition at 128 kb/s per audio track of the source (any layout or rate in),
//   keeping each track's language, title and role: a film with three languages plays in three. One rung per track:
//   at 128 kb/s AAC-LC is transparent for stereo, and a second, lower audio rung would buy less than the smallest
//   video rung's saving.
// - Audio-only sources (music, podcasts) get no video rung: their audio renditions are the whole presentation.

import type { Fraction, SourceSummary } from './probe.ts';

export type H264Profile = 'high' | 'main' | 'baseline';

export interface VideoRung {
  /** 'v0' is the highest rung. */
  id: `v${number}`;
  width: number;
  height: number;
  /** Average target, bits/s. */
  bitrate: number;
  /** VBV maximum rate and buffer size, bits/s and bits. */
  maxrate: number;
  bufsize: number;
  profile: H264Profile;
  /** H.264 level_idc as x264 takes it: '3.1', '4.0'. */
  level: string;
}

export interface AudioRendition {
  /** 'a0', 'a1', … in the source's track order. */
  id: `a${number}`;
  /** Absolute index of the source stream (`-map 0:<stream>`). */
  stream: number;
  /** The source's language tag as written (ISO 639-2 usually), title and role; normalised by the caller. */
  language?: string;
  title?: string;
  role?: 'commentary' | 'description' | 'dub';
  /** The track a player picks by default (the source's default-flagged one, else the first). */
  default: boolean;
  /** bits/s */
  bitrate: number;
  channels: 2;
  sampleRate: 48000;
  /**
   * Seconds per audio fragment (= segment). Every AAC frame is a sync sample, so audio is cut by duration; it
   * follows the first video segment's length so audio never holds back the first publish.
   */
  fragmentDuration: number;
}

export interface LadderPlan {
  /** Seconds between forced keyframes = one CMAF fragment = one HLS/DASH segment. */
  segmentDuration: number;
  /**
   * Seconds of the first segment (≤ segmentDuration). Shorter than the rest so an asset turns playable sooner;
   * after it the grid is n × segmentDuration again: keyframes at 0, first, D, 2D, …
   */
  firstSegmentDuration: number;
  /** Output frame rate when the source's must change (capped or made constant); null keeps the source timing. */
  frameRate: Fraction | null;
  /** The frame rate every rung will have: frameRate, or the source's nominal rate when that is kept. */
  outputFrameRate: Fraction;
  /** x264 keyint: twice the frames in a segment, so the encoder's own keyframes never come before a forced one. */
  gopSize: number;
  /** Source is interlaced: deinterlace (Apple: "All interlaced source content MUST be de-interlaced"). */
  deinterlace: boolean;
  /** Absolute stream index in the source of the video to encode; null for audio-only media. */
  streams: { video: number | null };
  /** Empty for audio-only media. */
  video: VideoRung[];
  /** One per audio track of the source; empty when it has none. */
  audio: AudioRendition[];
  /** Where to take the poster frame, seconds. */
  poster: { time: number };
}

export interface LadderOptions {
  /** Seconds, default 2 (Apple: "Key frames (IDRs) SHOULD be present every two seconds"). */
  segmentDuration?: number;
  /** Seconds of the first segment, default 1; clamped to segmentDuration. */
  firstSegmentDuration?: number;
  /** Largest short side to produce, default 1080. */
  maxShortSide?: number;
  /** Default 60. */
  maxFrameRate?: number;
  /** bits/s, default 128000. */
  audioBitrate?: number;
  /** Scale bitrates down to what the source's own bitrate justifies; default true. */
  capToSource?: boolean;
}

interface TableRow {
  short: number;
  /** kb/s at ≤ 30 fps, for the 16:9 frame of this short side. */
  kbps: number;
}

export const LADDER_TABLE: readonly TableRow[] = [
  { short: 1080, kbps: 6000 },
  { short: 720, kbps: 3000 },
  { short: 540, kbps: 2000 },
  { short: 432, kbps: 1100 },
  { short: 360, kbps: 730 },
  { short: 234, kbps: 145 },
];

const HIGH_FPS_FACTOR = 1.5;
const MAXRATE_FACTOR = 1.1;
const MIN_BITRATE = 64_000;
/** A source whose short side is within this ratio of the rung below replaces that rung instead of adding one. */
const MERGE_RATIO = 1.15;
/** How many H.264 bits keep the quality of one bit of the source codec (rough, conservative). */
const CODEC_EFFICIENCY: Record<string, number> = { hevc: 1.5, vp9: 1.5, av1: 2 };
const GENERATION_ALLOWANCE = 1.5;

const pixels16x9 = (short: number) => ((short * 16) / 9) * short;

/** Table bitrate (bits/s, ≤ 30 fps) for a frame of `px` pixels: log-log interpolation; linear beyond the ends. */
export function tableBitrate(px: number): number {
  const rows = LADDER_TABLE.map((r) => ({ px: pixels16x9(r.short), bps: r.kbps * 1000 })).reverse();
  const first = rows[0]!;
  const last = rows[rows.length - 1]!;
  if (px <= first.px) return (first.bps * px) / first.px;
  if (px >= last.px) return (last.bps * px) / last.px;
  for (let i = 1; i < rows.length; i++) {
    const lo = rows[i - 1]!;
    const hi = rows[i]!;
    if (px <= hi.px) {
      const t = Math.log(px / lo.px) / Math.log(hi.px / lo.px);
      return lo.bps * (hi.bps / lo.bps) ** t;
    }
  }
  return last.bps;
}

// ITU-T H.264 (08/2021) Table A-1: level, MaxMBPS (MB/s), MaxFS (MBs), MaxBR and MaxCPB (units of cpbBrVclFactor
// bits/s and bits: 1000 for Main, 1250 for High, Table A-2). Level 1b is left out (no profile here needs it).
const LEVELS: ReadonlyArray<readonly [string, number, number, number, number]> = [
  ['1.0', 1485, 99, 64, 175],
  ['1.1', 3000, 396, 192, 500],
  ['1.2', 6000, 396, 384, 1000],
  ['1.3', 11880, 396, 768, 2000],
  ['2.0', 11880, 396, 2000, 2000],
  ['2.1', 19800, 792, 4000, 4000],
  ['2.2', 20250, 1620, 4000, 4000],
  ['3.0', 40500, 1620, 10000, 10000],
  ['3.1', 108000, 3600, 14000, 14000],
  ['3.2', 216000, 5120, 20000, 20000],
  ['4.0', 245760, 8192, 20000, 25000],
  ['4.1', 245760, 8192, 50000, 62500],
  ['4.2', 522240, 8704, 50000, 62500],
  ['5.0', 589824, 22080, 135000, 135000],
  ['5.1', 983040, 36864, 240000, 240000],
  ['5.2', 2073600, 36864, 240000, 240000],
  ['6.0', 4177920, 139264, 240000, 240000],
  ['6.1', 8355840, 139264, 480000, 480000],
  ['6.2', 16711680, 139264, 800000, 800000],
];

/** Lowest H.264 level that fits; also each side ≤ √(8·MaxFS) macroblocks (H.264 A.3.1, A.3.2). */
export function h264Level(
  width: number,
  height: number,
  fps: number,
  maxrate: number,
  bufsize: number,
  profile: H264Profile,
): string {
  const wMb = Math.ceil(width / 16);
  const hMb = Math.ceil(height / 16);
  const fs = wMb * hMb;
  const factor = profile === 'high' ? 1250 : 1000;
  for (const [name, maxMbps, maxFs, maxBr, maxCpb] of LEVELS) {
    const side = Math.sqrt(maxFs * 8);
    if (fs > maxFs || wMb > side || hMb > side) continue;
    if (fs * fps > maxMbps || maxrate > maxBr * factor || bufsize > maxCpb * factor) continue;
    return name;
  }
  return '6.2';
}

const even = (x: number) => Math.max(2, 2 * Math.round(x / 2));
const evenFloor = (x: number) => Math.max(2, 2 * Math.floor(x / 2));

/** Output frame rate, or null when the source's is kept as it is. */
export function outputFrameRate(src: NonNullable<SourceSummary['video']>, maxFps = 60): Fraction | null {
  const f = src.frameRateFraction;
  const fps = f.num / f.den;
  if (fps > maxFps + 0.01) {
    const divisor = Math.ceil(fps / maxFps - 1e-6);
    const num = f.num % divisor === 0 ? f.num / divisor : f.num;
    const den = f.num % divisor === 0 ? f.den : f.den * divisor;
    return { num, den };
  }
  return src.variableFrameRate ? f : null;
}

function planAudio(src: SourceSummary, opts: LadderOptions, fragmentDuration: number): AudioRendition[] {
  return src.audioTracks.map((a, i) => {
    const r: AudioRendition = {
      id: `a${i}`,
      stream: a.index,
      default: a.default,
      bitrate: opts.audioBitrate ?? 128_000,
      channels: 2,
      sampleRate: 48000,
      fragmentDuration,
    };
    if (a.language) r.language = a.language;
    if (a.title) r.title = a.title;
    if (a.role) r.role = a.role;
    return r;
  });
}

export function planLadder(src: SourceSummary, opts: LadderOptions = {}): LadderPlan {
  const segmentDuration = opts.segmentDuration ?? 2;
  if (!(segmentDuration > 0)) throw new RangeError(`segmentDuration must be > 0, got ${segmentDuration}`);
  const firstSegmentDuration = Math.min(segmentDuration, opts.firstSegmentDuration ?? 1);
  if (!(firstSegmentDuration > 0)) {
    throw new RangeError(`firstSegmentDuration must be > 0, got ${opts.firstSegmentDuration}`);
  }
  const v = src.video;
  if (!v) {
    // Audio only: the segment grid is the audio fragment length; there is no frame rate to keep.
    const audio = planAudio(src, opts, segmentDuration);
    if (audio.length === 0) throw new RangeError('the source has neither video nor audio');
    return {
      segmentDuration,
      firstSegmentDuration: segmentDuration,
      frameRate: null,
      outputFrameRate: { num: 25, den: 1 },
      gopSize: 0,
      deinterlace: false,
      streams: { video: null },
      video: [],
      audio,
      poster: { time: 0 },
    };
  }
  const frameRate = outputFrameRate(v, opts.maxFrameRate ?? 60);
  const fps = frameRate ? frameRate.num / frameRate.den : v.frameRate;
  const fpsFactor = fps > 30.5 ? HIGH_FPS_FACTOR : 1;

  // Displayed size; the short side picks the rungs, the long side follows the display aspect ratio.
  const dw = v.displayWidth;
  const dh = v.displayHeight;
  const landscape = dw >= dh;
  const srcShort = Math.min(dw, dh);
  const srcLong = Math.max(dw, dh);
  const topShort = Math.min(srcShort, opts.maxShortSide ?? LADDER_TABLE[0]!.short);
  const size = (short: number) => {
    const long =
      short >= srcShort ? evenFloor(srcLong) : Math.min(even((short * srcLong) / srcShort), evenFloor(srcLong));
    return landscape ? { width: long, height: short } : { width: short, height: long };
  };

  const shorts = LADDER_TABLE.map((r) => r.short).filter((s) => s <= topShort);
  const own = evenFloor(topShort);
  if (shorts.length === 0) shorts.push(own);
  else if (own > shorts[0]!) {
    if (own < shorts[0]! * MERGE_RATIO) shorts[0] = own;
    else shorts.unshift(own);
  }

  // Scale the whole ladder down when the source's own bitrate says the content needs less.
  let scale = 1;
  const srcVideoBitrate = v.bitrate ?? src.bitrate - src.audioTracks.reduce((n, a) => n + (a.bitrate ?? 128_000), 0);
  if (opts.capToSource !== false && srcVideoBitrate > 0) {
    const top = size(shorts[0]!);
    const worth = srcVideoBitrate * (CODEC_EFFICIENCY[v.codec] ?? 1) * GENERATION_ALLOWANCE;
    scale = Math.min(1, Math.max(0.1, worth / (tableBitrate(top.width * top.height) * fpsFactor)));
  }

  const video = shorts.map((short, i): VideoRung => {
    const { width, height } = size(short);
    const bitrate = Math.max(MIN_BITRATE, roundKbps(tableBitrate(width * height) * fpsFactor * scale));
    const maxrate = roundKbps(bitrate * MAXRATE_FACTOR);
    const bufsize = roundKbps(bitrate * Math.min(2, 0.9 * segmentDuration));
    const profile: H264Profile = short >= 720 ? 'high' : 'main';
    const level = h264Level(width, height, fps, maxrate, bufsize, profile);
    return { id: `v${i}`, width, height, bitrate, maxrate, bufsize, profile, level };
  });

  const audio = planAudio(src, opts, firstSegmentDuration);

  return {
    segmentDuration,
    firstSegmentDuration,
    frameRate,
    outputFrameRate: frameRate ?? v.frameRateFraction,
    gopSize: 2 * Math.ceil(segmentDuration * fps),
    deinterlace: v.interlaced,
    streams: { video: v.index },
    video,
    audio,
    // 10% in (past fade-ins and black openers), at most 10 s, on a millisecond.
    poster: { time: Math.round(Math.min(10, src.duration * 0.1) * 1000) / 1000 },
  };
}

/** Bitrates in whole kb/s, so the plan prints as ffmpeg's `6000k` without rounding surprises. */
function roundKbps(bps: number): number {
  return Math.max(1000, Math.round(bps / 1000) * 1000);
}
