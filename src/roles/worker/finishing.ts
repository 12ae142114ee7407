// The steps after the encode that work from the source or from our renditions: the poster (a frame, the cover art
// of a song, or a waveform), the progressive downloads and the thumbnail sprites. Each is one bounded ffmpeg run.
import { existsSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
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
  const { storage } = ctx;
  const infos = finished.map((f) => ({
    id: f.id,
    type: f.track.kind,
    height: f.track.height ?? null,
    default: f.id === defaultAudioId,
  }));
  const audio = defaultAudio(infos);
  for (const rid of progressiveRungs(infos)) {
    const out = storage.localPath(keys.download(asset.id, rev, rid));
    const tmp = `${out}.tmp${extname(out)}`;
    const isAudio = rid.startsWith('a');
    const args = buildRemuxArgs(
      isAudio ? null : storage.localPath(keys.rendition(asset.id, rev, rid)),
      audio ? storage.localPath(keys.rendition(asset.id, rev, audio.id)) : null,
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
  const { storage } = ctx;
  const vttKey = keys.thumbnails(asset.id, rev, 'thumbs.vtt');
  const pattern = storage.localPath(vttKey).replace(/thumbs\.vtt$/, 'thumbs-%03d.jpg');
  const input = storage.localPath(keys.rendition(asset.id, rev, from.id));
  await runFinishingStep(buildThumbnailArgs(input, plan, pattern), 'making the thumbnail sprites', duration, ctx);
  await writeFile(storage.localPath(vttKey), writeThumbnailVtt(plan, duration, sheetName));
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
  await ctx.storage.prepare(key);
  const tmp = `${ctx.storage.localPath(key)}.tmp${extname(key)}`;
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
      await rename(tmp, ctx.storage.localPath(key));
      return;
    }
  }
  ctx.log('poster failed', { asset: asset.id });
}
