// S3-compatible object storage (AWS S3, or a self-hosted server: tested against OpenStack Swift's s3api). Keys map
// to objects `prefix + key` in one bucket; ffmpeg works on local files, so writes are staged on disk and uploaded on
// commit, and whole-object reads are fetched to scratch files. Positioned reads are ranged GETs behind a byte cache.
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  type BucketLocationConstraint,
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  type GetObjectCommandOutput,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SmoothcastError } from '../errors.ts';
import { type Got, RangeCache } from './s3-cache.ts';
import type { Fetched, Staged, StatResult, Storage } from './storage.ts';
import { assertKey, isValidKey } from './storage.ts';

export interface S3StorageOptions {
  /** e.g. http://127.0.0.1:8080; empty or absent: AWS S3 of `region`. */
  endpoint?: string;
  region?: string;
  bucket: string;
  /** Put before every key (a folder-like prefix; a trailing slash is added). */
  prefix?: string;
  /** Absent: the AWS SDK's default credential chain. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** ENDPOINT/BUCKET/KEY addressing (self-hosted servers); default true. */
  forcePathStyle?: boolean;
  /** Local folder for staged and fetched files. */
  scratchDir: string;
  /** Bytes of the read cache (s3-cache.ts); 0: none. Default 64 MiB. */
  cacheBytes?: number;
  /** Default 3 s. */
  connectTimeoutMs?: number;
  /** Until the response head (uploads: none); default 15 s. A connection silent this long is given up too. */
  requestTimeoutMs?: number;
  /** Tries per request for transient failures (the SDK's standard retry strategy); default 3. */
  maxAttempts?: number;
  /** Keys per listing page (MaxKeys); default the server's (1000 on S3 and Swift). Tests page with small ones. */
  listPageSize?: number;
}

// Every part but the last must have at least 5 MiB (S3's multipart limits, which Swift's s3api enforces too), and
// there are at most 10,000 parts: 8 MiB parts carry up to 78 GiB, larger files get larger parts.
const PART_BYTES = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;
const DELETE_CONCURRENCY = 16;

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | null)?.$metadata?.httpStatusCode;
}

/** The object is missing (a missing bucket is a fault, though a HEAD cannot tell the two apart: it has no body). */
function isNotFound(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name;
  if (name === 'NoSuchBucket') return false;
  return statusOf(err) === 404 || name === 'NoSuchKey' || name === 'NotFound';
}

/** A short, client-safe reason: the S3 error name and status, or the network error code. */
function reason(err: unknown): string {
  const e = err as { name?: string; code?: string; message?: string } | null;
  const status = statusOf(err);
  if (status) return `${e?.name ?? 'error'} (HTTP ${status})`;
  if (e?.name === 'TimeoutError') return 'timed out';
  if (e?.code) return e.code;
  return e?.name ?? 'error';
}

function missing(key: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no object under ${key}`), { code: 'ENOENT' });
}

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class S3Storage implements Storage {
  readonly backend = 's3' as const;
  readonly bucket: string;
  readonly prefix: string;
  readonly scratchDir: string;
  readonly #client: S3Client;
  readonly #uploader: S3Client;
  readonly #agents: { destroy(): void }[];
  readonly #cache: RangeCache | null;
  readonly #where: string;
  readonly #pageSize: number | undefined;
  readonly #region: string;

  constructor(opts: S3StorageOptions) {
    if (!opts.bucket) throw new SmoothcastError('CONFIG_INVALID', 'S3 storage needs a bucket');
    const prefix = (opts.prefix ?? '').replace(/\/+$/, '');
    if (prefix && !isValidKey(prefix))
      throw new SmoothcastError('CONFIG_INVALID', `invalid S3 key prefix ${opts.prefix}`);
    this.bucket = opts.bucket;
    this.prefix = prefix ? `${prefix}/` : '';
    this.scratchDir = opts.scratchDir;
    this.#where = `${opts.endpoint || 'AWS S3'} bucket ${opts.bucket}`;
    this.#pageSize = opts.listPageSize;
    this.#region = opts.region || 'us-east-1';
    const cacheBytes = opts.cacheBytes ?? 64 * 1024 * 1024;
    this.#cache = cacheBytes > 0 ? new RangeCache(cacheBytes) : null;
    const requestTimeout = opts.requestTimeoutMs ?? 15_000;
    // Reused connections: a segment read is one small GET, and a TCP (+TLS) handshake per GET would double it.
    const agents = {
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
    };
    this.#agents = [agents.httpAgent, agents.httpsAgent];
    const client = (total: number) =>
      new S3Client({
        ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
        region: this.#region,
        forcePathStyle: opts.forcePathStyle ?? true,
        ...(opts.accessKeyId
          ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey ?? '' } }
          : {}),
        // Checksums only where S3 requires them: the SDK's default sends bodies as aws-chunked with a trailing
        // CRC32, which Swift's s3api (and other S3 servers) answers with 501 Not Implemented.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        maxAttempts: opts.maxAttempts ?? 3,
        requestHandler: new NodeHttpHandler({
          ...agents,
          connectionTimeout: opts.connectTimeoutMs ?? 3000,
          // Until the response head. Also a connection silent for this long (a stalled body) is given up.
          requestTimeout: total,
          throwOnRequestTimeout: total > 0,
          socketTimeout: requestTimeout,
        }),
      });
    this.#client = client(requestTimeout);
    // Uploads send up to a part (8 MiB or more) before the response head, however slow the link: they are bounded
    // by the silence timeout only.
    this.#uploader = client(0);
  }

  /** Closes the connections (tests; a server keeps its storage for its lifetime). */
  close(): void {
    this.#client.destroy();
    this.#uploader.destroy();
    for (const a of this.#agents) a.destroy();
  }

  /** Creates the bucket when it does not exist (at start-up). */
  async ensureBucket(): Promise<void> {
    const head = () => this.#client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    try {
      await head();
      return;
    } catch (err) {
      if (!isNotFound(err)) throw this.#fail('check bucket', this.bucket, err);
    }
    try {
      await this.#client.send(
        new CreateBucketCommand({
          Bucket: this.bucket,
          // Outside us-east-1 the region goes in the body (CreateBucket, S3 API reference).
          ...(this.#region === 'us-east-1'
            ? {}
            : { CreateBucketConfiguration: { LocationConstraint: this.#region as BucketLocationConstraint } }),
        }),
      );
    } catch (err) {
      // Fine if another process created it meanwhile: then it can be used. (BucketAlreadyExists alone would also
      // be said of someone else's bucket.)
      if (
        !(await head().then(
          () => true,
          () => false,
        ))
      )
        throw this.#fail('create bucket', this.bucket, err);
    }
  }

  localPath(key: string): string {
    throw new SmoothcastError(
      'STORAGE_NOT_LOCAL',
      `S3 storage has no local path for ${assertKey(key)}: write it through stage() and read it through fetch()`,
    );
  }

  async prepare(key: string): Promise<void> {
    assertKey(key); // no folders in S3
  }

  async read(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (into && into.length < length) throw new RangeError(`read of ${length} bytes into a ${into.length}-byte buffer`);
    assertKey(key);
    if (length <= 0) {
      if (!(await this.stat(key))) throw missing(key);
      return into ? into.subarray(0, 0) : Buffer.alloc(0);
    }
    if (!this.#cache || length > this.#cache.maxEntryBytes) {
      return (await this.#getRange(key, offset, length, into)).bytes;
    }
    const bytes = await this.#cache.read(key, offset, length, (o, n) => this.#getRange(key, o, n));
    // A copy, also without `into`: callers may change the bytes (in-place encryption), the cache's must not.
    const out = into ? into.subarray(0, bytes.length) : Buffer.allocUnsafe(bytes.length);
    bytes.copy(out);
    return out;
  }

  /** One ranged GET (RFC 9110 §14.1.2): bytes=first-last, fewer bytes at the object's end, none past it (416). */
  async #getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Got> {
    let res: GetObjectCommandOutput;
    try {
      res = await this.#client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.#k(key),
          Range: `bytes=${offset}-${offset + length - 1}`,
        }),
      );
    } catch (err) {
      if (statusOf(err) === 416) return { bytes: (into ?? Buffer.alloc(0)).subarray(0, 0), etag: undefined };
      if (isNotFound(err)) throw missing(key);
      throw this.#fail('read', key, err);
    }
    if (res.$metadata.httpStatusCode !== 206 && offset > 0) {
      (res.Body as Readable | undefined)?.destroy();
      throw this.#fail('read', key, new Error('the server ignored the Range header'));
    }
    const buf = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let got = 0;
    try {
      for await (const chunk of res.Body as AsyncIterable<Buffer>) {
        const n = Math.min(chunk.length, length - got);
        chunk.copy(buf, got, 0, n);
        got += n;
        // No early break: leaving the loop before the body ends destroys the response and its socket, and the
        // keep-alive pool would open a new connection (a TLS handshake on real S3) for every read. A ranged GET's
        // body is exactly the range, so reading it to the end costs nothing more.
      }
    } catch (err) {
      throw this.#fail('read', key, err);
    }
    if (res.ContentLength !== undefined && got < Math.min(length, res.ContentLength)) {
      throw this.#fail('read', key, new Error(`the body ended after ${got} of ${res.ContentLength} bytes`));
    }
    return { bytes: got === length ? buf : buf.subarray(0, got), etag: res.ETag };
  }

  async stat(key: string): Promise<StatResult | null> {
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.#k(key) }));
      this.#cache?.noteEtag(key, res.ETag);
      return { size: res.ContentLength ?? 0, mtimeMs: res.LastModified?.getTime() ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.#fail('stat', key, err);
    }
  }

  /**
   * Never replaces an object. S3's conditional PUT (If-None-Match: *) would make that atomic, but Swift's s3api
   * answers it with 501, so this is a HEAD and then the upload: two importers of one key racing within that window
   * could both succeed (the last one wins). Keys of imports are fresh asset ids, so that does not happen.
   * `link` has no meaning here: the bytes are always uploaded.
   */
  async copyObject(srcKey: string, dstKey: string): Promise<void> {
    const st = await this.stat(srcKey);
    if (!st) throw Object.assign(new Error(`no object ${assertKey(srcKey)}`), { code: 'ENOENT' });
    if (await this.stat(dstKey)) throw new SmoothcastError('STORAGE_OBJECT_EXISTS', `an object exists under ${dstKey}`);
    if (st.size > 5 * 2 ** 30) {
      // CopyObject's limit (5 GiB): through scratch, uploaded multipart.
      const local = await this.fetch(srcKey);
      try {
        await this.#upload(dstKey, local.path);
      } finally {
        await local.release();
      }
      return;
    }
    try {
      await this.#client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: this.#k(dstKey),
          CopySource: `${this.bucket}/${this.#k(srcKey).split('/').map(encodeURIComponent).join('/')}`,
        }),
      );
    } catch (err) {
      throw this.#fail('copy', srcKey, err);
    }
  }

  async importFile(src: string, key: string, _opts?: { link?: boolean }): Promise<void> {
    if (await this.stat(key)) throw new SmoothcastError('STORAGE_OBJECT_EXISTS', `an object exists under ${key}`);
    await this.#upload(key, src);
  }

  async stage(key: string): Promise<Staged> {
    assertKey(key);
    const dir = await this.#scratch('stage');
    const path = join(dir, basename(key));
    let done = false;
    const finish = () => {
      if (done) throw new Error(`staged file for ${key} was already committed or discarded`);
      done = true;
    };
    return {
      path,
      commit: async () => {
        finish();
        try {
          await this.#upload(key, path);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
      discard: async () => {
        finish();
        await rm(dir, { recursive: true, force: true });
      },
    };
  }

  async fetch(key: string): Promise<Fetched> {
    assertKey(key);
    const dir = await this.#scratch('fetch');
    const path = join(dir, basename(key));
    const release = () => rm(dir, { recursive: true, force: true });
    try {
      let res: GetObjectCommandOutput;
      try {
        res = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.#k(key) }));
      } catch (err) {
        if (isNotFound(err)) throw missing(key);
        throw this.#fail('fetch', key, err);
      }
      try {
        await pipeline(res.Body as Readable, createWriteStream(path));
      } catch (err) {
        throw this.#fail('fetch', key, err);
      }
      const size = (await stat(path)).size;
      if (res.ContentLength !== undefined && size !== res.ContentLength) {
        throw this.#fail('fetch', key, new Error(`got ${size} of ${res.ContentLength} bytes`));
      }
    } catch (err) {
      await release();
      throw err;
    }
    return { path, release };
  }

  async putBytes(key: string, data: Uint8Array): Promise<void> {
    try {
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.#k(key), Body: data, ContentLength: data.length }),
      );
    } catch (err) {
      throw this.#fail('write', key, err);
    } finally {
      this.#cache?.invalidate(key);
    }
  }

  async getBytes(key: string): Promise<Buffer | null> {
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.#k(key) }));
      const bytes = await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw this.#fail('read', key, err);
    }
  }

  async list(prefix: string): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    for (const o of await this.#listAll(`${this.#k(prefix)}/`)) {
      const key = o.key.slice(this.prefix.length);
      if (isValidKey(key)) out.push({ key, size: o.size });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    try {
      await this.#delete(this.#k(key), key);
    } finally {
      this.#cache?.invalidate(key);
    }
  }

  /**
   * One DELETE per object, a bounded number at a time: Swift's s3api refuses the batch DeleteObjects without a
   * Content-MD5 header, and the AWS SDK sends a CRC32 checksum in its place. Then a second listing: a listing can lag behind writes that
   * just happened (object stores update their container listings asynchronously), and what it missed goes too.
   */
  async deletePrefix(prefix: string): Promise<void> {
    const folder = `${this.#k(prefix)}/`;
    const deleted = new Set<string>();
    try {
      for (let pass = 0; pass < 3; pass++) {
        const batch = (await this.#listAll(folder)).map((o) => o.key).filter((k) => !deleted.has(k));
        if (pass === 0) batch.push(this.#k(prefix)); // as rm -r, an object named like the folder goes too
        if (batch.length === 0) break;
        await eachLimited(batch, DELETE_CONCURRENCY, (k) => this.#delete(k, k.slice(this.prefix.length)));
        for (const k of batch) deleted.add(k);
      }
    } finally {
      this.#cache?.invalidatePrefix(`${prefix}/`);
      this.#cache?.invalidate(prefix);
    }
  }

  async #delete(objectKey: string, key: string): Promise<void> {
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (err) {
      if (!isNotFound(err)) throw this.#fail('delete', key, err);
    }
  }

  async #listAll(prefix: string): Promise<{ key: string; size: number }[]> {
    const out: { key: string; size: number }[] = [];
    let token: string | undefined;
    do {
      let res: ListObjectsV2CommandOutput;
      try {
        res = await this.#client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ContinuationToken: token,
            MaxKeys: this.#pageSize,
          }),
        );
      } catch (err) {
        throw this.#fail('list', prefix.slice(this.prefix.length), err);
      }
      for (const o of res.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size ?? 0 });
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  /** Uploads a local file, in parts when it is larger than one. */
  async #upload(key: string, path: string): Promise<void> {
    const size = (await stat(path)).size;
    const body = createReadStream(path);
    const upload = new Upload({
      client: this.#uploader,
      params: { Bucket: this.bucket, Key: this.#k(key), Body: body },
      partSize: Math.max(PART_BYTES, Math.ceil(size / MAX_PARTS)),
      queueSize: 4,
      // A failed upload aborts its multipart upload, so no orphaned parts stay stored (and billed).
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      throw this.#fail('upload', key, err);
    } finally {
      body.destroy();
      this.#cache?.invalidate(key);
    }
  }

  async #scratch(kind: string): Promise<string> {
    const dir = join(this.scratchDir, `${kind}-${randomUUID()}`);
    await mkdir(dir, { recursive: true });
    return dir;
  }

  #k(key: string): string {
    return this.prefix + assertKey(key);
  }

  #fail(op: string, key: string, err: unknown): SmoothcastError {
    const detail = `${this.#where}: ${err instanceof Error ? err.message : String(err)}`;
    return new SmoothcastError('STORAGE_UNAVAILABLE', `S3 ${op} of ${key} failed: ${reason(err)}`, {
      cause: err,
      detail,
    });
  }
}
