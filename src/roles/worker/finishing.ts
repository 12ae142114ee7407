// The steps after the encode that work from the source or from our renditions: the poster (a frame, the cover art
// of a song, or a waveform), the progressive downloads and the thumbnail sprites. Each is one bounded ffmpeg run.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import type { Asset } from '../../core/db/assets.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { runProcess } from '../../core/process.ts';
import { keys } from '../../core/storage/storage.ts';
import { buildPosterArgs, buildWaveformArgs } from '../../media/encode/ffmpeg-args.ts';
import type { LadderPlan } from '../../media/encode/ladder.ts';
import type { SourceSummary } from '../../media/encode/probe.ts';
import { buildRemuxArgs, defaultAudio, progressiveRungs } from '../../media/progressive.ts';
import { buildThumbnailArgs, planThumbnails, sheetName, writeThumbnailVtt } from '../../media/thumbnails.ts';
import type { TrackInfo } from '../../media/types.ts';
import type { EncodeContext } from './encode-job.ts';

export interface Finished {
  id: string;
  track: TrackInfo;
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

/**
 * Remuxes the progressive downloads from our files: the top and a phone-sized video rendition with the default
 * audio muxed in (moov first), or for audio-only media the default audio as an M4A.
 */
export async function makeDownloads(
  asset: Asset,
  rev: string,
  finished: readonly Finished[],
  defaultAudioId: string | undefined,
  duration: number,
  ctx: EncodeContext,
): Promise<void> {
  const ws = ctx.ws!;
  const infos = finished.map((f) => ({
    id: f.id,
    type: f.track.kind,
    height: f.track.height ?? null,
    default: f.id === defaultAudioId,
  }));
  const audio = defaultAudio(infos);
  for (const rid of progressiveRungs(infos)) {
    const out = await ws.path(keys.download(asset.id, rev, rid));
    const tmp = `${out}.tmp${extname(out)}`;
    const isAudio = rid.startsWith('a');
    const args = buildRemuxArgs(
      isAudio ? null : ws.pathOf(keys.rendition(asset.id, rev, rid)),
      audio ? ws.pathOf(keys.rendition(asset.id, rev, audio.id)) : null,
      tmp,
    );
    await runFinishingStep(args, `remuxing the progressive download of ${rid}`, duration, ctx);
    await rename(tmp, out);
  }
}

/** Sprite sheets + a WebVTT track for scrubbing, from a small rendition (cheap to decode). */
export async function makeThumbnails(
  asset: Asset,
  rev: string,
  finished: readonly Finished[],
  duration: number,
  ctx: EncodeContext,
): Promise<void> {
  const video = finished
    .filter((f) => f.track.kind === 'video' && f.track.width && f.track.height)
    .sort((a, b) => (a.track.height ?? 0) - (b.track.height ?? 0));
  const from = video.find((f) => (f.track.height ?? 0) >= 180) ?? video.at(-1);
  if (!from || !(duration > 0)) return;
  const plan = planThumbnails(duration, from.track.width!, from.track.height!);
  const ws = ctx.ws!;
  const vttKey = keys.thumbnails(asset.id, rev, 'thumbs.vtt');
  const vttPath = await ws.path(vttKey);
  const pattern = vttPath.replace(/thumbs\.vtt$/, 'thumbs-%03d.jpg');
  const input = ws.pathOf(keys.rendition(asset.id, rev, from.id));
  await runFinishingStep(buildThumbnailArgs(input, plan, pattern), 'making the thumbnail sprites', duration, ctx);
  await writeFile(vttPath, writeThumbnailVtt(plan, duration, sheetName));
  // ffmpeg wrote the sprite sheets next to the track: they are uploaded with it.
  await ws.adopt(keys.revPrefix(asset.id, rev), /^thumbs-\d{3}\.jpg$/);
}

/**
 * The poster: a frame of the video (10% in; a seek past the real end writes nothing, so then the first frame);
 * for audio-only media the embedded cover art, else a waveform of the audio.
 */
export async function makePoster(
  asset: Asset,
  sourcePath: string,
  source: SourceSummary,
  plan: LadderPlan,
  ctx: EncodeContext,
): Promise<void> {
  const key = keys.poster(asset.id);
  const local = ctx.storage.backend === 'local';
  if (local) await ctx.storage.prepare(key);
  // The poster is not under the rev folder (a re-encode replaces it): written whole, never half.
  const tmp = local
    ? `${ctx.storage.localPath(key)}.tmp${extname(key)}`
    : join(ctx.scratchRoot, 'posters', `${asset.id}-${process.pid}-${Date.now()}.jpg`);
  if (!local) await mkdir(dirname(tmp), { recursive: true });
  const maxPixels = ctx.config.limits.maxPixels;
  const attempts: string[][] = [];
  if (plan.streams.video !== null) {
    const opts = { videoStream: plan.streams.video, maxPixels };
    for (const time of plan.poster.time > 0 ? [plan.poster.time, 0] : [0]) {
      attempts.push(buildPosterArgs(sourcePath, time, tmp, 1280, opts));
    }
  } else {
    if (source.coverArt) {
      attempts.push(buildPosterArgs(sourcePath, 0, tmp, 1280, { videoStream: source.coverArt.index, maxPixels }));
    }
    const a = plan.audio.find((x) => x.default) ?? plan.audio[0];
    if (a) attempts.push(buildWaveformArgs(sourcePath, a.stream, tmp, maxPixels));
  }
  for (const args of attempts) {
    // A waveform decodes the whole track (a two-hour podcast: tens of seconds), a frame or a cover one picture.
    const r = await runProcess('ffmpeg', args, {
      timeoutMs: Math.max(60_000, source.duration * 100),
      signal: ctx.signal,
    });
    if (r.aborted) return;
    if (r.code === 0 && existsSync(tmp)) {
      if (local) await rename(tmp, ctx.storage.localPath(key));
      else {
        await ctx.storage.putBytes(key, await readFile(tmp));
        await rm(tmp, { force: true });
      }
      return;
    }
  }
  ctx.log('poster failed', { asset: asset.id });
}
