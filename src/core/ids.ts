// Random identifiers: lowercase RFC 4648 base32 (32 symbols, so each random byte's low 5 bits map without bias),
// URL- and path-safe. Asset, caption and live-stream ids and stream keys all come from here.
import { randomBytes } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** `prefix` + `n` random base32 characters (5 bits each). */
export function randomBase32(n: number, prefix = ''): string {
  let s = prefix;
  for (const byte of randomBytes(n)) s += BASE32[byte & 31];
  return s;
}
