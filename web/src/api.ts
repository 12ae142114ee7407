// The platform's JSON API as the pages use it (same origin). Requests carry the session cookie; every request
// that changes something (POST, PATCH, PUT, DELETE) also carries the session's CSRF token (`x-csrf-token`), read
// once from GET /api/me. On a page that needs a signed-in user, a 401 sends the browser to /login?next=<here>.
import type { LiveStreamJson, LiveTargetStatusJson } from '../../src/roles/api/live.ts';
import type { QoeSummary } from '../../src/core/db/qoe.ts';
import type { AssetJson } from '../../src/roles/api/present.ts';

/** GET /api/assets/:id/qoe: viewing quality from the players' CMCD (sessions, stalls, startup, bitrate played). */
export type Qoe = QoeSummary;
export type PlaybackPolicy = 'public' | 'signed';
export type Encryption = 'none' | 'aes-128' | 'cbcs' | 'cenc';
export interface DrmJson {
  clearkey: { licenseUrl: string };
  widevine?: { licenseUrl: string };
  playready?: { licenseUrl: string };
}
/**
 * The API's asset object: the server's own type (a type-only import; nothing of the server is bundled), with the
 * access fields read defensively (optional: a server without accounts leaves them out).
 */
export type Asset = AssetJson & {
  playbackPolicy?: PlaybackPolicy;
  encryption?: Encryption;
  maxViewers?: number | null;
  /** Current viewers (playback sessions). */
  viewers?: number;
  playback: AssetJson['playback'] & { drm?: DrmJson | null };
};
/** What an editor may change on an asset (`maxViewers: null` lifts the limit). */
export interface AssetPatch {
  title?: string;
  playbackPolicy?: PlaybackPolicy;
  encryption?: Encryption;
  maxViewers?: number | null;
}
/** POST /api/assets/:id/playback-tokens: a signed playback token and the playback URLs carrying it. */
export interface PlaybackGrant {
  token: string;
  expiresAt: string;
  playback: Pick<Asset['playback'], 'hls' | 'dash' | 'smooth' | 'poster' | 'thumbnails' | 'downloads'> & {
    drm?: DrmJson | null;
  };
}
/** A live stream (publishing point), its push targets and its stats, as the API gives them. */
export type LiveStream = LiveStreamJson & { playbackPolicy?: PlaybackPolicy; maxViewers?: number | null };
export type LiveTarget = LiveTargetStatusJson;
export type LiveStats = NonNullable<LiveStreamJson['stats']>;
export type LiveAction = 'start' | 'stop' | 'shutdown' | 'rotate-key';
export interface NewLiveStream {
  title: string;
  dvrWindowSeconds?: number;
  latency?: 'low' | 'standard';
  archive?: boolean;
}

// ---- accounts ------------------------------------------------------------------------------------------------

export type Role = 'admin' | 'editor' | 'viewer';
export const ROLES: readonly Role[] = ['admin', 'editor', 'viewer'];
export const SCOPES = ['assets:read', 'assets:write', 'uploads:create', 'live:write', 'playback:sign', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];
export const WEBHOOK_EVENTS = [
  'asset.ready',
  'asset.failed',
  'asset.deleted',
  'upload.completed',
  'live.started',
  'live.stopped',
  'live.shutdown',
] as const;

export interface User {
  id: string;
  name: string;
  role: Role;
}
export interface UserRow extends User {
  createdAt: string;
}
export interface Me {
  user: User | null;
  scopes: string[];
  csrfToken: string | null;
  setupRequired: boolean;
  /** A server without accounts (no /api/me): everything is open, as before sign-in existed. */
  open?: boolean;
}
export interface ApiToken {
  id: string;
  name: string;
  scopes: string[];
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}
export interface Webhook {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
  /** Set when the server stopped delivering to it. */
  disabledAt?: string | null;
}
export interface Delivery {
  id: string;
  event: string;
  status: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
  nextAttemptAt: string | null;
}

export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  /** Seconds, from a 429's Retry-After. */
  readonly retryAfter: number | null;
  constructor(code: string, message: string, status = 0, retryAfter: number | null = null) {
    super(message);
    this.code = code;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

let session: Promise<Me> | null = null;

/** Who is signed in (GET /api/me, asked once per page; `refresh` asks again). */
export function me(refresh = false): Promise<Me> {
  if (!session || refresh) {
    session = fetch('/api/me', { credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(async (res): Promise<Me> => {
        if (res.status === 404) return { user: null, scopes: [...SCOPES], csrfToken: null, setupRequired: false, open: true };
        if (!res.ok) throw new Error(`GET /api/me: ${res.status}`);
        const m = (await res.json()) as Me;
        return { ...m, scopes: m.scopes ?? [] };
      })
      .catch(() => ({ user: null, scopes: [], csrfToken: null, setupRequired: false }));
  }
  return session;
}

/** After signing in on this page: the new session's user and CSRF token (the scopes come with the next page). */
function signedIn(user: User, csrfToken: string): void {
  session = Promise.resolve({ user, scopes: [], csrfToken, setupRequired: false });
}

/** The CSRF token of the session (null when not signed in). */
export async function csrfToken(): Promise<string | null> {
  return (await me()).csrfToken;
}

export function can(m: Me, scope: Scope): boolean {
  return m.scopes.includes(scope);
}

let signInRequired = false;
/** Set by main.ts for the pages that need a signed-in user: a 401 from the API then goes to /login. */
export function requireSignIn(on: boolean): void {
  signInRequired = on;
}

/** Where /login and /setup go back to: a path of this site only (no `//host`, no scheme). */
export function safeNext(raw: string | null): string {
  return raw && raw.startsWith('/') && !raw.startsWith('//') && !raw.startsWith('/\\') ? raw : '/';
}

export function signInHref(next = location.pathname + location.search): string {
  return `/login?next=${encodeURIComponent(next)}`;
}

async function errorOf(res: Response): Promise<ApiError> {
  const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
  const retry = Number(res.headers.get('retry-after'));
  return new ApiError(
    body?.error?.code ?? `HTTP_${res.status}`,
    body?.error?.message ?? res.statusText,
    res.status,
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
}

async function json<T>(res: Response): Promise<T> {
  if (!res.ok) throw await errorOf(res);
  const body = (await res.json().catch(() => null)) as T | null;
  if (body === null) throw new ApiError(`HTTP_${res.status}`, 'the answer was not JSON', res.status);
  return body;
}

const UNSAFE = new Set(['POST', 'PATCH', 'PUT', 'DELETE']);

/**
 * A JSON request; `{error:{code,message}}` answers become ApiError. A 204 resolves to null. A CSRF refusal (a
 * session renewed in another tab) asks /api/me again and retries once.
 */
async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const go = async () => {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (UNSAFE.has(method)) {
      const token = await csrfToken();
      if (token) headers['x-csrf-token'] = token;
    }
    return fetch(path, {
      method,
      credentials: 'same-origin',
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  };
  let res = await go();
  if (res.status === 403 && UNSAFE.has(method)) {
    const code = ((await res.clone().json().catch(() => null)) as { error?: { code?: string } } | null)?.error?.code;
    if (code === 'CSRF_INVALID') {
      await me(true);
      res = await go();
    }
  }
  if (res.status === 204) return null as T;
  if (res.status === 401 && signInRequired) {
    const err = await errorOf(res.clone());
    if (err.code === 'AUTH_REQUIRED' || err.code === 'AUTH_INVALID') location.assign(signInHref());
  }
  return json<T>(res);
}

// ---- the API -------------------------------------------------------------------------------------------------

export const accountApi = {
  async login(name: string, password: string): Promise<User> {
    const r = await send<{ user: User; csrfToken: string }>('POST', '/api/login', { name, password });
    signedIn(r.user, r.csrfToken);
    return r.user;
  },
  async setup(code: string, name: string, password: string): Promise<User> {
    const r = await send<{ user: User; csrfToken: string }>('POST', '/api/setup', { code, name, password });
    signedIn(r.user, r.csrfToken);
    return r.user;
  },
  logout: () => send<null>('POST', '/api/logout'),
  changePassword: (current: string, password: string) => send<null>('POST', '/api/me/password', { current, password }),
};

const id = (s: string) => encodeURIComponent(s);

export const adminApi = {
  users: async () => (await send<{ users: UserRow[] }>('GET', '/api/users')).users,
  addUser: (input: { name: string; password: string; role: Role }) => send<UserRow>('POST', '/api/users', input),
  updateUser: (userId: string, patch: { role?: Role; password?: string }) =>
    send<UserRow>('PATCH', `/api/users/${id(userId)}`, patch),
  removeUser: (userId: string) => send<null>('DELETE', `/api/users/${id(userId)}`),
  tokens: async () => (await send<{ tokens: ApiToken[] }>('GET', '/api/tokens')).tokens,
  addToken: (input: { name: string; scopes: string[]; expiresInSeconds?: number }) =>
    send<ApiToken & { secret: string }>('POST', '/api/tokens', input),
  revokeToken: (tokenId: string) => send<null>('DELETE', `/api/tokens/${id(tokenId)}`),
  webhooks: async () => (await send<{ webhooks: Webhook[] }>('GET', '/api/webhooks')).webhooks,
  addWebhook: (input: { url: string; events: string[] }) =>
    send<Webhook & { secret: string }>('POST', '/api/webhooks', input),
  removeWebhook: (hookId: string) => send<null>('DELETE', `/api/webhooks/${id(hookId)}`),
  deliveries: async (hookId: string) =>
    (await send<{ deliveries: Delivery[] }>('GET', `/api/webhooks/${id(hookId)}/deliveries`)).deliveries,
  testWebhook: (hookId: string) => send<unknown>('POST', `/api/webhooks/${id(hookId)}/test`),
};

const liveUrl = (liveId: string, rest = '') => `/api/live/${id(liveId)}${rest}`;

export const liveApi = {
  list: async () => (await send<{ streams: LiveStream[] }>('GET', '/api/live?limit=500')).streams,
  get: (liveId: string) => send<LiveStream>('GET', liveUrl(liveId)),
  create: (input: NewLiveStream) => send<LiveStream>('POST', '/api/live', input),
  update: (liveId: string, patch: { title?: string; playbackPolicy?: PlaybackPolicy; maxViewers?: number | null }) =>
    send<LiveStream>('PATCH', liveUrl(liveId), patch),
  act: (liveId: string, action: LiveAction) => send<LiveStream>('POST', liveUrl(liveId, `/${action}`)),
  remove: (liveId: string) => send<null>('DELETE', liveUrl(liveId)),
  addTarget: (liveId: string, url: string) => send<LiveTarget>('POST', liveUrl(liveId, '/targets'), { url }),
  removeTarget: (liveId: string, targetId: string) =>
    send<null>('DELETE', liveUrl(liveId, `/targets/${id(targetId)}`)),
  /** The stream over Server-Sent Events: `state` at once and on every change, `stats` every second. */
  follow(
    liveId: string,
    on: { state(s: LiveStream): void; stats(s: LiveStats | null): void; deleted(): void },
  ): () => void {
    const es = new EventSource(liveUrl(liveId, '/events'));
    es.addEventListener('state', (e) => on.state(JSON.parse((e as MessageEvent<string>).data) as LiveStream));
    es.addEventListener('stats', (e) =>
      on.stats((JSON.parse((e as MessageEvent<string>).data) as { stats: LiveStats | null }).stats),
    );
    es.addEventListener('deleted', () => {
      es.close();
      on.deleted();
    });
    return () => es.close();
  },
};

export const api = {
  list: async () => (await send<{ assets: Asset[] }>('GET', '/api/assets?limit=200')).assets,
  get: (assetId: string) => send<Asset>('GET', `/api/assets/${id(assetId)}`),
  update: (assetId: string, patch: AssetPatch) => send<Asset>('PATCH', `/api/assets/${id(assetId)}`, patch),
  remove: async (assetId: string) => {
    await send<null>('DELETE', `/api/assets/${id(assetId)}`).catch((err) => {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    });
  },
  /** Viewing quality of the asset's playback sessions (from the CMCD players send). */
  qoe: (assetId: string) => send<Qoe>('GET', `/api/assets/${id(assetId)}/qoe`),
  assetOfUpload: (uploadUrl: string) => send<Asset>('GET', `${uploadUrl}/asset`),
  /** A signed playback token for the asset, and its playback URLs carrying it. */
  playbackToken: (assetId: string, input: { expiresInSeconds?: number; ip?: string } = {}) =>
    send<PlaybackGrant>('POST', `/api/assets/${id(assetId)}/playback-tokens`, input),
  /** What a visitor (signed in or not) gets to play the asset: public, or with a playback token. */
  player: (assetId: string, token?: string | null) =>
    send<Asset>('GET', `/v/${id(assetId)}/player.json${token ? `?token=${encodeURIComponent(token)}` : ''}`),
  /** Follows an asset over Server-Sent Events until it is ready, failed or deleted. */
  follow(assetId: string, on: (a: Asset | null) => void): () => void {
    const es = new EventSource(`/api/assets/${id(assetId)}/events`);
    es.addEventListener('asset', (e) => {
      const a = JSON.parse((e as MessageEvent<string>).data) as Asset;
      on(a);
      if (a.status === 'ready' || a.status === 'failed') es.close();
    });
    es.addEventListener('deleted', () => {
      on(null);
      es.close();
    });
    return () => es.close();
  },
};

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}

/** An ApiError as the pages show it: `CODE: message`. */
export function errorText(err: unknown): string {
  return err instanceof ApiError ? `${err.code}: ${err.message}` : String((err as Error).message ?? err);
}

function waitText(seconds: number | null): string {
  if (!seconds) return 'wait a few minutes';
  return seconds < 90 ? `wait ${Math.ceil(seconds)} seconds` : `wait ${Math.ceil(seconds / 60)} minutes`;
}

/** Errors people meet (signing in, private videos, full videos) in plain words; the rest as `CODE: message`. */
export function readableError(err: unknown): string {
  if (!(err instanceof ApiError)) return errorText(err);
  return playbackErrorText(err.code, err.retryAfter) ?? accountErrorText(err) ?? errorText(err);
}

function accountErrorText(err: ApiError): string | null {
  switch (err.code) {
    case 'LOGIN_FAILED':
      return 'Wrong name or password.';
    case 'LOGIN_RATE_LIMITED': {
      // The server says how long in its message ("… try again in 840 s").
      const said = /(\d+)\s*s\b/.exec(err.message);
      return `Too many attempts: ${waitText(err.retryAfter ?? (said ? Number(said[1]) : null))}, then try again.`;
    }
    case 'RATE_LIMITED':
      return `Too many requests: ${waitText(err.retryAfter)}, then try again.`;
    case 'AUTH_REQUIRED':
    case 'AUTH_INVALID':
      return 'You are not signed in (or your session has ended): sign in again.';
    case 'SCOPE_MISSING':
      return 'Your account is not allowed to do this.';
    case 'CSRF_INVALID':
      return 'Your session changed (signed in or out in another tab?): reload the page and try again.';
    case 'SETUP_CODE_INVALID':
      return 'Wrong or used setup code: copy the code from the server log again.';
    case 'SETUP_DONE':
      return 'The first admin exists already: sign in.';
    case 'USER_EXISTS':
      return 'A user with this name exists already.';
    default:
      return null;
  }
}

/** A playback refusal (player.json, a manifest, a licence) in plain words; null for other codes. */
export function playbackErrorText(code: string, retryAfter: number | null = null): string | null {
  switch (code) {
    case 'VIEWER_LIMIT_REACHED':
      return 'This video has reached its viewer limit. Try again in a minute.';
    case 'SESSION_LIMIT_REACHED':
      return 'Too many videos are playing from your network address. Close one and try again in a minute.';
    case 'PLAYBACK_TOKEN_REQUIRED':
      return 'This video is private: it plays only from a signed link. Sign in, or ask whoever shared it for a link.';
    case 'PLAYBACK_TOKEN_EXPIRED':
      return 'This link has expired. Ask whoever shared it for a new one.';
    case 'PLAYBACK_TOKEN_WRONG_IP':
      return 'This link was made for another network address. Ask whoever shared it for a new one.';
    case 'PLAYBACK_TOKEN_INVALID':
    case 'PLAYBACK_TOKEN_WRONG_ASSET':
    case 'PLAYBACK_TOKEN_WRONG_AUD':
    case 'PLAYBACK_TOKEN_KEY_REVOKED':
      return 'This link is not valid (any more) for this video. Ask whoever shared it for a new one.';
    case 'RATE_LIMITED':
      return retryAfter ? `Too many requests: wait ${Math.ceil(retryAfter)} seconds.` : null;
    default:
      return code.startsWith('PLAYBACK_TOKEN_') ? 'This link is not valid for this video.' : null;
  }
}

/** A date as the tables show it ('–' for none). */
export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : '–';
}

export function bytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MB`;
  return `${(n / 1024).toFixed(0)} KB`;
}

export function clock(seconds: number): string {
  const t = Math.max(0, Math.round(seconds));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const s = String(t % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export function statusText(a: Asset): string {
  if (a.status === 'failed') return `Failed — ${a.error?.code}: ${a.error?.message}`;
  if (a.status === 'processing' && a.progress) {
    const speed = a.progress.speed ? `, ${a.progress.speed.toFixed(2)}× realtime` : '';
    const eta = a.progress.etaSeconds != null ? `, ${clock(a.progress.etaSeconds)} left` : '';
    return `Encoding ${Math.floor(a.progress.percent)}%${speed}${eta}`;
  }
  return { queued: 'Queued for encoding', processing: 'Encoding', ready: 'Ready', failed: 'Failed', live: 'Live now' }[
    a.status
  ];
}
