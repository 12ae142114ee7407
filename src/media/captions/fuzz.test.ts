// Mutated and truncated WebVTT and SubRip files: every parse ends in a document or a CAPTION_INVALID SmoothcastError,
// whatever the bytes say, and every document survives writeWebVtt → parseWebVtt unchanged. Deterministic (seeded);
// a failure names the case and its mutations.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import { prng } from '../bmff/testing.ts';
import { type CaptionDoc, parseCaptionFile, parseWebVtt, writeWebVtt } from './index.ts';

// SMOOTHCAST_FUZZ_CASES / SMOOTHCAST_FUZZ_SEED widen a run by hand; the defaults keep this under a second or two.
const CASES = Number(process.env.SMOOTHCAST_FUZZ_CASES ?? 5_000);
const SEED = Number(process.env.SMOOTHCAST_FUZZ_SEED ?? 0xc0ffee);

const SEEDS = [
  [
    '\uFEFFWEBVTT - with everything',
    'X-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000',
    '',
    'STYLE',
    '::cue(.yellow) { color: yellow; }',
    '',
    'REGION',
    'id:fred width:40% lines:3 regionanchor:0%,100%',
    '',
    'NOTE a comment',
    '',
    'intro',
    '00:00:00.000 --> 00:00:01.500 align:start line:0',
    '<v Roger><c.yellow>Hello</c> &amp; welcome</v>',
    'second line',
    '',
    '00:01.500 --> 00:03.000 region:fred',
    '<i>no hours</i> 5 &lt; 6',
    '',
    '00:02.000 --> 00:02.250',
    '',
    '100:00:00.000 --> 100:00:01.000',
    'late',
    '',
  ].join('\r\n'),
  'WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\na\n\n2\n00:00:02.000 --> 00:00:04.000\nb\nc\n00:00:05.000 --> 00:00:06.000\nd',
  [
    '1',
    '00:00:01,000 --> 00:00:02,500',
    '<font color="#ff0000">Red</font> and <i>italic</i> & more',
    '',
    '2',
    '00:00:02,500 --> 00:00:04,000 X1:10 X2:20 Y1:30 Y2:40',
    '{\\an8}<B>top</B> 5 > 3 < 4 <u>u</u>',
    '',
    '',
    '00:00:04,000 --> 00:00:05,000',
    'no number',
    '7',
    '101:00:00.000 --> 101:00:01.000',
    'late',
  ].join('\r\n'),
  '1\n00:00:00,000 --> 00:00:01,000\nx\n\n2\n00:00:01,000 --> 00:00:02,000\ny\n',
];

const TOKENS = [
  '-->',
  ' --> ',
  '\n',
  '\r\n',
  '\r',
  '\n\n',
  ':',
  '.',
  ',',
  '0',
  '9',
  '59',
  '60',
  '00:00:00.000',
  '00:00:00,000',
  '99:59:59.999',
  '00:00.000 --> 00:01.000\n',
  'NOTE',
  'STYLE\n',
  'REGION\n',
  'WEBVTT\n\n',
  '<b ',
  '<i>',
  '</font>',
  '<',
  '>',
  '&',
  '{\\an8}',
  '{\\',
  ' ',
  '\t',
  '\f',
  '\0',
  '\x1b',
  '\uFEFF',
  'é',
  '🎬',
];

interface Case {
  bytes: Uint8Array;
  hint: 'vtt' | 'srt' | undefined;
  steps: string[];
}

function mutate(random: () => number, n: number): Case {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const at = (len: number) => Math.floor(random() * (len + 1));
  let bytes: Uint8Array = new TextEncoder().encode(pick(SEEDS));
  const steps: string[] = [];
  const count = 1 + Math.floor(random() * 4);
  for (let k = 0; k < count; k++) {
    const kind = Math.floor(random() * 6);
    const i = at(bytes.length);
    if (kind === 0) {
      // Any byte: invalid UTF-8 and control characters included.
      const b = Math.floor(random() * 256);
      if (i < bytes.length) bytes[i] = b;
      steps.push(`byte ${i}=${b}`);
    } else if (kind === 1 || kind === 2) {
      const token = new TextEncoder().encode(pick(TOKENS));
      bytes = concat(bytes.subarray(0, i), token, bytes.subarray(i));
      steps.push(`insert ${i} ${JSON.stringify(new TextDecoder().decode(token))}`);
    } else if (kind === 3) {
      const len = 1 + Math.floor(random() * 40);
      bytes = concat(bytes.subarray(0, i), bytes.subarray(i + len));
      steps.push(`delete ${i}+${len}`);
    } else if (kind === 4) {
      const len = 1 + Math.floor(random() * 60);
      bytes = concat(bytes.subarray(0, i + len), bytes.subarray(i, i + len), bytes.subarray(i + len));
      steps.push(`duplicate ${i}+${len}`);
    } else {
      bytes = bytes.slice(0, i);
      steps.push(`truncate ${i}`);
    }
  }
  const hint = pick([undefined, undefined, 'vtt', 'srt'] as const);
  steps.push(`case ${n} hint ${hint}`);
  return { bytes, hint, steps };
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** What every parsed document promises (CaptionDoc, Cue): the writer relies on it. */
function checkDoc(doc: CaptionDoc, label: string): void {
  let prev = 0;
  for (const c of doc.cues) {
    assert.ok(c.start >= 0 && c.end > c.start && c.start >= prev, `${label}: times ${c.start} ${c.end}`);
    assert.ok(!c.text.includes('-->') && !/\n\n|^\n|\n$|\r/.test(c.text), `${label}: text ${JSON.stringify(c.text)}`);
    if (c.id !== undefined) assert.ok(c.id !== '' && !/-->|[\r\n]/.test(c.id), `${label}: id`);
    if (c.settings !== undefined) assert.ok(c.settings !== '' && !/-->|[\r\n]/.test(c.settings), `${label}: settings`);
    prev = c.start;
  }
}

describe('captions fuzz', () => {
  it(`${CASES} mutated files parse or fail with CAPTION_INVALID, and parsed ones round-trip`, () => {
    const random = prng(SEED);
    let parsed = 0;
    for (let n = 0; n < CASES; n++) {
      const c = mutate(random, n);
      const label = c.steps.join(', ');
      let doc: CaptionDoc;
      try {
        doc = parseCaptionFile(c.bytes, c.hint);
      } catch (err) {
        if (!(err instanceof SmoothcastError && err.code === 'CAPTION_INVALID')) {
          assert.fail(`${label}: threw ${err instanceof Error ? err.stack : String(err)}`);
        }
        assert.ok(err.message.length < 300, `${label}: message too long: ${err.message}`);
        continue;
      }
      parsed++;
      checkDoc(doc, label);
      const vtt = writeWebVtt(doc);
      const again = parseWebVtt(vtt);
      assert.deepEqual(again, doc, `${label}: round trip`);
      assert.equal(writeWebVtt(again), vtt, `${label}: second write`);
    }
    // The mutations must leave enough files readable for the round trip to be tested, and break enough to matter.
    assert.ok(parsed > CASES / 10 && parsed < CASES * 0.9, `${parsed} of ${CASES} parsed`);
  });
});
