// Caption files as uploaded: bytes of WebVTT or SubRip, told apart by content rather than by file name.
import { type CaptionDoc, DEFAULT_PARSE_LIMITS, type ParseLimits } from './cues.ts';
import { invalid } from './reader.ts';
import { looksLikeSrt, parseSrt } from './srt.ts';
import { isWebVttSignature, parseWebVtt } from './webvtt.ts';

export { parseSrt } from './srt.ts';
export { parseWebVtt } from './webvtt.ts';

/**
 * A caption file's bytes as a document. WebVTT is UTF-8 by definition (W3C WebVTT §4.1: "WebVTT files must be
 * encoded as UTF-8"); SubRip has no declared encoding, and UTF-8 is all that is accepted for it too (a Latin-1 or
 * UTF-16 file is refused rather than guessed at). A 'WEBVTT' line, after an optional BOM, makes the file WebVTT;
 * otherwise it must have the shape of SubRip. `hint` skips the detection.
 */
export function parseCaptionFile(
  bytes: Uint8Array,
  hint?: 'vtt' | 'srt',
  limits: ParseLimits = DEFAULT_PARSE_LIMITS,
): CaptionDoc {
  let text: string;
  try {
    // The decoder drops a leading BOM (ignoreBOM: false), as §6.1 asks.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid('not UTF-8 text: captions must be saved as UTF-8');
  }
  if (hint === 'vtt') return parseWebVtt(text, limits);
  if (hint === 'srt') return parseSrt(text, limits);
  if (isWebVttSignature(firstLine(text))) return parseWebVtt(text, limits);
  if (looksLikeSrt(text)) return parseSrt(text, limits);
  if (text.trim() === '') throw invalid('the caption file is empty');
  throw invalid('not a WebVTT or SubRip file: it neither starts with "WEBVTT" nor with a SubRip cue');
}

function firstLine(text: string): string {
  const from = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let end = from;
  // Only "WEBVTT" and the character after it matter.
  while (end < text.length && end < from + 7 && text[end] !== '\n' && text[end] !== '\r') end++;
  return text.slice(from, end);
}
