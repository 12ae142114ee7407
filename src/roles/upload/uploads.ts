// The upload role: resumable uploads over tus 1.0 (@tus/server) at /api/uploads, with the creation,
// creation-with-upload, termination, expiration and checksum extensions. Uploads in progress live in
// <dataDir>/uploads; a finished one is linked into the asset's storage, becomes an asset whose encode is queued
// (in one transaction with the record of which upload it came from), and its temporary files go.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Server } from '@tus/server';
import { ERRORS as TUS_ERRORS, type Upload } from '@tus/utils';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../core/config.ts';
import type { SqliteAccounts } from '../../core/db/accounts.ts';
import type { Asset, AssetRepository } from '../../core/db/assets.ts';
import { type Db, isUniqueViolation } from '../../core/db/database.ts';
import { isConstraintError } from '../../core/db/dialect.ts';
import type { JobQueue } from '../../core/db/queue.ts';
import type { UploadRepository } from '../../core/db/uploads.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { importLocalFile, importStoredObject, titleFromName } from '../../core/ingest.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { presentAsset } from '../api/present.ts';
import type { Principal } from '../api/scopes.ts';
import { DbLocker } from './db-locker.ts';
import { SmoothcastS3Store, uploadKey } from './s3-upload-store.ts';
import {
  CHECKSUM_ALGORITHMS,
  parseChecksumHeader,
  requestContext,
  SmoothcastFileStore,
  tusError,
  UPLOAD_ID,
  type UploadRequestContext,
} from './store.ts';

export const UPLOADS_PATH = '/api/uploads';

export interface UploadDeps {
  config: Config;
  db: Db;
  assets: AssetRepository;
  queue: JobQueue;
  storage: Storage;
  uploads: UploadRepository;
  publicUrl: string;
  log: (msg: string, extra?: Record<string, unknown>) => void;
  /** Accounts: direct uploads (one-time URLs) are claimed and recorded there. */
  accounts?: SqliteAccounts;
  /** After a finished upload became an asset (webhooks); a promise it returns is awaited. */
  onUploaded?: (uploadId: string, asset: Asset) => unknown;
  /** Playback policy of uploads whose creator does not choose one. */
  defaultPolicy?: 'public' | 'signed';
}

const GiB = 1024 ** 3;

function describeBytes(n: number): string {
  return n >= GiB ? `${+(n / GiB).toFixed(2)} GiB` : `${+(n / 2 ** 20).toFixed(1)} MiB`;
}

/** Upload-Metadata we accept: a file name and a title, short and free of control characters. */
function checkMetadata(metadata: Record<string, string | null> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, max] of [
    ['filename', 255],
    ['title', 200],
  ] as const) {
    const v = metadata?.[k];
    if (v === undefined || v === null || v === '') continue;
    if (v.length > max || /[\u0000-\u001f\u007f]/.test(v)) {
      throw tusError(400, `Upload-Metadata ${k} must be at most ${max} characters without control characters`);
    }
    out[k] = v;
  }
  return out;
}

export class Uploads {
  readonly dir: string;
  /** Local disk (the embedded default) or the bucket (storage.backend s3: any upload process serves any upload). */
  readonly store: SmoothcastFileStore | SmoothcastS3Store;
  readonly tus: Server;
  private readonly deps: UploadDeps;
  private readonly maxSize: number;
  private readonly finalizing = new Map<string, Promise<string>>();
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(deps: UploadDeps) {
    this.deps = deps;
    const { config } = deps;
    this.dir = join(config.storage.dataDir, 'uploads');
    this.maxSize = Math.min(config.uploads.maxSize, config.limits.maxFileSize);
    const s3 = deps.storage.backend === 's3';
    this.store = s3
      ? new SmoothcastS3Store(config)
      : new SmoothcastFileStore({
          directory: this.dir,
          expirationPeriodInMilliseconds: Math.round(config.uploads.expireHours * 3600 * 1000),
        });
    this.tus = new Server({
      path: UPLOADS_PATH,
      datastore: this.store,
      // Several upload processes on one bucket: a lock in the database, shared by all (see db-locker.ts). One
      // process on local disk keeps @tus/server's in-memory locker (it can ask a stalled request to let go).
      ...(s3 ? { locker: new DbLocker(deps.db) } : {}),
      maxSize: this.maxSize,
      relativeLocation: true,
      respectForwardedHeaders: false,
      disableTerminationForFinishedUploads: true,
      allowedHeaders: ['Upload-Checksum'],
      exposedHeaders: ['Upload-Expires', 'Smoothcast-Asset', 'Tus-Checksum-Algorithm'],
      namingFunction: () => randomBytes(16).toString('hex'),
      // The creator and the policy travel with the upload in metadata the client cannot set (checkMetadata keeps
      // only filename and title of what it sent).
      onUploadCreate: async (_req, upload) => {
        const ctx = requestContext.getStore();
        if (ctx?.directUploadId) await deps.accounts?.setDirectUploadTarget(ctx.directUploadId, upload.id);
        return {
          metadata: {
            ...checkMetadata(upload.metadata),
            ...(ctx?.owner ? { sc_owner: ctx.owner } : {}),
            sc_policy: ctx?.policy ?? deps.defaultPolicy ?? 'public',
          },
        };
      },
      // CORS: only a direct upload's declared page origin (the web app and the CLI are same-origin or not browsers).
      allowedOrigins: (origin) => {
        const allowed = requestContext.getStore()?.corsOrigin;
        return !!allowed && origin === allowed;
      },
      onUploadFinish: async (_req, upload) => {
        const assetId = await this.finalize(upload.id);
        return { headers: { 'Smoothcast-Asset': assetId } };
      },
      onResponseError: (_req, err) => {
        if (err instanceof SmoothcastError) {
          return { status_code: err.status, body: `${JSON.stringify({ error: err.toJSON() })}\n` };
        }
        if ('status_code' in err && err.status_code === TUS_ERRORS.ERR_MAX_SIZE_EXCEEDED.status_code) {
          return tusError(
            413,
            `the upload is larger than the limit of ${describeBytes(this.maxSize)} (uploads.maxSize)`,
          );
        }
        if (!('status_code' in err)) deps.log('upload failed', { error: String(err) });
        return undefined;
      },
    });
  }

  register(app: FastifyInstance): void {
    // tus bodies are streamed to disk by @tus/server: Fastify must not read them (nor apply its JSON body limit).
    app.addContentTypeParser('application/offset+octet-stream', (_req, _payload, done) => done(null));
    const handle = async (req: FastifyRequest<{ Params: { id?: string } }>, reply: FastifyReply) => {
      const id = req.params.id;
      if (id !== undefined && !UPLOAD_ID.test(id)) throw new SmoothcastError('UPLOAD_NOT_FOUND', 'no such upload');
      const ctx: UploadRequestContext = await this.contextOf(
        req.principal,
        req.method,
        id,
        req.headers['upload-length'],
      );
      const checksum = req.headers['upload-checksum'];
      if (typeof checksum === 'string' && !this.store.extensions.includes('checksum')) {
        // Bytes written to the bucket cannot be cut off again after a mismatch: refused, never silently unchecked.
        return reply
          .code(400)
          .header('tus-resumable', '1.0.0')
          .type('text/plain')
          .send('the checksum extension is not offered with S3 storage: send the PATCH without Upload-Checksum\n');
      }
      if (req.method === 'PATCH' && typeof checksum === 'string') {
        try {
          ctx.checksum = parseChecksumHeader(checksum);
        } catch (err) {
          const e = err as { status_code: number; body: string };
          return reply.code(e.status_code).header('tus-resumable', '1.0.0').type('text/plain').send(e.body);
        }
      }
      if (req.method === 'OPTIONS' && this.store.extensions.includes('checksum')) {
        reply.raw.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
      }
      reply.hijack();
      await requestContext.run(ctx, () => this.tus.handle(req.raw, reply.raw));
    };
    // CORS preflights carry no credentials: they are open (and answer only what tus answers to OPTIONS).
    const pub = { scope: 'public' } as const;
    const up = { scope: 'uploads:create' } as const;
    app.route({ method: 'OPTIONS', url: UPLOADS_PATH, handler: handle, config: pub });
    app.route({ method: 'OPTIONS', url: `${UPLOADS_PATH}/:id`, handler: handle, config: pub });
    app.route({ method: 'POST', url: UPLOADS_PATH, handler: handle, config: up });
    app.route({ method: ['HEAD', 'PATCH', 'DELETE'], url: `${UPLOADS_PATH}/:id`, handler: handle, config: up });

    // Which asset a finished upload became (the tus response also says it, in Smoothcast-Asset).
    app.get<{ Params: { id: string } }>(
      `${UPLOADS_PATH}/:id/asset`,
      { config: { scope: 'uploads:create' } },
      async (req) => {
        const { id } = req.params;
        if (!UPLOAD_ID.test(id)) throw new SmoothcastError('UPLOAD_NOT_FOUND', 'no such upload');
        const assetId = await this.finalize(id);
        const asset = await this.deps.assets.get(assetId);
        if (!asset)
          throw new SmoothcastError('UPLOAD_NOT_FOUND', `upload ${id} became asset ${assetId}, since deleted`);
        return presentAsset(asset, this.deps.publicUrl);
      },
    );
  }

  /**
   * The direct upload a tus request carries (a one-time URL on creation, then the upload it created), as a
   * principal that may do nothing but that one upload; null when it carries none or a dead one.
   */
  async directPrincipal(req: FastifyRequest): Promise<Principal | null> {
    const accounts = this.deps.accounts;
    if (!accounts || !req.url.startsWith(UPLOADS_PATH)) return null;
    const q = req.query as Record<string, unknown>;
    const path = req.url.split('?')[0]!;
    let d = null;
    if (path === UPLOADS_PATH && typeof q.direct === 'string' && typeof q.sig === 'string') {
      d = await accounts.directUploadBySecret(q.direct, q.sig);
      if (!d) throw new SmoothcastError('DIRECT_UPLOAD_INVALID', 'this upload URL is unknown or expired');
    } else {
      const m = /^\/api\/uploads\/([0-9a-f]{32})$/.exec(path);
      if (m) d = await accounts.directUploadFor(m[1]!);
    }
    if (!d) return null;
    return {
      kind: 'direct-upload',
      id: d.id,
      name: `direct-upload:${d.id}`,
      userId: d.createdBy,
      scopes: new Set(['uploads:create']),
      via: 'upload-url',
    };
  }

  private async contextOf(
    p: Principal | null,
    method: string,
    uploadId: string | undefined,
    length: string | string[] | undefined,
  ): Promise<UploadRequestContext> {
    if (p?.kind !== 'direct-upload') return { owner: p?.userId ?? null };
    const d = (await this.deps.accounts!.getDirectUpload(p.id))!;
    if (uploadId === undefined && method === 'POST') {
      const size = typeof length === 'string' && /^\d{1,16}$/.test(length) ? Number(length) : Number.NaN;
      if (!(size <= d.maxSize)) {
        throw new SmoothcastError('UPLOAD_TOO_LARGE', `this upload URL takes a declared Upload-Length ≤ ${d.maxSize}`);
      }
      // The one upload of a one-time URL: claimed atomically, so a second use is refused even in a race.
      if (!(await this.deps.accounts!.claimDirectUpload(d.id))) {
        throw new SmoothcastError('DIRECT_UPLOAD_INVALID', 'this upload URL was used already');
      }
      return { owner: d.createdBy, policy: d.policy, directUploadId: d.id, corsOrigin: d.corsOrigin };
    }
    if (uploadId !== undefined && d.uploadId !== uploadId) {
      throw new SmoothcastError('DIRECT_UPLOAD_INVALID', 'this upload URL belongs to another upload');
    }
    return { owner: d.createdBy, policy: d.policy, corsOrigin: d.corsOrigin };
  }

  /**
   * The asset a finished upload is (creating it the first time): idempotent and safe to race, so the tus finish
   * hook, a client asking afterwards, and the start-up pass over leftovers all agree.
   */
  finalize(uploadId: string): Promise<string> {
    // One look-up-or-create per upload at a time in this process: the record is looked up inside it, so a caller
    // that arrives while another is creating the asset waits for that one instead of creating a second.
    let p = this.finalizing.get(uploadId);
    if (!p) {
      p = this.assetOrCreate(uploadId).finally(() => this.finalizing.delete(uploadId));
      this.finalizing.set(uploadId, p);
    }
    return p;
  }

  private async assetOrCreate(uploadId: string): Promise<string> {
    const known = await this.deps.uploads.assetFor(uploadId);
    if (known) return known;
    try {
      return await this.createAsset(uploadId);
    } catch (err) {
      // Another process finished the same upload first (its record won the primary key; ours rolled back and its
      // copy of the source went): that asset is the answer.
      const winner = isUniqueViolation(err) ? await this.deps.uploads.assetFor(uploadId) : null;
      if (winner) return winner;
      throw err;
    }
  }

  private async createAsset(uploadId: string): Promise<string> {
    let upload: Upload;
    try {
      upload = await this.store.getUpload(uploadId);
    } catch {
      throw new SmoothcastError('UPLOAD_NOT_FOUND', `no upload ${uploadId} (never created, cancelled or expired)`);
    }
    if (upload.size === undefined || upload.offset < upload.size) {
      throw new SmoothcastError(
        'UPLOAD_INCOMPLETE',
        `upload ${uploadId} has ${upload.offset} of ${upload.size ?? 'an undeclared number of'} bytes`,
      );
    }
    const name = upload.metadata?.filename || 'upload';
    const title = upload.metadata?.title || titleFromName(name);
    const opts = {
      name,
      title,
      access: {
        ownerId: upload.metadata?.sc_owner || null,
        playbackPolicy: upload.metadata?.sc_policy === 'signed' ? ('signed' as const) : ('public' as const),
      },
      onCreated: (a: Asset) => this.deps.uploads.record(uploadId, a.id),
    };
    let asset: Asset;
    try {
      asset =
        this.store instanceof SmoothcastS3Store
          ? await importStoredObject(this.deps, uploadKey(uploadId), upload.size, opts)
          : await importLocalFile(this.deps, this.store.pathOf(uploadId), opts);
    } catch (err) {
      // Another upload process finished the same upload at the same moment and recorded its asset first.
      const winner = isConstraintError(err) || (err as { code?: string }).code === 'DB_BUSY';
      const existing = winner ? await this.deps.uploads.assetFor(uploadId) : null;
      if (existing) return existing;
      throw err;
    }
    if (this.store instanceof SmoothcastS3Store) await this.store.removeData(uploadId);
    // The upload's own files stay for a grace period (the data file is a hard link to the asset's source, so no
    // bytes are doubled): a client that lost the last response still sees its upload complete on HEAD.
    this.deps.log('upload finished', { upload: uploadId, asset: asset.id, bytes: upload.size });
    await this.deps.onUploaded?.(uploadId, asset);
    return asset.id;
  }

  /** Seconds a finished upload's files are kept after it became an asset: min(1 h, the expiry period). */
  get graceMs(): number {
    return Math.min(3600_000, this.deps.config.uploads.expireHours * 3600_000);
  }

  /**
   * Deletes expired unfinished uploads, and the files of finished ones past their grace period; finishes any
   * complete upload that has no asset yet (a crash between the last byte and the asset). Returns how many went.
   */
  async sweep(): Promise<number> {
    // The bucket: @tus/s3-store's own sweep of expired unfinished uploads (their multipart uploads aborted).
    if (this.store instanceof SmoothcastS3Store) return this.store.deleteExpired();
    let n = 0;
    const now = Date.now();
    for (const e of await this.store.entries()) {
      const finished = e.declared !== undefined && e.size >= e.declared;
      if (!finished) {
        if (!this.store.isExpired(e, now)) continue;
      } else if (!(await this.deps.uploads.assetFor(e.id))) {
        await this.finalize(e.id).catch((err) =>
          this.deps.log('upload finish failed', { upload: e.id, error: String(err) }),
        );
        continue;
      } else if (now - e.mtimeMs <= this.graceMs) {
        continue;
      }
      await this.store.remove(e.id).catch(() => {});
      n++;
    }
    if (n > 0) this.deps.log('uploads swept', { count: n });
    return n;
  }

  /** Finishes uploads a crash left complete but not yet turned into assets, and starts the periodic sweep. */
  async start(): Promise<void> {
    await this.sweep().catch((err) => this.deps.log('upload sweep failed', { error: String(err) }));
    this.sweepTimer = setInterval(() => {
      this.sweep().catch((err) => this.deps.log('upload sweep failed', { error: String(err) }));
    }, this.deps.config.uploads.sweepSeconds * 1000);
    this.sweepTimer.unref();
  }

  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }
}
