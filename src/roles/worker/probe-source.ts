// Probing a source: ffprobe's view of its streams, and — when no header says how long it is — its duration found by
// reading every packet (ffprobe demuxes only, at disk speed), bounded by the duration limit and a timeout.
import type { Config } from '../../core/config.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { runProcess } from '../../core/process.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { PacketScan, packetScanArgs } from '../../media/encode/duration.ts';
import {
  declaredDuration,
  ffprobeArgs,
  interpretProbe,
  type MediaLimits,
  probeFailure,
  type SourceSummary,
} from '../../media/encode/probe.ts';

export interface ProbeContext {
  config: Config;
  storage: Storage;
  signal: AbortSignal;
  log: (msg: string, extra?: Record<string, unknown>) => void;
}

/** `path`: a local file holding the source (storage.fetch); `key` its storage key. */
export async function probeSource(key: string, path: string, size: number, ctx: ProbeContext): Promise<SourceSummary> {
  const limits: MediaLimits = ctx.config.limits;
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
  // Interpreted once without a duration first, so a file that is refused anyway (too large, no streams, an
  // enormous frame) is refused before its packets are read.
  if (declaredDuration(json) === undefined) {
    try {
      interpretProbe(json, limits, size, Number.MIN_VALUE);
    } catch (err) {
      if (!(err instanceof SmoothcastError && err.code === 'MEDIA_TOO_LONG')) throw err;
    }
    const scan = await scanDuration(path, ctx, mediaStreams(json));
    ctx.log('duration from packets', { key, seconds: scan.seconds, packets: scan.packets });
    return interpretProbe(json, limits, size, scan.seconds);
  }
  return interpretProbe(json, limits, size);
}

/** Indexes of the audio and video streams (not cover art) in ffprobe's JSON. */
export function mediaStreams(json: unknown): number[] {
  const streams = (json as { streams?: unknown[] } | null)?.streams;
  if (!Array.isArray(streams)) return [];
  return streams.flatMap((raw) => {
    const s = raw as { index?: unknown; codec_type?: unknown; disposition?: { attached_pic?: unknown } };
    const media = s.codec_type === 'audio' || (s.codec_type === 'video' && s.disposition?.attached_pic !== 1);
    return media && typeof s.index === 'number' ? [s.index] : [];
  });
}

export interface ScanResult {
  seconds: number;
  packets: number;
  /** ffprobe reported no read error: the packets end where the file ends, not where it broke. */
  clean: boolean;
}

/**
 * Reads every audio/video packet of the source to find how long it really is. Stops early (and says so with
 * MEDIA_TOO_LONG) once the packets pass limits.maxDuration, so a huge file cannot keep a worker busy.
 */
export async function scanDuration(path: string, ctx: ProbeContext, streams?: number[]): Promise<ScanResult> {
  const { limits, encode } = ctx.config;
  const scan = new PacketScan(streams);
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  let tooLong = false;
  try {
    const r = await runProcess('ffprobe', packetScanArgs(path, limits.maxPixels), {
      timeoutMs: encode.probeTimeoutSeconds * 1000,
      stderrTail: 4096,
      signal: stop.signal,
      onStdout: (chunk) => {
        scan.push(chunk);
        if (!tooLong && scan.seconds > limits.maxDuration) {
          tooLong = true;
          stop.abort();
        }
      },
    });
    scan.end();
    if (tooLong) {
      throw new SmoothcastError(
        'MEDIA_TOO_LONG',
        `the media lasts more than ${limits.maxDuration} s (found by reading it); at most ${limits.maxDuration} s allowed`,
      );
    }
    if (r.aborted) throw new SmoothcastError('JOB_CANCELLED');
    if (r.timedOut) {
      throw new SmoothcastError('PROBE_TIMEOUT', 'reading the packets to find the duration took too long', {
        detail: r.stderrTail,
      });
    }
    if (scan.packets === 0 || !(scan.seconds > 0)) {
      throw new SmoothcastError('MEDIA_UNREADABLE', 'no audio or video packet could be read from the file', {
        detail: r.stderrTail,
      });
    }
    return { seconds: scan.seconds, packets: scan.packets, clean: r.code === 0 && r.stderrTail.trim() === '' };
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}
