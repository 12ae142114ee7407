// Checks of what the server serves, made with references we did not write: ffmpeg/ffprobe as HLS and DASH clients.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface MediaPlaylist {
  text: string;
  version: number;
  targetDuration: number;
  playlistType: string | null;
  endList: boolean;
  map: string;
  segments: { duration: number; uri: string }[];
}

export async function fetchText(url: string): Promise<string> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status} ${await r.text()}`);
  return r.text();
}

export async function fetchBytes(url: string): Promise<Buffer> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
  return Buffer.from(await r.arrayBuffer());
}

export function parseMediaPlaylist(text: string): MediaPlaylist {
  const lines = text.split('\n').map((l) => l.trim());
  const segments: { duration: number; uri: string }[] = [];
  let pending: number | null = null;
  for (const l of lines) {
    if (l.startsWith('#EXTINF:')) pending = Number(l.slice(8).split(',')[0]);
    else if (l && !l.startsWith('#') && pending !== null) {
      segments.push({ duration: pending, uri: l });
      pending = null;
    }
  }
  const tag = (name: string) => lines.find((l) => l.startsWith(`#${name}:`))?.slice(name.length + 2) ?? null;
  return {
    text,
    version: Number(tag('EXT-X-VERSION')),
    targetDuration: Number(tag('EXT-X-TARGETDURATION')),
    playlistType: tag('EXT-X-PLAYLIST-TYPE'),
    endList: lines.includes('#EXT-X-ENDLIST'),
    map: /URI="([^"]+)"/.exec(tag('EXT-X-MAP') ?? '')?.[1] ?? '',
    segments,
  };
}

/** Variant and audio media playlist URLs of a multivariant playlist, resolved against its URL. */
export function parseMultivariant(
  text: string,
  url: string,
): { video: { uri: string; attrs: string }[]; audio: string[] } {
  const lines = text.split('\n').map((l) => l.trim());
  const video: { uri: string; attrs: string }[] = [];
  const audio: string[] = [];
  lines.forEach((l, i) => {
    if (l.startsWith('#EXT-X-STREAM-INF:')) video.push({ uri: new URL(lines[i + 1] ?? '', url).href, attrs: l });
    if (l.startsWith('#EXT-X-MEDIA:') && l.includes('TYPE=AUDIO')) {
      const uri = /URI="([^"]+)"/.exec(l)?.[1];
      if (uri) audio.push(new URL(uri, url).href);
    }
  });
  return { video, audio };
}

/**
 * ffmpeg decodes the whole URL; any error output fails. Frames pass through untouched (-fps_mode passthrough):
 * this checks decoding, and ffmpeg 5.1's constant-frame-rate conversion to the null muxer complains about its own
 * duplicated timestamps when audio and video are mapped together, whatever the input.
 */
export async function decodeUrl(url: string, extra: readonly string[] = []): Promise<void> {
  const args = ['-hide_banner', '-v', 'error', '-i', url, ...extra, '-fps_mode', 'passthrough', '-f', 'null', '-'];
  const { stderr } = await run('ffmpeg', args, {
    timeout: 300_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (stderr.trim()) throw new Error(`ffmpeg reported errors decoding ${url}:\n${stderr.slice(0, 2000)}`);
}

/**
 * Decodes every stream of a DASH MPD with ffprobe (-show_frames decodes each frame), one Representation at a time:
 * ffmpeg 5.1's dash demuxer drops or repeats packets when it reads several Representations at once (it does so with
 * MPDs written by ffmpeg's own dash muxer too), and its timestamps upset ffmpeg's null muxer. Any error output
 * fails; returns the decoded frame count of each stream (video frames, audio frames).
 */
export async function decodeDash(url: string): Promise<{ type: string; frames: number }[]> {
  const { stdout } = await run(
    'ffprobe',
    ['-v', 'error', '-show_entries', 'stream=index,codec_type', '-of', 'csv=p=0', url],
    {
      timeout: 120_000,
    },
  );
  // ffprobe lists each stream once more under its program: keep distinct indexes.
  const streams = [
    ...new Set(
      stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean),
    ),
  ];
  const out: { type: string; frames: number }[] = [];
  for (const line of streams) {
    const [index, type = ''] = line.split(',');
    const r = await run(
      'ffprobe',
      ['-v', 'error', '-select_streams', String(index), '-show_entries', 'frame=media_type', '-of', 'csv=p=0', url],
      { timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
    );
    if (r.stderr.trim()) throw new Error(`errors decoding stream ${index} of ${url}:\n${r.stderr.slice(0, 2000)}`);
    out.push({ type, frames: r.stdout.split('\n').filter((l) => l.trim()).length });
  }
  return out;
}

export interface Packet {
  pts: number;
  dts: number;
  duration: number;
  key: boolean;
}

/** The video (or audio) packets ffprobe reads from a URL or file. */
export async function packets(input: string, stream: 'v:0' | 'a:0' = 'v:0'): Promise<Packet[]> {
  const { stdout } = await run(
    'ffprobe',
    [
      '-v',
      'error',
      '-select_streams',
      stream,
      '-show_entries',
      'packet=pts_time,dts_time,duration_time,flags',
      '-of',
      'json',
      input,
    ],
    { timeout: 300_000, maxBuffer: 256 * 1024 * 1024 },
  );
  const list = (
    JSON.parse(stdout) as {
      packets?: { pts_time?: string; dts_time?: string; duration_time?: string; flags?: string }[];
    }
  ).packets;
  return (list ?? []).map((p) => ({
    pts: Number(p.pts_time),
    dts: Number(p.dts_time),
    duration: Number(p.duration_time ?? 0),
    key: (p.flags ?? '').includes('K'),
  }));
}

/** Presentation span of a packet list: from the earliest pts to the end of the latest packet. */
export function span(ps: readonly Packet[]): number {
  if (ps.length === 0) return 0;
  let first = Number.POSITIVE_INFINITY;
  let end = 0;
  for (const p of ps) {
    first = Math.min(first, p.pts);
    end = Math.max(end, p.pts + p.duration);
  }
  return end - first;
}

/** Decodes init + one segment standalone and returns its packets (the segment must be independently decodable). */
export async function segmentPackets(initUrl: string, segUrl: string): Promise<Packet[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sc-seg-'));
  try {
    const file = join(dir, 'seg.mp4');
    writeFileSync(file, Buffer.concat([await fetchBytes(initUrl), await fetchBytes(segUrl)]));
    const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-'], { timeout: 60_000 });
    if (stderr.trim()) throw new Error(`segment ${segUrl} does not decode standalone: ${stderr.slice(0, 500)}`);
    return await packets(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Downloads a rendition through its media playlist (init + every segment, in order) into one local file. */
export async function downloadRendition(mediaPlaylistUrl: string, file: string): Promise<void> {
  const pl = parseMediaPlaylist(await fetchText(mediaPlaylistUrl));
  const parts = [await fetchBytes(new URL(pl.map, mediaPlaylistUrl).href)];
  for (const s of pl.segments) parts.push(await fetchBytes(new URL(s.uri, mediaPlaylistUrl).href));
  writeFileSync(file, Buffer.concat(parts));
}

/** PSNR (dB) between frame at `t` of two inputs, both scaled to w×h (orientation and aspect check). */
export async function framePsnr(a: string, b: string, t: number, w: number, h: number): Promise<number> {
  const { stderr } = await run(
    'ffmpeg',
    [
      '-hide_banner',
      '-ss',
      String(t),
      '-i',
      a,
      '-ss',
      String(t),
      '-i',
      b,
      '-filter_complex',
      `[0:v]scale=${w}:${h},setsar=1,format=yuv420p[a];[1:v]scale=${w}:${h},setsar=1,format=yuv420p[b];[a][b]psnr`,
      '-an',
      '-frames:v',
      '3',
      '-f',
      'null',
      '-',
    ],
    { timeout: 120_000 },
  );
  const m = /PSNR .* average:([0-9.]+|inf)/.exec(stderr);
  if (!m) throw new Error(`no PSNR in ffmpeg output: ${stderr.slice(-500)}`);
  return m[1] === 'inf' ? 100 : Number(m[1]);
}
