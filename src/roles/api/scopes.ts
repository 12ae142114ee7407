// What a credential may do. Every API route declares the scope it needs in its route config
// (`app.get(path, { config: { scope: 'assets:read' } }, handler)`, or `scope: 'public'` for the few open ones);
// the auth hook (auth.ts) refuses a route that declares nothing, so a new route cannot skip the check.
import type { FastifyRequest } from 'fastify';

export const SCOPES = [
  'assets:read',
  'assets:write',
  'uploads:create',
  'live:write',
  'playback:sign',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];
/**
 * What a route needs: a scope; `signed-in` (any valid credential: logout, password change); or nothing (`public`:
 * health, login, first-run setup, the caller's own identity, CORS preflights).
 */
export type RouteAccess = Scope | 'signed-in' | 'public';

export type Role = 'admin' | 'editor' | 'viewer';
export const ROLES: readonly Role[] = ['admin', 'editor', 'viewer'];

/** The scopes a signed-in user of each role holds (an API token holds the ones it was created with). */
export const ROLE_SCOPES: Record<Role, readonly Scope[]> = {
  admin: SCOPES,
  editor: ['assets:read', 'assets:write', 'uploads:create', 'live:write', 'playback:sign'],
  viewer: ['assets:read', 'playback:sign'],
};

/** Whether a principal holds a scope (`admin` holds them all). */
export function hasScope(p: Principal, s: Scope): boolean {
  return p.scopes.has(s) || p.scopes.has('admin');
}

export function isScope(s: unknown): s is Scope {
  return typeof s === 'string' && (SCOPES as readonly string[]).includes(s);
}

/** Who is calling. */
export interface Principal {
  kind: 'user' | 'token' | 'direct-upload';
  /** User id, token id or direct upload id. */
  id: string;
  /** Shown in the audit log: the user's name, or `token:<name>`. */
  name: string;
  /** The user behind it (a token's creator; null for direct uploads and tokens made by the CLI). */
  userId: string | null;
  scopes: ReadonlySet<Scope>;
  /** Cookie sessions need the CSRF token on state-changing requests; bearer credentials do not. */
  via: 'cookie' | 'bearer' | 'upload-url';
  /** A cookie session's CSRF token (state-changing requests must echo it in X-CSRF-Token). */
  csrf?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: RouteAccess;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** The audit log's "who" of a request. */
export function actorOf(req: FastifyRequest): string {
  const p = req.principal;
  return p ? p.name : 'anonymous';
}
