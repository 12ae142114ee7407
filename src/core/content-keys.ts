// Content keys for encryption on the fly: one random 128-bit key and key id (KID) per asset (or per rendition),
// stored only WRAPPED by the master key from config (AES-256-GCM: the wrapped form authenticates the key id and
// what it belongs to, so a wrapped key copied onto another asset does not unwrap). The origin unwraps a key once
// and keeps it in memory; the database never holds a key in clear.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SmoothcastError } from './errors.ts';

export interface ContentKey {
  /** 16 bytes (CENC default_KID, HLS key URI name). */
  kid: Buffer;
  /** 16 bytes. */
  key: Buffer;
}

export function newContentKey(): ContentKey {
  return { kid: randomBytes(16), key: randomBytes(16) };
}

/** The master key from config: 32 bytes as 64 hex digits or 44 base64 characters. */
export function parseMasterKey(text: string): Buffer {
  const t = text.trim();
  const b = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (b.length !== 32 || (!/^[0-9a-fA-F]{64}$/.test(t) && b.toString('base64') !== t)) {
    throw new SmoothcastError('CONFIG_INVALID', 'the master key must be 32 bytes: 64 hex digits or base64');
  }
  return b;
}

const VERSION = 1;

/** `v1.<iv>.<ciphertext+tag>` (base64url): the key wrapped for `owner` (e.g. the asset id). */
export function wrapKey(master: Buffer, owner: string, k: ContentKey): string {
  if (master.length !== 32) throw new SmoothcastError('INTERNAL', 'the master key is 32 bytes');
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', master, iv);
  c.setAAD(Buffer.from(`smoothcast-content-key:${VERSION}:${owner}`));
  const body = Buffer.concat([c.update(Buffer.concat([k.kid, k.key])), c.final(), c.getAuthTag()]);
  return `v${VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`;
}

/** Inverse of wrapKey; a wrong master key, another owner or a damaged value → INTERNAL (never a clear key). */
export function unwrapKey(master: Buffer, owner: string, wrapped: string): ContentKey {
  const m = /^v1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{64})$/.exec(wrapped);
  if (!m) throw new SmoothcastError('INTERNAL', 'not a wrapped content key');
  const body = Buffer.from(m[2]!, 'base64url');
  try {
    const d = createDecipheriv('aes-256-gcm', master, Buffer.from(m[1]!, 'base64url'));
    d.setAAD(Buffer.from(`smoothcast-content-key:${VERSION}:${owner}`));
    d.setAuthTag(body.subarray(32));
    const clear = Buffer.concat([d.update(body.subarray(0, 32)), d.final()]);
    return { kid: clear.subarray(0, 16), key: clear.subarray(16, 32) };
  } catch (err) {
    throw new SmoothcastError('INTERNAL', 'the content key does not unwrap with this master key for this asset', {
      cause: err,
    });
  }
}
