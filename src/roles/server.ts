// `smoothcast serve`: every role in one process over SQLite and a local data folder — the API, the origin, the
// worker and the web page. Each role has its own start/close; this file only wires them.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../core/config.ts';
import { SqliteAssetRepository } from '../core/db/assets.ts';
import { type Caption, SqliteCaptionRepository } from '../core/db/captions.ts';
import { type Db, openDatabase } from '../core/db/database.ts';
import { SqliteLiveRepository } from '../core/db/live.ts';
import { SqliteJobQueue } from '../core/db/queue.ts';
import { SqliteUploadRepository } from '../core/db/uploads.ts';
import { asSmoothcastError, SmoothcastError } from '../core/errors.ts';
import { LocalStorage } from '../core/storage/local.ts';
import type { TextRendition } from '../media/types.ts';
import { registerApi } from './api/api.ts';
import { registerLiveApi } from './api/live.ts';
import { finishArchive, makeLivePoster } from './live/archive.ts';
import { registerHttpIngest } from './live/http-ingest.ts';
import { LiveService } from './live/live-service.ts';
import { srtUrl } from './live/srt-ingest.ts';
import { LiveTargets } from './live/targets.ts';
import { Origin, type PlaybackState } from './origin/origin.ts';
import { Uploads } from './upload/uploads.ts';
import { registerWeb } from './web/web.ts';
import { Worker } from './worker/worker.ts';

export interface Platform {
  app: FastifyInstance;
  url: string;
  db: Db;
  worker: Worker | null;
  origin: Origin;
  uploads: Uploads;
  /** The live role (null when live.enabled is false). */
  live: LiveService | null;
  close(): Promise<void>;
}

export type Logger = (msg: string, extra?: Record<string, unknown>) => void;

export const consoleLogger: Logger = (msg, extra) => {
  console.log(JSON.stringify({ t: new Date().toISOString(), msg, ...extra }));
};

/** Opens the data folder's database and storage (shared by serve, import, ls, rm). */
export function openData(config: Config) {
  mkdirSync(config.storage.dataDir, { recursive: true });
  const db = openDatabase(join(config.storage.dataDir, 'smoothcast.db'));
  const assets = new SqliteAssetRepository(db);
  const queue = new SqliteJobQueue(db, {
    maxAttempts: config.worker.maxAttempts,
    // A job whose workers kept dying has used its attempts: its asset fails instead of staying "processing".
    onLeaseExhausted: (job) => {
      try {
        assets.setFailed(job.assetId, job.lastError ?? { code: 'JOB_LEASE_LOST', message: 'the worker died' });
      } catch {
        // deleted meanwhile
      }
    },
  });
  return {
    db,
    assets,
    captions: new SqliteCaptionRepository(db),
    live: new SqliteLiveRepository(db),
    queue,
    uploads: new SqliteUploadRepository(db),
    storage: new LocalStorage(join(config.storage.dataDir, 'media')),
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
  const { db, assets, captions, live: liveStreams, queue, storage, uploads: uploadRecords } = openData(config);
  const catalog = {
    playbackState(id: string): PlaybackState | null {
      const a = assets.get(id);
      if (!a) return null;
      const stream = a.liveStreamId ? liveStreams.get(a.liveStreamId) : null;
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
        text: a.status === 'ready' ? captions.list(a.id).map(textRendition) : [],
        presentationOffset: a.presentationOffset ?? legacyOffset(a.renditions),
      };
    },
  };
  const origin = new Origin({
    catalog,
    reader: storage,
    indexCacheEntries: config.origin.indexCacheEntries,
    manifestMaxAge: config.origin.manifestMaxAge,
    corsOrigin: config.origin.corsOrigin,
    bufferPoolBytes: config.origin.bufferPoolMB * 2 ** 20,
    throttle: config.progressive.throttle
      ? { burstSeconds: config.progressive.burstSeconds, rateFactor: config.progressive.rateFactor }
      : undefined,
  });
  const worker = config.worker.enabled
    ? new Worker({ config, assets, captions, queue, storage, log, onAssetChanged: (id) => origin.evict(id) })
    : null;

  const app = Fastify({ bodyLimit: config.server.bodyLimit, logger: false });
  app.setErrorHandler((raw, req, reply) => {
    const fastifyStatus = (raw as { statusCode?: number }).statusCode;
    const err =
      raw instanceof SmoothcastError
        ? raw
        : fastifyStatus && fastifyStatus >= 400 && fastifyStatus < 500
          ? new SmoothcastError(fastifyStatus === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST', (raw as Error).message)
          : asSmoothcastError(raw);
    if (err.status >= 500) log('request failed', { url: req.url, code: err.code, error: String(raw) });
    // Unexpected errors may name server paths or internals: the client gets the code, the log the details.
    const body =
      err.code === 'INTERNAL' ? { code: err.code, message: 'internal error (logged on the server)' } : err.toJSON();
    return reply.code(err.status).send({ error: body });
  });
  app.setNotFoundHandler((req, reply) => {
    const err = new SmoothcastError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`);
    return reply.code(404).send({ error: err.toJSON() });
  });
  registerApi(app, {
    assets,
    captions,
    captionMaxBytes: config.captions.maxBytes,
    evictText: (id) => origin.text.evict(id),
    queue,
    storage,
    publicUrl: config.server.publicUrl,
    cancelEncode: (id) => worker?.cancelAsset(id),
    evict: (id) => origin.evict(id),
    health: () => ({ ffmpeg, worker: worker ? { active: worker.activeJobs } : null }),
  });
  const uploads = new Uploads({
    config,
    db,
    assets,
    queue,
    storage,
    uploads: uploadRecords,
    publicUrl: config.server.publicUrl,
    log,
  });
  uploads.register(app);
  origin.register(app);
  const [srtFrom, srtTo] = config.live.srtPorts.split('-').map(Number) as [number, number];
  if (!(srtFrom <= srtTo))
    throw new SmoothcastError('CONFIG_INVALID', `live.srtPorts ${config.live.srtPorts}: from > to`);
  let targets: LiveTargets | null = null;
  const live = config.live.enabled
    ? new LiveService({
        live: liveStreams,
        assets,
        storage,
        log,
        host: config.live.host,
        rtmpPort: config.live.rtmpPort,
        transcode: config.live.transcode,
        maxPublishers: config.live.maxPublishers,
        maxRunMs: config.live.maxEventHours * 3600_000,
        srt: true,
        poke: (id, rev) => origin.live.feeds.poke(id, rev),
        evict: (id) => origin.evict(id),
        viewers: (id) => origin.live.viewers(id),
        finishArchive: (id) => finishArchive(id, { assets, storage, config, log }),
        livePoster: (id, rev, rid) => makeLivePoster(id, rev, rid, { storage, config, log }),
        onMedia: (id, chunk) => targets?.write(id, chunk),
        onPublishEnded: (id) => targets?.publishEnded(id),
      })
    : null;
  if (live) targets = new LiveTargets({ live: liveStreams, log, prelude: (id) => live.prelude(id) });
  registerLiveApi(app, {
    live: liveStreams,
    service: live,
    srtPorts: [srtFrom, srtTo],
    publicHost: config.live.publicHost,
    publicUrl: config.server.publicUrl,
    currentRev: (id) => assets.get(id)?.rev ?? null,
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
  registerWeb(app);

  await app.listen({ host: config.server.host, port: config.server.port });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.server.port;
  const host = config.server.host === '0.0.0.0' || config.server.host === '::' ? 'localhost' : config.server.host;
  await uploads.start();
  try {
    await live?.start();
  } catch (err) {
    uploads.close();
    await app.close();
    db.close();
    throw err;
  }
  worker?.start();
  return {
    app,
    url: `http://${host}:${port}`,
    db,
    worker,
    origin,
    uploads,
    live,
    async close() {
      await live?.close();
      await targets?.close();
      uploads.close();
      await worker?.close();
      await app.close();
      db.close();
    },
  };
}
