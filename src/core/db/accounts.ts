// Accounts: users with a role, their login sessions, API tokens, one-time direct uploads and the audit log. No
// secret is stored in clear: a password as its scrypt hash, a session cookie, an API token and an upload URL's
// token as their SHA-256 (they are 256-bit random values, so a fast hash is the right one).
import { hashPassword, newToken, tokenHash, verifyPassword } from '../auth/secrets.ts';
import { SmoothcastError } from '../errors.ts';
import { randomBase32 } from '../ids.ts';
import { type Db, int, numOrNull as intOrNull, type Row, text, textOrNull } from './database.ts';

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

  userCount(): number {
    return int(this.#db.raw.prepare('SELECT count(*) AS n FROM users').get() ?? {}, 'n');
  }

  async addUser(name: string, password: string, role: Role, cost?: Parameters<typeof hashPassword>[1]): Promise<User> {
    if (!USER_NAME.test(name)) {
      throw new SmoothcastError(
        'BAD_REQUEST',
        'a user name is 1–64 letters, digits or . _ @ - (starting alphanumeric)',
      );
    }
    if (password.length < 8) throw new SmoothcastError('BAD_REQUEST', 'a password has at least 8 characters');
    const hash = await hashPassword(password, cost);
    const now = this.#now();
    const id = randomBase32(12, 'u');
    try {
      this.#db.raw
        .prepare('INSERT INTO users (id, name, role, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(id, name, role, hash, now, now);
    } catch (err) {
      if (/UNIQUE/.test(String(err))) throw new SmoothcastError('USER_EXISTS', `a user named ${name} exists`);
      throw err;
    }
    return this.getUser(id)!;
  }

  getUser(id: string): User | null {
    if (!USER_ID.test(id)) return null;
    const r = this.#db.raw.prepare('SELECT * FROM users WHERE id = ?').get(id);
    return r ? userOf(r) : null;
  }

  userByName(name: string): User | null {
    if (!USER_NAME.test(name)) return null;
    const r = this.#db.raw.prepare('SELECT * FROM users WHERE name = ?').get(name);
    return r ? userOf(r) : null;
  }

  listUsers(): User[] {
    return this.#db.raw.prepare('SELECT * FROM users ORDER BY created_at, name').all().map(userOf);
  }

  /** The user when `password` is theirs, else null (a hash is computed either way, so timing says nothing). */
  async checkPassword(name: string, password: string): Promise<User | null> {
    const r = USER_NAME.test(name) ? this.#db.raw.prepare('SELECT * FROM users WHERE name = ?').get(name) : undefined;
    const stored = r ? text(r, 'password_hash') : DUMMY_HASH;
    const ok = await verifyPassword(password, stored);
    return ok && r ? userOf(r) : null;
  }

  async setPassword(id: string, password: string, cost?: Parameters<typeof hashPassword>[1]): Promise<void> {
    if (password.length < 8) throw new SmoothcastError('BAD_REQUEST', 'a password has at least 8 characters');
    const hash = await hashPassword(password, cost);
    const r = this.#db.raw
      .prepare('UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ?')
      .run(hash, this.#now(), id);
    if (r.changes === 0) throw new SmoothcastError('USER_NOT_FOUND', `no user ${id}`);
    // A new password ends every other login of that user.
    this.#db.raw.prepare('DELETE FROM login_sessions WHERE user_id = ?').run(id);
  }

  setRole(id: string, role: Role): User {
    const r = this.#db.raw.prepare('UPDATE users SET role = ?, updated_at = ? WHERE id = ?').run(role, this.#now(), id);
    if (r.changes === 0) throw new SmoothcastError('USER_NOT_FOUND', `no user ${id}`);
    return this.getUser(id)!;
  }

  deleteUser(id: string): void {
    const r = this.#db.raw.prepare('DELETE FROM users WHERE id = ?').run(id);
    if (r.changes === 0) throw new SmoothcastError('USER_NOT_FOUND', `no user ${id}`);
  }

  adminCount(): number {
    return int(this.#db.raw.prepare("SELECT count(*) AS n FROM users WHERE role = 'admin'").get() ?? {}, 'n');
  }

  // ---- login sessions

  /** A new login: the cookie value (shown once, stored hashed) and its CSRF token. */
  createSession(userId: string, ttlMs: number): { cookie: string; csrf: string; expiresAt: number } {
    const cookie = newToken().slice(3);
    const csrf = newToken().slice(3);
    const now = this.#now();
    const expiresAt = now + ttlMs;
    this.#db.raw
      .prepare(
        'INSERT INTO login_sessions (id_hash, user_id, csrf, created_at, expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(tokenHash(cookie), userId, csrf, now, expiresAt, now);
    // Expired logins are swept as new ones are made.
    this.#db.raw.prepare('DELETE FROM login_sessions WHERE expires_at < ?').run(now);
    return { cookie, csrf, expiresAt };
  }

  session(cookie: string): (LoginSession & { user: User }) | null {
    if (!SESSION_COOKIE_VALUE.test(cookie)) return null;
    const r = this.#db.raw
      .prepare(
        `SELECT s.csrf, s.expires_at, u.* FROM login_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ? AND s.expires_at > ?`,
      )
      .get(tokenHash(cookie), this.#now());
    if (!r) return null;
    return { userId: text(r, 'id'), csrf: text(r, 'csrf'), expiresAt: int(r, 'expires_at'), user: userOf(r) };
  }

  endSession(cookie: string): void {
    if (!SESSION_COOKIE_VALUE.test(cookie)) return;
    this.#db.raw.prepare('DELETE FROM login_sessions WHERE id_hash = ?').run(tokenHash(cookie));
  }

  // ---- API tokens

  createToken(input: { name: string; scopes: readonly string[]; userId: string | null; expiresAt: number | null }): {
    token: ApiToken;
    secret: string;
  } {
    const name = input.name.trim();
    if (!name || name.length > 100) throw new SmoothcastError('BAD_REQUEST', 'a token name is 1–100 characters');
    const secret = newToken();
    const id = randomBase32(12, 't');
    this.#db.raw
      .prepare(
        'INSERT INTO api_tokens (id, name, token_hash, scopes, user_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        id,
        name,
        tokenHash(secret),
        [...new Set(input.scopes)].join(' '),
        input.userId,
        this.#now(),
        input.expiresAt,
      );
    return { token: this.getToken(id)!, secret };
  }

  getToken(id: string): ApiToken | null {
    if (!TOKEN_ID.test(id)) return null;
    const r = this.#db.raw.prepare('SELECT * FROM api_tokens WHERE id = ?').get(id);
    return r ? tokenOf(r) : null;
  }

  listTokens(): ApiToken[] {
    return this.#db.raw.prepare('SELECT * FROM api_tokens ORDER BY created_at DESC').all().map(tokenOf);
  }

  /** The live token a secret belongs to (not revoked, not expired), its last use recorded at most once a minute. */
  tokenBySecret(secret: string): ApiToken | null {
    const r = this.#db.raw.prepare('SELECT * FROM api_tokens WHERE token_hash = ?').get(tokenHash(secret));
    if (!r) return null;
    const t = tokenOf(r);
    const now = this.#now();
    if (t.revokedAt !== null || (t.expiresAt !== null && t.expiresAt <= now)) return null;
    if (t.lastUsedAt === null || now - t.lastUsedAt > 60_000) {
      this.#db.raw.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?').run(now, t.id);
    }
    return t;
  }

  revokeToken(id: string): ApiToken {
    const t = this.getToken(id);
    if (!t) throw new SmoothcastError('TOKEN_NOT_FOUND', `no API token ${id}`);
    if (t.revokedAt === null) {
      this.#db.raw.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ?').run(this.#now(), id);
    }
    return this.getToken(id)!;
  }

  // ---- direct uploads

  createDirectUpload(input: {
    maxSize: number;
    expiresAt: number;
    corsOrigin: string | null;
    policy: 'public' | 'signed';
    createdBy: string | null;
  }): { upload: DirectUpload; secret: string } {
    const id = randomBase32(12, 'd');
    const secret = newToken().slice(3);
    this.#db.raw
      .prepare(
        `INSERT INTO direct_uploads (id, token_hash, max_size, cors_origin, policy, expires_at, created_by, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        tokenHash(secret),
        input.maxSize,
        input.corsOrigin,
        input.policy,
        input.expiresAt,
        input.createdBy,
        this.#now(),
      );
    return { upload: this.getDirectUpload(id)!, secret };
  }

  getDirectUpload(id: string): DirectUpload | null {
    if (!DIRECT_UPLOAD_ID.test(id)) return null;
    const r = this.#db.raw.prepare('SELECT * FROM direct_uploads WHERE id = ?').get(id);
    return r ? directOf(r) : null;
  }

  /** The direct upload a URL's secret opens, if it is unexpired; `usedAt` set means its one upload exists. */
  directUploadBySecret(id: string, secret: string): DirectUpload | null {
    if (!DIRECT_UPLOAD_ID.test(id) || !SESSION_COOKIE_VALUE.test(secret)) return null;
    const r = this.#db.raw
      .prepare('SELECT * FROM direct_uploads WHERE id = ? AND token_hash = ?')
      .get(id, tokenHash(secret));
    if (!r) return null;
    const d = directOf(r);
    return d.expiresAt > this.#now() ? d : null;
  }

  /** Claims a direct upload for its one tus upload; false when it was used already (atomically, across processes). */
  claimDirectUpload(id: string): boolean {
    const r = this.#db.raw
      .prepare('UPDATE direct_uploads SET used_at = ? WHERE id = ? AND used_at IS NULL AND expires_at > ?')
      .run(this.#now(), id, this.#now());
    return r.changes === 1;
  }

  /** The unexpired direct upload that created tus upload `uploadId` (its later PATCH/HEAD need no token). */
  directUploadFor(uploadId: string): DirectUpload | null {
    const r = this.#db.raw
      .prepare('SELECT * FROM direct_uploads WHERE upload_id = ? AND expires_at > ?')
      .get(uploadId, this.#now());
    return r ? directOf(r) : null;
  }

  setDirectUploadTarget(id: string, uploadId: string): void {
    this.#db.raw.prepare('UPDATE direct_uploads SET upload_id = ? WHERE id = ?').run(uploadId, id);
  }

  // ---- audit log

  audit(actor: string, action: string, target: string | null, detail?: unknown): void {
    this.#db.raw
      .prepare('INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)')
      .run(this.#now(), actor, action, target, detail === undefined ? null : JSON.stringify(detail));
  }

  auditLog(limit = 100, before?: number): AuditEntry[] {
    const rows = this.#db.raw
      .prepare('SELECT * FROM audit_log WHERE seq < ? ORDER BY seq DESC LIMIT ?')
      .all(before ?? Number.MAX_SAFE_INTEGER, limit);
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
