// One encode job: probe → plan → ONE ffmpeg writing every rendition as a CMAF file (published as fragments land)
// → verify → text tracks, poster, downloads, thumbnails → ready. Every failure ends as a stable error code; bad
// input is never retried.
import type { Config } from '../../core/config.ts';
import type { Asset, AssetRepository, FinalRendition, PlannedRendition } from '../../core/db/assets.ts';
import type { CaptionRepository } from '../../core/db/captions.ts';
import type { Job, JobQueue } from '../../core/db/queue.ts';
import { asSmoothcastError, SmoothcastError } from '../../core/errors.ts';
import { runProcess } from '../../core/process.ts';
import type { HeldFiles } from '../../core/storage/held.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { languageLabel, normalizeLanguage } from '../../media/captions/index.ts';
import { buildEncodeArgs, presentationDelay } from '../../media/encode/ffmpeg-args.ts';
import { type AudioRendition, type LadderPlan, planLadder } from '../../media/encode/ladder.ts';
import type { SourceSummary } from '../../media/encode/probe.ts';
import { ProgressParser, progressFigures } from '../../media/encode/progress.ts';
import { makeDownloads, makePoster, makeThumbnails } from './finishing.ts';
import { OutputWatcher } from './outputs.ts';
import { probeSource, scanDuration } from './probe-source.ts';
import { extractSubtitles, subtitleNotes } from './subtitles.ts';
import { Workspace } from './workspace.ts';

export interface EncodeContext {
  config: Config;
  assets: AssetRepository;
  captions: CaptionRepository;
  queue: JobQueue;
  storage: Storage;
  owner: string;
  signal: AbortSignal;
  /** Where this process holds files for other nodes, and the URL it advertises for them (S3 storage). */
  held: HeldFiles | null;
  selfUrl: string | null;
  /** Scratch folder of S3 encodes. */
  scratchRoot: string;
  /** Set by runEncodeJob: where this attempt's files are written. */
  ws?: Workspace;
  log: (msg: string, extra?: Record<string, unknown>) => void;
}

// ffmpeg stderr lines that mean the input itself is damaged (retrying cannot help).
const DAMAGED_INPUT =
  /Invalid data found when processing input|moov atom not found|partial file|corrupt|error while decoding|Invalid NAL unit|missing picture in access unit|Truncating packet/i;

/** How short the output may fall of the source's declared duration before we call the source truncated. */
function truncationSlack(duration: number): number {
  return Math.max(1, duration * 0.05);
}

/** What an audio rendition is called and how players should treat it (HLS NAME/LANGUAGE, DASH lang/Role). */
export function audioMetadata(plan: LadderPlan): Pick<PlannedRendition, 'language' | 'label' | 'roles' | 'default'>[] {
  const langs = plan.audio.map((a) => normalizeLanguage(a.language));
  const base = plan.audio.map((a: AudioRendition, i) => {
    if (a.title) return a.title;
    const name = langs[i] === 'und' ? 'Audio' : languageLabel(langs[i]!);
    return a.role ? `${name} (${a.role})` : name;
  });
  return plan.audio.map((a, i) => {
    const same = base.filter((b) => b === base[i]).length;
    const nth = base.slice(0, i + 1).filter((b) => b === base[i]).length;
    const roles = a.role ? [a.role] : [a.default ? 'main' : 'alternate'];
    return {
      language: langs[i]!,
      label: same > 1 ? `${base[i]} ${nth}` : base[i]!,
      roles,
      default: a.default,
    };
  });
}

export async function runEncodeJob(job: Job, ctx: EncodeContext): Promise<void> {
  const { assets, storage } = ctx;
  const asset = await assets.get(job.assetId);
  if (!asset) return; // deleted before we got to it
  const st = await storage.stat(asset.sourcePath);
  if (!st) throw new SmoothcastError('MEDIA_NOT_FOUND', `the source file of asset ${asset.id} is missing`);
  // S3: the source is downloaded to scratch (ffmpeg seeks in it); local: read in place.
  const src = await storage.fetch(asset.sourcePath);
  try {
    await encodeFrom(job, asset, src.path, st.size, ctx);
  } finally {
    await src.release();
  }
}

async function encodeFrom(job: Job, asset: Asset, sourcePath: string, size: number, ctx: EncodeContext) {
  const { config, assets, storage } = ctx;
  const source = await probeSource(asset.sourcePath, sourcePath, size, ctx);
  const plan = planLadder(source, {
    segmentDuration: config.encode.segmentDuration,
    firstSegmentDuration: config.encode.firstSegmentDuration,
  });
  const rev = `r${job.id}-${job.attempts}`;
  const audioMeta = audioMetadata(plan);
  const renditions: PlannedRendition[] = [
    ...plan.video.map((v) => ({
      id: v.id,
      type: 'video' as const,
      width: v.width,
      height: v.height,
      bitrate: v.bitrate,
      frameRate: plan.frameRate ? plan.frameRate.num / plan.frameRate.den : (source.video?.frameRate ?? null),
    })),
    ...plan.audio.map((a, i) => ({ id: a.id, type: 'audio' as const, bitrate: a.bitrate, ...audioMeta[i] })),
  ];
  const notes = subtitleNotes(source);
  if (source.durationFrom === 'packets') {
    notes.push('the file did not say how long it is; its duration was found by reading it');
  }
  // Every write of the job's results goes through whileLeased: a worker that lost its lease writes nothing.
  await ctx.queue.whileLeased(job, () =>
    assets.setProcessing(asset.id, {
      source: source as unknown as Record<string, unknown>,
      duration: source.duration,
      rev,
      renditions,
      mediaType: plan.video.length > 0 ? 'video' : 'audio',
      notes,
      presentationOffset: presentationDelay(plan),
    }),
  );
  ctx.log('encode start', {
    asset: asset.id,
    rev,
    rungs: plan.video.map((v) => `${v.width}x${v.height}`),
    audio: plan.audio.length,
  });
  // An earlier attempt whose worker died (its lease expired) never cleaned its partial files; the asset now points
  // at this attempt's rev, so nothing serves them any more. A worker that was only slow cleans its own on abort.
  for (let a = 1; a < job.attempts; a++) {
    await storage.deletePrefix(keys.revPrefix(asset.id, `r${job.id}-${a}`)).catch(() => {});
  }

  const outputs = renditions.map((r) => ({ id: r.id, key: keys.rendition(asset.id, rev, r.id) }));
  const ws = new Workspace(storage, { held: ctx.held, scratchRoot: ctx.scratchRoot, name: `${asset.id}-${rev}` });
  ctx.ws = ws;
  for (const o of outputs) {
    await ws.path(o.key);
    ws.hold(o.key);
  }
  if (ws.remote && ws.holds && ctx.selfUrl) {
    // Origins read the growing renditions from this node until they are uploaded.
    await ctx.queue.whileLeased(job, () => assets.setHolder(asset.id, ctx.selfUrl));
  }
  // The poster waits for the first published segments: until then every core goes to the encode.
  let posterDone: Promise<void> | null = null;
  const startPoster = () => {
    posterDone ??= makePoster(asset, sourcePath, source, plan, ctx).catch((err) =>
      ctx.log('poster failed', { asset: asset.id, error: String(err) }),
    );
    return posterDone;
  };
  try {
    const finished = await encode(job, asset, sourcePath, source, plan, outputs, ctx, startPoster);
    const video = finished.filter((f) => f.track.kind === 'video');
    const duration = Math.max(...(video.length ? video : finished).map((f) => f.summary.duration));
    await checkComplete(asset, sourcePath, source, duration, ctx);
    await startPoster();
    const defaultAudio = plan.audio.find((a) => a.default)?.id;
    await makeDownloads(asset, rev, finished, defaultAudio, duration, ctx);
    await makeThumbnails(asset, rev, finished, duration, ctx);
    notes.push(
      ...(await extractSubtitles(asset.id, sourcePath, source, {
        storage,
        captions: ctx.captions,
        signal: ctx.signal,
        maxPixels: config.limits.maxPixels,
        log: ctx.log,
      })),
    );
    // S3: each rendition (and each derived file) becomes ONE object, uploaded multipart, before the asset is
    // published; the origins keep reading from this node until the publish below clears the holder.
    await ws.upload();
    const final: FinalRendition[] = finished.map((f) => ({
      id: f.id,
      codecs: f.track.codec,
      averageBitrate: Math.round(f.summary.averageBitrate),
      peakBitrate: Math.round(f.summary.peakBitrate),
      frameRate: f.summary.frameRate ?? null,
      width: f.track.width ?? null,
      height: f.track.height ?? null,
    }));
    await ctx.queue.whileLeased(job, async () => {
      await assets.setReady(asset.id, { duration, renditions: final, notes });
      if (ws.remote) await assets.setHolder(asset.id, null);
    });
    ws.releaseLater();
    ctx.log('encode ready', { asset: asset.id, duration });
    if (!ctx.config.storage.keepSources) {
      // As the seed's encoder did: once the renditions exist, the source is not needed to play.
      await storage.remove(asset.sourcePath).catch((err) => ctx.log('source delete failed', { error: String(err) }));
    }
  } catch (err) {
    await posterDone;
    // This attempt's files are of no use to a retry (it writes a new rev) nor to a failed asset.
    await ws.discard().catch(() => {});
    await storage.deletePrefix(keys.revPrefix(asset.id, rev)).catch(() => {});
    throw err;
  }
}

/**
 * The renditions hold less than the header declared: a truncated file, or a header that is wrong. MP4/MOV sample
 * tables ARE the file's index, so there a shortfall means the samples are missing. Other containers' durations are
 * advisory (Matroska's Duration, FLV's onMetaData, an estimate for MPEG-TS): read the packets, and if they end
 * cleanly where the renditions end, the header was wrong and the asset is what the renditions hold.
 */
async function checkComplete(
  asset: Asset,
  sourcePath: string,
  source: SourceSummary,
  duration: number,
  ctx: EncodeContext,
) {
  if (source.durationFrom !== 'header' || duration >= source.duration - truncationSlack(source.duration)) return;
  const truncated = () =>
    new SmoothcastError(
      'MEDIA_TRUNCATED',
      `the source declares ${source.duration.toFixed(2)} s but only ${duration.toFixed(2)} s could be decoded; ` +
        'the file is probably truncated (an interrupted copy or upload)',
    );
  if (/\bmov\b|mp4/.test(source.container)) throw truncated();
  const scan = await scanDuration(sourcePath, ctx, [
    ...(source.video ? [source.video.index] : []),
    ...source.audioTracks.map((a) => a.index),
  ]);
  if (!scan.clean || scan.seconds > duration + truncationSlack(duration)) throw truncated();
  ctx.log('declared duration wrong', { asset: asset.id, declared: source.duration, packets: scan.seconds, duration });
}

/** Removes our own temp path from ffmpeg's messages: clients see the reason, not the server's folders. */
function clean(line: string): string {
  return line
    .replace(/(?:file:)?\/\S*\/(source|v\d+|a\d+)(\.[a-z0-9]+)?/g, '$1$2')
    .trim()
    .slice(0, 300);
}

async function encode(
  job: Job,
  asset: Asset,
  sourcePath: string,
  source: SourceSummary,
  plan: LadderPlan,
  outputs: { id: string; key: string }[],
  ctx: EncodeContext,
  onPlayable: () => void,
) {
  const { assets, config } = ctx;
  const ws = ctx.ws!;
  const pathOf = (id: string) => ws.pathOf(outputs.find((o) => o.id === id)!.key);
  const args = buildEncodeArgs(
    sourcePath,
    plan,
    { video: plan.video.map((v) => pathOf(v.id)), audio: plan.audio.map((a) => pathOf(a.id)) },
    {
      preset: config.encode.preset,
      maxPixels: config.limits.maxPixels,
      ...(config.encode.threads ? { threads: config.encode.threads } : {}),
    },
  );
  const watcher = new OutputWatcher(ws.reader, outputs);
  const parser = new ProgressParser();
  const started = performance.now();
  let lastWrite = 0;
  // Percent shown never goes back, and stays under 100 until the asset is ready: ffmpeg's last block (`done`) means
  // the encode ended, not that indexing, the poster and the catalog are. Writes go one after another, so a slow
  // database cannot land an older figure after a newer one.
  let shownPercent = 0;
  let progressWrites: Promise<unknown> = Promise.resolve();
  let playable = false;
  let scanning: Promise<void> | null = null;

  // Publish while encoding: index the growing files; the asset turns playable at the first complete segment of
  // every rendition.
  const publish = async () => {
    await watcher.scan();
    // S3 without a way for origins to reach this node's scratch: playable only once uploaded (at ready).
    if (!playable && watcher.playable && (!ws.remote || (ws.holds && ctx.selfUrl))) {
      playable = true;
      await ctx.queue.whileLeased(job, () => assets.setPlayable(asset.id, watcher.codecs()));
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
          shownPercent = Math.max(shownPercent, Math.min(99, f.percent));
          const progress = { percent: shownPercent, speed: f.speed, etaSeconds: f.etaSeconds };
          progressWrites = progressWrites.then(() =>
            assets.setProgress(asset.id, progress).catch(() => {
              // The asset may have been deleted under us; the job heartbeat notices and aborts.
            }),
          );
        }
      },
    });
  } finally {
    clearInterval(tick);
    while (scanning) await scanning;
    await progressWrites;
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
