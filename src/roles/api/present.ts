// The JSON shape of an asset, as the API, the SSE stream and `smoothcast import --json` print it.
import type { Asset } from '../../core/db/assets.ts';
import type { Caption } from '../../core/db/captions.ts';
import { progressiveRungs } from '../../media/progressive.ts';
import { captionUrl, downloadUrl, playbackUrls, smoothUrl, thumbnailsUrl } from '../origin/urls.ts';

export interface CaptionJson {
  id: string;
  /** BCP 47. */
  language: string;
  label: string;
  kind: 'subtitles' | 'captions';
  /** 'embedded': from a subtitle track of the source; 'sidecar': added as a file. */
  source: 'embedded' | 'sidecar';
  default: boolean;
  forced: boolean;
  cues: number;
  /** The whole WebVTT file on the presentation timeline; null until the asset is ready. */
  url: string | null;
  createdAt: string;
}

export function presentCaption(c: Caption, a: Pick<Asset, 'id' | 'status' | 'rev'>, base: string): CaptionJson {
  return {
    id: c.id,
    language: c.language,
    label: c.label,
    kind: c.kind,
    source: c.origin,
    default: c.default,
    forced: c.forced,
    cues: c.cues,
    url: a.status === 'ready' && a.rev ? captionUrl(base, a.id, a.rev, c.id) : null,
    createdAt: new Date(c.createdAt).toISOString(),
  };
}

export interface AssetJson {
  id: string;
  title: string;
  status: Asset['status'];
  playable: boolean;
  progress: Asset['progress'];
  error: Asset['error'];
  duration: number | null;
  source: Asset['source'];
  /** 'audio' for audio-only media (music, podcasts); null until probed. */
  mediaType: Asset['mediaType'];
  /** What the encode left out or found (e.g. an image subtitle track skipped). */
  notes: string[];
  renditions: {
    id: string;
    type: 'video' | 'audio';
    width: number | null;
    height: number | null;
    bitrate: number;
    codecs: string | null;
    frameRate: number | null;
    /** Audio: BCP 47 language, label, DASH roles, the default track. */
    language: string | null;
    label: string | null;
    roles: string[];
    default: boolean;
  }[];
  /** Text tracks (subtitles and captions), in the manifests once the asset is ready. */
  captions: CaptionJson[];
  playback: {
    hls: string | null;
    dash: string | null;
    poster: string | null;
    hlsByteRange: string | null;
    dashSegmentBase: string | null;
    /** WebVTT track of sprite-sheet thumbnails for scrubbing; null until ready. */
    thumbnails: string | null;
    /** Microsoft Smooth Streaming client manifest; null until ready. */
    smooth: string | null;
    /** Progressive MP4s (audio muxed in, moov first) for a plain `<video src>`; empty until ready. */
    downloads: { url: string; width: number | null; height: number | null; bitrate: number }[];
  };
  /** The live stream whose event this is (null for uploads). */
  liveStreamId: string | null;
  createdAt: string;
  updatedAt: string;
}

function downloads(a: Asset, base: string, rev: string): AssetJson['playback']['downloads'] {
  const audio =
    a.renditions.find((r) => r.type === 'audio' && r.default) ?? a.renditions.find((r) => r.type === 'audio');
  const rate = (r: Asset['renditions'][number] | undefined) => (r ? (r.averageBitrate ?? r.bitrate) : 0);
  return progressiveRungs(a.renditions).map((rid) => {
    const r = a.renditions.find((x) => x.id === rid)!;
    const bitrate = r.type === 'audio' ? rate(r) : rate(r) + rate(audio);
    return { url: downloadUrl(base, a.id, rev, rid), width: r.width, height: r.height, bitrate };
  });
}

/** `base`: '' for server-relative URLs, or the configured public URL. */
export function presentAsset(a: Asset, base: string, captions: readonly Caption[] = []): AssetJson {
  const urls = playbackUrls(base, a.id);
  return {
    id: a.id,
    title: a.title,
    status: a.status,
    playable: a.playable,
    progress: a.status === 'ready' ? { percent: 100, speed: null, etaSeconds: 0 } : a.progress,
    error: a.error,
    duration: a.duration,
    source: a.source,
    mediaType: a.mediaType,
    notes: a.notes,
    captions: captions.map((c) => presentCaption(c, a, base)),
    renditions: a.renditions.map((r) => ({
      id: r.id,
      type: r.type,
      width: r.width,
      height: r.height,
      bitrate: r.averageBitrate ?? r.bitrate,
      codecs: r.codecs,
      frameRate: r.frameRate,
      language: r.language,
      label: r.label,
      roles: r.roles,
      default: r.default,
    })),
    playback: {
      hls: a.playable ? urls.hls : null,
      dash: a.status === 'ready' || (a.status === 'live' && a.playable) ? urls.dash : null,
      poster: a.playable ? urls.poster : null,
      hlsByteRange: a.status === 'ready' ? urls.hlsByteRange : null,
      dashSegmentBase: a.status === 'ready' ? urls.dashSegmentBase : null,
      smooth:
        (a.status === 'ready' || (a.status === 'live' && a.playable)) && a.rev ? smoothUrl(base, a.id, a.rev) : null,
      thumbnails: a.status === 'ready' && a.rev ? thumbnailsUrl(base, a.id, a.rev) : null,
      // A live archive's files are the live ones (no progressive copies are made of an event).
      downloads: a.status === 'ready' && a.rev && !a.liveStreamId ? downloads(a, base, a.rev) : [],
    },
    liveStreamId: a.liveStreamId,
    createdAt: new Date(a.createdAt).toISOString(),
    updatedAt: new Date(a.updatedAt).toISOString(),
  };
}
