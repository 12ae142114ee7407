// Viewing quality of an asset (docs/openapi.yaml): what the origins aggregated from the CMCD (CTA-5004) its players
// sent — sessions, stalls, startup, bitrate played (src/core/db/qoe.ts).
import type { FastifyInstance } from 'fastify';
import type { AssetRepository } from '../../core/db/assets.ts';
import type { QoeRepository } from '../../core/db/qoe.ts';
import { SmoothcastError } from '../../core/errors.ts';

export interface QoeApiOptions {
  assets: Pick<AssetRepository, 'get'>;
  qoe: Pick<QoeRepository, 'summary'>;
}

export function registerQoeApi(app: FastifyInstance, o: QoeApiOptions, assetId: (raw: string) => string): void {
  app.get<{ Params: { id: string } }>('/api/assets/:id/qoe', { config: { scope: 'assets:read' } }, async (req) => {
    const id = assetId(req.params.id);
    if (!(await o.assets.get(id))) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${id}`);
    return o.qoe.summary(id);
  });
}
