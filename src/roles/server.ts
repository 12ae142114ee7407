// `smoothcast serve`: every role in one process over SQLite and a local data folder — the API, the origin, the
// worker and the web page. Each role has its own start/close; this file only wires them.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { PlaybackSigner, PlaybackVerifier } from '../core/auth/playback-tokens.ts';
import type { Config } from '../core/config.ts';
import { SqliteAccounts } from '../core/db/accounts.ts';
import type { Asset } from '../core/db/assets.ts';
import { isValidAssetId, SqliteAssetRepository } from '../core/db/assets.ts';
import { type Caption, SqliteCaptionRepository } from '../core/db/captions.ts';
import { type Db, openDatabase } from '../core/db/database.ts';
import { SqliteLiveRepository } from '../core/db/live.ts';
import { SqliteQoeRepository } from '../core/db/qoe.ts';
import { JOBS_CHANNEL, SqliteJobQueue } from '../core/db/queue.ts';
import { SqliteSigningKeys } from '../core/db/signing-keys.ts';
import { SqliteUploadRepository } from '../core/db/uploads.ts';
import { asSmoothcastError, SmoothcastError } from '../core/errors.ts';
import { randomBase32 } from '../core/ids.ts';
import { loadMasterKey } from '../core/master-key.ts';
import { Metrics } from '../core/metrics.ts';
import { HeldFiles, internalSecret, RoutingReader } from '../core/storage/held.ts';
import { LocalStorage } from '../core/storage/local.ts';
import { openStorage } from '../core/storage/open.ts';
import { keys, type Storage } from '../core/storage/storage.ts';
import { Webhooks } from '../core/webhooks.ts';
import type { TextRendition } from '../media/types.ts';
import { registerAccountsApi } from './api/accounts.ts';
import { registerApi } from './api/api.ts';
import { Auth, type DeclaredRoute, LoginLimiter } from './api/auth.ts';
import { registerLiveApi } from './api/live.ts';
import { registerPlaybackApi, tokenRequest } from './api/playback.ts';
import { presentAsset } from './api/present.ts';
import { actorOf } from './api/scopes.ts';
import { registerWebhookApi } from './api/webhooks.ts';
import { registerHardening, serverOptions } from './http/hardening.ts';
import { registerInternal } from './http/internal.ts';
import { registerMetrics } from './http/metrics-route.ts';
import { finishArchive, makeLivePoster } from './live/archive.ts';
import { registerHttpIngest } from './live/http-ingest.ts';
import { LiveService } from './live/live-service.ts';
import { srtUrl } from './live/srt-ingest.ts';
import { LiveTargets } from './live/targets.ts';
import { PlaybackAccess, queryParam, Sessions } from './origin/access.ts';
import { OnTheFly } from './origin/encryption.ts';
import { Origin, type PlaybackState } from './origin/origin.ts';
import { QoeRecorder } from './origin/qoe.ts';
import { Uploads } from './upload/uploads.ts';
import { registerWeb } from './web/web.ts';
import { Worker } from './worker/worker.ts';
import { HOLD_GRACE_MS } from './worker/workspace.ts';

export interface Platform {
  app: FastifyInstance;
  url: string;
  db: Db;
  worker: Worker | null;
  origin: Origin;
  uploads: Uploads;
  /** The live role (null when live.enabled is false). */
  live: LiveService | null;
  accounts: SqliteAccounts;
  /** Every route that declares its access (all of /api does): what the security tests enumerate. */
  routes: readonly DeclaredRoute[];
  /** The one-time first-run code while no user exists (printed in the log at start), else null. */
  readonly setupCode: string | null;
  close(): Promise<void>;
}

/** A URL as logged: playback tokens, session ids and upload URL secrets replaced (no credential reaches a log). */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:token|sig|sid)=)[^&#]*/g, '$1…');
}

export type Logger = (msg: string, extra?: Record<string, unknown>) => void;

export const consoleLogger: Logger = (msg, extra) => {
  console.log(JSON.stringify({ t: new Date().toISOString(), msg, ...extra }));
};

/** The channel on which any process announces that an asset changed (other origins drop what they cached). */
export const ASSETS_CHANNEL = 'smoothcast_assets';

/** The database a config names: database.url, else SQLite in the data folder. */
export function databaseTarget(config: Config): string {
  return config.database.url || join(config.storage.dataDir, 'smoothcast.db');
}

/** Opens the configured database and storage (shared by serve, import, ls, rm, migrate). */
export async function openData(config: Config) {
  mkdirSync(config.storage.dataDir, { recursive: true });
  const db = await openDatabase(databaseTarget(config), {
    poolSize: config.database.poolSize,
    migrate: config.database.migrate,
  });
  let storage: Awaited<ReturnType<typeof openStorage>>;
  try {
    storage = await openStorage(config);
  } catch (err) {
    await db.close();
    throw err;
  }
  const assets = new SqliteAssetRepository(db);
  const queue = new SqliteJobQueue(db, {
    maxAttempts: config.worker.maxAttempts,
    // A job whose workers kept dying has used its attempts: its asset fails instead of staying "processing".
    onLeaseExhausted: (job) => {
      assets
        .setFailed(job.assetId, job.lastError ?? { code: 'JOB_LEASE_LOST', message: 'the worker died' })
        .catch(() => {
          // deleted meanwhile
        });
    },
  });
  return {
    db,
    assets,
    captions: new SqliteCaptionRepository(db),
    accounts: new SqliteAccounts(db),
    live: new SqliteLiveRepository(db),
    queue,
    uploads: new SqliteUploadRepository(db),
    storage,
  };
}

/**
 * Assets encoded before the offset was recorded: the same rule the encoder follows (presentationDelay: 2 frames
 * of B-frame delay at the output rate; none for audio).
 */
function legacyOffset(renditions: readonly { type: string; frameRate: number | null }[]): number {
  const fps = renditions.find((r) => r.type === 'video')?.frameRate;
  return fps ? 2 / fps : 0;
}

/** A caption track as the manifest writers see it. */
export function textRendition(c: Caption): TextRendition {
  return { id: c.id, language: c.language, label: c.label, kind: c.kind, default: c.default, forced: c.forced };
}

function ffmpegVersion(): string | null {
  try {
    return execFileSync('ffmpeg', ['-version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0] ?? null;
  } catch {
    return null;
  }
}

export async function startPlatform(config: Config, log: Logger = consoleLogger): Promise<Platform> {
  const ffmpeg = ffmpegVersion();
  if (!ffmpeg) {
    throw new SmoothcastError('CONFIG_INVALID', 'ffmpeg was not found on PATH: install it (apt-get install ffmpeg)');
  }
  const {
    db,
    assets,
    captions,
    accounts,
    live: liveStreams,
    queue,
    storage,
    uploads: uploadRecords,
  } = await openData(config);
  const masterKey = loadMasterKey(config);
  // Files this process holds for other nodes (S3: encodes in progress; live events), and the origin's reader that
  // routes each asset's reads to its holder while it has one (src/core/storage/held.ts).
  const held = new HeldFiles();
  const secret = internalSecret(masterKey);
  const selfUrl = { current: config.server.advertiseUrl || null };
  const routing = new RoutingReader(storage, { held, selfUrl: config.server.advertiseUrl, secret });
  const metrics = new Metrics();
  const catalog = {
    async playbackState(id: string): Promise<PlaybackState | null> {
      const a = await assets.get(id);
      if (!a) return null;
      routing.route(a.id, a.holder);
      const stream = a.liveStreamId ? await liveStreams.get(a.liveStreamId) : null;
      return {
        id: a.id,
        status: a.status,
        playable: a.playable,
        rev: a.rev,
        segmentDuration: a.liveStreamId ? 2 : config.encode.segmentDuration,
        renditions: a.renditions,
        live:
          a.liveStartMs !== null
            ? {
                startMs: a.liveStartMs,
                dvrWindowSeconds: stream?.dvrWindowSeconds ?? 0,
                latency: stream?.latency ?? 'low',
              }
            : null,
        text: a.status === 'ready' ? (await captions.list(a.id)).map(textRendition) : [],
        presentationOffset: a.presentationOffset ?? legacyOffset(a.renditions),
        // A live event's viewers are its stream's: policy and limit follow the stream (PATCH /api/live/:id).
        access: {
          policy: stream ? stream.playbackPolicy : a.playbackPolicy,
          encryption: a.encryption,
          maxViewers: stream ? stream.maxViewers : a.maxViewers,
          subjects: stream ? [a.id, stream.id] : [a.id],
          limitKey: stream ? stream.id : a.id,
        },
      };
    },
  };
  const signingKeys = new SqliteSigningKeys(db);
  // The origin holds public keys only: it can tell a valid token, never make one.
  const verifier = new PlaybackVerifier(() => signingKeys.verificationKeys());
  const signer = new PlaybackSigner(signingKeys, masterKey);
  const sessions = new Sessions({ idleSeconds: config.security.playbackSessionIdleSeconds });
  const drmServers = {
    ...(config.security.widevineLicenseUrl ? { widevine: config.security.widevineLicenseUrl } : {}),
    ...(config.security.playreadyLicenseUrl ? { playready: config.security.playreadyLicenseUrl } : {}),
  };
  const playbackAccess = new PlaybackAccess({ verifier, sessions, maxSessionsPerIp: config.limits.maxSessionsPerIp });
  const webhooks = new Webhooks({ db, master: masterKey, log });
  const emitLogged = (p: Promise<unknown>) =>
    p.catch((err: unknown) => log('webhook emit failed', { error: String(err) }));
  assets.onSettled = (a) =>
    emitLogged(
      webhooks.emit(a.status === 'ready' ? 'asset.ready' : 'asset.failed', {
        id: a.id,
        title: a.title,
        status: a.status,
        duration: a.duration,
        error: a.error,
        ...(a.liveStreamId ? { liveStreamId: a.liveStreamId } : {}),
      }),
    );
  const LIVE_EVENTS = { started: 'live.started', stopped: 'live.stopped', shutdown: 'live.shutdown' } as const;
  liveStreams.onStateChanged = (st) => {
    const event = LIVE_EVENTS[st.state.name as keyof typeof LIVE_EVENTS];
    if (event) emitLogged(webhooks.emit(event, { id: st.id, title: st.title, assetId: st.currentAssetId }));
  };
  const present = async (a: Asset, token?: string) =>
    presentAsset(a, config.server.publicUrl, await captions.list(a.id), {
      viewers: sessions.count(a.liveStreamId ?? a.id),
      ...(token ? { token } : {}),
      drmServers,
    });
  const roles = new Set(config.server.roles.split(','));
  // Viewing quality from the players' CMCD: the origin role counts it in memory and adds it to the catalog.
  const qoe = new SqliteQoeRepository(db);
  const qoeRecorder = roles.has('origin')
    ? new QoeRecorder({ store: qoe, flushMs: config.origin.qoeFlushMs, log })
    : null;
  const origin = new Origin({
    catalog,
    ...(qoeRecorder ? { qoe: qoeRecorder } : {}),
    access: playbackAccess,
    encryption: new OnTheFly({ master: masterKey, store: assets, cacheBytes: 64 * 2 ** 20, drm: drmServers }),
    reader: routing,
    onIndexLookup: (hit) => metrics.indexCacheLookup(hit),
    indexCacheEntries: config.origin.indexCacheEntries,
    manifestMaxAge: config.origin.manifestMaxAge,
    corsOrigin: config.origin.corsOrigin,
    publicUrl: config.server.publicUrl,
    bufferPoolBytes: config.origin.bufferPoolMB * 2 ** 20,
    throttle: config.progressive.throttle
      ? { burstSeconds: config.progressive.burstSeconds, rateFactor: config.progressive.rateFactor }
      : undefined,
  });
  // An asset changed (settings, deleted, re-encoded, encode started or ended): this process's origin forgets what
  // it cached at once, and every other process hears of it through the database (LISTEN/NOTIFY on PostgreSQL).
  const evictHere = (id: string) => {
    routing.forget(id);
    origin.evict(id);
  };
  const announce = (id: string) => {
    evictHere(id);
    db.notify(ASSETS_CHANNEL, id).catch(() => {});
  };
  const unlisten = await db.listen(ASSETS_CHANNEL, (id) => {
    if (isValidAssetId(id)) evictHere(id);
  });
  const worker =
    config.worker.enabled && roles.has('worker')
      ? new Worker({
          config,
          assets,
          captions,
          queue,
          storage,
          log,
          onAssetChanged: announce,
          held: storage.backend === 'local' ? null : held,
          get selfUrl() {
            return selfUrl.current;
          },
          scratchRoot: config.storage.scratchDir || join(config.storage.dataDir, 'scratch'),
          metrics,
          jobsQueued: {
            listen: (fn) => db.listen(JOBS_CHANNEL, fn),
            crossProcess: db.dialect === 'postgres',
          },
        })
      : null;

  const app = Fastify({
    ...serverOptions(config),
    bodyLimit: config.server.bodyLimit,
    logger: false,
    // A request id on every request (taken from a proxy's X-Request-Id when it is a sane token), echoed in the
    // answer and in every log line about the request.
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
  });
  app.addHook('onRequest', async (req, reply) => {
    if (!/^[\w.:-]{1,100}$/.test(req.id)) req.id = randomUUID();
    reply.header('x-request-id', req.id);
  });
  registerMetrics(app, metrics, config.server.metricsToken ? { token: config.server.metricsToken } : {});
  // Media bytes and upload bytes, counted where the answer is known (route pattern, status, length).
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? '';
    if (reply.statusCode === 204 && req.method === 'PATCH' && route.startsWith('/api/uploads/')) {
      metrics.uploadBytes(Number(req.headers['content-length'] ?? 0) || 0);
      return;
    }
    if (!route.startsWith('/v/') || (reply.statusCode !== 200 && reply.statusCode !== 206)) return;
    const type = String(reply.getHeader('content-type') ?? '');
    if (!/^(video|audio)\/mp4/.test(type)) return;
    const bytes = Number(reply.getHeader('content-length') ?? 0) || 0;
    const path = req.url.split('?')[0] ?? '';
    const format = path.includes('Fragments(') ? 'smooth' : route === '/v/:id/:rev/:rid/:seg' ? 'cmaf' : 'download';
    metrics.segmentBytes(format, bytes);
  });
  metrics.setLiveCounts(async () => {
    const ids = (await db.all(sql`SELECT id FROM assets WHERE status = 'live' LIMIT 10000`)).map((r) => String(r.id));
    return { streams: ids.length, viewers: ids.reduce((n, id) => n + origin.live.viewers(id), 0) };
  });
  metrics.setJobCounts(async () => {
    const c = await queue.counts();
    return { queued: c.queued, running: c.running, failed: c.failed };
  });
  app.setErrorHandler((raw, req, reply) => {
    const fastifyStatus = (raw as { statusCode?: number }).statusCode;
    const err =
      raw instanceof SmoothcastError
        ? raw
        : fastifyStatus && fastifyStatus >= 400 && fastifyStatus < 500
          ? new SmoothcastError(fastifyStatus === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST', (raw as Error).message)
          : asSmoothcastError(raw);
    if (err.status >= 500) {
      log('request failed', { reqId: req.id, url: redactUrl(req.url), code: err.code, error: String(raw) });
    }
    // Unexpected errors may name server paths or internals: the client gets the code, the log the details.
    const body =
      err.code === 'INTERNAL' ? { code: err.code, message: 'internal error (logged on the server)' } : err.toJSON();
    return reply.code(err.status).send({ error: body });
  });
  app.setNotFoundHandler((req, reply) => {
    const err = new SmoothcastError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
    return reply.code(404).send({ error: err.toJSON() });
  });
  await registerHardening(app, config, log);
  const auth = new Auth(accounts);
  auth.register(app);
  // Liveness (with the roles this process runs) and readiness (its dependencies answer), in every process.
  const dependencies = async () => {
    const check = async (f: () => unknown) => {
      try {
        await f();
        return 'ok';
      } catch (err) {
        return `down: ${(err as Error).message}`;
      }
    };
    return {
      database: await check(() => db.ping()),
      storage: await check(() => storage.stat('readyz-probe')),
    };
  };
  app.get('/healthz', { config: { scope: 'public' } }, async () => ({
    ok: true,
    roles: [...roles],
    ffmpeg,
    worker: worker ? { active: worker.activeJobs } : null,
    dependencies: await dependencies(),
  }));
  app.get('/readyz', { config: { scope: 'public' } }, async (_req, reply) => {
    const deps = await dependencies();
    const ready = Object.values(deps).every((v) => v === 'ok');
    reply.header('cache-control', 'no-store');
    return reply.code(ready ? 200 : 503).send({ ready, roles: [...roles], dependencies: deps });
  });
  const setupCode = { current: (await accounts.userCount()) === 0 ? randomBase32(20) : null };
  if (roles.has('api')) {
    registerAccountsApi(app, {
      accounts,
      limiter: new LoginLimiter({
        maxFailures: config.security.loginMaxFailures,
        windowMs: config.security.loginWindowMinutes * 60_000,
      }),
      loginSessionMs: config.security.loginSessionHours * 3600_000,
      setupCode,
      publicUrl: config.server.publicUrl,
      maxUploadSize: Math.min(config.uploads.maxSize, config.limits.maxFileSize),
      defaultPolicy: config.security.defaultPlaybackPolicy as 'public' | 'signed',
    });
    registerApi(app, {
      log,
      assets,
      captions,
      captionMaxBytes: config.captions.maxBytes,
      evictText: (id) => origin.text.evict(id),
      queue,
      qoe,
      storage,
      publicUrl: config.server.publicUrl,
      cancelEncode: (id) => worker?.cancelAsset(id),
      evict: announce,
      present: (a) => present(a),
      onDeleted: (a, req) => {
        emitLogged(webhooks.emit('asset.deleted', { id: a.id, title: a.title }));
        accounts
          .audit(actorOf(req), 'asset.deleted', a.id, { title: a.title })
          .catch((err: unknown) => log('audit failed', { error: String(err) }));
      },
    });
    registerPlaybackApi(app, {
      assets,
      signer,
      verifier,
      signingKeys,
      present: (a, token) => present(a, token),
      evict: announce,
      audit: (actor, action, target, detail) => accounts.audit(actor, action, target, detail),
      maxTokenSeconds: config.security.playbackTokenMaxSeconds,
      playerAccess: async (req, id) => {
        const access = (await catalog.playbackState(id))?.access;
        if (access?.policy !== 'signed') return undefined;
        await playbackAccess.verify(req, access, 'manifest');
        return queryParam(req, 'token');
      },
    });
    registerWebhookApi(app, {
      webhooks,
      audit: (req, action, target, detail) => accounts.audit(actorOf(req), action, target, detail),
    });
  }
  const uploads = new Uploads({
    config,
    db,
    assets,
    queue,
    storage,
    uploads: uploadRecords,
    publicUrl: config.server.publicUrl,
    log,
    accounts,
    onUploaded: (uploadId, a) =>
      emitLogged(
        webhooks.emit('upload.completed', { uploadId, assetId: a.id, title: a.title, sourceName: a.sourceName }),
      ),
    defaultPolicy: config.security.defaultPlaybackPolicy as 'public' | 'signed',
  });
  auth.setDirectUploadResolver((req) => uploads.directPrincipal(req));
  if (roles.has('upload')) uploads.register(app);
  if (roles.has('origin')) origin.register(app);
  qoeRecorder?.start();
  // Live events grow on this node's disk. With S3 storage the node holds them (origins elsewhere read them from it)
  // and, once the event has ended and its archive is finished, uploads them — one object per rendition — and
  // clears the holder in one step: the archive plays from the bucket under the same URLs, with no stall.
  const liveStorage: Storage =
    storage.backend === 'local'
      ? storage
      : new LocalStorage(join(config.storage.scratchDir || join(config.storage.dataDir, 'scratch'), 'live'));
  const eventPrefix = (id: string) => `${keys.assetPrefix(id)}/`;
  const holdEvent = async (id: string) => {
    held.holdPrefix(eventPrefix(id), liveStorage.localPath(keys.assetPrefix(id)));
    await assets.setHolder(id, selfUrl.current);
  };
  const uploadArchive = async (id: string) => {
    const files = await liveStorage.list(keys.assetPrefix(id));
    for (const f of files) {
      if (f.key.endsWith('.tmp.jpg')) continue;
      if (await storage.stat(f.key)) await storage.remove(f.key);
      await storage.importFile(liveStorage.localPath(f.key), f.key);
    }
    await assets.setHolder(id, null);
    announce(id);
    log('live archive uploaded', { asset: id, files: files.length });
    held.releasePrefixLater(eventPrefix(id), HOLD_GRACE_MS, () => liveStorage.deletePrefix(keys.assetPrefix(id)));
  };
  const [srtFrom, srtTo] = config.live.srtPorts.split('-').map(Number) as [number, number];
  if (!(srtFrom <= srtTo))
    throw new SmoothcastError('CONFIG_INVALID', `live.srtPorts ${config.live.srtPorts}: from > to`);
  let targets: LiveTargets | null = null;
  const live =
    config.live.enabled && roles.has('live')
      ? new LiveService({
          live: liveStreams,
          assets,
          storage: liveStorage,
          log,
          host: config.live.host,
          rtmpPort: config.live.rtmpPort,
          transcode: config.live.transcode,
          maxPublishers: config.live.maxPublishers,
          maxRunMs: config.live.maxEventHours * 3600_000,
          srt: true,
          poke: (id, rev) => origin.live.feeds.poke(id, rev),
          evict: announce,
          viewers: (id) => origin.live.viewers(id),
          finishArchive: async (id) => {
            try {
              await finishArchive(id, { assets, storage: liveStorage, config, log });
            } finally {
              // The archive goes to the bucket even when a poster or thumbnail could not be made.
              if (liveStorage !== storage) await uploadArchive(id);
            }
          },
          livePoster: (id, rev, rid) => makeLivePoster(id, rev, rid, { storage: liveStorage, config, log }),
          onEventCreated: liveStorage === storage ? undefined : holdEvent,
          onMedia: (id, chunk) => targets?.write(id, chunk),
          onPublishEnded: (id) => targets?.publishEnded(id),
        })
      : null;
  if (live) targets = new LiveTargets({ live: liveStreams, log, prelude: (id) => live.prelude(id) });
  if (roles.has('api'))
    registerLiveApi(app, {
      log,
      live: liveStreams,
      service: live,
      srtPorts: [srtFrom, srtTo],
      publicHost: config.live.publicHost,
      publicUrl: config.server.publicUrl,
      currentRev: async (id) => (await assets.get(id))?.rev ?? null,
      evict: announce,
      sign: async (sub, body) => signer.sign({ sub, ...tokenRequest(body, config.security.playbackTokenMaxSeconds) }),
      viewers: (id) => sessions.count(id),
      srtUrl,
      ...(targets ? { targets } : {}),
    });
  if (live) {
    registerHttpIngest(app, {
      authorize: (key) => live.http.authorize(key),
      onTrack: (target, track) => live.http.onTrack(target, track),
      log,
    });
  }
  if (roles.has('web')) registerWeb(app);
  // Every process that may hold files (encodes to S3, live ingest) serves them to the others' origins.
  if (roles.has('worker') || roles.has('live')) registerInternal(app, { held, secret });

  await app.listen({ host: config.server.host, port: config.server.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.server.port;
  const host = config.server.host === '0.0.0.0' || config.server.host === '::' ? 'localhost' : config.server.host;
  selfUrl.current ??= `http://${host === 'localhost' ? '127.0.0.1' : host}:${port}`;
  if (setupCode.current && roles.has('api')) {
    const url = `${config.server.publicUrl || `http://${host}:${port}`}/setup`;
    log(`first run: no user exists yet — open ${url} and enter the setup code ${setupCode.current}`, {
      setupUrl: url,
      setupCode: setupCode.current,
    });
  }
  if (roles.has('upload')) await uploads.start();
  try {
    await live?.start();
  } catch (err) {
    uploads.close();
    await app.close();
    await qoeRecorder?.close();
    await db.close();
    throw err;
  }
  await worker?.start();
  // Deliveries are claimed with a lease, so any number of api processes may run the loop.
  if (roles.has('api')) webhooks.start();
  return {
    app,
    url: `http://${host}:${port}`,
    db,
    worker,
    origin,
    uploads,
    live,
    accounts,
    routes: auth.routes,
    get setupCode() {
      return setupCode.current;
    },
    async close() {
      await live?.close();
      await targets?.close();
      await webhooks.close();
      uploads.close();
      await worker?.close();
      await app.close();
      await qoeRecorder?.close();
      unlisten();
      await db.close();
    },
  };
}
