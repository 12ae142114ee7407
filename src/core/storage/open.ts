// The storage a process uses, as configured (storage.backend and the storage.s3* keys).
import { join, resolve } from 'node:path';
import type { Config } from '../config.ts';
import { SmoothcastError } from '../errors.ts';
import { LocalStorage } from './local.ts';
import { S3Storage } from './s3.ts';
import type { Storage } from './storage.ts';

/** Local: DATA/media. S3: the configured bucket, created when missing; staged and fetched files in scratchDir. */
export async function openStorage(config: Pick<Config, 'storage'>): Promise<Storage> {
  const c = config.storage;
  if (c.backend === 'local') return new LocalStorage(join(c.dataDir, 'media'));
  if (!c.s3Bucket) {
    throw new SmoothcastError('CONFIG_INVALID', 'storage.backend is s3 but storage.s3Bucket is empty');
  }
  if (Boolean(c.s3AccessKeyId) !== Boolean(c.s3SecretAccessKey)) {
    throw new SmoothcastError(
      'CONFIG_INVALID',
      'set both storage.s3AccessKeyId and storage.s3SecretAccessKey, or neither',
    );
  }
  const storage = new S3Storage({
    endpoint: c.s3Endpoint,
    region: c.s3Region,
    bucket: c.s3Bucket,
    prefix: c.s3Prefix,
    ...(c.s3AccessKeyId ? { accessKeyId: c.s3AccessKeyId, secretAccessKey: c.s3SecretAccessKey } : {}),
    forcePathStyle: c.s3ForcePathStyle,
    scratchDir: resolve(c.scratchDir || join(c.dataDir, 'scratch')),
    cacheBytes: c.s3CacheBytes,
  });
  await storage.ensureBucket();
  return storage;
}
