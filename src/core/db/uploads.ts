// Finished uploads and the assets they became. Rows are written in the same transaction that creates the asset,
// so an upload either has its asset or is still an upload.
import type { Db } from './database.ts';

export interface UploadRepository {
  /** Records that upload `uploadId` became asset `assetId` (inside the asset's creating transaction). */
  record(uploadId: string, assetId: string): void;
  /** The asset an upload became, or null (not finished, unknown, or the asset was deleted). */
  assetFor(uploadId: string): string | null;
}

export class SqliteUploadRepository implements UploadRepository {
  readonly #db: Db;
  readonly #now: () => number;

  constructor(db: Db, options: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
  }

  record(uploadId: string, assetId: string): void {
    this.#db.raw
      .prepare('INSERT INTO uploads (id, asset_id, created_at) VALUES (?, ?, ?)')
      .run(uploadId, assetId, this.#now());
  }

  assetFor(uploadId: string): string | null {
    const row = this.#db.raw.prepare('SELECT asset_id FROM uploads WHERE id = ?').get(uploadId);
    return typeof row?.asset_id === 'string' ? row.asset_id : null;
  }
}
