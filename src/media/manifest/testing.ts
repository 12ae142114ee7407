// Hand-made values for the manifest writers' tests (not used by production code).
import type { Segment, TrackInfo, UrlScheme } from '../types.ts';

export const testUrls: UrlScheme = {
  mediaPlaylist: (r) => `${r.id}.m3u8`,
  hlsInit: (r) => `${r.id}/init.mp4`,
  hlsSegment: (r, n) => `${r.id}/${n}.m4s`,
  dashInitTemplate: '$RepresentationID$/init.mp4',
  dashMediaTemplate: '$RepresentationID$/$Number$.m4s',
};

export function testTrack(kind: 'video' | 'audio', timescale: number, extra: Partial<TrackInfo> = {}): TrackInfo {
  return {
    trackId: 1,
    kind,
    timescale,
    sampleEntry: kind === 'video' ? 'avc1' : 'mp4a',
    codec: kind === 'video' ? 'avc1.64001F' : 'mp4a.40.2',
    codecConfig: new Uint8Array(),
    defaultSampleDuration: 0,
    defaultSampleSize: 0,
    defaultSampleFlags: 0,
    initSize: 800,
    ...(kind === 'audio' ? { sampleRate: 48000, channels: 2 } : {}),
    ...extra,
  };
}

/** Contiguous segments from `start` with the given durations; `offset` shifts presentation from decode time. */
export function testSegments(durations: readonly number[], perSample: number, start = 0, offset = 0): Segment[] {
  let t = start;
  return durations.map((duration, i) => {
    const s = {
      start: t,
      duration,
      offset: 1000 + i * 100_000,
      size: 100_000,
      samples: Math.round(duration / perSample),
      startsWithKeyframe: true,
      presentationStart: t + offset,
    };
    t += duration;
    return s;
  });
}
