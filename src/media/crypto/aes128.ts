// HLS `METHOD=AES-128` (RFC 8216 §4.3.2.4, §5.2): a whole media segment encrypted with AES-128-CBC and PKCS#7
// padding, on the fly from the clear CMAF bytes (nothing stored twice). The IV is either given in EXT-X-KEY or, when
// absent, the segment's Media Sequence Number as a 128-bit big-endian integer: we always write it explicitly from
// the segment number, so the encrypted bytes of a segment are the same for every viewer (cacheable) and a player
// never has to guess. The init segment stays clear (an fMP4 EXT-X-MAP is not encrypted unless it has its own key).
// Pure: bytes in, bytes out; the key comes from the caller (src/core/content-keys.ts).
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { SmoothcastError } from '../../core/errors.ts';

/** The IV of segment `n`: n as a 128-bit big-endian integer (RFC 8216 §5.2). */
export function segmentIv(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new SmoothcastError('INTERNAL', `bad segment number ${n}`);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(n), 8);
  return iv;
}

/** `0x` + 32 hex digits, as EXT-X-KEY's IV attribute wants it. */
export function ivAttribute(iv: Uint8Array): string {
  return `0x${Buffer.from(iv).toString('hex').toUpperCase()}`;
}

function check(key: Uint8Array, iv: Uint8Array): void {
  if (key.length !== 16) throw new SmoothcastError('INTERNAL', `an AES-128 key is 16 bytes, not ${key.length}`);
  if (iv.length !== 16) throw new SmoothcastError('INTERNAL', `an AES-128 IV is 16 bytes, not ${iv.length}`);
}

/** The encrypted segment: AES-128-CBC, PKCS#7 padded (so 1–16 bytes longer than the clear one). */
export function encryptSegment(clear: Uint8Array, key: Uint8Array, iv: Uint8Array): Buffer {
  check(key, iv);
  const c = createCipheriv('aes-128-cbc', key, iv);
  return Buffer.concat([c.update(clear), c.final()]);
}

/** The size of the encrypted form of `clearSize` bytes (Content-Length before encrypting anything). */
export function encryptedSize(clearSize: number): number {
  return (Math.floor(clearSize / 16) + 1) * 16;
}

/** Inverse of encryptSegment (tests, tools); a wrong key or damaged bytes throw BAD_REQUEST. */
export function decryptSegment(encrypted: Uint8Array, key: Uint8Array, iv: Uint8Array): Buffer {
  check(key, iv);
  try {
    const d = createDecipheriv('aes-128-cbc', key, iv);
    return Buffer.concat([d.update(encrypted), d.final()]);
  } catch (err) {
    throw new SmoothcastError('BAD_REQUEST', 'not an AES-128 segment under this key and IV', { cause: err });
  }
}
