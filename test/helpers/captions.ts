// Checks of served text tracks: WebVTT parsed (whole files and HLS segments), subtitle renditions of HLS
// playlists and text AdaptationSets of MPDs, cue times compared with ffmpeg's own reading of the source; and the
// caption API's requests and error codes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Cue } from './inputs.ts';
import type { TestPlatform } from './platform.ts';
import { fetchText, parseMediaPlaylist } from './verify.ts';

const run = promisify(execFile);
const FPS = 25;
/** One frame of the fixtures (25 fps): the tolerance on cue times. */
export const FRAME = 1 / FPS;

/** WebVTT cues (W3C WebVTT §4): blocks separated by blank lines; a cue block has a `-->` timing line. */
export function parseVtt(text: string): Cue[] {
  assert.match(text, /^\uFEFF?WEBVTT/, 'a WebVTT file');
  const time = (t: string) => {
    const parts = t.trim().split(':').map(Number);
    return parts.reduce((acc, x) => acc * 60 + x, 0);
  };
  const cues: Cue[] = [];
  for (const block of text.replace(/\r\n?/g, '\n').split(/\n{2,}/)) {
    const lines = block.split('\n');
    const at = lines.findIndex((l) => l.includes('-->'));
    if (at < 0) continue;
    const [start = '', rest = ''] = lines[at]!.split('-->');
    cues.push({
      start: time(start),
      end: time(rest.trim().split(/\s+/)[0]!),
      text: lines
        .slice(at + 1)
        .join('\n')
        .replace(/\n+$/, ''),
    });
  }
  return cues;
}

/** The cues of subtitle stream `n` as ffmpeg reads the source, on the video's timeline (video start_time = 0). */
export async function sourceCues(file: string, n: number): Promise<Cue[]> {
  const { stdout: start } = await run('ffprobe', [
    ...['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=start_time', '-of', 'csv=p=0', file],
  ]);
  // -copyts: ffmpeg's own cue times, not shifted by the file's start time; we shift by the video's.
  const { stdout } = await run('ffmpeg', [
    '-v',
    'error',
    '-copyts',
    '-i',
    file,
    '-map',
    `0:s:${n}`,
    '-f',
    'webvtt',
    '-',
  ]);
  const offset = Number(start.trim()) || 0;
  return parseVtt(stdout).map((c) => ({ ...c, start: c.start - offset, end: c.end - offset }));
}

/** The served cues are the wanted ones (same text), each start and end shifted by `shift`, within `tolerance`. */
export function assertCues(
  served: readonly Cue[],
  want: readonly Cue[],
  shift: number,
  what: string,
  tolerance = FRAME,
) {
  const show = () => `${what}:\nserved ${JSON.stringify(served)}\nwant (+${shift}) ${JSON.stringify(want)}`;
  assert.equal(served.length, want.length, show());
  for (const [i, w] of want.entries()) {
    const s = served[i]!;
    assert.equal(s.text, w.text, show());
    assert.ok(Math.abs(s.start - (w.start + shift)) <= tolerance + 1e-3, `cue ${i} start. ${show()}`);
    assert.ok(Math.abs(s.end - (w.end + shift)) <= tolerance + 1e-3, `cue ${i} end. ${show()}`);
  }
}

/** An attribute's value in an HLS tag line or an XML element (quoted or not). */
export const attr = (line: string, name: string) => new RegExp(`[\\s,:]${name}="?([^",>]*)"?`).exec(line)?.[1];

/** A TYPE=SUBTITLES rendition of a multivariant playlist, its URI resolved. */
export interface HlsText {
  language: string | undefined;
  name: string | undefined;
  playlist: string;
}

/** TYPE=SUBTITLES renditions of a multivariant playlist; asserts every variant names the subtitle group. */
export function hlsSubtitles(master: string, url: string): HlsText[] {
  const lines = master.split('\n');
  const subs = lines.filter((l) => l.startsWith('#EXT-X-MEDIA:') && l.includes('TYPE=SUBTITLES'));
  for (const l of subs) assert.equal(attr(l, 'GROUP-ID'), 'subs', l);
  if (subs.length > 0) {
    for (const l of lines.filter((x) => x.startsWith('#EXT-X-STREAM-INF:')))
      assert.equal(attr(l, 'SUBTITLES'), 'subs', l);
  }
  return subs.map((l) => ({
    language: attr(l, 'LANGUAGE'),
    name: attr(l, 'NAME'),
    playlist: new URL(attr(l, 'URI') ?? '', url).href,
  }));
}

/** Every cue of a subtitle playlist: each segment fetched (and checked), the union without repeats. */
export async function hlsCues(playlistUrl: string): Promise<Cue[]> {
  const pl = parseMediaPlaylist(await fetchText(playlistUrl));
  assert.ok(pl.endList && pl.segments.length > 0, playlistUrl);
  const seen = new Map<string, Cue>();
  let t = 0;
  for (const s of pl.segments) {
    const url = new URL(s.uri, playlistUrl).href;
    const body = await fetchText(url);
    assert.match(body, /^WEBVTT[^\n]*\n(?:[^\n]+\n)*X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00\.000\n/, url);
    for (const c of parseVtt(body)) {
      // RFC 8216bis §3.1.4: a segment carries the cues that overlap its window.
      assert.ok(c.start < t + s.duration + 1e-3 && c.end > t - 1e-3, `${url} [${t}, ${t + s.duration}): ${c.start}`);
      seen.set(JSON.stringify(c), c);
    }
    t += s.duration;
  }
  return [...seen.values()].sort((a, b) => a.start - b.start || a.end - b.end);
}

/** Text AdaptationSets of an MPD: lang and the WebVTT file (BaseURL resolved against the MPD). */
export function dashText(mpd: string, url: string): { lang: string | undefined; file: string }[] {
  return [...mpd.matchAll(/<AdaptationSet[^>]*contentType="text"[^>]*>[\s\S]*?<\/AdaptationSet>/g)].map((m) => {
    assert.match(m[0], /mimeType="text\/vtt"/);
    const base = /<BaseURL>([^<]+)<\/BaseURL>/.exec(m[0])?.[1];
    assert.ok(base, m[0]);
    return { lang: attr(m[0], 'lang'), file: new URL(base, url).href };
  });
}

/** A request to the platform's API: status, JSON body (if any) and text. */
export async function api(
  p: TestPlatform,
  method: string,
  path: string,
  body?: NonNullable<RequestInit['body']>,
  query = '',
) {
  const r = await p.api(`${path}${query}`, {
    method,
    body,
    headers: body === undefined ? {} : { 'content-type': 'text/plain' },
  });
  const text = await r.text();
  return { status: r.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : null, text };
}

/** The `error.code` of an API response. */
export function errorCode(r: { json: Record<string, unknown> | null }): string | undefined {
  return (r.json?.error as { code?: string } | undefined)?.code;
}
