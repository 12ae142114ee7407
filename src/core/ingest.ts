// Adding a source file to the catalog: copy it into storage, create the asset, queue its encode. Shared by the
// CLI import and (later) the upload role, so every way in goes through the same checks.
import { stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { Config } from './config.ts';
import type { Asset, AssetRepository, NewAssetAccess } from './db/assets.ts';
import { newAssetId } from './db/assets.ts';
import type { Db } from './db/database.ts';
import type { JobQueue } from './db/queue.ts';
import { SmoothcastError } from './errors.ts';
import type { Storage } from './storage/storage.ts';
import { keys } from './storage/storage.ts';

export interface IngestDeps {
  config: Config;
  db: Db;
  assets: AssetRepository;
  queue: JobQueue;
  storage: Storage;
}

/** A safe stored extension: lower-case letters/digits only, else none (ffprobe sniffs content anyway). */
export function sourceExtension(name: string): string {
  const ext = extname(name).toLowerCase();
  return /^\.[a-z0-9]{1,8}$/.test(ext) ? ext : '';
}

export function titleFromName(name: string): string {
  const base = basename(name, extname(name)).replace(/[_]+/g, ' ').trim();
  return (base || 'untitled').slice(0, 200);
}

export interface ImportOptions {
  title?: string;
  /** The file's name as the user knows it (default: from the path): the stored extension and sourceName. */
  name?: string;
  /**
   * Runs inside the transaction that creates the asset (e.g. recording the upload it came from): database work
   * only (on PostgreSQL the transaction may be retried, running it again).
   */
  onCreated?: (asset: Asset) => Promise<unknown>;
  /** Owner, playback policy, encryption, viewer limit of the new asset. */
  access?: NewAssetAccess;
}

export async function importLocalFile(deps: IngestDeps, path: string, opts: ImportOptions = {}): Promise<Asset> {
  const name = opts.name ?? basename(path);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new SmoothcastError('MEDIA_NOT_FOUND', `${path} is not a regular file`);
    size = st.size;
  } catch (err) {
    if (err instanceof SmoothcastError) throw err;
    throw new SmoothcastError('MEDIA_NOT_FOUND', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code}`);
  }
  if (size > deps.config.limits.maxFileSize) {
    throw new SmoothcastError(
      'MEDIA_TOO_LARGE',
      `${name} is ${size} bytes; the limit is ${deps.config.limits.maxFileSize} (limits.maxFileSize)`,
    );
  }
  const id = newAssetId();
  const key = keys.source(id, sourceExtension(name));
  // The file goes to its final key first, outside the transaction (which must do database work only: on SQLite it
  // holds the one connection, on PostgreSQL it may run more than once); if the transaction fails, it goes again.
  await deps.storage.importFile(path, key, { link: true });
  return createWithSource(deps, id, key, name, opts);
}

/** The transaction that makes a stored source an asset with its encode queued; on failure the source goes. */
async function createWithSource(
  deps: IngestDeps,
  id: string,
  key: string,
  name: string,
  opts: ImportOptions,
): Promise<Asset> {
  try {
    return await deps.db.write(async () => {
      const asset = await deps.assets.create({
        id,
        title: opts.title ?? titleFromName(name),
        sourcePath: key,
        sourceName: name,
        ...opts.access,
      });
      await deps.queue.enqueue('encode', id, {}, { maxAttempts: deps.config.worker.maxAttempts });
      await opts.onCreated?.(asset);
      return asset;
    });
  } catch (err) {
    await deps.storage.deletePrefix(keys.assetPrefix(id)).catch(() => {});
    throw err;
  }
}

/**
 * An object already in storage (a tus upload written straight to the bucket) becomes a new asset's source: a
 * server-side copy to the asset's source key, then the same transaction as importLocalFile.
 */
export async function importStoredObject(
  deps: IngestDeps,
  srcKey: string,
  size: number,
  opts: ImportOptions & { name: string },
): Promise<Asset> {
  if (size > deps.config.limits.maxFileSize) {
    throw new SmoothcastError(
      'MEDIA_TOO_LARGE',
      `${opts.name} is ${size} bytes; the limit is ${deps.config.limits.maxFileSize} (limits.maxFileSize)`,
    );
  }
  const id = newAssetId();
  const key = keys.source(id, sourceExtension(opts.name));
  await deps.storage.copyObject(srcKey, key);
  return createWithSource(deps, id, key, opts.name, opts);
}
