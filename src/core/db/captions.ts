// Text tracks (captions and subtitles) of an asset. Each has its own random id that is never reused, so every URL
// derived from it can be immutable: adding or removing a track changes the manifests, never the bytes behind a URL.
// `embedded` tracks come from the source file and are replaced by each encode; `sidecar` ones are added by people.

import { sql } from 'kysely';
import { SmoothcastError } from '../errors.ts';
import { randomBase32 } from '../ids.ts';
import { type Db, int, num, type Row, text } from './database.ts';
import { insertionOrder } from './dialect.ts';

export type CaptionKind = 'subtitles' | 'captions';
export type CaptionOrigin = 'embedded' | 'sidecar';

export interface Caption {
  id: string;
  assetId: string;
  /** BCP 47. */
  language: string;
  label: string;
  kind: CaptionKind;
  origin: CaptionOrigin;
  default: boolean;
  forced: boolean;
  /** Number of cues and bytes of the stored WebVTT file. */
  cues: number;
  size: number;
  createdAt: number;
}

export type NewCaption = Omit<Caption, 'id' | 'createdAt'> & { id?: string };

export interface CaptionRepository {
  /** In the order they were added (embedded ones first, as the source lists them). */
  list(assetId: string): Promise<Caption[]>;
  get(assetId: string, id: string): Promise<Caption | null>;
  add(c: NewCaption): Promise<Caption>;
  /** False when it did not exist. */
  remove(assetId: string, id: string): Promise<boolean>;
  /** Replaces every embedded track of the asset with `tracks` (one transaction); returns the removed ones. */
  replaceEmbedded(assetId: string, tracks: readonly NewCaption[]): Promise<Caption[]>;
}

export const CAPTION_ID = /^c[a-z2-7]{12}$/;

export function newCaptionId(): string {
  return randomBase32(12, 'c');
}

export class SqliteCaptionRepository implements CaptionRepository {
  readonly #db: Db;
  readonly #now: () => number;

  constructor(db: Db, options: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
  }

  async list(assetId: string): Promise<Caption[]> {
    const order = insertionOrder(this.#db.dialect);
    const rows = await this.#db.all(
      sql`SELECT * FROM captions WHERE asset_id = ${assetId} ORDER BY created_at, ${order}`,
    );
    return rows.map(toCaption);
  }

  async get(assetId: string, id: string): Promise<Caption | null> {
    if (!CAPTION_ID.test(id)) return null;
    const row = await this.#db.get(sql`SELECT * FROM captions WHERE asset_id = ${assetId} AND id = ${id}`);
    return row === undefined ? null : toCaption(row);
  }

  async add(c: NewCaption): Promise<Caption> {
    const id = c.id ?? newCaptionId();
    if (!CAPTION_ID.test(id)) throw new SmoothcastError('INVALID_ID', `invalid caption id ${JSON.stringify(id)}`);
    await this.#db.write(async () => {
      const exists = await this.#db.get(sql`SELECT 1 AS one FROM assets WHERE id = ${c.assetId}`);
      if (exists === undefined) throw new SmoothcastError('ASSET_NOT_FOUND', `asset ${c.assetId} not found`);
      await this.#insert(id, c);
    });
    return (await this.get(c.assetId, id))!;
  }

  async remove(assetId: string, id: string): Promise<boolean> {
    if (!CAPTION_ID.test(id)) return false;
    return (await this.#db.run(sql`DELETE FROM captions WHERE asset_id = ${assetId} AND id = ${id}`)) === 1;
  }

  replaceEmbedded(assetId: string, tracks: readonly NewCaption[]): Promise<Caption[]> {
    return this.#db.write(async () => {
      const old = (await this.list(assetId)).filter((c) => c.origin === 'embedded');
      await this.#db.run(sql`DELETE FROM captions WHERE asset_id = ${assetId} AND origin = 'embedded'`);
      for (const t of tracks) await this.#insert(t.id ?? newCaptionId(), { ...t, origin: 'embedded' });
      return old;
    });
  }

  async #insert(id: string, c: NewCaption): Promise<void> {
    if (c.kind !== 'subtitles' && c.kind !== 'captions') throw new SmoothcastError('BAD_REQUEST', 'invalid kind');
    await this.#db.run(
      sql`INSERT INTO captions (asset_id, id, language, label, kind, origin, is_default, forced, cues, size, created_at)
          VALUES (${c.assetId}, ${id}, ${c.language}, ${c.label.slice(0, 200)}, ${c.kind}, ${c.origin},
                  ${c.default ? 1 : 0}, ${c.forced ? 1 : 0}, ${c.cues}, ${c.size}, ${this.#now()})`,
    );
  }
}

function toCaption(row: Row): Caption {
  return {
    id: text(row, 'id'),
    assetId: text(row, 'asset_id'),
    language: text(row, 'language'),
    label: text(row, 'label'),
    kind: text(row, 'kind') as CaptionKind,
    origin: text(row, 'origin') as CaptionOrigin,
    default: int(row, 'is_default') === 1,
    forced: int(row, 'forced') === 1,
    cues: int(row, 'cues'),
    size: num(row, 'size'),
    createdAt: int(row, 'created_at'),
  };
}
