// Playback signing keys (table signing_keys, migration 6): ES256 (ECDSA on P-256) key pairs whose public half
// verifies signed playback tokens (src/core/auth/playback-tokens.ts). Two kinds:
// - server: the key smoothcast signs its own tokens with. Its private key is stored only WRAPPED by the master key
//   (AES-256-GCM; the additional data names the key id and its public point, so a wrapped value copied onto another
//   row does not unwrap), never in clear.
// - customer: a key a customer's backend signs tokens with. The private key is handed out once, at creation, as
//   PKCS#8 PEM and never stored: the database holds its public JWK only.
// The origin needs public keys only (verificationKeys); revoking a key makes every token it signed invalid.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { exportJWK, exportPKCS8, generateKeyPair, type JWK } from 'jose';
import { sql } from 'kysely';
import { SmoothcastError } from '../errors.ts';
import { randomBase32 } from '../ids.ts';
import { type Db, int, type Row, text } from './database.ts';
import { insertionOrder } from './dialect.ts';

export type SigningKeyKind = 'server' | 'customer';
/** The one algorithm of playback tokens. */
export type SigningAlg = 'ES256';
export const SIGNING_ALG: SigningAlg = 'ES256';

/** A P-256 public key as a JWK (RFC 7518 §6.2.1): exactly these members, never `d`. */
export interface PublicEcJwk {
  kty: 'EC';
  crv: 'P-256';
  /** base64url of the 32-byte x coordinate. */
  x: string;
  /** base64url of the 32-byte y coordinate. */
  y: string;
}

/** A key as listed: no private material. */
export interface SigningKey {
  id: string;
  kind: SigningKeyKind;
  alg: SigningAlg;
  publicJwk: PublicEcJwk;
  createdAt: number;
  revokedAt: number | null;
}

/** What the origin holds to verify tokens: public keys only. */
export interface VerificationKey {
  id: string;
  alg: SigningAlg;
  publicJwk: PublicEcJwk;
  revokedAt: number | null;
}

/** The answer to createCustomerKey: the private key is in it once and nowhere else. */
export interface NewCustomerKey {
  id: string;
  alg: SigningAlg;
  /** PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`): what the customer's backend signs with. Not stored. */
  privateKeyPem: string;
  publicJwk: PublicEcJwk;
  createdAt: number;
}

export interface SigningKeyRepository {
  /** A new server key; its private key is stored wrapped by `master` (32 bytes). */
  createServerKey(master: Buffer): Promise<SigningKey>;
  /** The active server key, or a new one when none is active (two processes racing create one, not two). */
  ensureServerKey(master: Buffer): Promise<SigningKey>;
  /** A new customer key; the returned private key is never stored. */
  createCustomerKey(): Promise<NewCustomerKey>;
  /** Every key, newest first (revoked ones too). */
  list(): Promise<SigningKey[]>;
  /** Null for an unknown or malformed id. */
  get(id: string): Promise<SigningKey | null>;
  /** Sets revoked_at (a key revoked already keeps its first time); unknown → SIGNING_KEY_NOT_FOUND. */
  revoke(id: string): Promise<SigningKey>;
  /** The newest server key that is not revoked. */
  activeServerKey(): Promise<SigningKey | null>;
  /** A server key's private key as a JWK (unwrapped with `master`): for the signer only, never for an API. */
  serverPrivateJwk(id: string, master: Buffer): Promise<JWK>;
  /** Every key with its public JWK and revokedAt. */
  verificationKeys(): Promise<VerificationKey[]>;
}

/** 'k' + 16 base32 characters (80 random bits). Key ids are public: they are in every token's header. */
export const SIGNING_KEY_ID = /^k[a-z2-7]{16}$/;

export function newSigningKeyId(): string {
  return randomBase32(16, 'k');
}

const WRAP_VERSION = 1;

function wrapAad(id: string, pub: PublicEcJwk): Buffer {
  return Buffer.from(`smoothcast-signing-key:${WRAP_VERSION}:${id}:${pub.x}.${pub.y}`);
}

/** `v1.<iv>.<ciphertext+tag>` (base64url) of the 32-byte private scalar `d`, for key `id`. */
export function wrapPrivateKey(master: Buffer, id: string, pub: PublicEcJwk, d: Buffer): string {
  if (master.length !== 32) throw new SmoothcastError('INTERNAL', 'the master key is 32 bytes');
  if (d.length !== 32) throw new SmoothcastError('INTERNAL', 'a P-256 private key is 32 bytes');
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', master, iv);
  c.setAAD(wrapAad(id, pub));
  const body = Buffer.concat([c.update(d), c.final(), c.getAuthTag()]);
  return `v${WRAP_VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`;
}

/** Inverse of wrapPrivateKey; a wrong master key, another key id or a damaged value → INTERNAL. */
export function unwrapPrivateKey(master: Buffer, id: string, pub: PublicEcJwk, wrapped: string): Buffer {
  const m = /^v1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{64})$/.exec(wrapped);
  if (!m) throw new SmoothcastError('INTERNAL', 'not a wrapped signing key');
  const body = Buffer.from(m[2]!, 'base64url');
  try {
    const d = createDecipheriv('aes-256-gcm', master, Buffer.from(m[1]!, 'base64url'));
    d.setAAD(wrapAad(id, pub));
    d.setAuthTag(body.subarray(32));
    return Buffer.concat([d.update(body.subarray(0, 32)), d.final()]);
  } catch (err) {
    throw new SmoothcastError('INTERNAL', `signing key ${id} does not unwrap with this master key`, { cause: err });
  }
}

function publicPart(jwk: JWK): PublicEcJwk {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
    throw new SmoothcastError('INTERNAL', 'not a P-256 key');
  }
  return { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
}

export class SqliteSigningKeys implements SigningKeyRepository {
  readonly #db: Db;
  readonly #now: () => number;

  constructor(db: Db, options: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
  }

  async createServerKey(master: Buffer): Promise<SigningKey> {
    const row = await this.#newServerRow(master);
    await this.#insert(row);
    return this.#mustGet(row.id);
  }

  async ensureServerKey(master: Buffer): Promise<SigningKey> {
    const active = await this.activeServerKey();
    if (active) return active;
    // Key generation (and the wrap's random IV) happens before the transaction, whose callback may run again on
    // PostgreSQL: generate first, insert only if still none is active. Racing callers serialize on the check (SQLite:
    // the write lock; PostgreSQL: SERIALIZABLE makes all but one retry, and the retry finds the winner's key).
    const row = await this.#newServerRow(master);
    return this.#db.write(async () => {
      const again = await this.activeServerKey();
      if (again) return again;
      await this.#insert(row);
      return this.#mustGet(row.id);
    });
  }

  async createCustomerKey(): Promise<NewCustomerKey> {
    const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
    const publicJwk = publicPart(await exportJWK(publicKey));
    const privateKeyPem = await exportPKCS8(privateKey);
    const id = newSigningKeyId();
    const createdAt = this.#now();
    await this.#insert({ id, kind: 'customer', publicJwk, privateWrapped: null, createdAt: createdAt });
    return { id, alg: SIGNING_ALG, privateKeyPem, publicJwk, createdAt };
  }

  async list(): Promise<SigningKey[]> {
    const order = insertionOrder(this.#db.dialect);
    const rows = await this.#db.all(
      sql`SELECT id, kind, alg, public_jwk, created_at, revoked_at FROM signing_keys
          ORDER BY created_at DESC, ${order} DESC`,
    );
    return rows.map(toKey);
  }

  async get(id: string): Promise<SigningKey | null> {
    if (typeof id !== 'string' || !SIGNING_KEY_ID.test(id)) return null;
    const row = await this.#db.get(
      sql`SELECT id, kind, alg, public_jwk, created_at, revoked_at FROM signing_keys WHERE id = ${id}`,
    );
    return row === undefined ? null : toKey(row);
  }

  revoke(id: string): Promise<SigningKey> {
    return this.#db.write(async () => {
      await this.#mustGet(id);
      await this.#db.run(
        sql`UPDATE signing_keys SET revoked_at = ${this.#now()} WHERE id = ${id} AND revoked_at IS NULL`,
      );
      return this.#mustGet(id);
    });
  }

  async activeServerKey(): Promise<SigningKey | null> {
    const order = insertionOrder(this.#db.dialect);
    const row = await this.#db.get(
      sql`SELECT id, kind, alg, public_jwk, created_at, revoked_at FROM signing_keys
          WHERE kind = 'server' AND revoked_at IS NULL ORDER BY created_at DESC, ${order} DESC LIMIT 1`,
    );
    return row === undefined ? null : toKey(row);
  }

  async serverPrivateJwk(id: string, master: Buffer): Promise<JWK> {
    // One read: the public key and the wrapped private key of the same row.
    const row =
      typeof id === 'string' && SIGNING_KEY_ID.test(id)
        ? await this.#db.get(
            sql`SELECT id, kind, alg, public_jwk, created_at, revoked_at, private_wrapped FROM signing_keys
                WHERE id = ${id}`,
          )
        : undefined;
    const key = row === undefined ? null : toKey(row);
    if (key?.kind !== 'server') throw new SmoothcastError('SIGNING_KEY_NOT_FOUND', `no server key ${id}`);
    const d = unwrapPrivateKey(master, id, key.publicJwk, text(row!, 'private_wrapped'));
    return { ...key.publicJwk, d: d.toString('base64url') };
  }

  async verificationKeys(): Promise<VerificationKey[]> {
    return (await this.list()).map((k) => ({ id: k.id, alg: k.alg, publicJwk: k.publicJwk, revokedAt: k.revokedAt }));
  }

  async #newServerRow(master: Buffer): Promise<KeyRow> {
    if (master.length !== 32) throw new SmoothcastError('INTERNAL', 'the master key is 32 bytes');
    const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
    const jwk = await exportJWK(privateKey);
    if (typeof jwk.d !== 'string') throw new SmoothcastError('INTERNAL', 'generated key has no private part');
    const publicJwk = publicPart(jwk);
    const id = newSigningKeyId();
    const privateWrapped = wrapPrivateKey(master, id, publicJwk, Buffer.from(jwk.d, 'base64url'));
    return { id, kind: 'server', publicJwk, privateWrapped, createdAt: this.#now() };
  }

  async #insert(r: KeyRow): Promise<void> {
    await this.#db.run(
      sql`INSERT INTO signing_keys (id, kind, alg, public_jwk, private_wrapped, created_at, revoked_at)
          VALUES (${r.id}, ${r.kind}, ${SIGNING_ALG}, ${JSON.stringify(r.publicJwk)}, ${r.privateWrapped}, ${r.createdAt},
            NULL)`,
    );
  }

  async #mustGet(id: string): Promise<SigningKey> {
    const k = await this.get(id);
    if (!k) throw new SmoothcastError('SIGNING_KEY_NOT_FOUND', `no signing key ${String(id).slice(0, 40)}`);
    return k;
  }
}

interface KeyRow {
  id: string;
  kind: SigningKeyKind;
  publicJwk: PublicEcJwk;
  privateWrapped: string | null;
  createdAt: number;
}

function toKey(row: Row): SigningKey {
  const kind = text(row, 'kind');
  const alg = text(row, 'alg');
  if (kind !== 'server' && kind !== 'customer') throw new SmoothcastError('INTERNAL', `signing key kind ${kind}`);
  if (alg !== SIGNING_ALG) throw new SmoothcastError('INTERNAL', `signing key alg ${alg}`);
  let jwk: JWK;
  try {
    jwk = JSON.parse(text(row, 'public_jwk')) as JWK;
  } catch (err) {
    throw new SmoothcastError('INTERNAL', 'signing_keys.public_jwk holds invalid JSON', { cause: err });
  }
  return {
    id: text(row, 'id'),
    kind,
    alg,
    publicJwk: publicPart(jwk),
    createdAt: int(row, 'created_at'),
    revokedAt: row.revoked_at === null ? null : int(row, 'revoked_at'),
  };
}
