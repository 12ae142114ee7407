// Signed playback tokens: JSON Web Tokens (RFC 7519) signed with ES256 (ECDSA on P-256 with SHA-256, RFC 7518
// §3.4), after Mux's signed playback. Media whose playback policy is 'signed' is served only to requests that carry
// a valid token. smoothcast signs tokens with its own server key (PlaybackSigner); a customer's backend may sign its
// own with a customer key (src/core/db/signing-keys.ts), whose private key smoothcast hands out once and never keeps.
//
// HOW TO SIGN A TOKEN WITH A CUSTOMER KEY
// Creating a customer key gives its id and its private key as PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----"). Keep the
// PEM secret: smoothcast stores only the public key, so a lost private key means a new key. A token is a compact JWS
// (header.payload.signature, base64url without padding), at most 2048 characters in all, with:
//   Header
//     alg  "ES256" — required, exactly; any other value ("none", "HS256", "RS256", …) is refused.
//     kid  the signing key's id: "k" followed by 16 characters of a–z and 2–7 — required.
//     typ  optional ("JWT"). A "crit" header is refused; other header parameters are ignored.
//   Payload
//     sub  string, required: the asset id, or the live stream id, the token plays.
//     aud  required: one of, or a non-empty array of, these strings (any other value makes the token invalid):
//            "manifest"  — manifests (HLS, DASH, …) and, for media without encryption, their segments;
//            "key"       — HLS encryption keys and the ClearKey license;
//            "thumbnail" — thumbnail images;
//            "download"  — downloads of the media.
//     exp  number, required: expiry, in seconds since 1970-01-01T00:00:00Z (a NumericDate).
//     ip   string, optional: the one client address that may use the token (IPv4 dotted quad or IPv6 in any
//          valid spelling; "::ffff:a.b.c.d" equals "a.b.c.d"). Without it, any address may.
//     sid  string, optional: a viewer session id, 1–128 characters of A–Z a–z 0–9 . _ ~ : -. Several requests
//          with one sid are one viewer session.
//     iat  number, optional: issued-at (NumericDate).
//     nbf  number, optional: not-before (NumericDate): refused before it.
//     Other claims are allowed and ignored.
//   Example (Node, with the jose library):
//     const key = await importPKCS8(privateKeyPem, 'ES256');
//     const token = await new SignJWT({ sid: 'viewer-42' })
//       .setProtectedHeader({ alg: 'ES256', kid: 'kabcdefghijklmnop' })
//       .setSubject(assetId).setAudience(['manifest', 'key']).setExpirationTime('2h').sign(key);
//
// VERIFICATION (PlaybackVerifier: public keys only), every failure a SmoothcastError, HTTP 403:
//   PLAYBACK_TOKEN_REQUIRED     no token;
//   PLAYBACK_TOKEN_INVALID      longer than 2048 characters, malformed, bad signature, alg not ES256, unknown kid,
//                               a claim missing or of the wrong type or value, or before nbf;
//   PLAYBACK_TOKEN_EXPIRED      exp has passed (5 seconds of clock skew allowed, also for nbf);
//   PLAYBACK_TOKEN_KEY_REVOKED  the key that signed it was revoked (its tokens stop working at once);
//   PLAYBACK_TOKEN_WRONG_ASSET  sub is not the requested asset or live stream;
//   PLAYBACK_TOKEN_WRONG_AUD    aud does not include the kind of the request;
//   PLAYBACK_TOKEN_WRONG_IP     ip is present and is not the client's address.
// The signature is checked before anything about the claims is reported, so a forged token only ever gets INVALID.
// Tokens whose signature verified are kept (a bounded LRU, never past their exp): a player's repeated requests with
// one token cost a map lookup, not an ECDSA verification.
import { isIP } from 'node:net';
import { type CryptoKey, decodeProtectedHeader, importJWK, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import { SIGNING_ALG, SIGNING_KEY_ID, type SigningKeyRepository, type VerificationKey } from '../db/signing-keys.ts';
import { SmoothcastError } from '../errors.ts';

export type PlaybackAud = 'manifest' | 'key' | 'thumbnail' | 'download';
export const PLAYBACK_AUDS: readonly PlaybackAud[] = ['manifest', 'key', 'thumbnail', 'download'];

/** Longer tokens are refused before any parsing. */
export const MAX_TOKEN_LENGTH = 2048;
/** Tolerance on exp and nbf. */
export const CLOCK_SKEW_SECONDS = 5;
/** Longest lifetime PlaybackSigner.sign gives a token. */
export const MAX_EXPIRES_IN_SECONDS = 365 * 24 * 3600;

const SID = /^[A-Za-z0-9._~:-]{1,128}$/;
const SUB_MAX = 256;
/** Three base64url parts (the signature part non-empty: no unsecured JWTs). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The claims of a verified token (frozen; shared by every request that carries the same token). */
export interface PlaybackClaims {
  /** The signing key's id (header kid). */
  readonly kid: string;
  readonly sub: string;
  /** Always an array (a single-string aud becomes a one-element array). */
  readonly aud: readonly PlaybackAud[];
  /** Seconds since the epoch. */
  readonly exp: number;
  readonly iat?: number;
  readonly nbf?: number;
  /** Normalized (IPv6 canonical form; IPv4-mapped IPv6 as dotted IPv4). */
  readonly ip?: string;
  readonly sid?: string;
}

export interface PlaybackWant {
  /** The asset or live stream id of the request. */
  sub: string;
  /** The kind of the request. */
  aud: PlaybackAud;
  /** The client's address. */
  ip: string;
}

export interface SignInput {
  sub: string;
  aud: PlaybackAud | readonly PlaybackAud[];
  /** Lifetime: 1 … MAX_EXPIRES_IN_SECONDS. */
  expiresInSeconds: number;
  ip?: string;
  sid?: string;
}

export interface SignedToken {
  token: string;
  /** When it expires: ms since the epoch (exp × 1000). */
  expiresAt: number;
}

type PlaybackErrorCode =
  | 'PLAYBACK_TOKEN_REQUIRED'
  | 'PLAYBACK_TOKEN_INVALID'
  | 'PLAYBACK_TOKEN_EXPIRED'
  | 'PLAYBACK_TOKEN_WRONG_ASSET'
  | 'PLAYBACK_TOKEN_WRONG_AUD'
  | 'PLAYBACK_TOKEN_KEY_REVOKED'
  | 'PLAYBACK_TOKEN_WRONG_IP';

function fail(code: PlaybackErrorCode, message?: string): never {
  throw new SmoothcastError(code, message);
}

/**
 * An address in one spelling: IPv4 as is, IPv6 in its canonical (RFC 5952) form, IPv4-mapped IPv6 as dotted IPv4;
 * undefined when not an IP address.
 */
export function normalizeIp(ip: string): string | undefined {
  if (typeof ip !== 'string') return undefined;
  const v = isIP(ip);
  if (v === 4) return ip;
  if (v !== 6) return undefined;
  let host: string;
  try {
    host = new URL(`http://[${ip}]/`).hostname;
  } catch {
    return undefined;
  }
  const inner = host.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(inner);
  if (mapped) {
    const hi = Number.parseInt(mapped[1]!, 16);
    const lo = Number.parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return inner;
}

function isAud(v: unknown): v is PlaybackAud {
  return typeof v === 'string' && (PLAYBACK_AUDS as readonly string[]).includes(v);
}

/** Signs tokens with the server key (its private key unwrapped once, held as a non-extractable CryptoKey). */
export class PlaybackSigner {
  readonly #keys: SigningKeyRepository;
  readonly #master: Buffer;
  readonly #now: () => number;
  #held: { id: string; key: Promise<CryptoKey> } | undefined;

  constructor(keys: SigningKeyRepository, master: Buffer, options: { now?: () => number } = {}) {
    this.#keys = keys;
    this.#master = master;
    this.#now = options.now ?? Date.now;
  }

  async sign(input: SignInput): Promise<SignedToken> {
    const { sub, expiresInSeconds } = input;
    if (typeof sub !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(sub)) {
      throw new SmoothcastError('BAD_REQUEST', 'sub must be an asset or live stream id');
    }
    const aud = typeof input.aud === 'string' ? [input.aud] : [...(input.aud ?? [])];
    if (aud.length === 0 || !aud.every(isAud)) {
      throw new SmoothcastError('BAD_REQUEST', `aud must be one or more of ${PLAYBACK_AUDS.join(', ')}`);
    }
    if (!Number.isSafeInteger(expiresInSeconds) || expiresInSeconds < 1 || expiresInSeconds > MAX_EXPIRES_IN_SECONDS) {
      throw new SmoothcastError(
        'BAD_REQUEST',
        `expiresInSeconds must be an integer from 1 to ${MAX_EXPIRES_IN_SECONDS}`,
      );
    }
    const extra: JWTPayload = {};
    if (input.ip !== undefined) {
      const ip = normalizeIp(input.ip);
      if (ip === undefined) throw new SmoothcastError('BAD_REQUEST', 'ip must be an IPv4 or IPv6 address');
      extra.ip = ip;
    }
    if (input.sid !== undefined) {
      if (typeof input.sid !== 'string' || !SID.test(input.sid)) {
        throw new SmoothcastError('BAD_REQUEST', 'sid must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ : -');
      }
      extra.sid = input.sid;
    }
    const { id, key } = await this.#key();
    const iat = Math.floor(this.#now() / 1000);
    const exp = iat + expiresInSeconds;
    const token = await new SignJWT(extra)
      .setProtectedHeader({ alg: SIGNING_ALG, kid: id, typ: 'JWT' })
      .setSubject(sub)
      .setAudience(aud.length === 1 ? aud[0]! : [...new Set(aud)])
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(key);
    return { token, expiresAt: exp * 1000 };
  }

  /** A new server key, used from now on; tokens of the old one stay valid until it is revoked. */
  async rotate(): Promise<{ id: string }> {
    const k = await this.#keys.createServerKey(this.#master);
    this.#held = undefined;
    return { id: k.id };
  }

  /**
   * The active server key (created on first use). Looked up on every sign (one small query, far cheaper than the
   * signature), so a rotation or revocation by another process or call takes effect at the next token.
   */
  async #key(): Promise<{ id: string; key: CryptoKey }> {
    const active = (await this.#keys.activeServerKey()) ?? (await this.#keys.ensureServerKey(this.#master));
    let held = this.#held;
    if (held?.id !== active.id) {
      const key = this.#keys
        .serverPrivateJwk(active.id, this.#master)
        .then((jwk) => importJWK(jwk, SIGNING_ALG, { extractable: false }) as Promise<CryptoKey>);
      held = { id: active.id, key };
      this.#held = held;
      held.key.catch(() => {
        if (this.#held === held) this.#held = undefined;
      });
    }
    return { id: held.id, key: await held.key };
  }
}

export interface PlaybackVerifierOptions {
  /** Clock, ms since the epoch. */
  now?: () => number;
  /** Verified tokens kept (LRU). Default 10 000. */
  cacheSize?: number;
  /** An unknown kid reloads the keys at most this often (ms). Default 1000. */
  minReloadIntervalMs?: number;
  /**
   * The keys are reloaded when older than this (ms), so a key created or revoked by another process is seen within
   * it. Default 30 000; 0 turns it off (reload only on invalidate() and unknown kids).
   */
  keyRefreshMs?: number;
  /** Called before each signature verification (tests, metrics). */
  onSignatureCheck?: () => void;
}

interface KeyState {
  jwk: string;
  revokedAt: number | null;
  /** Imported on first use. */
  imported: Promise<CryptoKey> | undefined;
  publicJwk: VerificationKey['publicJwk'];
}

interface Entry {
  claims: PlaybackClaims;
  /** When it last moved to the recent end of the LRU (ms). */
  seenAt: number;
}

/** A hit moves its entry to the recent end at most this often: a player's many requests cost a plain lookup. */
const LRU_TOUCH_MS = 5000;

/**
 * Where the verifier gets its keys: SigningKeyRepository.verificationKeys (a database query, so usually async).
 */
export type VerificationKeyLoader = () => readonly VerificationKey[] | Promise<readonly VerificationKey[]>;

/**
 * Verifies tokens against the public keys `loadKeys` returns (SigningKeyRepository.verificationKeys). The keys are
 * loaded (a query) only on the async path, verify(): verifyCached never waits on the database, and answers
 * undefined — "call verify" — whenever the keys it holds are due for a reload, so a revocation is never answered
 * from keys older than keyRefreshMs or from before an invalidate().
 */
export class PlaybackVerifier {
  readonly #loadKeys: VerificationKeyLoader;
  readonly #now: () => number;
  readonly #cacheSize: number;
  readonly #minReloadMs: number;
  readonly #refreshMs: number;
  readonly #onCheck: (() => void) | undefined;
  #keys = new Map<string, KeyState>();
  #loadedAt = Number.NEGATIVE_INFINITY;
  /** Incremented by invalidate(): keys from a load that began before it are not current. */
  #epoch = 0;
  /** The epoch of the keys held (-1: none loaded yet); below #epoch, they must be reloaded before any answer. */
  #keysEpoch = -1;
  /** The load in flight, shared by every caller of its epoch. */
  #loading: { epoch: number; done: Promise<void> } | undefined;
  readonly #cache = new Map<string, Entry>();

  constructor(loadKeys: VerificationKeyLoader, options: PlaybackVerifierOptions = {}) {
    this.#loadKeys = loadKeys;
    this.#now = options.now ?? Date.now;
    this.#cacheSize = Math.max(1, Math.trunc(options.cacheSize ?? 10_000));
    this.#minReloadMs = options.minReloadIntervalMs ?? 1000;
    this.#refreshMs = options.keyRefreshMs ?? 30_000;
    this.#onCheck = options.onSignatureCheck;
  }

  /** Verified tokens in the cache. */
  get cached(): number {
    return this.#cache.size;
  }

  /**
   * Forgets every verified token and reloads the keys: call after a key is revoked, created or changed. Takes
   * effect at once (until the reload is done, every verify waits for it); the promise is that reload.
   */
  invalidate(): Promise<void> {
    this.#cache.clear();
    this.#epoch++;
    const done = this.#reload();
    done.catch(() => {}); // a caller that does not wait: the next verify reloads again and reports the error
    return done;
  }

  /** The claims of a valid token for `want`; throws a SmoothcastError with a PLAYBACK_TOKEN_* code otherwise. */
  async verify(token: string | undefined, want: PlaybackWant): Promise<PlaybackClaims> {
    const hit = this.verifyCached(token, want);
    if (hit) return hit;
    const t = token as string;
    if (await this.#freshKeys()) {
      // The keys were due: the token may be in the cache, answerable now.
      const again = this.verifyCached(t, want);
      if (again) return again;
    }
    const entry = await this.#verifySignature(t);
    this.#remember(t, entry);
    return this.#check(t, entry, want, this.#now());
  }

  /**
   * The synchronous fast path: throws what verify would throw, or returns the claims, whenever that needs neither
   * a signature check nor a reload of the keys; undefined when the token is not in the cache or the keys are due
   * for a reload (then call verify).
   */
  verifyCached(token: string | undefined, want: PlaybackWant): PlaybackClaims | undefined {
    if (token === undefined || token === null || token === '') fail('PLAYBACK_TOKEN_REQUIRED');
    if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) {
      fail('PLAYBACK_TOKEN_INVALID', `a playback token is a string of at most ${MAX_TOKEN_LENGTH} characters`);
    }
    const t = token as string;
    if (!COMPACT_JWS.test(t)) fail('PLAYBACK_TOKEN_INVALID', 'a playback token is a signed JWT (compact JWS)');
    const entry = this.#cache.get(t);
    if (entry === undefined) return undefined;
    const now = this.#now();
    if (this.#keysDue(now)) {
      // Only what needs no key can be answered before the reload (a revocation may be in the new keys).
      this.#failIfExpired(t, entry, now);
      return undefined;
    }
    // Most recently used last (Map keeps insertion order), refreshed every few seconds rather than on every hit:
    // a delete + set per request costs more than the lookup itself once the Map is large.
    if (now - entry.seenAt > LRU_TOUCH_MS) {
      entry.seenAt = now;
      this.#cache.delete(t);
      this.#cache.set(t, entry);
    }
    return this.#check(t, entry, want, now);
  }

  #failIfExpired(token: string, entry: Entry, now: number): void {
    if (entry.claims.exp <= Math.floor(now / 1000) - CLOCK_SKEW_SECONDS) {
      this.#cache.delete(token);
      fail('PLAYBACK_TOKEN_EXPIRED');
    }
  }

  #check(token: string, entry: Entry, want: PlaybackWant, now: number): PlaybackClaims {
    const c = entry.claims;
    this.#failIfExpired(token, entry, now);
    const key = this.#keys.get(c.kid);
    if (key === undefined) fail('PLAYBACK_TOKEN_INVALID', 'the key that signed this token is unknown');
    if (key.revokedAt !== null) fail('PLAYBACK_TOKEN_KEY_REVOKED');
    if (c.sub !== want.sub) fail('PLAYBACK_TOKEN_WRONG_ASSET');
    if (!c.aud.includes(want.aud)) fail('PLAYBACK_TOKEN_WRONG_AUD');
    if (c.ip !== undefined && normalizeIp(want.ip) !== c.ip) fail('PLAYBACK_TOKEN_WRONG_IP');
    return c;
  }

  #remember(token: string, entry: Entry): void {
    this.#cache.delete(token);
    while (this.#cache.size >= this.#cacheSize) {
      const oldest = this.#cache.keys().next();
      if (oldest.done) break;
      this.#cache.delete(oldest.value);
    }
    this.#cache.set(token, entry);
  }

  async #verifySignature(token: string): Promise<Entry> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch {
      return fail('PLAYBACK_TOKEN_INVALID', 'the token header is not valid');
    }
    if (header.alg !== SIGNING_ALG) fail('PLAYBACK_TOKEN_INVALID', `playback tokens are signed with ${SIGNING_ALG}`);
    const kid = header.kid;
    if (typeof kid !== 'string' || !SIGNING_KEY_ID.test(kid)) {
      fail('PLAYBACK_TOKEN_INVALID', 'the token header has no valid kid');
    }
    let state = this.#keys.get(kid);
    if (state === undefined && this.#now() - this.#loadedAt >= this.#minReloadMs) {
      // Another process may have created the key since the last load.
      await this.#reload();
      state = this.#keys.get(kid);
    }
    if (state === undefined) return fail('PLAYBACK_TOKEN_INVALID', 'the token is signed with an unknown key');
    state.imported ??= importJWK(state.publicJwk, SIGNING_ALG) as Promise<CryptoKey>;
    let key: CryptoKey;
    try {
      key = await state.imported;
    } catch {
      return fail('PLAYBACK_TOKEN_INVALID', 'the signing key is not usable');
    }
    this.#onCheck?.();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [SIGNING_ALG],
        clockTolerance: CLOCK_SKEW_SECONDS,
        currentDate: new Date(this.#now()),
        requiredClaims: ['sub', 'aud', 'exp'],
      }));
    } catch (e) {
      if ((e as { code?: unknown }).code === 'ERR_JWT_EXPIRED') fail('PLAYBACK_TOKEN_EXPIRED');
      return fail('PLAYBACK_TOKEN_INVALID');
    }
    return { claims: toClaims(kid, payload), seenAt: this.#now() };
  }

  /** The keys must be reloaded before they answer: never loaded, invalidated, or older than keyRefreshMs. */
  #keysDue(now: number): boolean {
    return this.#keysEpoch < this.#epoch || (this.#refreshMs > 0 && now - this.#loadedAt >= this.#refreshMs);
  }

  /** Reloads the keys if they are due; true when it did (or tried). */
  async #freshKeys(): Promise<boolean> {
    const now = this.#now();
    // Never loaded or invalidated: the keys held cannot answer, so a failure is the caller's error.
    if (this.#keysEpoch < this.#epoch) {
      await this.#reload();
      return true;
    }
    if (this.#refreshMs > 0 && now - this.#loadedAt >= this.#refreshMs) {
      try {
        await this.#reload();
      } catch {
        // Keep the keys we have (e.g. the database is busy); try again after another interval.
        this.#loadedAt = now;
      }
      return true;
    }
    return false;
  }

  /** Loads the keys; callers of one epoch share the load in flight. */
  #reload(): Promise<void> {
    const epoch = this.#epoch;
    if (this.#loading?.epoch === epoch) return this.#loading.done;
    const done = (async () => {
      const loaded = await this.#loadKeys();
      // A load begun before an invalidate() that a later load has already answered brings nothing newer.
      if (epoch < this.#keysEpoch) return;
      const next = new Map<string, KeyState>();
      for (const k of loaded) {
        if (k.alg !== SIGNING_ALG) continue;
        const jwk = JSON.stringify(k.publicJwk);
        const old = this.#keys.get(k.id);
        next.set(k.id, {
          jwk,
          revokedAt: k.revokedAt,
          publicJwk: k.publicJwk,
          imported: old?.jwk === jwk ? old.imported : undefined,
        });
      }
      this.#keys = next;
      this.#keysEpoch = epoch;
      this.#loadedAt = this.#now();
    })();
    const loading = { epoch, done };
    this.#loading = loading;
    const settle = () => {
      if (this.#loading === loading) this.#loading = undefined;
    };
    done.then(settle, settle);
    return done;
  }
}

function bad(what: string): never {
  throw new SmoothcastError('PLAYBACK_TOKEN_INVALID', `the token's ${what}`);
}

function toClaims(kid: string, p: JWTPayload): PlaybackClaims {
  if (typeof p.sub !== 'string' || p.sub.length === 0 || p.sub.length > SUB_MAX) bad('sub is not valid');
  const audList = typeof p.aud === 'string' ? [p.aud] : Array.isArray(p.aud) ? p.aud : [];
  if (audList.length === 0 || !audList.every(isAud)) bad(`aud is not one or more of ${PLAYBACK_AUDS.join(', ')}`);
  if (typeof p.exp !== 'number' || !Number.isFinite(p.exp)) bad('exp is not a number');
  const claims: {
    kid: string;
    sub: string;
    aud: readonly PlaybackAud[];
    exp: number;
    iat?: number;
    nbf?: number;
    ip?: string;
    sid?: string;
  } = { kid, sub: p.sub, aud: Object.freeze([...new Set(audList as PlaybackAud[])]), exp: p.exp };
  if (p.iat !== undefined) claims.iat = p.iat;
  if (p.nbf !== undefined) claims.nbf = p.nbf;
  if (p.ip !== undefined) {
    const ip = typeof p.ip === 'string' ? normalizeIp(p.ip) : undefined;
    if (ip === undefined) bad('ip is not an IP address');
    claims.ip = ip;
  }
  if (p.sid !== undefined) {
    if (typeof p.sid !== 'string' || !SID.test(p.sid)) bad('sid is not valid');
    claims.sid = p.sid;
  }
  return Object.freeze(claims);
}
