// The tus data store: @tus/file-store's FileStore (one data file + one JSON info file per upload, the offset is
// the data file's size, so whatever reached the disk survives a crash) with what smoothcast adds:
// - the checksum extension (tus 1.0 §checksum): a PATCH carrying `Upload-Checksum: <algo> <base64>` is hashed as
//   it is written; on a mismatch the bytes of that PATCH are cut off again and the client gets 460;
// - expiry measured from the last progress (the data file's mtime), not from creation, both for the
//   Upload-Expires header @tus/server derives from `creation_date` and for the sweep.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readdir, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStore } from '@tus/file-store';
import { ERRORS as TUS_ERRORS, type Upload } from '@tus/utils';

/** Upload ids are ours (the server's naming function): 32 hex digits, checked before any of them reaches a path. */
export const UPLOAD_ID = /^[0-9a-f]{32}$/;

/** Algorithms offered in Tus-Checksum-Algorithm (sha1 is the one the protocol requires). */
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'md5'] as const;

/** Per-request facts the store needs but @tus/server does not pass to write(): carried by async context. */
export interface UploadRequestContext {
  checksum?: { algorithm: string; digest: string };
  /** Who creates the upload (its asset's owner) and the new asset's playback policy. */
  owner?: string | null;
  policy?: 'public' | 'signed';
  /** The direct upload (one-time URL) this request belongs to: its upload is recorded on it. */
  directUploadId?: string;
  /** The origin a direct upload's page runs on: the only one CORS lets in. */
  corsOrigin?: string | null;
}

export const requestContext = new AsyncLocalStorage<UploadRequestContext>();

/** A tus error @tus/server answers with as is. */
export function tusError(status_code: number, body: string): { status_code: number; body: string } {
  return { status_code, body: body.endsWith('\n') ? body : `${body}\n` };
}

/** Parses an Upload-Checksum header; throws the tus error for a bad or unsupported one. */
export function parseChecksumHeader(header: string): { algorithm: string; digest: string } {
  const m = /^([a-z0-9-]{1,16}) ([A-Za-z0-9+/]{1,128}={0,2})$/.exec(header.trim());
  if (!m) throw tusError(400, 'Upload-Checksum must be "<algorithm> <base64 digest>"');
  const [, algorithm = '', digest = ''] = m;
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm)) {
    throw tusError(400, `unsupported checksum algorithm ${algorithm}; use one of ${CHECKSUM_ALGORITHMS.join(', ')}`);
  }
  return { algorithm, digest };
}

export class SmoothcastFileStore extends FileStore {
  constructor(opts: { directory: string; expirationPeriodInMilliseconds: number }) {
    super(opts);
    this.extensions = [...this.extensions, 'checksum'];
  }

  /** The data file of an upload (ids are validated by the caller: 32 hex digits, never a path). */
  pathOf(id: string): string {
    if (!UPLOAD_ID.test(id)) throw tusError(404, 'no such upload');
    return join(this.directory, id);
  }

  /**
   * Appends the body at `offset`. Unlike FileStore's (a counting Transform into a 16 KiB-buffered write stream),
   * chunks gather in a large buffer and go to disk in few big writev calls — the upload path's main cost.
   */
  private async append(readable: Readable, id: string, offset: number, hash?: Hash): Promise<number> {
    const out = createWriteStream(this.pathOf(id), { flags: 'r+', start: offset, highWaterMark: 8 << 20 });
    try {
      if (hash) {
        const hashing = new Transform({
          highWaterMark: 8 << 20,
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            cb(null, chunk);
          },
        });
        await pipeline(readable, hashing, out);
      } else {
        await pipeline(readable, out);
      }
    } catch {
      throw TUS_ERRORS.FILE_WRITE_ERROR;
    }
    return offset + out.bytesWritten;
  }

  override async write(readable: Readable, id: string, offset: number): Promise<number> {
    const checksum = requestContext.getStore()?.checksum;
    if (!checksum) return this.append(readable, id, offset);
    const hash: Hash = createHash(checksum.algorithm);
    let end: number;
    try {
      end = await this.append(readable, id, offset, hash);
    } catch (err) {
      // A PATCH that did not arrive whole cannot be verified: none of it counts.
      await truncate(this.pathOf(id), offset).catch(() => {});
      throw err;
    }
    const digest = hash.digest('base64');
    if (digest !== checksum.digest) {
      await truncate(this.pathOf(id), offset);
      throw tusError(460, 'Checksum Mismatch');
    }
    return end;
  }

  /** As FileStore's, with `creation_date` moved to the last progress so expiry counts from there. */
  override async getUpload(id: string): Promise<Upload> {
    const upload = await super.getUpload(id);
    const st = await stat(this.pathOf(id));
    const created = upload.creation_date ? Date.parse(upload.creation_date) : 0;
    upload.creation_date = new Date(Math.max(created, st.mtimeMs)).toISOString();
    return upload;
  }

  /**
   * Every upload on disk, read once: its data file's size and last progress, and its declared size (undefined for
   * a data file whose info file was never written — a crash during creation — or with a deferred length).
   */
  async entries(): Promise<
    { id: string; size: number; declared: number | undefined; hasInfo: boolean; mtimeMs: number }[]
  > {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return [];
    }
    const infos = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    const out = [];
    for (const id of names) {
      if (!UPLOAD_ID.test(id)) continue;
      const st = await stat(join(this.directory, id)).catch(() => null);
      if (!st?.isFile()) continue;
      const info = infos.has(id) ? ((await this.configstore.get(id)) as { size?: number } | undefined) : undefined;
      out.push({ id, size: st.size, declared: info?.size, hasInfo: infos.has(id), mtimeMs: st.mtimeMs });
    }
    return out;
  }

  /** Whether an entry is an unfinished upload without progress for the expiration period, or a creation leftover. */
  isExpired(e: { size: number; declared: number | undefined; mtimeMs: number }, now = Date.now()): boolean {
    const period = this.getExpiration();
    if (period <= 0 || now - e.mtimeMs <= period) return false;
    return e.declared === undefined || e.size < e.declared;
  }

  /** Deletes the expired uploads (see isExpired); finished ones are the finisher's business. Returns how many. */
  override async deleteExpired(): Promise<number> {
    let removed = 0;
    for (const e of await this.entries()) {
      if (!this.isExpired(e)) continue;
      await this.remove(e.id).catch(() => {});
      removed++;
    }
    return removed;
  }
}
