// Progressive downloads: which renditions get one (the top, and one sized for phones), and the ffmpeg remux that
// makes it from our CMAF files once the encode is done — one plain MP4 with the audio muxed in and the moov first,
// for a `<video src>` that needs no adaptive player. No second encode: the streams are copied.

export interface RungInfo {
  id: string;
  type: 'video' | 'audio';
  height: number | null;
}

/** The short side phones get: the largest rung at most this tall (when it is not the top one). */
export const MOBILE_MAX_HEIGHT = 480;

/** Ids of the video renditions that get a progressive download: the top one and a phone-sized one. */
export function progressiveRungs(renditions: readonly RungInfo[]): string[] {
  const video = renditions.filter((r) => r.type === 'video' && r.height);
  if (video.length === 0) return [];
  const byHeight = [...video].sort((a, b) => (b.height ?? 0) - (a.height ?? 0));
  const top = byHeight[0]!;
  const mobile = byHeight.find((r) => r !== top && (r.height ?? 0) <= MOBILE_MAX_HEIGHT);
  return mobile ? [top.id, mobile.id] : [top.id];
}

/** ffmpeg arguments: video (and audio) streams copied into one MP4 with the moov at the front (+faststart). */
export function buildRemuxArgs(video: string, audio: string | null, output: string): string[] {
  const args = ['-hide_banner', '-nostdin', '-loglevel', 'error', '-y', '-i', `file:${video}`];
  if (audio) args.push('-i', `file:${audio}`);
  args.push('-map', '0:v:0');
  if (audio) args.push('-map', '1:a:0');
  args.push('-c', 'copy', '-map_metadata', '-1', '-movflags', '+faststart', '-f', 'mp4', `file:${output}`);
  return args;
}
