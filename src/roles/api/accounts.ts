// Accounts over HTTP: who am I, login and logout, first-run setup with the code from the server log, password
// change; users, API tokens and the audit log (admin); one-time direct upload URLs.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { secretsEqual } from '../../core/auth/secrets.ts';
import type { ApiToken, DirectUpload, Role, SqliteAccounts, User } from '../../core/db/accounts.ts';
import { USER_ID } from '../../core/db/accounts.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { cookieValue, type LoginLimiter, SESSION_COOKIE } from './auth.ts';
import { actorOf, isScope, ROLES, SCOPES } from './scopes.ts';

export interface AccountsApiOptions {
  accounts: SqliteAccounts;
  limiter: LoginLimiter;
  loginSessionMs: number;
  /** The one-time first-run code (null once an admin exists). */
  setupCode: { current: string | null };
  publicUrl: string;
  /** Largest upload, bytes (a direct upload's maxSize is capped by it). */
  maxUploadSize: number;
  defaultPolicy: 'public' | 'signed';
}

export interface UserJson {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
}

const presentUser = (u: User): UserJson => ({
  id: u.id,
  name: u.name,
  role: u.role,
  createdAt: new Date(u.createdAt).toISOString(),
});

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function body(req: FastifyRequest): Record<string, unknown> {
  const b = req.body;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) {
    throw new SmoothcastError('BAD_REQUEST', 'the body is a JSON object');
  }
  return b as Record<string, unknown>;
}

function str(b: Record<string, unknown>, key: string, max = 1024): string {
  const v = b[key];
  if (typeof v !== 'string' || v === '' || v.length > max) {
    throw new SmoothcastError('BAD_REQUEST', `${key} is a non-empty string of at most ${max} characters`);
  }
  return v;
}

function role(v: unknown): Role {
  if (!ROLES.includes(v as Role)) throw new SmoothcastError('BAD_REQUEST', `role is one of ${ROLES.join(', ')}`);
  return v as Role;
}

/** Whether the Set-Cookie may say Secure: https, or a host browsers treat as a secure context (localhost). */
function secureContext(req: FastifyRequest, publicUrl: string): boolean {
  if (req.protocol === 'https' || publicUrl.startsWith('https:')) return true;
  const host = (req.hostname ?? '').replace(/:\d+$/, '');
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host.endsWith('.localhost');
}

/** An absolute base for links handed to third parties: server.publicUrl, else the request's own origin. */
export function baseUrl(req: FastifyRequest, publicUrl: string): string {
  return publicUrl || `${req.protocol}://${req.host}`;
}

export function registerAccountsApi(app: FastifyInstance, o: AccountsApiOptions): void {
  const { accounts } = o;
  const audit = (req: FastifyRequest, action: string, target: string | null, detail?: unknown) =>
    accounts.audit(actorOf(req), action, target, detail);

  // Changes that must not leave the server without an admin (the last admin's role, deleting a user) check and
  // act one at a time in this process, as they did when the calls were synchronous.
  let adminChange: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = adminChange.then(fn, fn);
    adminChange = run.catch(() => {});
    return run;
  };

  const startSession = async (req: FastifyRequest, reply: FastifyReply, user: User) => {
    const s = await accounts.createSession(user.id, o.loginSessionMs);
    const attrs = [
      `${SESSION_COOKIE}=${s.cookie}`,
      'Path=/',
      'HttpOnly',
      'SameSite=Lax',
      `Max-Age=${Math.floor(o.loginSessionMs / 1000)}`,
    ];
    if (secureContext(req, o.publicUrl)) attrs.push('Secure');
    reply.header('set-cookie', attrs.join('; '));
    reply.header('cache-control', 'no-store');
    return { user: presentUser(user), csrfToken: s.csrf };
  };

  app.get('/api/me', { config: { scope: 'public' } }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const p = req.principal;
    const user = p?.userId ? await accounts.getUser(p.userId) : null;
    return {
      user: user ? presentUser(user) : null,
      kind: p?.kind ?? null,
      scopes: p ? (p.scopes.has('admin') ? [...SCOPES] : [...p.scopes]) : [],
      csrfToken: p?.csrf ?? null,
      setupRequired: (await accounts.userCount()) === 0,
    };
  });

  app.post('/api/login', { config: { scope: 'public' } }, async (req, reply) => {
    const b = body(req);
    const name = str(b, 'name', 64);
    const password = str(b, 'password');
    o.limiter.check(name, req.ip);
    const user = await accounts.checkPassword(name, password);
    if (!user) {
      o.limiter.fail(name, req.ip);
      await accounts.audit(name, 'login.failed', null, { ip: req.ip });
      throw new SmoothcastError('LOGIN_FAILED', 'wrong name or password');
    }
    o.limiter.succeed(name);
    await accounts.audit(user.name, 'login', user.id, { ip: req.ip });
    return await startSession(req, reply, user);
  });

  app.post('/api/logout', { config: { scope: 'signed-in' } }, async (req, reply) => {
    const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (cookie) await accounts.endSession(cookie);
    reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`);
    return reply.code(204).send();
  });

  // First run: nothing is open to the first visitor; the code printed in the server log creates the first admin.
  app.post('/api/setup', { config: { scope: 'public' } }, async (req, reply) => {
    const b = body(req);
    if ((await accounts.userCount()) > 0)
      throw new SmoothcastError('SETUP_DONE', 'the first admin exists already: sign in');
    const code = str(b, 'code', 200);
    o.limiter.check('setup', req.ip);
    const expected = o.setupCode.current;
    const norm = (x: string) => x.replace(/[\s-]/g, '').toLowerCase();
    if (!expected || !secretsEqual(norm(code), norm(expected))) {
      o.limiter.fail('setup', req.ip);
      throw new SmoothcastError('SETUP_CODE_INVALID', 'wrong setup code: it is printed in the server log at start');
    }
    o.setupCode.current = null;
    const user = await accounts.addUser(str(b, 'name', 64), str(b, 'password'), 'admin');
    await accounts.audit(user.name, 'setup.admin-created', user.id, { ip: req.ip });
    reply.code(201);
    return await startSession(req, reply, user);
  });

  app.post('/api/me/password', { config: { scope: 'signed-in' } }, async (req, reply) => {
    const p = req.principal!;
    if (p.kind !== 'user') throw new SmoothcastError('BAD_REQUEST', 'only a signed-in user has a password');
    const b = body(req);
    const user = (await accounts.getUser(p.id))!;
    o.limiter.check(user.name, req.ip);
    if (!(await accounts.checkPassword(user.name, str(b, 'current')))) {
      o.limiter.fail(user.name, req.ip);
      throw new SmoothcastError('LOGIN_FAILED', 'the current password is wrong');
    }
    await accounts.setPassword(user.id, str(b, 'password'));
    await audit(req, 'user.password-changed', user.id);
    // The change ends every login, this one too: start a fresh one.
    await startSession(req, reply, user);
    return reply.code(204).send();
  });

  // ---- users (admin)

  const userId = (raw: string) => {
    if (!USER_ID.test(raw)) throw new SmoothcastError('INVALID_ID', `invalid user id ${JSON.stringify(raw)}`);
    return raw;
  };

  app.get('/api/users', { config: { scope: 'admin' } }, async () => ({
    users: (await accounts.listUsers()).map(presentUser),
  }));

  app.post('/api/users', { config: { scope: 'admin' } }, async (req, reply) => {
    const b = body(req);
    const user = await accounts.addUser(str(b, 'name', 64), str(b, 'password'), role(b.role ?? 'viewer'));
    await audit(req, 'user.created', user.id, { name: user.name, role: user.role });
    return reply.code(201).send(presentUser(user));
  });

  app.patch<{ Params: { id: string } }>('/api/users/:id', { config: { scope: 'admin' } }, async (req) => {
    const id = userId(req.params.id);
    const b = body(req);
    const current = await accounts.getUser(id);
    if (!current) throw new SmoothcastError('USER_NOT_FOUND', `no user ${id}`);
    if (b.role !== undefined) {
      const r = role(b.role);
      await oneAtATime(async () => {
        const now = (await accounts.getUser(id)) ?? current;
        if (now.role === 'admin' && r !== 'admin' && (await accounts.adminCount()) === 1) {
          throw new SmoothcastError('ASSET_STATE_CONFLICT', 'the last admin cannot lose the admin role');
        }
        await accounts.setRole(id, r);
      });
      await audit(req, 'user.role-changed', id, { role: r });
    }
    if (b.password !== undefined) {
      await accounts.setPassword(id, str(b, 'password'));
      await audit(req, 'user.password-reset', id);
    }
    return presentUser((await accounts.getUser(id))!);
  });

  app.delete<{ Params: { id: string } }>('/api/users/:id', { config: { scope: 'admin' } }, async (req, reply) => {
    const id = userId(req.params.id);
    const u = await oneAtATime(async () => {
      const u = await accounts.getUser(id);
      if (!u) throw new SmoothcastError('USER_NOT_FOUND', `no user ${id}`);
      if (u.role === 'admin' && (await accounts.adminCount()) === 1) {
        throw new SmoothcastError('ASSET_STATE_CONFLICT', 'the last admin cannot be deleted');
      }
      await accounts.deleteUser(id);
      return u;
    });
    await audit(req, 'user.deleted', id, { name: u.name });
    return reply.code(204).send();
  });

  // ---- API tokens (admin)

  const presentToken = (t: ApiToken) => ({
    id: t.id,
    name: t.name,
    scopes: t.scopes,
    userId: t.userId,
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
    lastUsedAt: iso(t.lastUsedAt),
    revokedAt: iso(t.revokedAt),
  });

  app.get('/api/tokens', { config: { scope: 'admin' } }, async () => ({
    tokens: (await accounts.listTokens()).map(presentToken),
  }));

  app.post('/api/tokens', { config: { scope: 'admin' } }, async (req, reply) => {
    const b = body(req);
    const scopes = parseScopes(b.scopes);
    const expiresAt = expiry(b.expiresInSeconds);
    const { token, secret } = await accounts.createToken({
      name: str(b, 'name', 100),
      scopes,
      userId: req.principal!.userId,
      expiresAt,
    });
    await audit(req, 'token.created', token.id, { name: token.name, scopes });
    reply.header('cache-control', 'no-store');
    return reply.code(201).send({ ...presentToken(token), secret });
  });

  app.delete<{ Params: { id: string } }>('/api/tokens/:id', { config: { scope: 'admin' } }, async (req, reply) => {
    const t = await accounts.revokeToken(req.params.id);
    await audit(req, 'token.revoked', t.id, { name: t.name });
    return reply.code(204).send();
  });

  app.get<{ Querystring: { limit?: string; before?: string } }>(
    '/api/audit',
    { config: { scope: 'admin' } },
    async (req) => {
      const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
      const before = req.query.before === undefined ? undefined : Number(req.query.before);
      if (
        !Number.isInteger(limit) ||
        limit < 1 ||
        limit > 1000 ||
        (before !== undefined && !Number.isInteger(before))
      ) {
        throw new SmoothcastError('BAD_REQUEST', 'limit is 1–1000 and before a sequence number');
      }
      return {
        entries: (await accounts.auditLog(limit, before)).map((e) => ({ ...e, at: new Date(e.at).toISOString() })),
      };
    },
  );

  // ---- direct uploads: a one-time tus URL a customer's own page can upload to without holding a token

  const presentDirect = (d: DirectUpload, url?: string) => ({
    id: d.id,
    ...(url ? { url } : {}),
    maxSize: d.maxSize,
    corsOrigin: d.corsOrigin,
    playbackPolicy: d.policy,
    expiresAt: iso(d.expiresAt),
    usedAt: iso(d.usedAt),
    uploadId: d.uploadId,
  });

  app.post('/api/direct-uploads', { config: { scope: 'uploads:create' } }, async (req, reply) => {
    const b = body(req);
    const maxSize = b.maxSize ?? o.maxUploadSize;
    if (typeof maxSize !== 'number' || !Number.isInteger(maxSize) || maxSize < 1 || maxSize > o.maxUploadSize) {
      throw new SmoothcastError('BAD_REQUEST', `maxSize is a whole number of bytes, 1–${o.maxUploadSize}`);
    }
    const ttl = b.expiresInSeconds ?? 3600;
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 10 || ttl > 7 * 86400) {
      throw new SmoothcastError('BAD_REQUEST', 'expiresInSeconds is a whole number, 10–604800');
    }
    const cors = b.corsOrigin ?? null;
    if (cors !== null && (typeof cors !== 'string' || !/^https?:\/\/[A-Za-z0-9.-]+(:\d{1,5})?$/.test(cors))) {
      throw new SmoothcastError('BAD_REQUEST', 'corsOrigin is an origin: http(s)://host[:port]');
    }
    const policy = b.playbackPolicy ?? o.defaultPolicy;
    if (policy !== 'public' && policy !== 'signed') {
      throw new SmoothcastError('BAD_REQUEST', 'playbackPolicy is "public" or "signed"');
    }
    const { upload, secret } = await accounts.createDirectUpload({
      maxSize,
      expiresAt: Date.now() + ttl * 1000,
      corsOrigin: cors,
      policy,
      createdBy: req.principal!.userId,
    });
    await audit(req, 'direct-upload.created', upload.id, { maxSize, corsOrigin: cors });
    const url = `${baseUrl(req, o.publicUrl)}/api/uploads?direct=${upload.id}&sig=${secret}`;
    reply.header('cache-control', 'no-store');
    return reply.code(201).send(presentDirect(upload, url));
  });

  app.get<{ Params: { id: string } }>(
    '/api/direct-uploads/:id',
    { config: { scope: 'uploads:create' } },
    async (req) => {
      const d = await accounts.getDirectUpload(req.params.id);
      if (!d) throw new SmoothcastError('DIRECT_UPLOAD_INVALID', `no direct upload ${req.params.id}`);
      return presentDirect(d);
    },
  );
}

function parseScopes(v: unknown) {
  if (!Array.isArray(v) || v.length === 0 || !v.every(isScope)) {
    throw new SmoothcastError('BAD_REQUEST', `scopes is a non-empty list of: ${SCOPES.join(', ')}`);
  }
  return v;
}

function expiry(v: unknown): number | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 60 || v > 10 * 365 * 86400) {
    throw new SmoothcastError('BAD_REQUEST', 'expiresInSeconds is a whole number of seconds, 60 to ten years');
  }
  return Date.now() + v * 1000;
}
