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
    /** Licence servers when encrypted with cenc/cbcs (aes-128: the key URI is in the HLS playlist). */
    drm: DrmJson | null;
  };
  /** The live stream whose event this is (null for uploads). */
  liveStreamId: string | null;
  /** `signed`: its manifests, keys, posters, thumbnails and downloads need a playback token. */
  playbackPolicy: Asset['playbackPolicy'];
  /** Applied on the fly when served (the stored files stay clear). */
  encryption: Asset['encryption'];
  /** Concurrent playback sessions allowed (null: no limit). */
  maxViewers: number | null;
  /** Playback sessions open now. */
  viewers: number;
  createdAt: string;
  updatedAt: string;
}

/** Licence servers of an encrypted asset (cenc/cbcs): ours for ClearKey, DRM-ready entries for others. */
export interface DrmJson {
  clearkey: { licenseUrl: string };
  widevine?: { licenseUrl: string };
  playready?: { licenseUrl: string };
}

/** What presentAsset adds beyond the asset row: live figures and, for signed playback, the token. */
export interface PresentExtras {
  viewers?: number;
  /** A playback token put into every playback URL (`?token=`). */
  token?: string;
  /** DRM-ready licence servers from config. */
  drmServers?: { widevine?: string; playready?: string };
}

/** `url` with the playback token in its query (`token` unset: the URL as is). */
export function withToken(url: string, token: string | undefined): string {
  if (!token) return url;
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}

function drmOf(a: Asset, base: string, x: PresentExtras): DrmJson | null {
  if ((a.encryption !== 'cenc' && a.encryption !== 'cbcs') || !a.rev || !a.playable) return null;
  return {
    clearkey: { licenseUrl: withToken(`${base}/v/${a.id}/${a.rev}/clearkey`, x.token) },
    ...(x.drmServers?.widevine ? { widevine: { licenseUrl: x.drmServers.widevine } } : {}),
    ...(x.drmServers?.playready && a.encryption === 'cenc'
      ? { playready: { licenseUrl: x.drmServers.playready } }
      : {}),
  };
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
export function presentAsset(
  a: Asset,
  base: string,
  captions: readonly Caption[] = [],
  x: PresentExtras = {},
): AssetJson {
  const t = (u: string) => withToken(u, x.token);
  // An encrypted asset leaves the origin only through its HLS and DASH manifests (no clear single files).
  const clear = a.encryption === 'none';
  const plain = playbackUrls(base, a.id);
  const urls = {
    hls: t(plain.hls),
    dash: t(plain.dash),
    poster: t(plain.poster),
    hlsByteRange: t(plain.hlsByteRange),
    dashSegmentBase: t(plain.dashSegmentBase),
  };
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
    captions: captions.map((c) => {
      const j = presentCaption(c, a, base);
      return j.url ? { ...j, url: t(j.url) } : j;
    }),
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
      hlsByteRange: a.status === 'ready' && clear ? urls.hlsByteRange : null,
      dashSegmentBase: a.status === 'ready' && clear ? urls.dashSegmentBase : null,
      smooth:
        (a.status === 'ready' || (a.status === 'live' && a.playable)) && a.rev && clear
          ? t(smoothUrl(base, a.id, a.rev))
          : null,
      thumbnails: a.status === 'ready' && a.rev ? t(thumbnailsUrl(base, a.id, a.rev)) : null,
      // A live archive's files are the live ones (no progressive copies are made of an event).
      downloads:
        a.status === 'ready' && a.rev && !a.liveStreamId && clear
          ? downloads(a, base, a.rev).map((d) => ({ ...d, url: t(d.url) }))
          : [],
      drm: drmOf(a, base, x),
    },
    liveStreamId: a.liveStreamId,
    playbackPolicy: a.playbackPolicy,
    encryption: a.encryption,
    maxViewers: a.maxViewers,
    viewers: x.viewers ?? 0,
    createdAt: new Date(a.createdAt).toISOString(),
    updatedAt: new Date(a.updatedAt).toISOString(),
  };
}
