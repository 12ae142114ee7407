// The platform's JSON API as the pages use it (same origin).
import type { LiveStreamJson, LiveTargetStatusJson } from '../../src/roles/api/live.ts';
import type { AssetJson } from '../../src/roles/api/present.ts';

/** The API's asset object: the server's own type (a type-only import; nothing of the server is bundled). */
export type Asset = AssetJson;
/** A live stream (publishing point), its push targets and its stats, as the API gives them. */
export type LiveStream = LiveStreamJson;
export type LiveTarget = LiveTargetStatusJson;
export type LiveStats = NonNullable<LiveStreamJson['stats']>;
export type LiveAction = 'start' | 'stop' | 'shutdown' | 'rotate-key';
export interface NewLiveStream {
  title: string;
  dvrWindowSeconds?: number;
  latency?: 'low' | 'standard';
  archive?: boolean;
}

export class ApiError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

async function json<T>(res: Response): Promise<T> {
  const body = (await res.json().catch(() => null)) as (T & { error?: { code: string; message: string } }) | null;
  if (!res.ok || body === null) {
    throw new ApiError(body?.error?.code ?? `HTTP_${res.status}`, body?.error?.message ?? res.statusText);
  }
  return body;
}

/** A JSON request; `{error:{code,message}}` answers become ApiError. A 204 resolves to null. */
async function send<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  if (res.status === 204) return null as T;
  return json<T>(res);
}

const liveUrl = (id: string, rest = '') => `/api/live/${encodeURIComponent(id)}${rest}`;

export const liveApi = {
  list: async () => (await send<{ streams: LiveStream[] }>('GET', '/api/live?limit=500')).streams,
  get: (id: string) => send<LiveStream>('GET', liveUrl(id)),
  create: (input: NewLiveStream) => send<LiveStream>('POST', '/api/live', input),
  act: (id: string, action: LiveAction) => send<LiveStream>('POST', liveUrl(id, `/${action}`)),
  remove: (id: string) => send<null>('DELETE', liveUrl(id)),
  addTarget: (id: string, url: string) => send<LiveTarget>('POST', liveUrl(id, '/targets'), { url }),
  removeTarget: (id: string, targetId: string) =>
    send<null>('DELETE', liveUrl(id, `/targets/${encodeURIComponent(targetId)}`)),
  /** The stream over Server-Sent Events: `state` at once and on every change, `stats` every second. */
  follow(
    id: string,
    on: { state(s: LiveStream): void; stats(s: LiveStats | null): void; deleted(): void },
  ): () => void {
    const es = new EventSource(liveUrl(id, '/events'));
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
  list: async () => (await json<{ assets: Asset[] }>(await fetch('/api/assets?limit=200'))).assets,
  get: async (id: string) => json<Asset>(await fetch(`/api/assets/${encodeURIComponent(id)}`)),
  remove: async (id: string) => {
    const res = await fetch(`/api/assets/${encodeURIComponent(id)}`, { method: 'DELETE' });
    if (!res.ok && res.status !== 404) await json(res);
  },
  assetOfUpload: async (uploadUrl: string) => json<Asset>(await fetch(`${uploadUrl}/asset`)),
  /** Follows an asset over Server-Sent Events until it is ready, failed or deleted. */
  follow(id: string, on: (a: Asset | null) => void): () => void {
    const es = new EventSource(`/api/assets/${encodeURIComponent(id)}/events`);
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
