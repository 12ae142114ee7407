// Text subtitle tracks of a source become WebVTT text tracks of the asset: converted by ffmpeg to SubRip in one
// pass, then read back through our own parser (so what is stored is what a sidecar upload would have to be), placed on the
// source's timeline (the video starts at 0) and stored one file per track. Image subtitles (PGS, DVB, VobSub) are
// skipped with a note: turning pictures into text needs OCR.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CaptionRepository, NewCaption } from '../../core/db/captions.ts';
import { newCaptionId } from '../../core/db/captions.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { runProcess } from '../../core/process.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import {
  languageLabel,
  normalizeLanguage,
  parseCaptionFile,
  shiftCues,
  writeWebVtt,
} from '../../media/captions/index.ts';
import { buildSubtitleArgs } from '../../media/encode/ffmpeg-args.ts';
import type { SourceSubtitle, SourceSummary } from '../../media/encode/probe.ts';

export interface SubtitleContext {
  storage: Storage;
  captions: CaptionRepository;
  signal: AbortSignal;
  maxPixels: number;
  log: (msg: string, extra?: Record<string, unknown>) => void;
}

/** Notes for the asset about subtitle tracks that will not become text tracks. */
export function subtitleNotes(source: SourceSummary): string[] {
  return source.subtitles
    .filter((s) => !s.text)
    .map(
      (s) =>
        `subtitle track ${s.index} (${s.codec}${s.language ? `, ${s.language}` : ''}) skipped: it is made of ` +
        'pictures, and only text subtitles become captions',
    );
}

/** A label for a track: its title, else its language's name, numbered when two would read the same. */
function labels(subs: readonly SourceSubtitle[]): string[] {
  const out = subs.map((s) => s.title ?? languageLabel(normalizeLanguage(s.language)));
  return out.map((l, i) =>
    out.filter((x) => x === l).length > 1 ? `${l} ${out.slice(0, i + 1).filter((x) => x === l).length}` : l,
  );
}

/**
 * Converts and stores every text subtitle track; replaces the asset's embedded text tracks with them (sidecar
 * tracks stay). Returns notes about tracks that could not be converted; never fails the encode for them.
 */
export async function extractSubtitles(
  assetId: string,
  sourcePath: string,
  source: SourceSummary,
  ctx: SubtitleContext,
): Promise<string[]> {
  const subs = source.subtitles.filter((s) => s.text);
  const notes: string[] = [];
  const tracks: NewCaption[] = [];
  if (subs.length > 0) {
    const dir = await mkdtemp(join(tmpdir(), 'smoothcast-subs-'));
    try {
      const outputs = subs.map((s, i) => ({ stream: s.index, output: join(dir, `${i}.srt`) }));
      const r = await runProcess('ffmpeg', buildSubtitleArgs(sourcePath, outputs, ctx.maxPixels), {
        timeoutMs: Math.max(60_000, source.duration * 1000),
        signal: ctx.signal,
      });
      if (r.aborted) throw new SmoothcastError('JOB_CANCELLED');
      if (r.code !== 0) {
        ctx.log('subtitle conversion failed', { asset: assetId, stderr: r.stderrTail });
        return [`the ${subs.length} text subtitle track(s) could not be converted to WebVTT`];
      }
      const names = labels(subs);
      for (const [i, s] of subs.entries()) {
        try {
          const raw = await readFile(outputs[i]!.output);
          // An empty track converts to an empty file: no cue, nothing to publish.
          if (raw.length === 0) {
            notes.push(`subtitle track ${s.index} (${s.codec}) has no cue; left out`);
            continue;
          }
          const doc = parseCaptionFile(raw, 'srt');
          // -copyts kept the source's timestamps: the video starts at source.startTime.
          const shifted = shiftCues(doc, -source.startTime);
          const text = writeWebVtt(shifted);
          const id = newCaptionId();
          const key = keys.caption(assetId, id);
          await ctx.storage.putBytes(key, Buffer.from(text));
          tracks.push({
            id,
            assetId,
            language: normalizeLanguage(s.language),
            label: names[i]!,
            kind: s.hearingImpaired ? 'captions' : 'subtitles',
            origin: 'embedded',
            // Matroska muxers (ffmpeg among them) flag the first subtitle track default by habit, not intent: a
            // text track is shown when the viewer chooses it, or when it is forced (foreign dialogue).
            default: false,
            forced: s.forced,
            cues: shifted.cues.length,
            size: Buffer.byteLength(text),
          });
        } catch (err) {
          if (err instanceof SmoothcastError && err.code === 'JOB_CANCELLED') throw err;
          notes.push(`subtitle track ${s.index} (${s.codec}) could not be read: ${(err as Error).message}`);
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const replaced = await ctx.captions.replaceEmbedded(assetId, tracks);
  for (const c of replaced) await ctx.storage.remove(keys.caption(assetId, c.id)).catch(() => {});
  return notes;
}
