// Storage of sources and encoded media. One interface; each consumer uses the part it needs. Local disk (local.ts)
// or an S3-compatible object store (s3.ts): every backend runs the shared conformance suite in conformance.ts.
import { SmoothcastError } from '../errors.ts';

export interface StatResult {
  size: number;
  mtimeMs: number;
}

/** What the origin needs: positioned reads of known bytes. */
export interface MediaReader {
  /**
   * Exactly `length` bytes at `offset` (fewer only when the object is shorter), in one positioned read — into the
   * start of `into` when given (then the result is a view of it), else into a new buffer. A missing object rejects
   * with an error whose `code` is 'ENOENT' (as the filesystem's), an `into` shorter than `length` with RangeError.
   */
  read(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  stat(key: string): Promise<StatResult | null>;
}

/** A local file that becomes the object under a key once committed (see Storage.stage). */
export interface Staged {
  /** Where to write the object's bytes (its name ends like the key's, so ffmpeg picks the format from it). */
  readonly path: string;
  /** Makes the file the object under the key, replacing any; the path is not to be used afterwards. */
  commit(): Promise<void>;
  /** Drops the bytes written. S3: the key keeps what it had; local: the file at the key (written in place) goes. */
  discard(): Promise<void>;
}

/** A local file holding an object's bytes (see Storage.fetch). */
export interface Fetched {
  readonly path: string;
  /** Done reading: a scratch copy is removed (local backend: nothing to do). */
  release(): Promise<void>;
}

/** What the worker and the API need besides reading. */
export interface Storage extends MediaReader {
  readonly backend: 'local' | 's3';
  /**
   * A local filesystem path for the key, for ffmpeg to read or write. Local backend only: S3 throws
   * STORAGE_NOT_LOCAL (use stage() to write and fetch() to read).
   */
  localPath(key: string): string;
  /**
   * A local path a process on this machine writes the object's bytes to; commit() makes them the object under
   * `key`. Local backend: the final file itself (written in place, visible while being written); S3: a scratch
   * file, the object does not exist (or keeps its old bytes) until commit() has uploaded it.
   */
  stage(key: string): Promise<Staged>;
  /** A local file with the object's bytes, for ffmpeg to read; a missing object rejects with code 'ENOENT'. */
  fetch(key: string): Promise<Fetched>;
  /** Writes a small object whole (captions, posters, thumbnails), replacing any; readers never see part of it. */
  putBytes(key: string, data: Uint8Array): Promise<void>;
  /** A small object's bytes, or null when it does not exist. */
  getBytes(key: string): Promise<Buffer | null>;
  /** The objects under a folder-like `prefix` (at any depth), sorted by key. */
  list(prefix: string): Promise<{ key: string; size: number }[]>;
  /** Makes the parent folder of `key` exist. */
  prepare(key: string): Promise<void>;
  /**
   * Brings a local file in under `key`: a copy, or with `link` a hard link when source and storage share a
   * filesystem (no bytes copied: importing a 10 GB file takes as long as a 10 MB one), else a copy (S3: always
   * an upload). An existing object under `key` is never replaced (the call fails with STORAGE_OBJECT_EXISTS).
   */
  importFile(src: string, key: string, opts?: { link?: boolean }): Promise<void>;
  /**
   * Copies an object to a new key inside the same storage (an upload that became an asset's source): local, a
   * hard link (else a copy); S3, a server-side copy (no bytes through this process; objects over 5 GiB, which
   * CopyObject refuses, go through scratch). Never replaces an existing object.
   */
  copyObject(srcKey: string, dstKey: string): Promise<void>;
  /** Removes one object; a missing one is not an error. */
  remove(key: string): Promise<void>;
  /** Removes every object under `prefix` (a folder-like key ending without a slash). */
  deletePrefix(prefix: string): Promise<void>;
}

const KEY = /^[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/i;

/** Whether `key` is a valid storage key (for listings that skip names storage never writes). */
export function isValidKey(key: string): boolean {
  try {
    assertKey(key);
    return true;
  } catch {
    return false;
  }
}

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
