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
import type { AssetRepository } from '../../core/db/assets.ts';
import type { Db } from '../../core/db/database.ts';
import type { JobQueue } from '../../core/db/queue.ts';
import type { UploadRepository } from '../../core/db/uploads.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { importLocalFile, titleFromName } from '../../core/ingest.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { presentAsset } from '../api/present.ts';
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
  readonly store: SmoothcastFileStore;
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
    this.store = new SmoothcastFileStore({
      directory: this.dir,
      expirationPeriodInMilliseconds: Math.round(config.uploads.expireHours * 3600 * 1000),
    });
    this.tus = new Server({
      path: UPLOADS_PATH,
      datastore: this.store,
      maxSize: this.maxSize,
      relativeLocation: true,
      respectForwardedHeaders: false,
      disableTerminationForFinishedUploads: true,
      allowedHeaders: ['Upload-Checksum'],
      exposedHeaders: ['Upload-Expires', 'Smoothcast-Asset', 'Tus-Checksum-Algorithm'],
      namingFunction: () => randomBytes(16).toString('hex'),
      onUploadCreate: async (_req, upload) => ({ metadata: checkMetadata(upload.metadata) }),
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
      const ctx: UploadRequestContext = {};
      const checksum = req.headers['upload-checksum'];
      if (req.method === 'PATCH' && typeof checksum === 'string') {
        try {
          ctx.checksum = parseChecksumHeader(checksum);
        } catch (err) {
          const e = err as { status_code: number; body: string };
          return reply.code(e.status_code).header('tus-resumable', '1.0.0').type('text/plain').send(e.body);
        }
      }
      if (req.method === 'OPTIONS') reply.raw.setHeader('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
      reply.hijack();
      await requestContext.run(ctx, () => this.tus.handle(req.raw, reply.raw));
    };
    app.route({ method: ['POST', 'OPTIONS'], url: UPLOADS_PATH, handler: handle });
    app.route({ method: ['HEAD', 'PATCH', 'DELETE', 'OPTIONS'], url: `${UPLOADS_PATH}/:id`, handler: handle });

    // Which asset a finished upload became (the tus response also says it, in Smoothcast-Asset).
    app.get<{ Params: { id: string } }>(`${UPLOADS_PATH}/:id/asset`, async (req) => {
      const { id } = req.params;
      if (!UPLOAD_ID.test(id)) throw new SmoothcastError('UPLOAD_NOT_FOUND', 'no such upload');
      const assetId = await this.finalize(id);
      const asset = this.deps.assets.get(assetId);
      if (!asset) throw new SmoothcastError('UPLOAD_NOT_FOUND', `upload ${id} became asset ${assetId}, since deleted`);
      return presentAsset(asset, this.deps.publicUrl);
    });
  }

  /**
   * The asset a finished upload is (creating it the first time): idempotent and safe to race, so the tus finish
   * hook, a client asking afterwards, and the start-up pass over leftovers all agree.
   */
  finalize(uploadId: string): Promise<string> {
    const known = this.deps.uploads.assetFor(uploadId);
    if (known) return Promise.resolve(known);
    let p = this.finalizing.get(uploadId);
    if (!p) {
      p = this.createAsset(uploadId).finally(() => this.finalizing.delete(uploadId));
      this.finalizing.set(uploadId, p);
    }
    return p;
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
    const asset = await importLocalFile(this.deps, this.store.pathOf(uploadId), {
      name,
      title,
      onCreated: (a) => this.deps.uploads.record(uploadId, a.id),
    });
    // The upload's own files stay for a grace period (the data file is a hard link to the asset's source, so no
    // bytes are doubled): a client that lost the last response still sees its upload complete on HEAD.
    this.deps.log('upload finished', { upload: uploadId, asset: asset.id, bytes: upload.size });
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
    let n = 0;
    const now = Date.now();
    for (const e of await this.store.entries()) {
      const finished = e.declared !== undefined && e.size >= e.declared;
      if (!finished) {
        if (!this.store.isExpired(e, now)) continue;
      } else if (!this.deps.uploads.assetFor(e.id)) {
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
