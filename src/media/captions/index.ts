// Captions and subtitles: WebVTT and SubRip in, WebVTT out, HLS subtitle segments, BCP 47 language tags.
// Pure: no I/O, no clock.
export {
  type CaptionDoc,
  type Cue,
  captionDuration,
  DEFAULT_PARSE_LIMITS,
  type ParseLimits,
  shiftCues,
  writeWebVtt,
} from './cues.ts';
export { languageLabel, normalizeLanguage, parseLanguageTag } from './language.ts';
export { parseCaptionFile, parseSrt, parseWebVtt } from './parse.ts';
export { subtitleSegment, subtitleSegmentCount, subtitleSegmentDurations } from './segment.ts';
