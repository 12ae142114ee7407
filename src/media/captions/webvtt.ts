// WebVTT parsing: W3C WebVTT (https://www.w3.org/TR/webvtt1/) §4 file syntax, read with the block structure of the
// §6.1 parser. Where §6.1 would silently skip something (a cue with bad timings, a block that is not a cue, a STYLE
// block after the cues), this parser refuses the file instead: an upload whose cues would vanish in the player is
// better reported than stored. One pass over the lines, no backtracking regular expressions.
import { type CaptionDoc, type Cue, DEFAULT_PARSE_LIMITS, type ParseLimits } from './cues.ts';
import { addCue, digitsEnd, invalid, isSpace, quote, skipSpace, splitLines, toMillis } from './reader.ts';

const TIMING_HELP = 'expected "00:00:01.000 --> 00:00:02.000" (minutes and seconds below 60, three decimals)';

/** §4.1: "WEBVTT", then the end of the line or a space or tab and any text. */
export function isWebVttSignature(line: string): boolean {
  if (!line.startsWith('WEBVTT')) return false;
  const next = line.charCodeAt(6);
  return Number.isNaN(next) || next === 0x20 || next === 0x09;
}

export function parseWebVtt(text: string, limits: ParseLimits = DEFAULT_PARSE_LIMITS): CaptionDoc {
  const lines = splitLines(text);
  if (!isWebVttSignature(lines[0] ?? '')) {
    throw invalid('missing WEBVTT header: a WebVTT file starts with the line "WEBVTT"');
  }
  // §4.1: header lines (HLS puts X-TIMESTAMP-MAP there, RFC 8216bis §3.1.4) run to the first blank line. §6.1 reads
  // a cue written there as part of the header and drops it; say so instead.
  let i = 1;
  for (; i < lines.length && lines[i] !== ''; i++) {
    if (lines[i]!.includes('-->')) {
      throw invalid(`line ${i + 1}: a blank line must separate the WEBVTT line from the first cue`);
    }
  }
  const cues: Cue[] = [];
  const blocks: string[] = [];
  while (i < lines.length) {
    const first = lines[i]!;
    if (first === '') {
      i++;
      continue;
    }
    // §6.1 "collect a WebVTT block": a '-->' on the block's first line, or on its second after an identifier, makes
    // it a cue; a '-->' on any later line ends the block and starts the next one there.
    const second = lines[i + 1];
    const timingAt = first.includes('-->') ? i : second?.includes('-->') ? i + 1 : -1;
    if (timingAt >= 0) {
      const timing = parseTiming(lines[timingAt]!);
      if (timing === undefined) {
        throw invalid(`line ${timingAt + 1}: invalid cue timing ${quote(lines[timingAt]!)}: ${TIMING_HELP}`);
      }
      let end = timingAt + 1;
      while (end < lines.length && lines[end] !== '' && !lines[end]!.includes('-->')) end++;
      const cue: Cue = { start: timing.start, end: timing.end, text: lines.slice(timingAt + 1, end).join('\n') };
      if (timingAt > i) cue.id = first;
      if (timing.settings !== undefined) cue.settings = timing.settings;
      addCue(cues, cue, limits);
      i = end;
      continue;
    }
    let end = i + 1;
    while (end < lines.length && lines[end] !== '' && !lines[end]!.includes('-->')) end++;
    const kind = blockKind(first);
    if (kind === 'NOTE') {
      // §4.1 comment blocks: not part of the presentation.
    } else if (kind === 'STYLE' || kind === 'REGION') {
      // §4.1: style and region blocks come before all cues; §6.1 ignores them later on.
      if (cues.length > 0) throw invalid(`line ${i + 1}: ${kind} blocks must come before the first cue`);
      blocks.push(lines.slice(i, end).join('\n'));
    } else {
      throw invalid(
        `line ${i + 1}: ${quote(first)} starts no cue, NOTE, STYLE or REGION block (a cue needs a timing line such as "00:00:01.000 --> 00:00:02.000")`,
      );
    }
    i = end;
  }
  return { cues, blocks };
}

/** §6.1: NOTE followed by a space, tab or the end of the line; STYLE and REGION followed by whitespace only. */
function blockKind(line: string): 'NOTE' | 'STYLE' | 'REGION' | undefined {
  if (line.startsWith('NOTE')) {
    const next = line.charCodeAt(4);
    return Number.isNaN(next) || next === 0x20 || next === 0x09 ? 'NOTE' : undefined;
  }
  for (const kind of ['STYLE', 'REGION'] as const) {
    if (line.startsWith(kind) && skipSpace(line, kind.length) === line.length) return kind;
  }
  return undefined;
}

interface Timing {
  start: number;
  end: number;
  settings?: string;
}

/**
 * §6.3 "collect WebVTT cue timings and settings": start, '-->' (whitespace around it optional), end, then the
 * settings, which must be separated from the end time by whitespace (§4.2.2). Settings are kept as written, one
 * space apart; §6.3 splits them on whitespace, so nothing that a player reads changes.
 */
function parseTiming(line: string): Timing | undefined {
  const cursor = { pos: skipSpace(line, 0) };
  const start = timestamp(line, cursor);
  if (start < 0) return undefined;
  cursor.pos = skipSpace(line, cursor.pos);
  if (!line.startsWith('-->', cursor.pos)) return undefined;
  cursor.pos = skipSpace(line, cursor.pos + 3);
  const end = timestamp(line, cursor);
  if (end < 0) return undefined;
  if (cursor.pos < line.length && !isSpace(line.charCodeAt(cursor.pos))) return undefined;
  const timing: Timing = { start: start / 1000, end: end / 1000 };
  const settings = line
    .slice(cursor.pos)
    .split(/[ \t\f]+/)
    .filter((s) => s !== '');
  // §4.2.2: no setting may contain '-->'; one here means a second timing on the line.
  if (settings.some((s) => s.includes('-->'))) return undefined;
  if (settings.length > 0) timing.settings = settings.join(' ');
  return timing;
}

/**
 * §6.3 "collect a WebVTT timestamp": [h+:]mm:ss.ttt. A first field of other than two digits, or over 59, is hours;
 * minutes and seconds are two digits below 60, the fraction exactly three. Returns milliseconds, or -1.
 */
function timestamp(s: string, cursor: { pos: number }): number {
  const fields: number[] = [];
  let pos = cursor.pos;
  let firstDigits = 0;
  for (;;) {
    const end = digitsEnd(s, pos);
    const n = end - pos;
    // More than 12 digits of hours cannot be exact in milliseconds (toMillis checks the rest).
    if (n === 0 || n > 12 || (fields.length > 0 && n !== 2)) return -1;
    if (fields.length === 0) firstDigits = n;
    fields.push(Number(s.slice(pos, end)));
    pos = end;
    if (fields.length === 3 || s.charCodeAt(pos) !== 0x3a /* : */) break;
    pos++;
  }
  if (s.charCodeAt(pos) !== 0x2e /* . */) return -1;
  const fracEnd = digitsEnd(s, pos + 1);
  if (fracEnd - pos - 1 !== 3) return -1;
  const ms = Number(s.slice(pos + 1, fracEnd));
  let h = 0;
  let m: number;
  let sec: number;
  if (fields.length === 3) {
    [h, m, sec] = fields as [number, number, number];
  } else if (fields.length === 2 && firstDigits === 2) {
    [m, sec] = fields as [number, number];
  } else {
    return -1;
  }
  if (m > 59 || sec > 59) return -1;
  cursor.pos = fracEnd;
  return toMillis(h, m, sec, ms);
}
