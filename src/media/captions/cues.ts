// Caption documents and their WebVTT serialisation: W3C WebVTT (https://www.w3.org/TR/webvtt1/) §4 file syntax.
// Pure: plain values in, text out.
import { SmoothcastError } from '../../core/errors.ts';

export interface Cue {
  /** seconds, ≥ 0, millisecond precision is enough */
  start: number;
  /** seconds, > start */
  end: number;
  /**
   * Cue payload, lines joined with '\n', in the WebVTT-escaped form it has in a .vtt file (§4.2.2 cue text):
   * never an empty line, never '-->'.
   */
  text: string;
  /** Cue identifier when present (§4.2.2: never containing '-->' or a line break). */
  id?: string;
  /** WebVTT cue settings after the timing (§4.4), e.g. 'line:0 align:start', single-space separated. */
  settings?: string;
}

export interface CaptionDoc {
  /** In start order (non-decreasing start). */
  cues: Cue[];
  /** STYLE and REGION blocks of a WebVTT file, verbatim (without trailing blank lines), kept in output */
  blocks: string[];
}

export interface ParseLimits {
  maxCues: number;
  maxCueTextLength: number;
}

export const DEFAULT_PARSE_LIMITS: ParseLimits = Object.freeze({ maxCues: 100_000, maxCueTextLength: 10_000 });

/** §4.3 WebVTT timestamp, always with hours (at least two digits) and milliseconds: 'HH:MM:SS.mmm'. */
export function formatTimestamp(seconds: number): string {
  const ms = Math.round(seconds * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor(ms / 60_000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}.${pad(ms % 1000, 3)}`;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

/**
 * A WebVTT file (§4.1): the 'WEBVTT' line, optional header lines (e.g. HLS's X-TIMESTAMP-MAP, RFC 8216bis §3.1.4),
 * a blank line, the STYLE/REGION blocks (§4.1: they must come before any cue), then the cues.
 *
 * Whatever the doc holds, the output is a file this module's parser reads back to the same cues: empty text lines
 * (which would end the cue, §6.1) are dropped and a '-->' in text is escaped, as §4.2.2 forbids it there. A doc that
 * cannot be written at all (times out of order or not ending after they start, to the millisecond; an id, settings or block with '-->'; a line break in an id or settings) is a
 * programming error.
 */
export function writeWebVtt(doc: CaptionDoc, opts: { header?: string } = {}): string {
  const out: string[] = ['WEBVTT'];
  if (opts.header !== undefined) {
    for (const line of opts.header.split(/\r\n|\r|\n/)) {
      if (line === '') continue;
      if (line.includes('-->')) throw new SmoothcastError('INTERNAL', 'a WebVTT header line cannot contain "-->"');
      out.push(line);
    }
  }
  out.push('');
  for (const block of doc.blocks) {
    if (block.includes('-->')) throw new SmoothcastError('INTERNAL', 'a STYLE or REGION block cannot contain "-->"');
    for (const line of block.split(/\r\n|\r|\n/)) if (line !== '') out.push(line);
    out.push('');
  }
  let prevStart = 0;
  doc.cues.forEach((cue, i) => {
    // The checks of the parser (reader.ts addCue), on the times as written.
    const start = Math.round(cue.start * 1000);
    const end = Math.round(cue.end * 1000);
    if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= prevStart && end > start)) {
      throw new SmoothcastError('INTERNAL', `cue ${i + 1}: invalid or out-of-order times ${cue.start} → ${cue.end}`);
    }
    prevStart = start;
    if (cue.id !== undefined && cue.id !== '') {
      if (/[\r\n]|-->/.test(cue.id)) throw new SmoothcastError('INTERNAL', `cue ${i + 1}: invalid identifier`);
      out.push(cue.id);
    }
    // Whitespace as §6.3 splits settings on (String#trim would also take U+FEFF and other Unicode spaces).
    const settings = cue.settings
      ?.split(/[ \t\f]+/)
      .filter((s) => s !== '')
      .join(' ');
    if (settings !== undefined && /[\r\n]|-->/.test(settings)) {
      throw new SmoothcastError('INTERNAL', `cue ${i + 1}: invalid cue settings`);
    }
    const timing = `${formatTimestamp(start / 1000)} --> ${formatTimestamp(end / 1000)}`;
    out.push(settings ? `${timing} ${settings}` : timing);
    for (const line of cue.text.split(/\r\n|\r|\n/)) {
      if (line !== '') out.push(line.replaceAll('-->', '--&gt;'));
    }
    out.push('');
  });
  return `${out.join('\n')}\n`;
}

/**
 * Every cue moved by `seconds` (a new doc; times rounded to the millisecond). Cues that end at or before 0 after a
 * negative shift are dropped; a cue that still ends after 0 starts at 0 at the earliest.
 */
export function shiftCues(doc: CaptionDoc, seconds: number): CaptionDoc {
  if (!Number.isFinite(seconds)) throw new RangeError(`shift must be a finite number of seconds, not ${seconds}`);
  const cues: Cue[] = [];
  for (const cue of doc.cues) {
    const end = roundMs(cue.end + seconds);
    const start = Math.max(0, roundMs(cue.start + seconds));
    if (end <= 0 || end <= start) continue;
    cues.push({ ...cue, start, end });
  }
  return { cues, blocks: [...doc.blocks] };
}

/** The end of the last cue to end, in seconds; 0 without cues. */
export function captionDuration(doc: CaptionDoc): number {
  let max = 0;
  for (const cue of doc.cues) if (cue.end > max) max = cue.end;
  return max;
}

function roundMs(seconds: number): number {
  // `+ 0` turns -0 into 0.
  return Math.round(seconds * 1000) / 1000 + 0;
}
