// The live streams API (docs/openapi.yaml): publishing points, their state machine's actions, their ingest and
// playback URLs, stats as Server-Sent Events, and push targets. The stream's own playback URLs (/v/live/{id}/…)
// redirect to its current event, so a player bookmarked on the stream always gets the event that is on.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LIVE_ID, type LiveRepository, type LiveStream, type NewLiveStream } from '../../core/db/live.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { publicState } from '../../media/live/state.ts';
import type { LiveService, LiveStats } from '../live/live-service.ts';
import { eventStream, type SseLogger } from './sse.ts';

export interface LiveTargetStatusJson {
  id: string;
  url: string;
  state: string;
  error: string | null;
}

export interface LiveStreamJson {
  id: string;
  title: string;
  state: 'idle' | 'starting' | 'started' | 'stopped' | 'shutdown';
  /** While a dropped publisher may still come back (state `started`): when that window closes. */
  reconnectDeadline: string | null;
  streamKey: string;
  ingest: { rtmp: string; srt: string | null; http: string };
  /** `signed`: watching its events needs a playback token (POST /api/live/:id/playback-tokens). */
  playbackPolicy: 'public' | 'signed';
  /** Concurrent viewers allowed (null: no limit). */
  maxViewers: number | null;
  /** Viewer sessions open now (counted where limits apply or tokens are used). */
  viewers: number;
  /** What to type into OBS (Settings → Stream → Service: Custom). */
  obs: { server: string; streamKey: string };
  playback: { hls: string; dash: string; smooth: string };
  currentAssetId: string | null;
  dvrWindowSeconds: number;
  archive: boolean;
  latency: 'low' | 'standard';
  reconnectWindowSeconds: number;
  transcode: boolean | null;
  targets: LiveTargetStatusJson[];
  stats: LiveStats | null;
  createdAt: string;
  updatedAt: string;
}

export interface LiveApiOptions {
  live: LiveRepository;
  service: LiveService | null;
  srtPorts: readonly [number, number];
  /** Host for ingest URLs ('' = the request's). */
  publicHost: string;
  publicUrl: string;
  srtUrl?: (host: string, port: number, passphrase: string) => string;
  /** Whether SRT listeners run (else ingest.srt is null). */
  srt?: boolean;
  targets?: {
    add(stream: LiveStream, url: string): Promise<LiveTargetStatusJson>;
    list(stream: LiveStream): Promise<LiveTargetStatusJson[]>;
    remove(stream: LiveStream, targetId: string): Promise<boolean>;
  };
  ssePollMs?: number;
  /** Where an SSE poll that failed is reported (default: stderr). */
  log?: SseLogger;
  /** The rev of an asset (the Smooth manifest URL names it). */
  currentRev?: (assetId: string) => Promise<string | null>;
  /** Forgets what the origin cached of an asset (its access changed). */
  evict?: (assetId: string) => void;
  /** Signs a playback token for a stream (body: expiresInSeconds, ip, sid, aud). */
  sign?: (sub: string, body: Record<string, unknown>) => Promise<{ token: string; expiresAt: number }>;
  /** Viewer sessions open on a stream now. */
  viewers?: (streamId: string) => number;
}

function streamId(raw: string): string {
  if (!LIVE_ID.test(raw)) throw new SmoothcastError('INVALID_ID', `invalid live stream id ${JSON.stringify(raw)}`);
  return raw;
}

function hostOf(req: FastifyRequest, o: LiveApiOptions): { host: string; http: string } {
  const base = o.publicUrl || `${req.protocol}://${req.headers.host ?? 'localhost'}`;
  const url = new URL(base);
  return { host: o.publicHost || url.hostname, http: url.origin };
}

function safeSrtUrl(o: LiveApiOptions, host: string, port: number, passphrase: string): string | null {
  try {
    return o.srtUrl?.(host, port, passphrase) ?? `srt://${host}:${port}?passphrase=${passphrase}&pbkeylen=16`;
  } catch {
    return null; // a host SRT callers cannot use as it is (set live.publicHost)
  }
}

export async function presentLive(s: LiveStream, req: FastifyRequest, o: LiveApiOptions): Promise<LiveStreamJson> {
  const { host, http } = hostOf(req, o);
  const port = o.service?.rtmpPort ?? 1935;
  const server = `rtmp://${host}${port === 1935 ? '' : `:${port}`}/live`;
  const base = o.publicUrl;
  const play = `${base}/v/live/${s.id}`;
  return {
    id: s.id,
    title: s.title,
    state: publicState(s.state),
    reconnectDeadline: s.state.name === 'reconnecting' ? new Date(s.state.deadline).toISOString() : null,
    streamKey: s.streamKey,
    ingest: {
      rtmp: `${server}/${s.streamKey}`,
      srt: s.srtPort !== null && o.srt !== false ? safeSrtUrl(o, host, s.srtPort, s.srtPassphrase) : null,
      http: `${http}/ingest/${s.streamKey}`,
    },
    obs: { server, streamKey: s.streamKey },
    playback: { hls: `${play}/master.m3u8`, dash: `${play}/manifest.mpd`, smooth: `${play}/Manifest` },
    currentAssetId: s.currentAssetId,
    dvrWindowSeconds: s.dvrWindowSeconds,
    archive: s.archive,
    latency: s.latency,
    reconnectWindowSeconds: s.reconnectWindowSeconds,
    transcode: s.transcode,
    targets: (await o.targets?.list(s)) ?? [],
    stats: (await o.service?.stats(s.id)) ?? null,
    playbackPolicy: s.playbackPolicy,
    maxViewers: s.maxViewers,
    viewers: o.viewers?.(s.id) ?? 0,
    createdAt: new Date(s.createdAt).toISOString(),
    updatedAt: new Date(s.updatedAt).toISOString(),
  };
}

export function registerLiveApi(app: FastifyInstance, o: LiveApiOptions): void {
  const mustGet = async (id: string): Promise<LiveStream> => {
    const s = await o.live.get(streamId(id));
    if (!s) throw new SmoothcastError('LIVE_NOT_FOUND', `no live stream ${id}`);
    return s;
  };
  const service = (): LiveService => {
    if (!o.service) throw new SmoothcastError('LIVE_STATE_CONFLICT', 'the live role is not running in this server');
    return o.service;
  };

  app.post<{ Body: NewLiveStream }>('/api/live', { config: { scope: 'live:write' } }, async (req, reply) => {
    const body = req.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new SmoothcastError('BAD_REQUEST', 'the body must be a JSON object with at least a title');
    }
    const known = ['title', 'dvrWindowSeconds', 'archive', 'latency', 'reconnectWindowSeconds', 'transcode'];
    for (const k of Object.keys(body)) {
      if (!known.includes(k)) throw new SmoothcastError('BAD_REQUEST', `unknown field ${k}`);
    }
    const s = await o.live.create(body, { srtPorts: o.srtPorts });
    o.service?.listen(s);
    return reply.code(201).send(await presentLive(s, req, o));
  });

  app.get<{ Querystring: { limit?: string; offset?: string } }>(
    '/api/live',
    { config: { scope: 'live:write' } },
    async (req) => {
      const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
      const offset = req.query.offset === undefined ? 0 : Number(req.query.offset);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500 || !Number.isInteger(offset) || offset < 0) {
        throw new SmoothcastError('BAD_REQUEST', 'limit must be 1–500 and offset ≥ 0');
      }
      const streams = await o.live.list({ limit, offset });
      return {
        streams: await Promise.all(streams.map((s) => presentLive(s, req, o))),
        total: await o.live.count(),
      };
    },
  );

  app.get<{ Params: { id: string } }>('/api/live/:id', { config: { scope: 'live:write' } }, async (req) =>
    presentLive(await mustGet(req.params.id), req, o),
  );

  for (const action of ['start', 'stop', 'shutdown', 'rotate-key'] as const) {
    app.post<{ Params: { id: string } }>(
      `/api/live/:id/${action}`,
      { config: { scope: 'live:write' } },
      async (req) => {
        const id = (await mustGet(req.params.id)).id;
        const svc = service();
        const s =
          action === 'start'
            ? await svc.startStream(id)
            : action === 'stop'
              ? await svc.stopStream(id)
              : action === 'shutdown'
                ? await svc.shutdown(id)
                : await svc.rotateKey(id);
        return await presentLive(s, req, o);
      },
    );
  }

  app.delete<{ Params: { id: string } }>('/api/live/:id', { config: { scope: 'live:write' } }, async (req, reply) => {
    const s = await mustGet(req.params.id);
    if (o.service) await o.service.remove(s.id);
    else await o.live.delete(s.id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string }; Body: { url?: unknown } }>(
    '/api/live/:id/targets',
    { config: { scope: 'live:write' } },
    async (req, reply) => {
      const s = await mustGet(req.params.id);
      if (!o.targets) throw new SmoothcastError('LIVE_STATE_CONFLICT', 'push targets are not available here');
      const url = req.body?.url;
      if (typeof url !== 'string') throw new SmoothcastError('LIVE_TARGET_INVALID', 'url must be a string');
      return reply.code(201).send(await o.targets.add(s, url));
    },
  );

  app.delete<{ Params: { id: string; targetId: string } }>(
    '/api/live/:id/targets/:targetId',
    { config: { scope: 'live:write' } },
    async (req, reply) => {
      const s = await mustGet(req.params.id);
      if (!(await o.targets?.remove(s, req.params.targetId))) {
        throw new SmoothcastError('LIVE_TARGET_NOT_FOUND', `no push target ${req.params.targetId}`);
      }
      return reply.code(204).send();
    },
  );

  // Server-Sent Events: the stream as JSON at once and on every change (`state`), its stats every second (`stats`).
  app.get<{ Params: { id: string } }>(
    '/api/live/:id/events',
    { config: { scope: 'live:write' } },
    async (req, reply) => {
      const id = (await mustGet(req.params.id)).id;
      const every = o.ssePollMs ?? 250;
      let last = -1;
      let ticks = 0;
      eventStream(req, reply, every, o.log, async (sse) => {
        const s = await o.live.get(id);
        if (!s) {
          sse.send('deleted', { id });
          sse.end();
          return;
        }
        if (s.updatedAt !== last) {
          last = s.updatedAt;
          sse.send('state', await presentLive(s, req, o), s.updatedAt);
        }
        if (ticks++ % Math.max(1, Math.round(1000 / every)) === 0) {
          sse.send('stats', { id, stats: (await o.service?.stats(id)) ?? null });
        }
      });
    },
  );

  // The stream's own playback URLs: 302 to its current event's (relative URLs in them resolve against the event).
  const follow = (file: string) => async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
    const s = await mustGet(req.params.id);
    if (!s.currentAssetId) throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'this stream has no event yet');
    reply.header('cache-control', 'no-store');
    reply.header('access-control-allow-origin', '*');
    let target = `/v/${s.currentAssetId}/${file}`;
    if (file === 'Manifest') {
      const rev = await o.currentRev?.(s.currentAssetId);
      if (!rev) throw new SmoothcastError('ASSET_NOT_PLAYABLE', 'this stream has no event yet');
      target = `/v/${s.currentAssetId}/${rev}.ism/Manifest`;
    }
    // The token (and session) of signed playback travel on: the event's manifests check them.
    const q = req.url.indexOf('?');
    return reply.redirect(`${o.publicUrl}${target}${q >= 0 ? req.url.slice(q) : ''}`, 302);
  };

  app.patch<{ Params: { id: string }; Body: Record<string, unknown> }>(
    '/api/live/:id',
    { config: { scope: 'live:write' } },
    async (req) => {
      const s = await mustGet(req.params.id);
      const b = req.body;
      if (typeof b !== 'object' || b === null || Array.isArray(b)) {
        throw new SmoothcastError('BAD_REQUEST', 'the body is a JSON object');
      }
      const known = new Set(['title', 'playbackPolicy', 'maxViewers']);
      for (const k of Object.keys(b)) if (!known.has(k)) throw new SmoothcastError('BAD_REQUEST', `unknown field ${k}`);
      const u = await o.live.updateSettings(s.id, b as never);
      if (u.currentAssetId) o.evict?.(u.currentAssetId);
      return await presentLive(u, req, o);
    },
  );

  app.post<{ Params: { id: string }; Body: Record<string, unknown> | undefined }>(
    '/api/live/:id/playback-tokens',
    { config: { scope: 'playback:sign' } },
    async (req, reply) => {
      const s = await mustGet(req.params.id);
      if (!o.sign) throw new SmoothcastError('INTERNAL', 'this server does not sign playback tokens');
      const t = await o.sign(s.id, req.body ?? {});
      const play = `${o.publicUrl}/v/live/${s.id}`;
      const q = `?token=${encodeURIComponent(t.token)}`;
      reply.header('cache-control', 'no-store');
      return reply.code(201).send({
        token: t.token,
        expiresAt: new Date(t.expiresAt).toISOString(),
        playback: { hls: `${play}/master.m3u8${q}`, dash: `${play}/manifest.mpd${q}`, smooth: `${play}/Manifest${q}` },
      });
    },
  );
  app.get('/v/live/:id/master.m3u8', follow('master.m3u8'));
  app.get('/v/live/:id/manifest.mpd', follow('manifest.mpd'));
  app.get('/v/live/:id/Manifest', follow('Manifest'));
}
