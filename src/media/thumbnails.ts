// Thumbnails for scrubbing: sprite sheets of small frames plus a WebVTT track whose cues point into them with
// media fragments (`sheet.jpg#xywh=x,y,w,h`, the convention players such as JW Player, Video.js and Shaka use).
// Made once at the end of the encode from a small rendition (cheap to decode), never from the source.

export interface ThumbnailPlan {
  /** Seconds between tiles: 2 s for short videos, growing with length, at most 10 s. */
  interval: number;
  width: number;
  height: number;
  columns: number;
  rows: number;
  /** Number of tiles (= cues). */
  count: number;
  /** Number of sprite sheets. */
  sheets: number;
}

export const THUMB_WIDTH = 160;
const GRID = 10;

export function planThumbnails(duration: number, sourceWidth: number, sourceHeight: number): ThumbnailPlan {
  if (!(duration > 0 && sourceWidth > 0 && sourceHeight > 0))
    throw new RangeError('thumbnails need a duration and a size');
  const interval = Math.min(10, Math.max(2, Math.ceil(duration / 150)));
  const width = Math.min(THUMB_WIDTH, sourceWidth - (sourceWidth % 2));
  const height = Math.max(2, 2 * Math.round((width * sourceHeight) / sourceWidth / 2));
  const count = Math.max(1, Math.ceil(duration / interval));
  return { interval, width, height, columns: GRID, rows: GRID, count, sheets: Math.ceil(count / (GRID * GRID)) };
}

/** Sprite sheet file name n (1-based), as ffmpeg's image2 muxer writes `thumbs-%03d.jpg`. */
export function sheetName(n: number): string {
  return `thumbs-${String(n).padStart(3, '0')}.jpg`;
}

/** ffmpeg arguments: one frame every `interval` s, scaled, tiled 10×10 into JPEG sheets. */
export function buildThumbnailArgs(input: string, plan: ThumbnailPlan, outPattern: string): string[] {
  return [
    '-hide_banner',
    '-nostdin',
    '-loglevel',
    'error',
    '-y',
    '-i',
    `file:${input}`,
    '-map',
    '0:v:0',
    '-vf',
    `fps=1/${plan.interval},scale=${plan.width}:${plan.height},setsar=1,tile=${plan.columns}x${plan.rows}`,
    '-q:v',
    '5',
    '-f',
    'image2',
    `file:${outPattern}`,
  ];
}

function vttTime(s: number): string {
  const ms = Math.round(s * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const sec = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(sec)}.${pad(ms % 1000, 3)}`;
}

/** The WebVTT track (W3C WebVTT §4): one cue per tile, `sheetUrl(n)` naming the sheets relative to the track. */
export function writeThumbnailVtt(plan: ThumbnailPlan, duration: number, sheetUrl: (n: number) => string): string {
  const out = ['WEBVTT', ''];
  const perSheet = plan.columns * plan.rows;
  for (let i = 0; i < plan.count; i++) {
    const start = i * plan.interval;
    const end = Math.min(duration, start + plan.interval);
    const cell = i % perSheet;
    const x = (cell % plan.columns) * plan.width;
    const y = Math.floor(cell / plan.columns) * plan.height;
    out.push(
      `${vttTime(start)} --> ${vttTime(end)}`,
      `${sheetUrl(Math.floor(i / perSheet) + 1)}#xywh=${x},${y},${plan.width},${plan.height}`,
      '',
    );
  }
  return out.join('\n');
}
