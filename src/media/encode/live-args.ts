// ffmpeg command line for a LIVE ladder: ONE ffmpeg reads the publisher's FLV on stdin and writes every rung and the
// audio as growing CMAF files (one moof+mdat per LL-HLS part, draft-pantos-hls-rfc8216bis §3.2), each part flushed
// to disk as it is cut. Pure: returns argv arrays (without "ffmpeg"); roles/live spawns them.
//
// The grid. A segment is G = round(2 s × fps) frames (60 at 30 fps, and at 29.97 fps too: 2.002 s there, so every
// segment holds the same whole number of frames; a strict 2 s grid would give a 59-frame GOP every 33 s). A part is
// the divisor of G nearest 1/3 s, at most 0.5 s (livePartFrames). The fps filter makes the input constant-rate
// before the split (FLV timestamps are whole milliseconds and a publisher may drop frames), from the input's first
// instant (start_time=0), so frame n of every rung is the input's instant n / fps and a keyframe is forced on every
// G-th frame: the same instants in every rung. ffmpeg 5.1's movenc cuts a fragment at the first packet whose dts is
// ≥ frag_duration past the fragment's first: half a frame less than the part, so millisecond rounding never moves a
// cut; frag_keyframe cuts at every keyframe, which falls on a part boundary anyway. Audio parts are the most whole
// AAC frames that fit in a video part (15 × 1024 samples = 0.32 s at 30 fps): never longer than PART-TARGET; the
// LiveTimeline puts them on the video's segment boundaries.
//
// Low latency. Measured with ffmpeg 5.1 on a 720p30 FLV written at 1× into the 5-rung ladder, as the time from the
// end of a part's last frame to the part being complete on disk (median):
//   -fpsprobesize 0    FLV's 1/1000 time base makes avformat_find_stream_info wait for 40 frames to guess the frame
//                      rate before decoding starts: the first part landed at 1.45 s, now 0.37 s. The rate comes from
//                      onMetaData and the fps filter instead.
//   -threads 1 (input) frame-threaded H.264 decoding holds each frame back (threads − 1) frames: 0.105 → 0.04 s
//                      (unpaced, the ladder runs about 5% slower: 2.4× instead of 2.55× real time).
//   -tune zerolatency  x264 without lookahead, B-frames, mb-tree or frame threads (sliced threads instead). On one
//                      rung: 0.07 s, against 0.63 s with veryfast's defaults (rc-lookahead 10, 3 B-frames, frame
//                      threads), 0.40 s with the lookahead off, 0.20 s with lookahead and B-frames off; frame threads
//                      with zerolatency's other settings: +0.07 s. What remains is one frame (a part is cut when the
//                      next part's first frame reaches the muxer) plus decoding and encoding.
//   -flush_packets 1   without it parts wait in the 32 KiB I/O buffer: 0.40–1.07 s at 3 Mb/s, worse in lower rungs.
//   Not used: -fflags nobuffer (drops what was read while probing: 1.7 s of audio lost, the first part at 2.2 s);
//   -analyzeduration 0 / -probesize 32 (the frame rate falls back to 25: parts of 8 and 2 frames); -fflags genpts
//   (no effect, FLV carries pts and dts); -re (the input already arrives in real time).
//
// A/V sync without edit lists. No B-frames: video is presented at its decode time, from 0 = the input's first
// instant. Audio starts there too (aresample first_pts=0, silence where audio starts late or drops out) and its
// first 1024 samples are dropped to cancel the AAC encoder's priming, so in every file the input's instant t is
// presented at t, to within the half frame the fps filter rounds video timestamps to (ffmpeg-args.ts
// presentationDelay is 2 frames for VOD; here it is 0). Copying (transcode: false) keeps the input's own timeline:
// +frag_discont makes movenc write each track's real first decode time instead of starting every track at 0, which
// would shift audio against video by the publisher's priming and B-frame delays (measured 21 ms; 0.4 ms with it).
import type { Amf0Object } from '../rtmp/amf0.ts';
import { DEFAULT_MAX_PIXELS, type EncodeOutputs, videoFilterGraph } from './ffmpeg-args.ts';
import { type LadderOptions, type LadderPlan, planLadder, type VideoRung } from './ladder.ts';
import { type Fraction, type SourceSummary, snapFrameRate } from './probe.ts';

/** What the publisher's onMetaData (or the first video tag) tells about the stream. */
export interface LiveInput {
  width: number;
  height: number;
  frameRate: Fraction | number;
  /** bits/s, when announced. */
  videoBitrate?: number;
  /** The publisher sends audio. */
  audio: boolean;
}

export interface LiveGrid {
  /** Frames per segment (= between forced keyframes). */
  gopFrames: number;
  /** Frames per part; divides gopFrames. */
  partFrames: number;
  /** Seconds, exact: gopFrames / fps and partFrames / fps. */
  segmentDuration: Fraction;
  partDuration: Fraction;
  /** AAC frames (1024 samples at 48 kHz) per audio part: the most that fit in a video part. */
  audioPartFrames: number;
}

export interface LiveEncodeOptions {
  /** Decode and encode the ladder (default); false stores the input video as it is, in outputs.video[0]. */
  transcode?: boolean;
  /** transcode: false only: the input audio is AAC, copy it (else it is encoded to AAC). */
  copyAudio?: boolean;
  /** x264 preset, default 'veryfast'. */
  preset?: string;
  /**
   * Threads per x264 encoder; default: x264's own (sliced threads under zerolatency, 3 slices on 2 cores). 1 costs
   * about 7% less CPU at the same latency, but ffmpeg 5.1 then runs every rung's encode on its one transcoding thread.
   */
  threads?: number;
  maxPixels?: number;
}

/** Longest part allowed (issue 9: parts of at most 0.5 s) and the length aimed at. */
const MAX_PART_SECONDS = 0.5;
const TARGET_PART_SECONDS = 1 / 3;
const AAC_FRAME = 1024;
const AAC_RATE = 48000;
const CMAF_MOVFLAGS = '+empty_moov+default_base_moof+cmaf';

function fraction(f: Fraction | number): Fraction {
  if (typeof f !== 'number') {
    if (!(Number.isSafeInteger(f.num) && Number.isSafeInteger(f.den) && f.num > 0 && f.den > 0)) {
      throw new RangeError(`bad frame rate ${f.num}/${f.den}`);
    }
    return snapFrameRate(reduce(f.num, f.den));
  }
  if (!(f > 0 && f <= 1000)) throw new RangeError(`bad frame rate ${f}`);
  return snapFrameRate(reduce(Math.round(f * 1000), 1000));
}

/** The segment and part lengths for a frame rate (see the file comment). */
export function liveGrid(fps: Fraction | number, segmentDuration = 2): LiveGrid {
  const r = fraction(fps);
  const rate = r.num / r.den;
  const gopFrames = Math.max(1, Math.round(segmentDuration * rate));
  let partFrames = 1;
  for (let d = 1; d <= gopFrames; d++) {
    if (gopFrames % d !== 0 || d / rate > MAX_PART_SECONDS + 1e-9) continue;
    // Nearest to 1/3 s; on a tie the longer part (fewer moofs, fewer playlist lines).
    if (Math.abs(d / rate - TARGET_PART_SECONDS) <= Math.abs(partFrames / rate - TARGET_PART_SECONDS) + 1e-9) {
      partFrames = d;
    }
  }
  const seconds = (frames: number): Fraction => reduce(frames * r.den, r.num);
  return {
    gopFrames,
    partFrames,
    segmentDuration: seconds(gopFrames),
    partDuration: seconds(partFrames),
    audioPartFrames: Math.max(1, Math.floor((partFrames * r.den * AAC_RATE) / (r.num * AAC_FRAME))),
  };
}

/** Frames per part at this frame rate: 10 at 30 and 29.97 fps, 10 (0.4 s) at 25, 8 at 24, 20 at 60. */
export function livePartFrames(fps: Fraction | number, segmentDuration = 2): number {
  return liveGrid(fps, segmentDuration).partFrames;
}

function reduce(num: number, den: number): Fraction {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const g = gcd(num, den);
  return { num: num / g, den: den / g };
}

/** The LiveInput in an onMetaData object (width, height, framerate, videodatarate in kb/s); null without a size. */
export function liveInputFromMetadata(meta: Amf0Object): LiveInput | null {
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
  const width = n(meta.width);
  const height = n(meta.height);
  const fps = n(meta.framerate) ?? n(meta.videoframerate);
  if (!width || !height || !fps) return null;
  const input: LiveInput = {
    width: Math.round(width),
    height: Math.round(height),
    frameRate: fps,
    audio: meta.audiocodecid !== undefined || n(meta.audiodatarate) !== undefined,
  };
  const kbps = n(meta.videodatarate);
  if (kbps) input.videoBitrate = Math.round(kbps * 1000);
  return input;
}

/** A SourceSummary-shaped description of the live input, for planLadder. */
export function liveSource(input: LiveInput): SourceSummary {
  const f = fraction(input.frameRate);
  const summary: SourceSummary = {
    container: 'flv',
    duration: 0,
    durationFrom: 'header',
    size: 0,
    bitrate: (input.videoBitrate ?? 0) + (input.audio ? 128_000 : 0),
    video: {
      index: 0,
      codec: 'h264',
      width: input.width,
      height: input.height,
      displayWidth: input.width,
      displayHeight: input.height,
      rotation: 0,
      sar: { num: 1, den: 1 },
      frameRate: f.num / f.den,
      frameRateFraction: f,
      variableFrameRate: false,
      interlaced: false,
      pixFmt: 'yuv420p',
    },
    audioTracks: [],
    subtitles: [],
    startTime: 0,
  };
  if (input.videoBitrate) summary.video!.bitrate = input.videoBitrate;
  if (input.audio) {
    const a = { index: 1, codec: 'aac', channels: 2, sampleRate: AAC_RATE, default: true };
    summary.audio = a;
    summary.audioTracks.push(a);
  }
  return summary;
}

/** planLadder for a live input: one segment length throughout (no shorter first segment), G / fps seconds. */
export function planLiveLadder(input: LiveInput, opts: LadderOptions = {}): LadderPlan {
  const src = liveSource(input);
  const grid = liveGrid(src.video!.frameRateFraction, opts.segmentDuration ?? 2);
  const seconds = grid.segmentDuration.num / grid.segmentDuration.den;
  return planLadder(src, { ...opts, segmentDuration: seconds, firstSegmentDuration: seconds });
}

const micros = (seconds: number) => String(Math.round(seconds * 1e6));
const kbps = (bps: number) => `${Math.round(bps / 1000)}k`;

/** Options closing every output: CMAF, written through at once, cut by duration (and at keyframes for video). */
function cmafOutput(path: string, fragSeconds: number, keyframes: boolean, keepOffsets = false): string[] {
  return [
    '-map_metadata',
    '-1',
    '-max_muxing_queue_size',
    '4096',
    '-movflags',
    `${keyframes ? '+frag_keyframe' : ''}${keepOffsets ? '+frag_discont' : ''}${CMAF_MOVFLAGS}`,
    '-frag_duration',
    micros(fragSeconds),
    '-flush_packets',
    '1',
    '-f',
    'mp4',
    // A path is forced to be a file (never read as a protocol); `pipe:N` is an fd the caller set up.
    /^pipe:\d+$/.test(path) ? path : `file:${path}`,
  ];
}

function rungArgs(r: VideoRung, grid: LiveGrid, plan: LadderPlan, opts: LiveEncodeOptions): string[] {
  return [
    '-map',
    `[${r.id}]`,
    '-c:v',
    'libx264',
    '-preset',
    opts.preset ?? 'veryfast',
    '-tune',
    'zerolatency',
    '-profile:v',
    r.profile,
    '-level:v',
    r.level,
    '-b:v',
    kbps(r.bitrate),
    '-maxrate',
    kbps(r.maxrate),
    '-bufsize',
    kbps(r.bufsize),
    // Frame n of the constant-rate stream is the instant n / fps: a keyframe (IDR) on every G-th, none elsewhere.
    '-force_key_frames',
    `expr:gte(n,n_forced*${grid.gopFrames})`,
    '-forced-idr',
    '1',
    '-sc_threshold',
    '0',
    '-g',
    String(plan.gopSize),
    ...(opts.threads ? ['-threads', String(opts.threads)] : []),
  ];
}

function audioArgs(plan: LadderPlan, grid: LiveGrid, path: string, copy: boolean): string[] {
  const a = plan.audio[0]!;
  const frag = ((grid.audioPartFrames - 0.5) * AAC_FRAME) / a.sampleRate;
  if (copy) return ['-map', '0:a:0', '-c:a', 'copy', ...cmafOutput(path, frag, false, true)];
  return [
    '-map',
    '0:a:0',
    // From the input's start (silence where audio starts late or drops out), minus the encoder's priming.
    '-af',
    `aresample=${a.sampleRate}:async=1:first_pts=0,atrim=start_sample=${AAC_FRAME},asetpts=PTS-STARTPTS`,
    '-c:a',
    'aac',
    '-b:a',
    kbps(a.bitrate),
    '-ac',
    String(a.channels),
    '-ar',
    String(a.sampleRate),
    // Starts at 0 = the input's first instant like the copied video, whose timeline is kept; never frag_discont here:
    // the first AAC packet's pts is −1024 (priming), which movenc would write as a negative tfdt.
    ...cmafOutput(path, frag, false),
  ];
}

/**
 * The argv for one live ffmpeg: FLV on stdin (`pipe:0`), one CMAF file per rung (or the input's video, copied) and
 * one for the audio; errors on stderr, nothing on stdout.
 */
export function buildLiveEncodeArgs(plan: LadderPlan, outputs: EncodeOutputs, opts: LiveEncodeOptions = {}): string[] {
  const transcode = opts.transcode !== false;
  const wantVideo = transcode ? plan.video.length : Math.min(1, plan.video.length);
  if (outputs.video.length !== wantVideo) {
    throw new RangeError(`${wantVideo} video outputs expected, got ${outputs.video.length}`);
  }
  if (outputs.audio.length !== Math.min(1, plan.audio.length)) {
    throw new RangeError(`${Math.min(1, plan.audio.length)} audio outputs expected, got ${outputs.audio.length}`);
  }
  if (wantVideo === 0) throw new RangeError('a live ladder needs video');
  const grid = liveGrid(plan.outputFrameRate, plan.segmentDuration);
  const rate = plan.outputFrameRate.num / plan.outputFrameRate.den;
  const partFrag = (grid.partFrames - 0.5) / rate;
  const args = [
    '-hide_banner',
    '-nostdin',
    // Never truncate: an existing file is media already published (a restarted ffmpeg gets new paths).
    '-n',
    '-loglevel',
    'error',
    '-nostats',
    '-fpsprobesize',
    '0',
    // One decoding thread: frame threads hold every frame back for (threads − 1) frames.
    '-threads',
    '1',
    '-max_pixels',
    String(Math.min(Math.floor(opts.maxPixels ?? DEFAULT_MAX_PIXELS), 2_147_483_647)),
    '-f',
    'flv',
    '-i',
    'pipe:0',
  ];
  if (transcode) {
    const f = plan.outputFrameRate;
    // Constant rate from the input's start (the first frame repeated if video starts after audio), then the rungs.
    const head = `${plan.deinterlace ? 'bwdif=mode=send_frame:parity=auto:deint=interlaced,' : ''}fps=${f.num}/${f.den}:start_time=0`;
    // The VOD graph's split and (two-stage) scaling, behind this head instead of its own.
    const graph = videoFilterGraph({ ...plan, frameRate: null, deinterlace: false, streams: { video: 0 } });
    if (!graph.startsWith('[0:0]')) throw new RangeError(`unexpected filter graph ${graph}`);
    args.push('-filter_complex', `[0:v:0]${head},${graph.slice('[0:0]'.length)}`);
    plan.video.forEach((r, i) => {
      args.push(...rungArgs(r, grid, plan, opts), ...cmafOutput(outputs.video[i]!, partFrag, true));
    });
  } else {
    args.push('-map', '0:v:0', '-c:v', 'copy', ...cmafOutput(outputs.video[0]!, partFrag, true, true));
  }
  if (outputs.audio[0]) {
    args.push(...audioArgs(plan, grid, outputs.audio[0], !transcode && opts.copyAudio === true));
  }
  return args;
}
