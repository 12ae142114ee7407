// What the WebVTT and SubRip parsers share: splitting text into lines, the cue checks, and error messages that quote
// only a little of the input.
import { SmoothcastError } from '../../core/errors.ts';
import { type Cue, formatTimestamp, type ParseLimits } from './cues.ts';

const QUOTE_MAX = 40;

export function invalid(message: string): SmoothcastError {
  return new SmoothcastError('CAPTION_INVALID', message);
}

/** A piece of input for a message: quoted, at most ~40 characters, control characters escaped. */
export function quote(s: string): string {
  const cut = s.length > QUOTE_MAX ? `${s.slice(0, QUOTE_MAX)}…` : s;
  return JSON.stringify(cut);
}

/**
 * The lines of a caption file. A leading U+FEFF BOM is dropped and CRLF, LF and CR all end a line (WebVTT §6.1
 * "line terminators"; SubRip files in the wild use all three). C0 control characters other than tab, line feed, form
 * feed and carriage return are refused: text formats never hold them, so they mean binary data (WebVTT §6.1 would
 * replace NUL with U+FFFD and read on, which turns a picture or a video into a page of garbage captions).
 */
export function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20) continue;
    if (c === 0x0a || c === 0x0d) {
      lines.push(text.slice(start, i));
      if (c === 0x0d && text.charCodeAt(i + 1) === 0x0a) i++;
      start = i + 1;
    } else if (c !== 0x09 && c !== 0x0c) {
      throw invalid(
        `binary data, not a caption file (control character 0x${c.toString(16).padStart(2, '0')} on line ${lines.length + 1})`,
      );
    }
  }
  lines.push(text.slice(start));
  return lines;
}

/** ASCII whitespace as WebVTT §2.3 (via HTML) defines it: tab, line feed, form feed, carriage return, space. */
export function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0c || c === 0x0a || c === 0x0d;
}

export function isBlank(line: string): boolean {
  for (let i = 0; i < line.length; i++) if (!isSpace(line.charCodeAt(i))) return false;
  return true;
}

/** `s` without leading and trailing ASCII whitespace (String#trim also removes Unicode spaces such as U+00A0). */
export function trimSpace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isSpace(s.charCodeAt(start))) start++;
  while (end > start && isSpace(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

/** Position of the first non-space character at or after `pos`. */
export function skipSpace(s: string, pos: number): number {
  while (pos < s.length && isSpace(s.charCodeAt(pos))) pos++;
  return pos;
}

/** Position after the run of ASCII digits starting at `pos`. */
export function digitsEnd(s: string, pos: number): number {
  while (pos < s.length && isDigit(s.charCodeAt(pos))) pos++;
  return pos;
}

export function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Milliseconds from hours, minutes, seconds and milliseconds; -1 when the total is too large to be exact. */
export function toMillis(h: number, m: number, s: number, ms: number): number {
  const total = ((h * 60 + m) * 60 + s) * 1000 + ms;
  return Number.isSafeInteger(total) ? total : -1;
}

/**
 * Appends a parsed cue after the checks every format shares: the limits, end after start (WebVTT §4.3: "the time
 * represented by this WebVTT timestamp must be greater than the start time offset of the cue"), and start order
 * (§4.1: "each cue's start time offset must be greater than or equal to the start time offsets of all the cues
 * before it"; SubRip has no rule of its own and players assume the same). A file out of order is reported, never
 * sorted: the mistake is in the file, and a silently reordered file hides which cue is wrong.
 */
export function addCue(cues: Cue[], cue: Cue, limits: ParseLimits): void {
  const n = cues.length + 1;
  if (cues.length >= limits.maxCues) throw invalid(`too many cues: more than ${limits.maxCues}`);
  if (cue.text.length > limits.maxCueTextLength) {
    throw invalid(`cue ${n}: text longer than ${limits.maxCueTextLength} characters`);
  }
  if (!(cue.end > cue.start)) {
    throw invalid(`cue ${n} ends at ${formatTimestamp(cue.end)}, not after its start at ${formatTimestamp(cue.start)}`);
  }
  const prev = cues[cues.length - 1];
  if (prev && cue.start < prev.start) {
    throw invalid(
      `cues out of order: cue ${n} starts at ${formatTimestamp(cue.start)}, before cue ${n - 1} at ${formatTimestamp(prev.start)}`,
    );
  }
  cues.push(cue);
}
