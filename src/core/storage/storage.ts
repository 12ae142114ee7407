// Storage of sources and encoded media. One interface; each consumer uses the part it needs. Local disk now,
// S3 later: every backend runs the shared conformance suite in conformance.ts.
import { SmoothcastError } from '../errors.ts';

export interface StatResult {
  size: number;
  mtimeMs: number;
}

/** What the origin needs: positioned reads of known bytes. */
export interface MediaReader {
  /**
   * Exactly `length` bytes at `offset` (fewer only when the object is shorter), in one positioned read — into the
   * start of `into` when given (then the result is a view of it), else into a new buffer.
   */
  read(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  stat(key: string): Promise<StatResult | null>;
}

/** What the worker and the API need besides reading. */
export interface Storage extends MediaReader {
  /** A local filesystem path for the key, for ffmpeg to read or write (local backend; S3 stages through disk). */
  localPath(key: string): string;
  /** Makes the parent folder of `key` exist. */
  prepare(key: string): Promise<void>;
  /**
   * Brings a local file in under `key`: a copy, or with `link` a hard link when source and storage share a
   * filesystem (no bytes copied: importing a 10 GB file takes as long as a 10 MB one), else a copy. An
   * existing object under `key` is never replaced (the call fails).
   */
  importFile(src: string, key: string, opts?: { link?: boolean }): Promise<void>;
  /** Removes one object; a missing one is not an error. */
  remove(key: string): Promise<void>;
  /** Removes every object under `prefix` (a folder-like key ending without a slash). */
  deletePrefix(prefix: string): Promise<void>;
}

const KEY = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/i;

/** Keys are relative, slash-separated, and never climb out: checked before any key touches a path. */
export function assertKey(key: string): string {
  if (key.length > 512 || !KEY.test(key) || key.split('/').some((p) => p === '.' || p === '..')) {
    throw new SmoothcastError('INVALID_ID', `invalid storage key ${JSON.stringify(key)}`);
  }
  return key;
}

/** Where an asset's files live. Rendition files sit under a revision folder so a re-encode never rewrites bytes
 * that caches may hold under an immutable URL. */
export const keys = {
  assetPrefix: (assetId: string) => assertKey(`assets/${assetId}`),
  source: (assetId: string, ext: string) => assertKey(`assets/${assetId}/source${ext}`),
  poster: (assetId: string) => assertKey(`assets/${assetId}/poster.jpg`),
  revPrefix: (assetId: string, rev: string) => assertKey(`assets/${assetId}/${rev}`),
  rendition: (assetId: string, rev: string, renditionId: string) =>
    assertKey(`assets/${assetId}/${rev}/${renditionId}.mp4`),
  /** The progressive (plain MP4, audio muxed in, moov first) download of a video rendition. */
  download: (assetId: string, rev: string, renditionId: string) =>
    assertKey(`assets/${assetId}/${rev}/download-${renditionId}.${renditionId.startsWith('a') ? 'm4a' : 'mp4'}`),
  /** A text track's WebVTT file, cues in the source's timeline (CAPTION_ID names it). */
  caption: (assetId: string, captionId: string) => {
    if (!/^c[a-z2-7]{12}$/.test(captionId)) throw new RangeError(`not a caption id: ${captionId}`);
    return assertKey(`assets/${assetId}/captions/${captionId}.vtt`);
  },
  /** Thumbnail track (`thumbs.vtt`) and sprite sheets (`thumbs-001.jpg`, …) of an encode revision. */
  thumbnails: (assetId: string, rev: string, name: string) => {
    if (!/^thumbs(\.vtt|-\d{3}\.jpg)$/.test(name)) throw new RangeError(`not a thumbnail file name: ${name}`);
    return assertKey(`assets/${assetId}/${rev}/${name}`);
  },
};
