// Files a process holds on its own disk while they are still being written — an encode's renditions before they
// are uploaded to the bucket, a live event's growing files — and the readers that let every origin serve them.
//
// With S3 storage a worker encodes into local scratch and uploads each rendition once it is complete (one object
// per rendition, multipart), yet the first segments must be playable within seconds of the upload ending
// (publish while encoding). So the node that holds the bytes says so in the catalog (assets.holder = its
// advertised URL) and serves them on GET /internal/held/<key> with byte ranges; origins route an asset's reads to
// its holder while it has one (RoutingReader). When the files are in the bucket the holder is cleared in the same
// transaction that publishes the asset, every origin hears of it (the assets channel) and reads from S3 from then
// on; the holder keeps serving for a grace period so a request already routed to it still succeeds. The URLs
// players use never change: only where the origin reads the bytes does.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { open } from 'node:fs/promises';
import { Agent, type IncomingMessage, request } from 'node:http';
import { SmoothcastError } from '../errors.ts';
import type { MediaReader, StatResult } from './storage.ts';

/** The header that proves a request comes from a node of this cluster (they share the master key). */
export const INTERNAL_HEADER = 'x-smoothcast-internal';
/** The held file's size, on every answer of /internal/held. */
export const SIZE_HEADER = 'x-held-size';

/** The cluster secret for internal requests, derived from the master key every node of a cluster shares. */
export function internalSecret(master: Buffer): string {
  return createHmac('sha256', master).update('smoothcast:internal-files:v1').digest('base64url');
}

export function checkInternalSecret(expected: string, got: unknown): boolean {
  if (typeof got !== 'string' || got.length !== expected.length) return false;
  return timingSafeEqual(Buffer.from(got), Buffer.from(expected));
}

/** The keys this process holds locally and where they are. */
export class HeldFiles {
  readonly #files = new Map<string, string>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /** Whole folders (a live event's): key prefix (ending in '/') → local folder. */
  readonly #prefixes = new Map<string, string>();

  /** Holds every key under `prefix` (ending in '/'): key prefix + rest ↦ dir/rest. */
  holdPrefix(prefix: string, dir: string): void {
    if (!prefix.endsWith('/')) throw new RangeError('a held prefix ends with /');
    this.#prefixes.set(prefix, dir.replace(/\/$/, ''));
  }

  /** Stops serving a held prefix after `graceMs`, then calls `after`. */
  releasePrefixLater(prefix: string, graceMs: number, after?: () => Promise<void> | void): void {
    if (!this.#prefixes.has(prefix)) return;
    setTimeout(() => {
      this.#prefixes.delete(prefix);
      void Promise.resolve(after?.()).catch(() => {});
    }, graceMs).unref();
  }

  hold(key: string, path: string): void {
    const t = this.#timers.get(key);
    if (t) clearTimeout(t);
    this.#timers.delete(key);
    this.#files.set(key, path);
  }

  path(key: string): string | undefined {
    const exact = this.#files.get(key);
    if (exact) return exact;
    for (const [prefix, dir] of this.#prefixes) {
      if (key.startsWith(prefix)) return `${dir}/${key.slice(prefix.length)}`;
    }
    return undefined;
  }

  /** Stops serving the key after `graceMs`, then calls `after` (e.g. to delete the scratch file). */
  releaseLater(key: string, graceMs: number, after?: () => Promise<void> | void): void {
    if (!this.#files.has(key)) return;
    const t = setTimeout(() => {
      this.#timers.delete(key);
      this.#files.delete(key);
      void Promise.resolve(after?.()).catch(() => {});
    }, graceMs);
    t.unref();
    this.#timers.set(key, t);
  }

  release(key: string): void {
    const t = this.#timers.get(key);
    if (t) clearTimeout(t);
    this.#timers.delete(key);
    this.#files.delete(key);
  }

  get size(): number {
    return this.#files.size + this.#prefixes.size;
  }

  /** Positioned read of a held file (fewer bytes only at its end). */
  async read(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const path = this.path(key);
    if (!path) throw Object.assign(new Error(`not held: ${key}`), { code: 'ENOENT' });
    if (into && into.length < length) throw new RangeError(`read of ${length} bytes into a ${into.length}-byte buffer`);
    const fh = await open(path, 'r');
    try {
      const buf = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === length ? buf : buf.subarray(0, got);
    } finally {
      await fh.close();
    }
  }

  async stat(key: string): Promise<StatResult | null> {
    const path = this.path(key);
    if (!path) return null;
    const fh = await open(path, 'r').catch(() => null);
    if (!fh) return null;
    try {
      const s = await fh.stat();
      return { size: s.size, mtimeMs: s.mtimeMs };
    } finally {
      await fh.close();
    }
  }
}

/** Reads another node's held files over HTTP: one ranged GET per read, keep-alive connections. */
export class RemoteReader implements MediaReader {
  readonly #base: URL;
  readonly #secret: string;
  readonly #timeoutMs: number;
  static readonly #agent = new Agent({ keepAlive: true, maxSockets: 64 });

  constructor(baseUrl: string, secret: string, opts: { timeoutMs?: number } = {}) {
    this.#base = new URL(baseUrl);
    if (this.#base.protocol !== 'http:')
      throw new SmoothcastError('CONFIG_INVALID', `holder URL must be http: ${baseUrl}`);
    this.#secret = secret;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
  }

  #request(method: 'GET' | 'HEAD', key: string, range?: string): Promise<{ res: IncomingMessage; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const fail = (err: Error) =>
        reject(
          new SmoothcastError('STORAGE_UNAVAILABLE', `the node holding ${key} did not answer`, {
            cause: err,
            detail: `${this.#base.origin}: ${err.message}`,
          }),
        );
      const req = request(
        {
          host: this.#base.hostname,
          port: this.#base.port,
          path: `/internal/held/${key}`,
          method,
          agent: RemoteReader.#agent,
          headers: { [INTERNAL_HEADER]: this.#secret, ...(range ? { range } : {}) },
          timeout: this.#timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ res, body: Buffer.concat(chunks) }));
          res.on('error', fail);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      req.on('error', fail);
      req.end();
    });
  }

  async read(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (into && into.length < length) throw new RangeError(`read of ${length} bytes into a ${into.length}-byte buffer`);
    if (length === 0) return into ? into.subarray(0, 0) : Buffer.alloc(0);
    const { res, body } = await this.#request('GET', key, `bytes=${offset}-${offset + length - 1}`);
    if (res.statusCode === 404) {
      throw Object.assign(new Error(`${key} is not held by ${this.#base.origin}`), { code: 'ENOENT' });
    }
    if (res.statusCode === 416) return into ? into.subarray(0, 0) : Buffer.alloc(0);
    if (res.statusCode !== 206 && res.statusCode !== 200) {
      throw new SmoothcastError('STORAGE_UNAVAILABLE', `the node holding ${key} answered ${res.statusCode}`);
    }
    const got = body.subarray(0, length);
    if (!into) return got;
    got.copy(into);
    return into.subarray(0, got.length);
  }

  async stat(key: string): Promise<StatResult | null> {
    const { res } = await this.#request('HEAD', key);
    if (res.statusCode === 404) return null;
    if (res.statusCode !== 200) {
      throw new SmoothcastError('STORAGE_UNAVAILABLE', `the node holding ${key} answered ${res.statusCode}`);
    }
    return {
      size: Number(res.headers[SIZE_HEADER] ?? 0),
      mtimeMs: Date.parse(String(res.headers['last-modified'] ?? '')) || 0,
    };
  }
}

const ASSET_OF_KEY = /^assets\/([a-z0-9]{8,32})\//;

/**
 * The origin's reader: an asset's bytes come from its holder while it has one (as the catalog said when the
 * origin last loaded the asset), else from storage. This process's own held files are read from disk.
 */
export class RoutingReader implements MediaReader {
  readonly #storage: MediaReader;
  readonly #held: HeldFiles;
  readonly #self: string;
  readonly #secret: string;
  readonly #routes = new Map<string, string>();
  readonly #remotes = new Map<string, RemoteReader>();

  constructor(storage: MediaReader, opts: { held: HeldFiles; selfUrl: string; secret: string }) {
    this.#storage = storage;
    this.#held = opts.held;
    this.#self = opts.selfUrl;
    this.#secret = opts.secret;
  }

  /** What the catalog says holds the asset's files now (null: storage). */
  route(assetId: string, holder: string | null): void {
    if (holder === null) this.#routes.delete(assetId);
    else {
      if (this.#routes.size > 100_000) this.#routes.clear();
      this.#routes.set(assetId, holder);
    }
  }

  forget(assetId: string): void {
    this.#routes.delete(assetId);
  }

  #reader(key: string): MediaReader {
    // Held here (this process encodes or ingests it): straight from disk, whatever the catalog says.
    if (this.#held.path(key)) return this.#held;
    const id = ASSET_OF_KEY.exec(key)?.[1];
    const holder = id ? this.#routes.get(id) : undefined;
    if (!holder || holder === this.#self) return this.#storage;
    let r = this.#remotes.get(holder);
    if (!r) {
      r = new RemoteReader(holder, this.#secret);
      this.#remotes.set(holder, r);
    }
    return r;
  }

  read(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.#reader(key).read(key, offset, length, into);
  }

  stat(key: string): Promise<StatResult | null> {
    return this.#reader(key).stat(key);
  }
}
