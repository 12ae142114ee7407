// ffmpeg command lines for one encode job and for the poster. Pure: returns argv arrays (without "ffmpeg"); the
// worker spawns them (never through a shell: paths and filter expressions are passed verbatim).
//
// One process decodes the source once and encodes every rung: the decoded video goes through one filter graph
// (deinterlace? → fps? → split=N → per-rung scale), so every rung receives the very same frames with the very same
// timestamps. Keyframes are then forced at the same instants in every rung (first frame at or after n × D), with
// every other reason for a keyframe switched off, so fragment n of every rendition covers the same time range and
// a player can switch rungs at any segment boundary (CMAF, ISO/IEC 23000-19: the fragments of a switching set are
// aligned; Apple's HLS authoring spec: IDRs every 2 s).

import { fileUrl, inputArgs } from './input.ts';
import type { LadderPlan, VideoRung } from './ladder.ts';

export interface EncodeOutputs {
  /** One path per plan.video rung, same order. */
  video: string[];
  /** One path per plan.audio rendition, same order. */
  audio: string[];
}

export interface EncodeOptions {
  /** x264 preset, default 'veryfast'. */
  preset?: string;
  /** Threads per x264 encoder (ffmpeg's default is one pool per encoder sized to all cores). */
  threads?: number;
  /** Largest frame (width × height) any decoder may allocate; pass MediaLimits.maxPixels. Default 8K UHD. */
  maxPixels?: number;
}

/** 7680 × 4320: used only when the caller gives no limit. */
export const DEFAULT_MAX_PIXELS = 7680 * 4320;

/** Fragmented MP4 laid out as CMAF: moov without samples, then moof+mdat pairs addressed from the moof. */
const CMAF_MOVFLAGS = '+empty_moov+default_base_moof+cmaf';

// A/V sync without edit lists. ffmpeg 5.1's MP4 muxer, fragmenting without an edit list (CMAF), starts every
// track's decode timeline at 0: x264's first frame (pts 0, dts −2 frames: B-frame reorder delay) is therefore
// presented at +2 frames, and the AAC encoder's 1024 priming samples (first packet pts −1024) put the first real
// sample at +1024/48000 s. To keep lips in sync the B-frame structure is pinned (3 B-frames, normal pyramid: delay
// exactly 2 frames whatever the preset) and the audio is delayed by the difference, so in every output the source's
// t = 0 is presented at 2 frames (see presentationDelay).
const X264_BFRAMES = '3';
const X264_B_PYRAMID = 'normal';
const X264_REORDER_DELAY_FRAMES = 2;
const AAC_PRIMING_SAMPLES = 1024;

/**
 * Seconds at which the source's first instant is presented in every output file (video and audio alike): the
 * B-frame reorder delay with video; for audio-only media the AAC encoder's priming, which nothing else offsets.
 * Text tracks are shifted by the same amount so captions stay on the frames they belong to.
 */
export function presentationDelay(plan: LadderPlan): number {
  if (plan.video.length === 0) return AAC_PRIMING_SAMPLES / (plan.audio[0]?.sampleRate ?? 48000);
  return (X264_REORDER_DELAY_FRAMES * plan.outputFrameRate.den) / plan.outputFrameRate.num;
}

/** Silence (samples at the output rate) put before the audio so it lines up with the video's reorder delay. */
export function audioDelaySamples(plan: LadderPlan): number {
  if (plan.video.length === 0) return 0;
  const rate = plan.audio[0]?.sampleRate ?? 48000;
  return Math.max(0, Math.round(presentationDelay(plan) * rate) - AAC_PRIMING_SAMPLES);
}

/** One JPEG image file (quality 3 of 31: a poster, not a thumbnail), overwritten in place. */
function jpegOutput(output: string): string[] {
  return ['-q:v', '3', '-f', 'image2', '-update', '1', fileUrl(output)];
}

/** Leading options every command shares: quiet stderr (errors only, for the job's log), no stdin, overwrite. */
function common(): string[] {
  return ['-hide_banner', '-nostdin', '-y', '-loglevel', 'error'];
}

/**
 * `-force_key_frames` expression: a keyframe at the first frame whose time t ≥ the next instant of the grid
 * 0, D, 2D, … — or 0, first, D, 2D, … when the first segment is shorter.
 */
export function keyframeExpr(segmentDuration: number, firstSegmentDuration = segmentDuration): string {
  if (firstSegmentDuration >= segmentDuration) return `expr:gte(t,n_forced*${segmentDuration})`;
  // 0, first, D, 2D, …: the first segment of the grid is split so the first one is published sooner.
  return `expr:gte(t,if(n_forced,max(${firstSegmentDuration},(n_forced-1)*${segmentDuration}),0))`;
}

/** The -filter_complex graph: [0:<video>] → (bwdif) → (fps) → split → [v0], [v1], … */
export function videoFilterGraph(plan: LadderPlan): string {
  const n = plan.video.length;
  if (n === 0 || plan.streams.video === null) throw new RangeError('the plan has no video rung');
  const head: string[] = [];
  // Only frames the decoder flags as interlaced are deinterlaced; one output frame per input frame keeps the rate.
  if (plan.deinterlace) head.push('bwdif=mode=send_frame:parity=auto:deint=interlaced');
  // Constant output rate (capped, or made constant for VFR sources) before the split, so it is computed once.
  if (plan.frameRate) head.push(`fps=${plan.frameRate.num}/${plan.frameRate.den}`);
  // setsar=1: the rung's width/height are display (square-pixel) sizes; format: 8-bit 4:2:0 for High/Main.
  const scale = (r: VideoRung) => `scale=${r.width}:${r.height},setsar=1,format=yuv420p`;
  // Two scaling stages: the top two rungs from the source, every smaller rung from the second rung's frames.
  // Scaling runs in ffmpeg's filter thread, one frame at a time; scaling 1080p once to 720p and the rest from 720p
  // costs about half of scaling 1080p five times, and one intermediate bicubic step does not visibly soften them.
  const [, second, ...rest] = plan.video;
  if (!second || rest.length === 0) {
    head.push(`split=${n}${plan.video.map((_, i) => `[s${i}]`).join('')}`);
    const rungs = plan.video.map((r, i) => `[s${i}]${scale(r)}[${r.id}]`);
    return [`[0:${plan.streams.video}]${head.join(',')}`, ...rungs].join(';');
  }
  head.push('split=2[s0][s1]');
  return [
    `[0:${plan.streams.video}]${head.join(',')}`,
    `[s0]${scale(plan.video[0]!)}[${plan.video[0]!.id}]`,
    `[s1]${scale(second)},split=${rest.length + 1}[${second.id}]${rest.map((_, i) => `[t${i}]`).join('')}`,
    ...rest.map((r, i) => `[t${i}]${scale(r)}[${r.id}]`),
  ].join(';');
}

function kbps(bps: number): string {
  return `${Math.round(bps / 1000)}k`;
}

function videoOutputArgs(plan: LadderPlan, r: VideoRung, path: string, opts: EncodeOptions): string[] {
  return [
    '-map',
    `[${r.id}]`,
    '-c:v',
    'libx264',
    '-preset',
    opts.preset ?? 'veryfast',
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
    // Keyframes only where forced: forced ones are IDR (closed GOP), scene-cut detection off, and the natural
    // keyframe interval (gopSize = 2 segments) never reached because a forced one comes first.
    '-force_key_frames',
    keyframeExpr(plan.segmentDuration, plan.firstSegmentDuration),
    '-forced-idr',
    '1',
    '-sc_threshold',
    '0',
    '-g',
    String(plan.gopSize),
    '-flags',
    '+cgop',
    '-bf',
    X264_BFRAMES,
    '-b-pyramid',
    X264_B_PYRAMID,
    ...(opts.threads ? ['-threads', String(opts.threads)] : []),
    ...outputTail(`+frag_keyframe${CMAF_MOVFLAGS}`, path),
  ];
}

/** Options closing every output file: no source metadata/chapters (a chapter list becomes a text track in MP4). */
function outputTail(movflags: string, path: string, extra: string[] = []): string[] {
  return [
    '-map_metadata',
    '-1',
    '-map_chapters',
    '-1',
    // Encoders with lookahead hold packets back while another output already muxes; don't fail on that.
    '-max_muxing_queue_size',
    '4096',
    '-movflags',
    movflags,
    // Publish while encoding: write each packet through at once, so a fragment is complete on disk when the muxer
    // cuts it, not when the next 32 KiB of a low-bitrate rendition push it out of the I/O buffer (a whole segment of
    // encode time later).
    '-flush_packets',
    '1',
    ...extra,
    '-f',
    'mp4',
    fileUrl(path),
  ];
}

/**
 * The argv for encoding every rendition of `plan` in one ffmpeg run. Progress goes to stdout (`-progress pipe:1`,
 * see ProgressParser), errors to stderr.
 */
export function buildEncodeArgs(
  input: string,
  plan: LadderPlan,
  outputs: EncodeOutputs,
  opts: EncodeOptions = {},
): string[] {
  if (outputs.video.length !== plan.video.length) {
    throw new RangeError(`${plan.video.length} video rungs but ${outputs.video.length} output paths`);
  }
  if (outputs.audio.length !== plan.audio.length) {
    throw new RangeError(`${plan.audio.length} audio renditions but ${outputs.audio.length} output paths`);
  }
  if (plan.video.length + plan.audio.length === 0) throw new RangeError('the plan has no rendition');
  const args = [
    ...common(),
    '-nostats',
    '-progress',
    'pipe:1',
    ...inputArgs(input, opts.maxPixels ?? DEFAULT_MAX_PIXELS),
  ];
  if (plan.video.length > 0) args.push('-filter_complex', videoFilterGraph(plan));
  plan.video.forEach((r, i) => {
    args.push(...videoOutputArgs(plan, r, outputs.video[i]!, opts));
  });
  plan.audio.forEach((a, i) => {
    args.push(
      '-map',
      `0:${a.stream}`,
      // aresample: to 48 kHz; async=1 fills gaps / trims overlaps in the source's audio timestamps (phone and
      // screen recordings); first_pts=0 starts it at the video's origin (silence before audio that starts late).
      // adelay: the A/V sync compensation described at presentationDelay.
      '-af',
      `aresample=${a.sampleRate}:async=1:first_pts=0,adelay=delays=${audioDelaySamples(plan)}S:all=1`,
      '-c:a',
      'aac',
      '-b:a',
      kbps(a.bitrate),
      // Any layout in → stereo (libswresample's ITU downmix: centre and surrounds at -3 dB), any rate → 48 kHz.
      '-ac',
      String(a.channels),
      '-ar',
      String(a.sampleRate),
      // Every AAC frame is a sync sample, so fragments are cut by duration (µs), not at keyframes.
      ...outputTail(CMAF_MOVFLAGS, outputs.audio[i]!, ['-frag_duration', String(Math.round(a.fragmentDuration * 1e6))]),
    );
  });
  return args;
}

/**
 * Text subtitle tracks of the source, each converted by ffmpeg's decoders (SubRip, ASS/SSA, mov_text, …) to a
 * SubRip file, in ONE demuxing pass; our own parser then writes the WebVTT. SubRip rather than ffmpeg's webvtt
 * encoder: ffmpeg 5.1 writes cue text into WebVTT unescaped (a `<` or a line starting `-->` breaks the file),
 * while its SubRip output is what our SubRip reader escapes and converts. `-copyts` keeps the source's own
 * timestamps, so the caller can place cues against the video's start (SourceSummary.startTime) as the encode did.
 */
export function buildSubtitleArgs(
  input: string,
  tracks: readonly { stream: number; output: string }[],
  maxPixels = DEFAULT_MAX_PIXELS,
): string[] {
  if (tracks.length === 0) throw new RangeError('no subtitle track to convert');
  const args = [...common(), '-copyts', ...inputArgs(input, maxPixels)];
  for (const t of tracks) {
    args.push('-map', `0:${t.stream}`, '-c:s', 'srt', '-map_metadata', '-1', '-f', 'srt', fileUrl(t.output));
  }
  return args;
}

/**
 * A poster for audio-only media without cover art: the waveform of the whole track (showwavespic), light on a dark
 * background, 1280x720.
 */
export function buildWaveformArgs(
  input: string,
  audioStream: number,
  output: string,
  maxPixels = DEFAULT_MAX_PIXELS,
): string[] {
  return [
    ...common(),
    ...inputArgs(input, maxPixels),
    '-filter_complex',
    `[0:${audioStream}]aformat=channel_layouts=mono,showwavespic=s=1200x560:colors=0x7fb8ff[w];` +
      'color=c=0x15181e:s=1280x720:d=1[bg];[bg][w]overlay=40:80:format=auto,format=yuvj420p[out]',
    '-map',
    '[out]',
    '-frames:v',
    '1',
    ...jpegOutput(output),
  ];
}

export interface PosterOptions {
  /** Absolute index of the video stream (plan.streams.video); default: the first one that is not cover art. */
  videoStream?: number;
  maxPixels?: number;
}

/**
 * One JPEG frame at `time` seconds, `maxWidth` wide at most (never upscaled), square pixels, even dimensions.
 * ffmpeg autorotates (display matrix → transpose) before our filters, so a portrait phone clip gives a portrait
 * poster; `iw*sar` then is the displayed width.
 */
export function buildPosterArgs(
  input: string,
  time: number,
  output: string,
  maxWidth: number,
  opts: PosterOptions = {},
): string[] {
  if (!(maxWidth >= 2)) throw new RangeError(`maxWidth must be ≥ 2, got ${maxWidth}`);
  const w = `min(${Math.floor(maxWidth)},iw*sar)`;
  // Quoted so the commas inside min()/max() are not read as filter separators.
  const scale = `scale=w='max(2,2*trunc(${w}/2))':h='max(2,2*trunc(${w}*ih/(iw*sar)/2))'`;
  return [
    ...common(),
    // Input-side seek: jumps to the keyframe before `time`, then decodes to exactly `time` (accurate_seek default).
    // None at 0: ffmpeg 5.1 seeking an MP3 skips its ID3 cover picture (the one frame of an attached_pic stream).
    ...(time > 0 ? ['-ss', time.toFixed(3)] : []),
    ...inputArgs(input, opts.maxPixels ?? DEFAULT_MAX_PIXELS),
    '-map',
    opts.videoStream === undefined ? '0:V:0' : `0:${opts.videoStream}`,
    '-frames:v',
    '1',
    '-vf',
    `${scale},setsar=1`,
    '-an',
    '-sn',
    '-dn',
    '-map_metadata',
    '-1',
    ...jpegOutput(output),
  ];
}
