// Progressive downloads: which renditions get one (the top, and one sized for phones), and the ffmpeg remux that
// makes it from our CMAF files once the encode is done — one plain MP4 with the audio muxed in and the moov first,
// for a `<video src>` that needs no adaptive player. No second encode: the streams are copied.

export interface RungInfo {
  id: string;
  type: 'video' | 'audio';
  height: number | null;
  /** Audio: the track a player picks by default (muxed into the video downloads; the download of audio-only media). */
  default?: boolean;
}

/** The short side phones get: the largest rung at most this tall (when it is not the top one). */
export const MOBILE_MAX_HEIGHT = 480;

/** The audio rendition a download carries: the default one, else the first. */
export function defaultAudio<R extends RungInfo>(renditions: readonly R[]): R | undefined {
  const audio = renditions.filter((r) => r.type === 'audio');
  return audio.find((r) => r.default) ?? audio[0];
}

/**
 * Ids of the renditions that get a progressive download: the top video one and a phone-sized one; for audio-only
 * media the default audio rendition (an M4A).
 */
export function progressiveRungs(renditions: readonly RungInfo[]): string[] {
  const video = renditions.filter((r) => r.type === 'video' && r.height);
  if (video.length === 0) {
    const a = defaultAudio(renditions);
    return a ? [a.id] : [];
  }
  const byHeight = [...video].sort((a, b) => (b.height ?? 0) - (a.height ?? 0));
  const top = byHeight[0]!;
  const mobile = byHeight.find((r) => r !== top && (r.height ?? 0) <= MOBILE_MAX_HEIGHT);
  return mobile ? [top.id, mobile.id] : [top.id];
}

/** The file name of a rendition's download: an MP4 for video, an M4A for audio-only media. */
export function downloadName(renditionId: string): string {
  return renditionId.startsWith('a') ? `download-${renditionId}.m4a` : `download-${renditionId}.mp4`;
}

/**
 * ffmpeg arguments: video (and audio) streams copied into one MP4 with the moov at the front (+faststart); with no
 * video, the audio alone as an M4A (the ipod muxer: brand M4A, what music players expect).
 */
export function buildRemuxArgs(video: string | null, audio: string | null, output: string): string[] {
  if (!video && !audio) throw new RangeError('nothing to remux');
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y'];
  if (video) args.push('-i', `file:${video}`);
  if (audio) args.push('-i', `file:${audio}`);
  if (video) args.push('-map', '0:v:0');
  if (audio) args.push('-map', `${video ? 1 : 0}:a:0`);
  args.push('-c', 'copy', '-map_metadata', '-1', '-movflags', '+faststart', '-f', video ? 'mp4' : 'ipod');
  args.push(`file:${output}`);
  return args;
}
