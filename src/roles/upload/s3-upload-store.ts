// tus uploads straight into the bucket (@tus/s3-store): every upload process writes the same objects, so a client
// may send each PATCH to any of them (the DbLocker keeps two from writing one upload at once). Its objects live
// under the storage prefix as `uploads/<id>` (the data, assembled by S3 multipart), `uploads/<id>.info` and
// `uploads/<id>.part` (the tail shorter than a part); a finished upload is copied server-side to the asset's
// source key and its data object removed.
//
// What S3-compatible servers refuse, handled here: object tagging (Swift: 501) is off — expiry comes from the
// sweep, not from lifecycle rules on tags; DeleteObjects without Content-MD5 (Swift: 400) is replaced by single
// deletes; request checksums are computed only when an operation requires them.
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import { S3Store } from '@tus/s3-store';
import { ERRORS } from '@tus/utils';
import type { Config } from '../../core/config.ts';
import { UPLOAD_ID } from './store.ts';

/** The storage key of an S3 upload's data object. */
export function uploadKey(id: string): string {
  if (!UPLOAD_ID.test(id)) throw new RangeError(`not an upload id: ${id}`);
  return `uploads/${id}`;
}

export class SmoothcastS3Store extends S3Store {
  readonly #prefix: string;

  constructor(config: Config) {
    const c = config.storage;
    const prefix = `${c.s3Prefix}uploads/`;
    const clientConfig: S3ClientConfig & { bucket: string } = {
      bucket: c.s3Bucket,
      region: c.s3Region,
      forcePathStyle: c.s3ForcePathStyle,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(c.s3Endpoint ? { endpoint: c.s3Endpoint } : {}),
      ...(c.s3AccessKeyId
        ? { credentials: { accessKeyId: c.s3AccessKeyId, secretAccessKey: c.s3SecretAccessKey } }
        : {}),
    };
    super({
      s3ClientConfig: clientConfig,
      partSize: 8 * 2 ** 20,
      useTags: false,
      expirationPeriodInMilliseconds: Math.round(config.uploads.expireHours * 3600_000),
      maxConcurrentPartUploads: 8,
    });
    this.#prefix = prefix;
    // Every object key the store names (`<id>`, `<id>.info`, `<id>.part`) goes under the prefix: one middleware
    // instead of overriding each call of the store.
    this.client.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as { Key?: string; Prefix?: string };
        if (typeof input.Key === 'string' && !input.Key.startsWith(prefix)) input.Key = prefix + input.Key;
        if (typeof input.Prefix === 'string' && !input.Prefix.startsWith(prefix)) input.Prefix = prefix + input.Prefix;
        return next(args);
      },
      { step: 'initialize', name: 'smoothcastUploadPrefix' },
    );
  }

  get keyPrefix(): string {
    return this.#prefix;
  }

  /** As S3Store's, without DeleteObjects (refused by Swift without Content-MD5): one delete per object. */
  override async remove(id: string): Promise<void> {
    try {
      const { 'upload-id': uploadId } = await this.getMetadata(id);
      if (uploadId) {
        await this.client.abortMultipartUpload({ Bucket: this.bucket, Key: id, UploadId: uploadId }).catch(() => {});
      }
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey' || (err as { name?: string }).name === 'NotFound') {
        throw ERRORS.FILE_NOT_FOUND;
      }
      throw err;
    }
    for (const key of [id, this.infoKey(id), this.partKey(id, true)]) {
      await this.client.deleteObject({ Bucket: this.bucket, Key: key }).catch(() => {});
    }
    this.clearCache(id);
  }

  /** Removes an upload's data object once it became an asset's source (its .info stays: HEAD still answers). */
  async removeData(id: string): Promise<void> {
    await this.client.deleteObject({ Bucket: this.bucket, Key: id }).catch(() => {});
  }
}
