// The input side every ffprobe/ffmpeg call shares: how an uploaded file is opened safely. Pure: builds arguments.
//
// An upload is hostile until proven otherwise. ffmpeg picks a demuxer from the file's content, and some demuxers
// open further URLs named inside the file: an uploaded HLS playlist or ffconcat script can make ffmpeg read other
// local files (other users' uploads) or reach the network and encode what it finds into a "video" (the well-known
// ffmpeg SSRF / local-file-read class of attacks). So:
//   - only the `file` protocol is allowed (-protocol_whitelist), and the path is given as a `file:` URL so a name
//     such as `concat:a|b` or `http://…` is never read as a protocol;
//   - only demuxers for real audio/video containers are allowed (-format_whitelist; no hls, dash, concat, image2,
//     tty, sdp, lavfi…);
//   - decoders refuse frames larger than the pixel limit (-max_pixels, a codec option applied to every decoder of
//     this input), so a stream whose codec headers declare a huge frame is never allocated, even when its container
//     declares a small one.

/**
 * Demuxers an upload may be read with (names as ffmpeg 5.1 registers them; av_match_list matches any element of a
 * comma-separated demuxer name such as "mov,mp4,m4a,3gp,3g2,mj2"). Audio-only formats are here: music and podcasts
 * become audio-only assets (M4A/Ogg/Opus files are read by the mov and ogg demuxers above).
 */
export const DEMUXER_WHITELIST: readonly string[] = [
  // video containers
  'mov',
  'matroska',
  'avi',
  'flv',
  'mpegts',
  'mpeg',
  'mpegvideo',
  'asf',
  'ogg',
  'mxf',
  'dv',
  'gif',
  'nut',
  'ivf',
  'rm',
  'wtv',
  'yuv4mpegpipe',
  // raw elementary video streams
  'h264',
  'hevc',
  'm4v',
  'vc1',
  'obu',
  // audio-only
  'mp3',
  'aac',
  'wav',
  'w64',
  'flac',
  'aiff',
  'caf',
  'ac3',
  'eac3',
  'wv',
  'ape',
  'amr',
  'au',
];

/** ffmpeg's options are int-typed (INT_MAX at most); a larger limit means "no lower limit than ffmpeg's own". */
const INT_MAX = 2_147_483_647;

/** Input options + `-i file:<path>` for one uploaded file. `maxPixels` is width × height of one frame. */
export function inputArgs(file: string, maxPixels: number): string[] {
  if (!Number.isFinite(maxPixels) || maxPixels < 1) throw new RangeError(`maxPixels must be ≥ 1, got ${maxPixels}`);
  return [
    '-protocol_whitelist',
    'file',
    '-format_whitelist',
    DEMUXER_WHITELIST.join(','),
    '-max_pixels',
    String(Math.min(Math.floor(maxPixels), INT_MAX)),
    '-i',
    fileUrl(file),
  ];
}

/** `file:` URL for a path, so ffmpeg never interprets a protocol prefix or option-like name in it. */
export function fileUrl(path: string): string {
  if (path === '') throw new RangeError('empty input path');
  return path.startsWith('file:') ? path : `file:${path}`;
}
