// The secrets of accounts and API access (issue 10 groundwork; not wired yet): password hashes with node:crypto
// scrypt at OWASP's parameters (N = 2^17, r = 8, p = 1: https://cheatsheetseries.owasp.org/cheatsheets/
// Password_Storage_Cheat_Sheet.html), stored self-describing so the parameters can be raised later; API tokens
// that are random, shown once and stored only as a SHA-256 hash (a token has 256 bits of entropy, so a fast hash
// is the right one: nothing to brute-force); every comparison of secrets in constant time.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { SmoothcastError } from '../errors.ts';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const OWASP_SCRYPT: ScryptParams = { N: 2 ** 17, r: 8, p: 1 };
const KEY_LEN = 32;
const MAX_PASSWORD_BYTES = 1024;

function derive(password: string, salt: Buffer, q: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFKC'), salt, KEY_LEN, { ...q, maxmem: 256 * q.N * q.r + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

function checkPassword(password: string): void {
  if (typeof password !== 'string' || password.length === 0) {
    throw new SmoothcastError('BAD_REQUEST', 'a password must be a non-empty string');
  }
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) {
    throw new SmoothcastError('BAD_REQUEST', `a password is at most ${MAX_PASSWORD_BYTES} bytes`);
  }
}

/** `scrypt$N$r$p$salt$hash` (base64url): what is stored for a password. */
export async function hashPassword(password: string, q: ScryptParams = OWASP_SCRYPT): Promise<string> {
  checkPassword(password);
  const salt = randomBytes(16);
  const key = await derive(password, salt, q);
  return ['scrypt', q.N, q.r, q.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Whether `password` matches the stored hash (constant time in the hash; a malformed record is false). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  if (typeof password !== 'string' || password.length === 0 || Buffer.byteLength(password) > MAX_PASSWORD_BYTES) {
    return false;
  }
  const m = /^scrypt\$(\d{1,8})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9_-]{22})\$([A-Za-z0-9_-]{43})$/.exec(stored);
  if (!m) return false;
  const q = { N: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  // Refuse parameters that would let a stored record cost more than we would ever choose (a planted row).
  if (q.N < 2 || q.N > 2 ** 20 || (q.N & (q.N - 1)) !== 0 || q.r < 1 || q.r > 16 || q.p < 1 || q.p > 4) return false;
  const key = await derive(password, Buffer.from(m[4]!, 'base64url'), q);
  return timingSafeEqual(key, Buffer.from(m[5]!, 'base64url'));
}

/** Whether a stored hash was made with weaker parameters than `q` (rehash at the next login). */
export function needsRehash(stored: string, q: ScryptParams = OWASP_SCRYPT): boolean {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$/.exec(stored);
  return !m || Number(m[1]) < q.N || Number(m[2]) < q.r || Number(m[3]) < q.p;
}

/** A new API token: `sc_` + 43 base64url characters (256 bits). Shown once; store tokenHash(token). */
export function newToken(): string {
  return `sc_${randomBytes(32).toString('base64url')}`;
}

export const TOKEN_PATTERN = /^sc_[A-Za-z0-9_-]{43}$/;

/** What is stored of a token: its SHA-256, hex. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Constant-time equality of two secrets of any length (lengths compared through their hashes). */
export function secretsEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}
