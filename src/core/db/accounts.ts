// Accounts: users with a role, their login sessions, API tokens, one-time direct uploads and the audit log. No
// secret is stored in clear: a password as its scrypt hash, a session cookie, an API token and an upload URL's
// token as their SHA-256 (they are 256-bit random values, so a fast hash is the right one).
import { sql } from 'kysely';
import { hashPassword, newToken, tokenHash, verifyPassword } from '../auth/secrets.ts';
import { SmoothcastError } from '../errors.ts';
import { randomBase32 } from '../ids.ts';
import { type Db, int, numOrNull as intOrNull, isUniqueViolation, type Row, text, textOrNull } from './database.ts';

export type Role = 'admin' | 'editor' | 'viewer';

export interface User {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  updatedAt: number;
}

export interface LoginSession {
  userId: string;
  csrf: string;
  expiresAt: number;
}

export interface ApiToken {
  id: string;
  name: string;
  scopes: string[];
  userId: string | null;
  createdAt: number;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface DirectUpload {
  id: string;
  maxSize: number;
  corsOrigin: string | null;
  policy: 'public' | 'signed';
  expiresAt: number;
  usedAt: number | null;
  uploadId: string | null;
  createdBy: string | null;
  createdAt: number;
}

export interface AuditEntry {
  seq: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  detail: unknown;
}

export const USER_ID = /^u[a-z2-7]{12}$/;
export const TOKEN_ID = /^t[a-z2-7]{12}$/;
export const DIRECT_UPLOAD_ID = /^d[a-z2-7]{12}$/;
/** User names: what a person types at a login prompt. */
export const USER_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const SESSION_COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;

function userOf(r: Row): User {
  return {
    id: text(r, 'id'),
    name: text(r, 'name'),
    role: text(r, 'role') as Role,
    createdAt: int(r, 'created_at'),
    updatedAt: int(r, 'updated_at'),
  };
}

function tokenOf(r: Row): ApiToken {
  return {
    id: text(r, 'id'),
    name: text(r, 'name'),
    scopes: text(r, 'scopes').split(' ').filter(Boolean),
    userId: textOrNull(r, 'user_id'),
    createdAt: int(r, 'created_at'),
    expiresAt: intOrNull(r, 'expires_at'),
    lastUsedAt: intOrNull(r, 'last_used_at'),
    revokedAt: intOrNull(r, 'revoked_at'),
  };
}

function directOf(r: Row): DirectUpload {
  return {
    id: text(r, 'id'),
    maxSize: int(r, 'max_size'),
    corsOrigin: textOrNull(r, 'cors_origin'),
    policy: text(r, 'policy') as 'public' | 'signed',
    expiresAt: int(r, 'expires_at'),
    usedAt: intOrNull(r, 'used_at'),
    uploadId: textOrNull(r, 'upload_id'),
    createdBy: textOrNull(r, 'created_by'),
    createdAt: int(r, 'created_at'),
  };
}

export class SqliteAccounts {
  readonly #db: Db;
  readonly #now: () => number;

  constructor(db: Db, now: () => number = Date.now) {
    this.#db = db;
    this.#now = now;
  }

  // ---- users

  async userCount(): Promise<number> {
    return int((await this.#db.get(sql`SELECT count(*) AS n FROM users`)) ?? {}, 'n');
  }

  async addUser(name: string, password: string, role: Role, cost?: Parameters<typeof hashPassword>[1]): Promise<User> {
    if (!USER_NAME.test(name)) {
      throw new SmoothcastError(
        'BAD_REQUEST',
        'a user name is 1–64 letters, digits or . _ @ - (starting alphanumeric)',
      );
    }
    if (password.length < 8) throw new SmoothcastError('BAD_REQUEST', 'a password has at least 8 characters');
    // scrypt first: it is slow and must not hold a transaction (or SQLite's one connection) while it runs.
    const hash = await hashPassword(password, cost);
    const now = this.#now();
    const id = randomBase32(12, 'u');
    // ON CONFLICT DO NOTHING rather than catching the violation: on PostgreSQL a failed statement aborts the
    // transaction it runs in (a caller's write()). The name is unique regardless of case on both engines (SQLite:
    // COLLATE NOCASE; PostgreSQL: the unique index on lower(name)).
    let inserted: number;
    try {
      inserted = await this.#db.run(
        sql`INSERT INTO users (id, name, role, password_hash, created_at, updated_at)
            VALUES (${id}, ${name}, ${role}, ${hash}, ${now}, ${now})
            ON CONFLICT DO NOTHING`,
      );
    } catch (err) {
      if (isUniqueViolation(err)) throw new SmoothcastError('USER_EXISTS', `a user named ${name} exists`);
      throw err;
    }
    if (inserted !== 1) throw new SmoothcastError('USER_EXISTS', `a user named ${name} exists`);
    return (await this.getUser(id))!;
  }

  async getUser(id: string): Promise<User | null> {
    if (!USER_ID.test(id)) return null;
    const r = await this.#db.get(sql`SELECT * FROM users WHERE id = ${id}`);
    return r ? userOf(r) : null;
  }

  /** Names compare regardless of case (lower() on both sides: PostgreSQL has no NOCASE collation). */
  async userByName(name: string): Promise<User | null> {
    if (!USER_NAME.test(name)) return null;
    const r = await this.#byName(name);
    return r ? userOf(r) : null;
  }

  async listUsers(): Promise<User[]> {
    // lower(name): SQLite's NOCASE order of the column, spelled so PostgreSQL sorts the same.
    return (await this.#db.all(sql`SELECT * FROM users ORDER BY created_at, lower(name)`)).map(userOf);
  }

  /** The user when `password` is theirs, else null (a hash is computed either way, so timing says nothing). */
  async checkPassword(name: string, password: string): Promise<User | null> {
    const r = USER_NAME.test(name) ? await this.#byName(name) : undefined;
    const stored = r ? text(r, 'password_hash') : DUMMY_HASH;
    const ok = await verifyPassword(password, stored);
    return ok && r ? userOf(r) : null;
  }

  async setPassword(id: string, password: string, cost?: Parameters<typeof hashPassword>[1]): Promise<void> {
    if (password.length < 8) throw new SmoothcastError('BAD_REQUEST', 'a password has at least 8 characters');
    const hash = await hashPassword(password, cost);
    await this.#db.write(async () => {
      const changed = await this.#db.run(
        sql`UPDATE users SET password_hash = ${hash}, updated_at = ${this.#now()} WHERE id = ${id}`,
      );
      if (changed === 0) throw new SmoothcastError('USER_NOT_FOUND', `no user ${id}`);
      // A new password ends every other login of that user.
      await this.#db.run(sql`DELETE FROM login_sessions WHERE user_id = ${id}`);
    });
  }

  async setRole(id: string, role: Role): Promise<User> {
    const changed = await this.#db.run(
      sql`UPDATE users SET role = ${role}, updated_at = ${this.#now()} WHERE id = ${id}`,
    );
    if (changed === 0) throw new SmoothcastError('USER_NOT_FOUND', `no user ${id}`);
    return (await this.getUser(id))!;
  }

  async deleteUser(id: string): Promise<void> {
    const changed = await this.#db.run(sql`DELETE FROM users WHERE id = ${id}`);
    if (changed === 0) throw new SmoothcastError('USER_NOT_FOUND', `no user ${id}`);
  }

  async adminCount(): Promise<number> {
    return int((await this.#db.get(sql`SELECT count(*) AS n FROM users WHERE role = 'admin'`)) ?? {}, 'n');
  }

  #byName(name: string): Promise<Row | undefined> {
    return this.#db.get(sql`SELECT * FROM users WHERE lower(name) = lower(${name})`);
  }

  // ---- login sessions

  /** A new login: the cookie value (shown once, stored hashed) and its CSRF token. */
  async createSession(userId: string, ttlMs: number): Promise<{ cookie: string; csrf: string; expiresAt: number }> {
    const cookie = newToken().slice(3);
    const csrf = newToken().slice(3);
    const now = this.#now();
    const expiresAt = now + ttlMs;
    await this.#db.run(
      sql`INSERT INTO login_sessions (id_hash, user_id, csrf, created_at, expires_at, last_seen_at)
          VALUES (${tokenHash(cookie)}, ${userId}, ${csrf}, ${now}, ${expiresAt}, ${now})`,
    );
    // Expired logins are swept as new ones are made.
    await this.#db.run(sql`DELETE FROM login_sessions WHERE expires_at < ${now}`);
    return { cookie, csrf, expiresAt };
  }

  async session(cookie: string): Promise<(LoginSession & { user: User }) | null> {
    if (!SESSION_COOKIE_VALUE.test(cookie)) return null;
    const r = await this.#db.get(
      sql`SELECT s.csrf, s.expires_at, u.* FROM login_sessions s JOIN users u ON u.id = s.user_id
          WHERE s.id_hash = ${tokenHash(cookie)} AND s.expires_at > ${this.#now()}`,
    );
    if (!r) return null;
    return { userId: text(r, 'id'), csrf: text(r, 'csrf'), expiresAt: int(r, 'expires_at'), user: userOf(r) };
  }

  async endSession(cookie: string): Promise<void> {
    if (!SESSION_COOKIE_VALUE.test(cookie)) return;
    await this.#db.run(sql`DELETE FROM login_sessions WHERE id_hash = ${tokenHash(cookie)}`);
  }

  // ---- API tokens

  async createToken(input: {
    name: string;
    scopes: readonly string[];
    userId: string | null;
    expiresAt: number | null;
  }): Promise<{ token: ApiToken; secret: string }> {
    const name = input.name.trim();
    if (!name || name.length > 100) throw new SmoothcastError('BAD_REQUEST', 'a token name is 1–100 characters');
    const secret = newToken();
    const id = randomBase32(12, 't');
    await this.#db.run(
      sql`INSERT INTO api_tokens (id, name, token_hash, scopes, user_id, created_at, expires_at)
          VALUES (${id}, ${name}, ${tokenHash(secret)}, ${[...new Set(input.scopes)].join(' ')}, ${input.userId},
            ${this.#now()}, ${input.expiresAt})`,
    );
    return { token: (await this.getToken(id))!, secret };
  }

  async getToken(id: string): Promise<ApiToken | null> {
    if (!TOKEN_ID.test(id)) return null;
    const r = await this.#db.get(sql`SELECT * FROM api_tokens WHERE id = ${id}`);
    return r ? tokenOf(r) : null;
  }

  async listTokens(): Promise<ApiToken[]> {
    return (await this.#db.all(sql`SELECT * FROM api_tokens ORDER BY created_at DESC`)).map(tokenOf);
  }

  /** The live token a secret belongs to (not revoked, not expired), its last use recorded at most once a minute. */
  async tokenBySecret(secret: string): Promise<ApiToken | null> {
    const r = await this.#db.get(sql`SELECT * FROM api_tokens WHERE token_hash = ${tokenHash(secret)}`);
    if (!r) return null;
    const t = tokenOf(r);
    const now = this.#now();
    if (t.revokedAt !== null || (t.expiresAt !== null && t.expiresAt <= now)) return null;
    if (t.lastUsedAt === null || now - t.lastUsedAt > 60_000) {
      await this.#db.run(sql`UPDATE api_tokens SET last_used_at = ${now} WHERE id = ${t.id}`);
    }
    return t;
  }

  async revokeToken(id: string): Promise<ApiToken> {
    const t = await this.getToken(id);
    if (!t) throw new SmoothcastError('TOKEN_NOT_FOUND', `no API token ${id}`);
    if (t.revokedAt === null) {
      // `revoked_at IS NULL`: two revocations racing keep the first time.
      await this.#db.run(
        sql`UPDATE api_tokens SET revoked_at = ${this.#now()} WHERE id = ${id} AND revoked_at IS NULL`,
      );
    }
    return (await this.getToken(id))!;
  }

  // ---- direct uploads

  async createDirectUpload(input: {
    maxSize: number;
    expiresAt: number;
    corsOrigin: string | null;
    policy: 'public' | 'signed';
    createdBy: string | null;
  }): Promise<{ upload: DirectUpload; secret: string }> {
    const id = randomBase32(12, 'd');
    const secret = newToken().slice(3);
    await this.#db.run(
      sql`INSERT INTO direct_uploads (id, token_hash, max_size, cors_origin, policy, expires_at, created_by, created_at)
          VALUES (${id}, ${tokenHash(secret)}, ${input.maxSize}, ${input.corsOrigin}, ${input.policy},
            ${input.expiresAt}, ${input.createdBy}, ${this.#now()})`,
    );
    return { upload: (await this.getDirectUpload(id))!, secret };
  }

  async getDirectUpload(id: string): Promise<DirectUpload | null> {
    if (!DIRECT_UPLOAD_ID.test(id)) return null;
    const r = await this.#db.get(sql`SELECT * FROM direct_uploads WHERE id = ${id}`);
    return r ? directOf(r) : null;
  }

  /** The direct upload a URL's secret opens, if it is unexpired; `usedAt` set means its one upload exists. */
  async directUploadBySecret(id: string, secret: string): Promise<DirectUpload | null> {
    if (!DIRECT_UPLOAD_ID.test(id) || !SESSION_COOKIE_VALUE.test(secret)) return null;
    const r = await this.#db.get(
      sql`SELECT * FROM direct_uploads WHERE id = ${id} AND token_hash = ${tokenHash(secret)}`,
    );
    if (!r) return null;
    const d = directOf(r);
    return d.expiresAt > this.#now() ? d : null;
  }

  /**
   * Claims a direct upload for its one tus upload; false when it was used already. One conditional UPDATE, so it
   * is atomic across processes on both engines (on PostgreSQL a concurrent claim waits for the row and then finds
   * used_at set).
   */
  async claimDirectUpload(id: string): Promise<boolean> {
    const now = this.#now();
    const changed = await this.#db.run(
      sql`UPDATE direct_uploads SET used_at = ${now} WHERE id = ${id} AND used_at IS NULL AND expires_at > ${now}`,
    );
    return changed === 1;
  }

  /** The unexpired direct upload that created tus upload `uploadId` (its later PATCH/HEAD need no token). */
  async directUploadFor(uploadId: string): Promise<DirectUpload | null> {
    const r = await this.#db.get(
      sql`SELECT * FROM direct_uploads WHERE upload_id = ${uploadId} AND expires_at > ${this.#now()}`,
    );
    return r ? directOf(r) : null;
  }

  async setDirectUploadTarget(id: string, uploadId: string): Promise<void> {
    await this.#db.run(sql`UPDATE direct_uploads SET upload_id = ${uploadId} WHERE id = ${id}`);
  }

  // ---- audit log

  async audit(actor: string, action: string, target: string | null, detail?: unknown): Promise<void> {
    await this.#db.run(
      sql`INSERT INTO audit_log (at, actor, action, target, detail)
          VALUES (${this.#now()}, ${actor}, ${action}, ${target}, ${detail === undefined ? null : JSON.stringify(detail)})`,
    );
  }

  async auditLog(limit = 100, before?: number): Promise<AuditEntry[]> {
    const rows = await this.#db.all(
      sql`SELECT * FROM audit_log WHERE seq < ${before ?? Number.MAX_SAFE_INTEGER} ORDER BY seq DESC LIMIT ${limit}`,
    );
    return rows.map((r) => {
      const d = textOrNull(r, 'detail');
      return {
        seq: int(r, 'seq'),
        at: int(r, 'at'),
        actor: text(r, 'actor'),
        action: text(r, 'action'),
        target: textOrNull(r, 'target'),
        detail: d === null ? null : JSON.parse(d),
      };
    });
  }
}

/** A valid hash of a random password: unknown names cost the same scrypt as known ones. */
const DUMMY_HASH = `scrypt$131072$8$1$${'A'.repeat(22)}$${'A'.repeat(43)}`;
