// Who is calling, and may they. Every route under /api declares what it needs (scopes.ts); a route that declares
// nothing stops the server from starting. A request is authenticated by, in order:
//   - `Authorization: Bearer sc_…` — an API token (stored as its SHA-256; revoked or expired → 401 AUTH_INVALID);
//   - the `sc_session` cookie of a login (HttpOnly, SameSite=Lax, Secure on https and localhost); state-changing
//     requests from a cookie session must also send `X-CSRF-Token` (the token given at login and by GET /api/me);
//   - a one-time direct upload URL (`/api/uploads?direct=ID&sig=SECRET`), and then the upload it created.
// Unauthenticated → 401 AUTH_REQUIRED, lacking the scope → 403 SCOPE_MISSING, both in the JSON error shape.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { secretsEqual, TOKEN_PATTERN } from '../../core/auth/secrets.ts';
import type { SqliteAccounts, User } from '../../core/db/accounts.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { hasScope, isScope, type Principal, ROLE_SCOPES, type RouteAccess, type Scope } from './scopes.ts';

export const SESSION_COOKIE = 'sc_session';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface DeclaredRoute {
  method: string;
  url: string;
  access: RouteAccess;
}

/** Reads one cookie from a Cookie header (no other cookie parsing is needed). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export function userPrincipal(user: User, via: Principal['via']): Principal {
  return { kind: 'user', id: user.id, name: user.name, userId: user.id, scopes: new Set(ROLE_SCOPES[user.role]), via };
}

/**
 * The direct-upload credential of a tus request: resolved by the upload role (it knows which upload a direct URL
 * created); null when the request carries none.
 */
export type DirectUploadResolver = (req: FastifyRequest) => Promise<Principal | null>;

export class Auth {
  readonly routes: DeclaredRoute[] = [];
  private readonly accounts: SqliteAccounts;
  private directUploads: DirectUploadResolver = async () => null;

  constructor(accounts: SqliteAccounts) {
    this.accounts = accounts;
  }

  setDirectUploadResolver(r: DirectUploadResolver): void {
    this.directUploads = r;
  }

  /** Must be registered before any route. */
  register(app: FastifyInstance): void {
    app.decorateRequest('principal', null);
    app.addHook('onRoute', (route) => {
      const access = route.config?.scope;
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      if (route.url.startsWith('/api/') && access === undefined) {
        throw new SmoothcastError('INTERNAL', `route ${methods.join(',')} ${route.url} declares no scope`);
      }
      if (access !== undefined) for (const m of methods) this.routes.push({ method: m, url: route.url, access });
    });
    app.addHook('onRequest', async (req) => {
      const access = req.routeOptions.config?.scope;
      if (access === undefined) return;
      req.principal = await this.resolve(req, access !== 'public');
      if (access === 'public') return;
      const p = req.principal;
      if (!p) throw new SmoothcastError('AUTH_REQUIRED', 'sign in, or send Authorization: Bearer TOKEN');
      if (p.via === 'cookie' && !SAFE_METHODS.has(req.method)) checkCsrf(req, p);
      if (access !== 'signed-in' && !hasScope(p, access)) {
        throw new SmoothcastError('SCOPE_MISSING', `this needs the ${access} scope`);
      }
    });
  }

  /** The caller, or null; a credential that is present but wrong is an error when the route needs one. */
  async resolve(req: FastifyRequest, strict: boolean): Promise<Principal | null> {
    const authz = req.headers.authorization;
    if (typeof authz === 'string' && authz !== '') {
      const m = /^Bearer\s+(\S+)$/i.exec(authz);
      const secret = m?.[1];
      const token = secret && TOKEN_PATTERN.test(secret) ? await this.accounts.tokenBySecret(secret) : null;
      if (!token) {
        if (strict) throw new SmoothcastError('AUTH_INVALID', 'the API token is unknown, revoked or expired');
        return null;
      }
      let scopes = token.scopes.filter(isScope);
      if (token.userId) {
        // A token never does more than its creator's role allows now.
        const user = await this.accounts.getUser(token.userId);
        const allowed = new Set<Scope>(user ? ROLE_SCOPES[user.role] : []);
        scopes = scopes.filter((s) => allowed.has(s));
      }
      return {
        kind: 'token',
        id: token.id,
        name: `token:${token.name}`,
        userId: token.userId,
        scopes: new Set(scopes),
        via: 'bearer',
      };
    }
    const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
    if (cookie) {
      const s = await this.accounts.session(cookie);
      if (s) return { ...userPrincipal(s.user, 'cookie'), csrf: s.csrf };
    }
    return await this.directUploads(req);
  }
}

function checkCsrf(req: FastifyRequest, p: Principal): void {
  const sent = req.headers['x-csrf-token'];
  if (!p.csrf || typeof sent !== 'string' || !secretsEqual(sent, p.csrf)) {
    throw new SmoothcastError('CSRF_INVALID', 'a cookie session must send X-CSRF-Token on this request');
  }
}

/**
 * Failed logins counted per account and per client address in a sliding window: past the limit, logins are
 * refused with 429 LOGIN_RATE_LIMITED before the password is even checked (so guessing stops, correct or not).
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  private readonly max: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(o: { maxFailures: number; windowMs: number; now?: () => number }) {
    this.max = o.maxFailures;
    this.windowMs = o.windowMs;
    this.now = o.now ?? Date.now;
  }

  /** Throws LOGIN_RATE_LIMITED when the account or the address has failed too often lately. */
  check(account: string, ip: string): void {
    const wait = Math.max(this.waitMs(`a:${account.toLowerCase()}`, this.max), this.waitMs(`i:${ip}`, this.max * 4));
    if (wait > 0) {
      throw new SmoothcastError(
        'LOGIN_RATE_LIMITED',
        `too many failed logins: try again in ${Math.ceil(wait / 1000)} s`,
        { detail: String(Math.ceil(wait / 1000)) },
      );
    }
  }

  fail(account: string, ip: string): void {
    for (const k of [`a:${account.toLowerCase()}`, `i:${ip}`]) {
      const list = this.recent(k);
      list.push(this.now());
      this.failures.set(k, list);
    }
    if (this.failures.size > 100_000) this.prune();
  }

  succeed(account: string): void {
    this.failures.delete(`a:${account.toLowerCase()}`);
  }

  private recent(k: string): number[] {
    const since = this.now() - this.windowMs;
    return (this.failures.get(k) ?? []).filter((t) => t > since);
  }

  private waitMs(k: string, max: number): number {
    const list = this.recent(k);
    if (list.length < max) return 0;
    return list[list.length - max]! + this.windowMs - this.now();
  }

  private prune(): void {
    for (const k of [...this.failures.keys()]) if (this.recent(k).length === 0) this.failures.delete(k);
  }
}
