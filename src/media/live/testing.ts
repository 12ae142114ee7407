// Hand-made fragments and a small playlist reader for the live tests (not used by production code).
import type { Segment } from '../types.ts';

/** The seeded PRNG the other fuzz and property tests use (mulberry32), so a failing run replays from its seed. */
export { prng as rng } from '../bmff/testing.ts';

export interface FragmentSpec {
  duration: number;
  key: boolean;
  /** Ticks of gap before this fragment (a jump in tfdt). */
  gap?: number;
  size?: number;
}

/** Fragments laid end to end in time and in the file, from `start` ticks and byte `offset`. */
export function fragments(specs: readonly FragmentSpec[], start = 0, offset = 800): Segment[] {
  let t = start;
  let o = offset;
  return specs.map((s) => {
    t += s.gap ?? 0;
    const size = s.size ?? 1000;
    const f: Segment = {
      start: t,
      duration: s.duration,
      offset: o,
      size,
      samples: 1,
      startsWithKeyframe: s.key,
      presentationStart: t,
    };
    t += s.duration;
    o += size;
    return f;
  });
}

/**
 * What our encoder writes at 30 fps with -frag_duration 333334 and a keyframe every 2 s, timescale 15360: parts of
 * 11 frames (5632 ticks) and a last one of 5 frames, `segments` times.
 */
export function ladderVideo(segments: number, start = 0): Segment[] {
  const specs: FragmentSpec[] = [];
  for (let n = 0; n < segments; n++) {
    for (let p = 0; p < 6; p++) specs.push({ duration: p < 5 ? 5632 : 2560, key: p === 0 });
  }
  return fragments(specs, start);
}

/** AAC at 48 kHz cut every 16 frames (16384 ticks ≈ 0.3413 s), as ffmpeg's frag_duration cuts audio. */
export function ladderAudio(parts: number, start = 0): Segment[] {
  return fragments(
    Array.from({ length: parts }, () => ({ duration: 16384, key: true })),
    start,
  );
}

export interface ParsedPart {
  duration: number;
  uri: string;
  independent: boolean;
  byteRange?: string;
}

export interface ParsedSegment {
  msn: number;
  duration?: number;
  uri?: string;
  parts: ParsedPart[];
  discontinuity: boolean;
  dateTime?: string;
}

export interface ParsedLive {
  tags: Map<string, string>;
  segments: ParsedSegment[];
  skipped: number;
  lines: string[];
}

/** Attribute list (§4.2) of a tag value; quoted values unquoted. */
export function attrs(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of value.matchAll(/([A-Z0-9-]+)=("[^"]*"|[^,]*)/g)) {
    out[m[1]!] = m[2]!.startsWith('"') ? m[2]!.slice(1, -1) : m[2]!;
  }
  return out;
}

/** Reads a live media playlist into its header tags and segments (each with the parts listed before it). */
export function parseLive(text: string): ParsedLive {
  const lines = text.split('\n');
  const tags = new Map<string, string>();
  const segments: ParsedSegment[] = [];
  let skipped = 0;
  let msn = 0;
  let cur: ParsedSegment | undefined;
  const open = () => {
    cur ??= { msn, parts: [], discontinuity: false };
    return cur;
  };
  for (const line of lines) {
    if (line === '') continue;
    const [tag, value = ''] = line.startsWith('#') ? splitTag(line) : ['', line];
    if (tag === '#EXT-X-MEDIA-SEQUENCE') msn = Number(value);
    if (tag === '#EXT-X-SKIP') {
      skipped = Number(attrs(value)['SKIPPED-SEGMENTS']);
      msn += skipped;
    }
    if (tag === '#EXT-X-DISCONTINUITY') open().discontinuity = true;
    else if (tag === '#EXT-X-PROGRAM-DATE-TIME') open().dateTime = value;
    else if (tag === '#EXT-X-PART') {
      const a = attrs(value);
      const p: ParsedPart = { duration: Number(a.DURATION), uri: a.URI!, independent: a.INDEPENDENT === 'YES' };
      if (a.BYTERANGE !== undefined) p.byteRange = a.BYTERANGE;
      open().parts.push(p);
    } else if (tag === '#EXTINF') open().duration = Number(value.replace(/,$/, ''));
    else if (tag === '#EXT-X-BYTERANGE') continue;
    else if (tag === '') {
      open().uri = line;
      segments.push(cur!);
      cur = undefined;
      msn++;
    } else if (!tags.has(tag)) tags.set(tag, value);
  }
  if (cur) segments.push(cur);
  return { tags, segments, skipped, lines };
}

function splitTag(line: string): [string, string] {
  const i = line.indexOf(':');
  return i < 0 ? [line, ''] : [line.slice(0, i), line.slice(i + 1)];
}
