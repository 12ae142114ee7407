// Finished uploads and the assets they became. Rows are written in the same transaction that creates the asset,
// so an upload either has its asset or is still an upload.
import { sql } from 'kysely';
import type { Db } from './database.ts';

export interface UploadRepository {
  /** Records that upload `uploadId` became asset `assetId` (inside the asset's creating transaction). */
  record(uploadId: string, assetId: string): Promise<void>;
  /** The asset an upload became, or null (not finished, unknown, or the asset was deleted). */
  assetFor(uploadId: string): Promise<string | null>;
}

export class SqliteUploadRepository implements UploadRepository {
  readonly #db: Db;
  readonly #now: () => number;

  constructor(db: Db, options: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
  }

  async record(uploadId: string, assetId: string): Promise<void> {
    await this.#db.run(
      sql`INSERT INTO uploads (id, asset_id, created_at) VALUES (${uploadId}, ${assetId}, ${this.#now()})`,
    );
  }

  async assetFor(uploadId: string): Promise<string | null> {
    const row = await this.#db.get(sql`SELECT asset_id FROM uploads WHERE id = ${uploadId}`);
    return typeof row?.asset_id === 'string' ? row.asset_id : null;
  }
}
