// Every playback URL smoothcast hands out is built here, so the path layout (and, later, signed query tokens that
// edge caches strip from the cache key) lives in one place.
//
//   /v/{asset}/master.m3u8                 HLS multivariant playlist     (short cache)
//   /v/{asset}/manifest.mpd                DASH MPD                      (short cache)
//   /v/{asset}/poster.jpg                  poster image
//   /v/{asset}/{rev}/{rendition}.m3u8      HLS media playlist            (short cache; ~1 s while encoding)
//   /v/{asset}/{rev}/{rendition}/init.mp4  initialization segment        (immutable)
//   /v/{asset}/{rev}/{rendition}/{n}.m4s   media segment n, 0-based      (immutable)
//   /v/{asset}/byterange.m3u8              HLS with EXT-X-BYTERANGE into the single files   (once ready)
//   /v/{asset}/ondemand.mpd                DASH SegmentBase (sidx) on the single files      (once ready)
//   /v/{asset}/{rev}/{rendition}-br.m3u8   its media playlists
//   /v/{asset}/{rev}/{rendition}.mp4       the single file: ftyp+moov, a sidx, the fragments (immutable)
//   /v/{asset}/{rev}/download-{rendition}.mp4   progressive MP4, audio muxed in, moov first   (immutable)
//   /v/{asset}/{rev}/thumbs.vtt, thumbs-001.jpg …   WebVTT thumbnail track + sprite sheets  (immutable)
//   /v/{asset}/{rev}.ism/Manifest          Smooth Streaming (MS-SSTR) client manifest        (once ready)
//   /v/{asset}/{rev}.ism/QualityLevels({bitrate})/Fragments({video|audio}={time})  a fragment + tfxd (immutable)
//   /v/{asset}/{rev}/{caption}.m3u8        HLS media playlist of a text track (caption ids: c + 12 base32)
//   /v/{asset}/{rev}/{caption}/{n}.vtt     its WebVTT segment n, with X-TIMESTAMP-MAP (immutable)
//   /v/{asset}/{rev}/{caption}.vtt         the whole WebVTT file, presentation timeline (DASH, export; immutable)
//   /v/{asset}/{rev}/{caption}-br.m3u8     byte-range variant's text playlist: one segment, the whole file
//
// A caption id is never reused and its cues never change, and {rev} fixes where they sit on the frames, so the
// text URLs are as immutable as the media ones: adding or removing a track only changes the manifests.
//
// {rev} names one encode of the asset: a re-encode gets a new rev, so an immutable URL never changes content.
import type { ManifestRendition, TextRendition, UrlScheme } from '../../media/types.ts';

export const ASSET_ID = /^[a-z0-9]{8,32}$/;
export const REV = /^r[0-9a-z-]{1,40}$/;
export const RENDITION_ID = /^[va][0-9]{1,2}$/;
export const CAPTION_ID = /^c[a-z2-7]{12}$/;

export interface PlaybackUrls {
  hls: string;
  dash: string;
  poster: string;
  hlsByteRange: string;
  dashSegmentBase: string;
}

/** Playback entry points of an asset; `base` is '' (relative to the server) or an absolute origin URL. */
export function playbackUrls(base: string, assetId: string): PlaybackUrls {
  const root = `${base}/v/${assetId}`;
  return {
    hls: `${root}/master.m3u8`,
    dash: `${root}/manifest.mpd`,
    poster: `${root}/poster.jpg`,
    hlsByteRange: `${root}/byterange.m3u8`,
    dashSegmentBase: `${root}/ondemand.mpd`,
  };
}

/** Manifest-internal URLs, relative to the manifest that holds them. */
export function manifestUrls(rev: string): UrlScheme {
  return {
    mediaPlaylist: (r: ManifestRendition) => `${rev}/${r.id}.m3u8`,
    hlsInit: (r: ManifestRendition) => `${r.id}/init.mp4`,
    hlsSegment: (r: ManifestRendition, n: number) => `${r.id}/${n}.m4s`,
    dashInitTemplate: `${rev}/$RepresentationID$/init.mp4`,
    dashMediaTemplate: `${rev}/$RepresentationID$/$Number$.m4s`,
    textPlaylist: (t: TextRendition) => `${rev}/${t.id}.m3u8`,
    textSegment: (t: TextRendition, n: number) => `${t.id}/${n}.vtt`,
    textFile: (t: TextRendition) => `${rev}/${t.id}.vtt`,
  };
}

/** Text playlists of the byte-range variant (and of an export): one segment, the whole file beside the playlist. */
export function singleTextUrls(rev: string): UrlScheme {
  return { ...manifestUrls(rev), textFile: (t: TextRendition) => `${t.id}.vtt` };
}

/** The single file of a rendition, relative to the asset's manifests (byte-range HLS and SegmentBase DASH). */
export function singleFileUrl(rev: string, r: ManifestRendition): string {
  return `${rev}/${r.id}.mp4`;
}

/** Byte-range HLS: media playlists of their own; segment URIs are the single file (relative to the playlist). */
export function byteRangeUrls(rev: string): UrlScheme {
  return {
    ...manifestUrls(rev),
    mediaPlaylist: (r: ManifestRendition) => `${rev}/${r.id}-br.m3u8`,
    textPlaylist: (t: TextRendition) => `${rev}/${t.id}-br.m3u8`,
  };
}

/** A progressive download (a plain MP4 for `<video src>`; an M4A for audio-only media). */
export function downloadUrl(base: string, assetId: string, rev: string, renditionId: string): string {
  return `${base}/v/${assetId}/${rev}/download-${renditionId}.${renditionId.startsWith('a') ? 'm4a' : 'mp4'}`;
}

/** The whole WebVTT file of a text track, as played with the given encode revision. */
export function captionUrl(base: string, assetId: string, rev: string, captionId: string): string {
  return `${base}/v/${assetId}/${rev}/${captionId}.vtt`;
}

/** The Smooth Streaming client manifest of an encode revision. */
export function smoothUrl(base: string, assetId: string, rev: string): string {
  return `${base}/v/${assetId}/${rev}.ism/Manifest`;
}

/** The WebVTT thumbnail track of an encode revision. */
export function thumbnailsUrl(base: string, assetId: string, rev: string): string {
  return `${base}/v/${assetId}/${rev}/thumbs.vtt`;
}

/**
 * The same scheme with a query on its URLs (signed playback, viewer sessions): `manifest` on playlists and text
 * tracks, `segment` on init and media segments ('' leaves them shared by every viewer).
 */
export function withQuery(urls: UrlScheme, manifest: string, segment: string): UrlScheme {
  if (!manifest && !segment) return urls;
  const m = (u: string) => (manifest ? `${u}${manifest}` : u);
  const s = (u: string) => (segment ? `${u}${segment}` : u);
  return {
    mediaPlaylist: (r) => m(urls.mediaPlaylist(r)),
    hlsInit: (r) => s(urls.hlsInit(r)),
    hlsSegment: (r, n) => s(urls.hlsSegment(r, n)),
    dashInitTemplate: s(urls.dashInitTemplate),
    dashMediaTemplate: s(urls.dashMediaTemplate),
    ...(urls.textPlaylist ? { textPlaylist: (t: TextRendition) => m(urls.textPlaylist!(t)) } : {}),
    ...(urls.textSegment ? { textSegment: (t: TextRendition, n: number) => m(urls.textSegment!(t, n)) } : {}),
    ...(urls.textFile ? { textFile: (t: TextRendition) => m(urls.textFile!(t)) } : {}),
  };
}

/**
 * Init and media segment names of an encrypted asset carry the encryption (`init.cenc.mp4`, `3.cenc.m4s`): one URL
 * always holds the same bytes, so a change of encryption never leaves a cache serving the other kind.
 */
export function withEncryption(urls: UrlScheme, enc: 'aes-128' | 'cbcs' | 'cenc'): UrlScheme {
  const tag = enc === 'aes-128' ? 'aes' : enc;
  const init = (u: string) => u.replace(/init\.mp4$/, `init.${tag}.mp4`);
  const seg = (u: string) => u.replace(/\.m4s$/, `.${tag}.m4s`);
  return {
    ...urls,
    hlsInit: (r) => init(urls.hlsInit(r)),
    hlsSegment: (r, n) => seg(urls.hlsSegment(r, n)),
    dashInitTemplate: init(urls.dashInitTemplate),
    dashMediaTemplate: seg(urls.dashMediaTemplate),
  };
}
