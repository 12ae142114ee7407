// The JSON HTTP API (docs/openapi.yaml): list, read, delete assets, follow one as Server-Sent Events.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Asset, AssetRepository } from '../../core/db/assets.ts';
import { isValidAssetId } from '../../core/db/assets.ts';
import type { CaptionRepository } from '../../core/db/captions.ts';
import type { QoeRepository } from '../../core/db/qoe.ts';
import type { JobQueue } from '../../core/db/queue.ts';
import { SmoothcastError } from '../../core/errors.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { registerCaptionApi } from './captions.ts';
import { type AssetJson, presentAsset, presentCaption } from './present.ts';
import { registerQoeApi } from './qoe.ts';
import { eventStream, type SseLogger } from './sse.ts';

export interface ApiOptions {
  assets: AssetRepository;
  captions: CaptionRepository;
  /** Largest sidecar caption body, bytes. */
  captionMaxBytes: number;
  /** Forgets cached text tracks of an asset (after a caption is added or removed). */
  evictText: (assetId: string) => void;
  queue: JobQueue;
  /** Viewing quality per session, from CMCD (GET /api/assets/:id/qoe). */
  qoe: Pick<QoeRepository, 'summary'>;
  storage: Storage;
  publicUrl: string;
  /** Stops a running encode in this process at once (cross-process workers notice the cancelled job). */
  cancelEncode: (assetId: string) => void;
  /** Forgets cached indexes of a deleted asset. */
  evict: (assetId: string) => void;
  /** How often the SSE stream looks for changes (ms). */
  ssePollMs?: number;
  /** The asset's JSON (default: presentAsset without live figures). */
  present?: (a: Asset) => AssetJson | Promise<AssetJson>;
  /** After an asset was deleted (webhooks, audit); awaited before the 204. */
  onDeleted?: (a: Asset, req: FastifyRequest) => void | Promise<void>;
  /** Where an SSE poll that failed is reported (default: stderr). */
  log?: SseLogger;
}

function assetId(raw: string): string {
  if (!isValidAssetId(raw)) throw new SmoothcastError('INVALID_ID', `invalid asset id ${JSON.stringify(raw)}`);
  return raw;
}

export function registerApi(app: FastifyInstance, o: ApiOptions): void {
  const present = o.present ?? (async (a: Asset) => presentAsset(a, o.publicUrl, await o.captions.list(a.id)));
  registerCaptionApi(
    app,
    {
      assets: o.assets,
      captions: o.captions,
      storage: o.storage,
      maxBytes: o.captionMaxBytes,
      evictText: o.evictText,
      present: async (c) =>
        presentCaption(
          c,
          (await o.assets.get(c.assetId)) ?? { id: c.assetId, status: 'queued', rev: null },
          o.publicUrl,
        ),
    },
    assetId,
  );
  registerQoeApi(app, { assets: o.assets, qoe: o.qoe }, assetId);

  app.get<{ Querystring: { limit?: string; offset?: string } }>(
    '/api/assets',
    { config: { scope: 'assets:read' } },
    async (req) => {
      const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
      const offset = req.query.offset === undefined ? 0 : Number(req.query.offset);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500 || !Number.isInteger(offset) || offset < 0) {
        throw new SmoothcastError('BAD_REQUEST', 'limit must be 1–500 and offset ≥ 0');
      }
      const list = await o.assets.list({ limit, offset });
      return {
        assets: await Promise.all(list.map((a) => present(a))),
        total: await o.assets.count(),
      };
    },
  );

  app.get<{ Params: { id: string } }>('/api/assets/:id', { config: { scope: 'assets:read' } }, async (req) => {
    const a = await o.assets.get(assetId(req.params.id));
    if (!a) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${req.params.id}`);
    return await present(a);
  });

  app.delete<{ Params: { id: string } }>(
    '/api/assets/:id',
    { config: { scope: 'assets:write' } },
    async (req, reply) => {
      const id = assetId(req.params.id);
      const asset = await o.assets.get(id);
      if (!asset) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${id}`);
      if (asset.status === 'live') {
        throw new SmoothcastError('ASSET_STATE_CONFLICT', `asset ${id} is a live event: shut its stream down first`);
      }
      await o.queue.cancelForAsset(id);
      o.cancelEncode(id);
      await o.assets.delete(id);
      o.evict(id);
      await o.storage.deletePrefix(keys.assetPrefix(id));
      await o.onDeleted?.(asset, req);
      return reply.code(204).send();
    },
  );

  // Server-Sent Events: the asset as JSON at once and after every change, until it is ready, failed or deleted.
  app.get<{ Params: { id: string } }>(
    '/api/assets/:id/events',
    { config: { scope: 'assets:read' } },
    async (req, reply) => {
      const id = assetId(req.params.id);
      const first = await o.assets.get(id);
      if (!first) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${id}`);
      let last = -1;
      eventStream(req, reply, o.ssePollMs ?? 250, o.log, async (sse) => {
        const a = await o.assets.get(id);
        if (!a) {
          sse.send('deleted', { id });
          sse.end();
          return;
        }
        if (a.updatedAt !== last) {
          last = a.updatedAt;
          sse.send('asset', await present(a), a.updatedAt);
        }
        if (a.status === 'ready' || a.status === 'failed') sse.end();
      });
    },
  );
}
