// One encode job: probe → plan → ONE ffmpeg writing every rendition as a CMAF file (published as fragments land)
// → verify → ready. Every failure ends as a stable error code; bad input is never retried.
import { existsSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Config } from '../../core/config.ts';
import type { Asset, AssetRepository, FinalRendition, PlannedRendition } from '../../core/db/assets.ts';
import type { Job, JobQueue } from '../../core/db/queue.ts';
import { asSmoothcastError, SmoothcastError } from '../../core/errors.ts';
import { runProcess } from '../../core/process.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { buildEncodeArgs, buildPosterArgs } from '../../media/encode/ffmpeg-args.ts';
import { type LadderPlan, planLadder } from '../../media/encode/ladder.ts';
import {
  ffprobeArgs,
  interpretProbe,
  type MediaLimits,
  probeFailure,
  type SourceSummary,
} from '../../media/encode/probe.ts';
import { ProgressParser, progressFigures } from '../../media/encode/progress.ts';
import { buildRemuxArgs, progressiveRungs } from '../../media/progressive.ts';
import { buildThumbnailArgs, planThumbnails, sheetName, writeThumbnailVtt } from '../../media/thumbnails.ts';
import type { TrackInfo } from '../../media/types.ts';
import { OutputWatcher } from './outputs.ts';

export interface EncodeContext {
  config: Config;
  assets: AssetRepository;
  queue: JobQueue;
  storage: Storage;
  owner: string;
  signal: AbortSignal;
  log: (msg: string, extra?: Record<string, unknown>) => void;
}

// ffmpeg stderr lines that mean the input itself is damaged (retrying cannot help).
const DAMAGED_INPUT =
  /Invalid data found when processing input|moov atom not found|partial file|corrupt|error while decoding|Invalid NAL unit|missing picture in access unit|Truncating packet/i;

/** How short the output may fall of the source's declared duration before we call the source truncated. */
function truncationSlack(duration: number): number {
  return Math.max(1, duration * 0.05);
}

export async function runEncodeJob(job: Job, ctx: EncodeContext): Promise<void> {
  const { config, assets, storage } = ctx;
  const asset = assets.get(job.assetId);
  if (!asset) return; // deleted before we got to it
  const sourcePath = storage.localPath(asset.sourcePath);
  const st = await storage.stat(asset.sourcePath);
  if (!st) throw new SmoothcastError('MEDIA_NOT_FOUND', `the source file of asset ${asset.id} is missing`);

  const limits: MediaLimits = config.limits;
  const source = await probe(asset.sourcePath, st.size, limits, ctx);
  const plan = planLadder(source, {
    segmentDuration: config.encode.segmentDuration,
    firstSegmentDuration: config.encode.firstSegmentDuration,
  });
  const rev = `r${job.id}-${job.attempts}`;
  const renditions: PlannedRendition[] = [
    ...plan.video.map((v) => ({
      id: v.id,
      type: 'video' as const,
      width: v.width,
      height: v.height,
      bitrate: v.bitrate,
      frameRate: plan.frameRate ? plan.frameRate.num / plan.frameRate.den : source.video.frameRate,
    })),
    ...(plan.audio ? [{ id: plan.audio.id, type: 'audio' as const, bitrate: plan.audio.bitrate }] : []),
  ];
  assets.setProcessing(asset.id, {
    source: source as unknown as Record<string, unknown>,
    duration: source.duration,
    rev,
    renditions,
  });
  ctx.log('encode start', { asset: asset.id, rev, rungs: plan.video.map((v) => `${v.width}x${v.height}`) });
  // An earlier attempt whose worker died (its lease expired) never cleaned its partial files; the asset now points
  // at this attempt's rev, so nothing serves them any more. A worker that was only slow cleans its own on abort.
  for (let a = 1; a < job.attempts; a++) {
    await storage.deletePrefix(keys.revPrefix(asset.id, `r${job.id}-${a}`)).catch(() => {});
  }

  const outputs = renditions.map((r) => ({ id: r.id, key: keys.rendition(asset.id, rev, r.id) }));
  for (const o of outputs) await storage.prepare(o.key);
  // The poster waits for the first published segments: until then every core goes to the encode.
  let posterDone: Promise<void> | null = null;
  const startPoster = () => {
    posterDone ??= makePoster(asset, sourcePath, plan, ctx).catch((err) =>
      ctx.log('poster failed', { asset: asset.id, error: String(err) }),
    );
    return posterDone;
  };
  try {
    const finished = await encode(asset, sourcePath, source, plan, outputs, ctx, startPoster);
    const video = finished.filter((f) => f.track.kind === 'video');
    const duration = Math.max(...(video.length ? video : finished).map((f) => f.summary.duration));
    if (source.duration && duration < source.duration - truncationSlack(source.duration)) {
      throw new SmoothcastError(
        'MEDIA_TRUNCATED',
        `the source declares ${source.duration.toFixed(2)} s but only ${duration.toFixed(2)} s could be decoded; ` +
          'the file is probably truncated (an interrupted copy or upload)',
      );
    }
    await startPoster();
    await makeDownloads(asset, rev, finished, outputs, duration, ctx);
    await makeThumbnails(asset, rev, finished, duration, ctx);
    const final: FinalRendition[] = finished.map((f) => ({
      id: f.id,
      codecs: f.track.codec,
      averageBitrate: Math.round(f.summary.averageBitrate),
      peakBitrate: Math.round(f.summary.peakBitrate),
      frameRate: f.summary.frameRate ?? null,
      width: f.track.width ?? null,
      height: f.track.height ?? null,
    }));
    assets.setReady(asset.id, { duration, renditions: final });
    ctx.log('encode ready', { asset: asset.id, duration });
    if (!ctx.config.storage.keepSources) {
      // As the seed's encoder did: once the renditions exist, the source is not needed to play.
      await storage.remove(asset.sourcePath).catch((err) => ctx.log('source delete failed', { error: String(err) }));
    }
  } catch (err) {
    await posterDone;
    // This attempt's files are of no use to a retry (it writes a new rev) nor to a failed asset.
    await storage.deletePrefix(keys.revPrefix(asset.id, rev)).catch(() => {});
    throw err;
  }
}

async function probe(key: string, size: number, limits: MediaLimits, ctx: EncodeContext): Promise<SourceSummary> {
  const path = ctx.storage.localPath(key);
  const r = await runProcess('ffprobe', ffprobeArgs(path, limits), {
    timeoutMs: ctx.config.encode.probeTimeoutSeconds * 1000,
    stderrTail: 4096,
    signal: ctx.signal,
  });
  if (r.aborted) throw new SmoothcastError('JOB_CANCELLED');
  if (r.timedOut)
    throw new SmoothcastError('PROBE_TIMEOUT', 'ffprobe did not finish in time', { detail: r.stderrTail });
  let json: unknown;
  try {
    json = JSON.parse(r.stdout || '{}');
  } catch {
    throw new SmoothcastError('PROBE_FAILED', 'ffprobe printed no valid JSON', { detail: r.stderrTail });
  }
  if (r.code !== 0) throw probeFailure(r.stderrTail, await ctx.storage.read(key, 0, 16));
  return interpretProbe(json, limits, size);
}

/** Removes our own temp path from ffmpeg's messages: clients see the reason, not the server's folders. */
function clean(line: string): string {
  return line
    .replace(/(?:file:)?\/\S*\/(source|v\d+|a\d+)(\.[a-z0-9]+)?/g, '$1$2')
    .trim()
    .slice(0, 300);
}

/** A poster frame from the source; a seek past the real end writes nothing, so fall back to the first frame. */
/** Remuxes the progressive downloads (top and phone-sized rendition, audio muxed in, moov first) from our files. */
async function makeDownloads(
  asset: Asset,
  rev: string,
  finished: readonly { id: string; track: TrackInfo }[],
  outputs: readonly { id: string; key: string }[],
  duration: number,
  ctx: EncodeContext,
): Promise<void> {
  const { storage } = ctx;
  const audio = outputs.find((o) => o.id.startsWith('a'));
  const rungs = progressiveRungs(
    finished.map((f) => ({ id: f.id, type: f.track.kind, height: f.track.height ?? null })),
  );
  for (const rid of rungs) {
    const out = storage.localPath(keys.download(asset.id, rev, rid));
    const tmp = `${out}.tmp.mp4`;
    const args = buildRemuxArgs(
      storage.localPath(keys.rendition(asset.id, rev, rid)),
      audio ? storage.localPath(audio.key) : null,
      tmp,
    );
    await runFinishingStep(args, `remuxing the progressive download of ${rid}`, duration, ctx);
    await rename(tmp, out);
  }
}

/**
 * One ffmpeg step after the encode, working from our renditions (a stream copy, a small decode): far faster than
 * real time, so the limit only stops a hung process.
 */
async function runFinishingStep(args: string[], what: string, duration: number, ctx: EncodeContext): Promise<void> {
  const r = await runProcess('ffmpeg', args, { timeoutMs: Math.max(120_000, duration * 1000), signal: ctx.signal });
  if (r.aborted) throw new SmoothcastError('JOB_CANCELLED');
  if (r.code !== 0) throw new SmoothcastError('ENCODE_FAILED', `${what} failed`, { detail: r.stderrTail });
}

/** Sprite sheets + a WebVTT track for scrubbing, from a small rendition (cheap to decode). */
async function makeThumbnails(
  asset: Asset,
  rev: string,
  finished: readonly { id: string; track: TrackInfo }[],
  duration: number,
  ctx: EncodeContext,
): Promise<void> {
  const video = finished
    .filter((f) => f.track.kind === 'video' && f.track.width && f.track.height)
    .sort((a, b) => (a.track.height ?? 0) - (b.track.height ?? 0));
  const from = video.find((f) => (f.track.height ?? 0) >= 180) ?? video.at(-1);
  if (!from || !(duration > 0)) return;
  const plan = planThumbnails(duration, from.track.width!, from.track.height!);
  const { storage } = ctx;
  const vttKey = keys.thumbnails(asset.id, rev, 'thumbs.vtt');
  const pattern = storage.localPath(vttKey).replace(/thumbs\.vtt$/, 'thumbs-%03d.jpg');
  const input = storage.localPath(keys.rendition(asset.id, rev, from.id));
  await runFinishingStep(buildThumbnailArgs(input, plan, pattern), 'making the thumbnail sprites', duration, ctx);
  await writeFile(storage.localPath(vttKey), writeThumbnailVtt(plan, duration, sheetName));
}

async function makePoster(asset: Asset, sourcePath: string, plan: LadderPlan, ctx: EncodeContext): Promise<void> {
  const key = keys.poster(asset.id);
  await ctx.storage.prepare(key);
  const tmp = `${ctx.storage.localPath(key)}.tmp${extname(key)}`;
  const opts = { videoStream: plan.streams.video, maxPixels: ctx.config.limits.maxPixels };
  for (const time of plan.poster.time > 0 ? [plan.poster.time, 0] : [0]) {
    const r = await runProcess('ffmpeg', buildPosterArgs(sourcePath, time, tmp, 1280, opts), {
      timeoutMs: 60_000,
      signal: ctx.signal,
    });
    if (r.aborted) return;
    if (r.code === 0 && existsSync(tmp)) {
      await rename(tmp, ctx.storage.localPath(key));
      return;
    }
  }
  ctx.log('poster failed', { asset: asset.id });
}

async function encode(
  asset: Asset,
  sourcePath: string,
  source: SourceSummary,
  plan: LadderPlan,
  outputs: { id: string; key: string }[],
  ctx: EncodeContext,
  onPlayable: () => void,
) {
  const { assets, storage, config } = ctx;
  const videoOutputs = outputs.filter((o) => o.id.startsWith('v')).map((o) => storage.localPath(o.key));
  const audioOutput = outputs.find((o) => o.id.startsWith('a'));
  const args = buildEncodeArgs(
    sourcePath,
    plan,
    { video: videoOutputs, ...(audioOutput ? { audio: storage.localPath(audioOutput.key) } : {}) },
    {
      preset: config.encode.preset,
      maxPixels: config.limits.maxPixels,
      ...(config.encode.threads ? { threads: config.encode.threads } : {}),
    },
  );
  const watcher = new OutputWatcher(storage, outputs);
  const parser = new ProgressParser();
  const started = performance.now();
  let lastWrite = 0;
  let playable = false;
  let scanning: Promise<void> | null = null;

  // Publish while encoding: index the growing files; the asset turns playable at the first complete segment of
  // every rendition.
  const publish = async () => {
    await watcher.scan();
    if (!playable && watcher.playable) {
      playable = true;
      assets.setPlayable(asset.id, watcher.codecs());
      onPlayable();
      ctx.log('playable', { asset: asset.id, seconds: ((performance.now() - started) / 1000).toFixed(2) });
    }
  };
  const tick = setInterval(() => {
    if (!scanning) {
      scanning = publish()
        .catch((err) => ctx.log('index scan failed', { asset: asset.id, error: String(err) }))
        .finally(() => {
          scanning = null;
        });
    }
  }, 100);

  const timeoutMs = Math.max(config.encode.minTimeoutSeconds, config.encode.timeoutFactor * source.duration) * 1000;
  let result: Awaited<ReturnType<typeof runProcess>>;
  try {
    result = await runProcess('ffmpeg', args, {
      timeoutMs,
      stderrTail: 8192,
      signal: ctx.signal,
      onStdout: (chunk) => {
        for (const u of parser.push(chunk)) {
          const now = performance.now();
          if (!u.done && now - lastWrite < 500) continue;
          lastWrite = now;
          const f = progressFigures(u, source.duration, (now - started) / 1000);
          try {
            assets.setProgress(asset.id, {
              percent: u.done ? 99 : f.percent,
              speed: f.speed,
              etaSeconds: f.etaSeconds,
            });
          } catch {
            // The asset may have been deleted under us; the job heartbeat notices and aborts.
          }
        }
      },
    });
  } finally {
    clearInterval(tick);
    while (scanning) await scanning;
  }
  if (result.aborted) throw new SmoothcastError('JOB_CANCELLED');
  if (result.timedOut) {
    throw new SmoothcastError('ENCODE_TIMEOUT', `ffmpeg took longer than ${Math.round(timeoutMs / 1000)} s`, {
      detail: result.stderrTail,
    });
  }
  if (result.code !== 0) {
    const last = result.stderrTail.trim().split('\n').slice(-3).join(' | ');
    if (DAMAGED_INPUT.test(result.stderrTail)) {
      throw new SmoothcastError('MEDIA_DECODE_FAILED', `the source could not be decoded: ${clean(last)}`, {
        detail: result.stderrTail,
      });
    }
    throw new SmoothcastError('ENCODE_FAILED', `ffmpeg exited with ${result.code ?? result.signal}: ${clean(last)}`, {
      detail: result.stderrTail,
    });
  }
  await publish();
  try {
    return watcher.finish();
  } catch (err) {
    throw asSmoothcastError(err);
  }
}
