// Seek-bar thumbnails: the asset's WebVTT track of sprite-sheet tiles (cues `sheet.jpg#xywh=x,y,w,h`, the media
// fragment syntax of W3C Media Fragments URI 1.0 §4.2.1).

export interface ThumbCue {
  start: number;
  end: number;
  url: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A sheet named relative to the track, carrying the track's playback token (a signed video's) when it has one. */
function sheetUrl(name: string, track: string): string {
  const url = new URL(name, track);
  const token = new URL(track).searchParams.get('token');
  if (token && url.origin === new URL(track).origin && !url.searchParams.has('token')) url.searchParams.set('token', token);
  return url.href;
}

/** Reads a WebVTT thumbnail track: cues whose text is `sheet.jpg#xywh=x,y,w,h` (relative to the track). */
export async function loadThumbnails(track: string): Promise<ThumbCue[]> {
  const res = await fetch(track);
  if (!res.ok) return [];
  const text = await res.text();
  const time = (s: string) => s.split(':').reduce((acc, part) => acc * 60 + Number(part), 0);
  const cues: ThumbCue[] = [];
  for (const block of text.split(/\n\n+/)) {
    const m = /([\d:.]+) --> ([\d:.]+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/.exec(block);
    if (!m) continue;
    cues.push({
      start: time(m[1]!),
      end: time(m[2]!),
      url: sheetUrl(m[3]!, track),
      x: Number(m[4]),
      y: Number(m[5]),
      w: Number(m[6]),
      h: Number(m[7]),
    });
  }
  return cues;
}
