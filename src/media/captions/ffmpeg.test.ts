// The parsers and the writer checked against ffmpeg's subtitle demuxers and muxers (readers and writers we did not
// write): ffmpeg's SubRip → WebVTT conversion must parse to the cues our SubRip parser finds, and ffmpeg must read
// what writeWebVtt and subtitleSegment write.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type CaptionDoc, parseSrt, parseWebVtt, subtitleSegment, writeWebVtt } from './index.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'smoothcast-captions-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** ffmpeg converting `input` (written to a file with extension `ext`) to `format`, returning its output. */
async function ffmpeg(input: string, ext: 'srt' | 'vtt', format: 'srt' | 'webvtt'): Promise<string> {
  const path = join(dir, `${files++}.${ext}`);
  writeFileSync(path, input);
  const out = join(dir, `${files++}.${format === 'srt' ? 'srt' : 'vtt'}`);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', path, '-f', format, out], { timeout: 60_000 });
  return readFileSync(out, 'utf8');
}

/** WebVTT cue text as plain text: ffmpeg 5.1's webvtt muxer writes & < > unescaped. */
function plainText(text: string): string {
  return text.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}

const timesAndTexts = (doc: CaptionDoc, map = (t: string) => t) => doc.cues.map((c) => [c.start, c.end, map(c.text)]);

// CRLF, as SubRip files usually are; tags ffmpeg keeps (i, b, u) and drops (font, {\an8}); hours past 99.
const SRT = [
  '1',
  '00:00:00,000 --> 00:00:01,250',
  'Hello, world!',
  '',
  '2',
  '00:00:01,250 --> 00:00:03,000',
  '<i>Italic</i> and <b>bold</b>',
  'and <u>underlined</u>',
  '',
  '3',
  '00:00:02,000 --> 00:00:02,500',
  '<font color="#ffff00">Overlapping, in yellow</font>',
  '',
  '4',
  '00:01:05,123 --> 00:01:07,004',
  'Ünïcödé — 日本語 🎬',
  '',
  '10',
  '01:00:00,000 --> 01:00:01,500',
  '{\\an8}An hour in',
  '',
  '11',
  '123:45:06,789 --> 123:45:07,000',
  'Past 99 hours',
  '',
  '',
].join('\r\n');

describe('captions against ffmpeg', () => {
  it('parses ffmpeg’s WebVTT from a SubRip file to the cues parseSrt reads from it', async () => {
    const ours = parseSrt(SRT);
    assert.equal(ours.cues.length, 6);
    const theirs = parseWebVtt(await ffmpeg(SRT, 'srt', 'webvtt'));
    assert.deepEqual(timesAndTexts(theirs), timesAndTexts(ours));
  });

  it('escapes what ffmpeg passes through raw, and otherwise agrees on the text', async () => {
    const srt = '1\n00:00:01,000 --> 00:00:02,000\nTom & Jerry: 5 > 3 < 4, x<y and z>w\n\n';
    const ours = parseSrt(srt);
    assert.equal(ours.cues[0]?.text, 'Tom &amp; Jerry: 5 &gt; 3 &lt; 4, xw');
    const theirs = parseWebVtt(await ffmpeg(srt, 'srt', 'webvtt'));
    assert.deepEqual(timesAndTexts(theirs), timesAndTexts(ours, plainText));
  });

  it('writes WebVTT that ffmpeg reads back to the same cues', async () => {
    const doc = parseWebVtt(
      [
        'WEBVTT',
        '',
        'NOTE ids, settings, entities, no-hours timestamps',
        '',
        'first',
        '00:00.500 --> 00:02.000 align:start line:0',
        '<i>Hi</i> there',
        'second line',
        '',
        '00:01.000 --> 00:03.000 position:10%',
        '5 &gt; 3 &amp; 2 &lt; 4',
        '',
        '125:00:00.000 --> 125:00:01.000',
        'late',
        '',
      ].join('\n'),
    );
    const vtt = writeWebVtt(doc);
    const back = parseSrt(await ffmpeg(vtt, 'vtt', 'srt'));
    // ffmpeg turns the WebVTT back into SubRip; parsing that SubRip gives WebVTT cue text again.
    assert.deepEqual(timesAndTexts(back), timesAndTexts(doc));
  });

  it('writes SubRip conversions that ffmpeg reads back', async () => {
    const doc = parseSrt(SRT);
    const back = parseSrt(await ffmpeg(writeWebVtt(doc), 'vtt', 'srt'));
    assert.deepEqual(timesAndTexts(back), timesAndTexts(doc));
  });

  it('writes HLS segments that ffmpeg reads, with the cues of each', async () => {
    const doc = parseSrt(SRT);
    for (const n of [0, 1]) {
      const seg = subtitleSegment(doc, n, 4, 2);
      const back = parseSrt(await ffmpeg(seg, 'vtt', 'srt'));
      assert.deepEqual(timesAndTexts(back), timesAndTexts(parseWebVtt(seg)), `segment ${n}`);
      assert.equal(back.cues.length, 2, `segment ${n}`); // cue 2 (1.25–3 s) is in both
    }
  });
});
