// SubRip (.srt) parsing into WebVTT cues. SubRip has no formal specification; the shape read here is the common one
// (and ffmpeg's, libavformat/srtdec.c): blocks of a cue number, 'hh:mm:ss,mmm --> hh:mm:ss,mmm' and text lines,
// separated by blank lines. Text is plain text with a few HTML-like tags, turned into WebVTT cue text (W3C WebVTT
// §4.2.2): <b>, <i>, <u> carried over, other tags (<font color=…>) dropped, & < > escaped (§4.2.2 forbids them raw).
import { type CaptionDoc, type Cue, DEFAULT_PARSE_LIMITS, type ParseLimits } from './cues.ts';
import {
  addCue,
  digitsEnd,
  invalid,
  isBlank,
  isSpace,
  quote,
  skipSpace,
  splitLines,
  toMillis,
  trimSpace,
} from './reader.ts';

const KNOWN_TAGS = new Set(['b', 'i', 'u']);

/**
 * Cue numbers are not checked (missing, repeated or odd ones are common and mean nothing to a player) and not kept:
 * they count cues, they do not name them. A cue that is not followed by a blank line still ends at the next timing
 * line (or at a cue number right before one), as in ffmpeg.
 */
export function parseSrt(text: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): CaptionDoc {
  const lines = splitLines(text);
  const cues: Cue[] = [];
  let i = 0;
  while (i < lines.length) {
    if (isBlank(lines[i]!)) {
      i++;
      continue;
    }
    let timingAt = i;
    let timing = srtTiming(lines[i]!);
    if (timing === undefined && i + 1 < lines.length) {
      timingAt = i + 1;
      timing = srtTiming(lines[i + 1]!);
    }
    if (timing === undefined) {
      throw invalid(
        `line ${i + 1}: expected a cue number or a timing line such as "00:00:01,000 --> 00:00:02,000", found ${quote(lines[i]!)}`,
      );
    }
    let end = timingAt + 1;
    while (end < lines.length && !isBlank(lines[end]!) && !startsCue(lines, end)) end++;
    const cueText = srtTextToWebVtt(lines.slice(timingAt + 1, end), limits.maxCueTextLength);
    addCue(cues, { start: timing.start, end: timing.end, text: cueText }, limits);
    i = end;
  }
  return { cues, blocks: [] };
}

/** Whether the text looks like SubRip: its first non-blank line, or the one after it, is a SubRip timing line. */
export function looksLikeSrt(text: string): boolean {
  // Only the first lines matter; a bounded prefix keeps detection cheap on a large file.
  const prefix = text.slice(0, 4096);
  const lines = splitLines(prefix);
  let i = 0;
  while (i < lines.length && isBlank(lines[i]!)) i++;
  if (i === lines.length) return false;
  if (srtTiming(lines[i]!) !== undefined) return true;
  // The last line of a prefix may be cut short: the second line counts only if it is whole.
  const whole = prefix.length === text.length || i + 2 < lines.length;
  return whole && i + 1 < lines.length && srtTiming(lines[i + 1]!) !== undefined;
}

function startsCue(lines: readonly string[], i: number): boolean {
  if (srtTiming(lines[i]!) !== undefined) return true;
  const next = lines[i + 1];
  return next !== undefined && isCueNumber(lines[i]!) && srtTiming(next) !== undefined;
}

function isCueNumber(line: string): boolean {
  const start = skipSpace(line, 0);
  const end = digitsEnd(line, start);
  return end > start && skipSpace(line, end) === line.length;
}

/**
 * 'hh:mm:ss,mmm --> hh:mm:ss,mmm', with '.' accepted for ',' and any number of hour digits; whitespace around the
 * arrow is optional and anything after the end time (some files add 'X1:… Y1:…' positions) is ignored.
 */
function srtTiming(line: string): { start: number; end: number } | undefined {
  if (!line.includes('-->')) return undefined;
  const cursor = { pos: skipSpace(line, 0) };
  const start = srtTimestamp(line, cursor);
  if (start < 0) return undefined;
  cursor.pos = skipSpace(line, cursor.pos);
  if (!line.startsWith('-->', cursor.pos)) return undefined;
  cursor.pos = skipSpace(line, cursor.pos + 3);
  const end = srtTimestamp(line, cursor);
  if (end < 0) return undefined;
  if (cursor.pos < line.length && !isSpace(line.charCodeAt(cursor.pos))) return undefined;
  return { start: start / 1000, end: end / 1000 };
}

function srtTimestamp(s: string, cursor: { pos: number }): number {
  let pos = cursor.pos;
  const fields: number[] = [];
  for (const [min, max, sep] of [
    [1, 12, 0x3a], // hours, ':' (more than 12 digits cannot be exact in milliseconds)
    [2, 2, 0x3a], // minutes, ':'
    [2, 2, -1], // seconds, ',' or '.'
    [3, 3, 0], // milliseconds
  ] as const) {
    const end = digitsEnd(s, pos);
    if (end - pos < min || end - pos > max) return -1;
    fields.push(Number(s.slice(pos, end)));
    pos = end;
    if (sep === 0) break;
    const c = s.charCodeAt(pos);
    if (sep === -1 ? c !== 0x2c && c !== 0x2e : c !== sep) return -1;
    pos++;
  }
  const [h, m, sec, ms] = fields as [number, number, number, number];
  if (m > 59 || sec > 59) return -1;
  cursor.pos = pos;
  return toMillis(h, m, sec, ms);
}

/**
 * SubRip text lines as WebVTT cue text. Lines are trimmed of ASCII whitespace, and lines left empty dropped (an empty line would end the
 * WebVTT cue, §6.1). '{\…}' override blocks (ASS codes such as {\an8}, which many SubRip files carry) are dropped, as
 * ffmpeg does. Each '<' and '{' is examined once up to the next one, so the work stays linear in the text; it
 * stops once the text is longer than `maxLength` (the caller refuses it then).
 */
export function srtTextToWebVtt(lines: readonly string[], maxLength = Number.POSITIVE_INFINITY): string {
  const out: string[] = [];
  let length = 0;
  for (const raw of lines) {
    const line = trimSpace(convertLine(trimSpace(raw), maxLength - length));
    if (line === '') continue;
    out.push(line);
    length += line.length + 1;
    if (length > maxLength) break;
  }
  return out.join('\n');
}

/**
 * One line converted. `visible` counts the non-whitespace characters written, a lower bound on the trimmed result's
 * length, so stopping once it passes `maxLength` leaves a line that is still too long, as the full one would be.
 */
function convertLine(s: string, maxLength: number): string {
  let out = '';
  let plainFrom = 0;
  let visible = 0;
  for (let i = 0; i < s.length && visible <= maxLength; ) {
    const c = s.charCodeAt(i);
    let replacement: string | undefined;
    let next = i + 1;
    if (c === 0x3c /* < */) {
      const tag = readTag(s, i);
      if (tag === undefined) {
        replacement = '&lt;';
      } else {
        replacement = KNOWN_TAGS.has(tag.name) ? `<${tag.closing ? '/' : ''}${tag.name}>` : '';
        next = tag.end;
      }
    } else if (c === 0x7b /* { */ && s.charCodeAt(i + 1) === 0x5c /* \ */) {
      const close = closingBefore(s, i + 2, 0x7d /* } */, 0x7b);
      if (close >= 0) {
        replacement = '';
        next = close + 1;
      }
    } else if (c === 0x3e /* > */) {
      replacement = '&gt;';
    } else if (c === 0x26 /* & */) {
      replacement = '&amp;';
    }
    if (replacement !== undefined) {
      out += s.slice(plainFrom, i) + replacement;
      plainFrom = next;
      visible += replacement.length;
    } else if (!isSpace(c)) {
      visible++;
    }
    i = next;
  }
  return out + s.slice(plainFrom);
}

/** A tag at `at`: '<', optional '/', a letter and letters or digits, then '>' or whitespace, anything, '>'. */
function readTag(s: string, at: number): { name: string; closing: boolean; end: number } | undefined {
  let pos = at + 1;
  const closing = s.charCodeAt(pos) === 0x2f; /* / */
  if (closing) pos++;
  const nameStart = pos;
  if (!isLetter(s.charCodeAt(pos))) return undefined;
  while (isLetter(s.charCodeAt(pos)) || (s.charCodeAt(pos) >= 0x30 && s.charCodeAt(pos) <= 0x39)) pos++;
  const name = s.slice(nameStart, pos).toLowerCase();
  if (s.charCodeAt(pos) === 0x3e) return { name, closing, end: pos + 1 };
  if (!isSpace(s.charCodeAt(pos))) return undefined;
  const close = closingBefore(s, pos, 0x3e /* > */, 0x3c /* < */);
  return close < 0 ? undefined : { name, closing, end: close + 1 };
}

/** Index of the first `close` at or after `from`, or -1 if `stop` or the end comes first. */
function closingBefore(s: string, from: number, close: number, stop: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === close) return i;
    if (c === stop) return -1;
  }
  return -1;
}

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
