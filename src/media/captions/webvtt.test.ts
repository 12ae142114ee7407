import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CaptionDoc, type ParseLimits, parseWebVtt } from './index.ts';
import { assertCaptionInvalid } from './testing.ts';

const vtt = (...lines: string[]) => `${lines.join('\n')}\n`;

describe('parseWebVtt', () => {
  it('reads cues with identifiers, settings and multi-line text', () => {
    const doc = parseWebVtt(
      vtt(
        'WEBVTT - a title',
        '',
        'intro',
        '00:00:01.000 --> 00:00:02.500 align:start  line:0',
        '<v Roger>Hello &amp; welcome</v>',
        'second line',
        '',
        '00:02.500 --> 01:00.000',
        'no hours',
      ),
    );
    assert.deepEqual(doc, {
      blocks: [],
      cues: [
        {
          id: 'intro',
          start: 1,
          end: 2.5,
          settings: 'align:start line:0',
          text: '<v Roger>Hello &amp; welcome</v>\nsecond line',
        },
        { start: 2.5, end: 60, text: 'no hours' },
      ],
    } satisfies CaptionDoc);
  });

  it('accepts a file with only the header (no cues)', () => {
    assert.deepEqual(parseWebVtt('WEBVTT'), { cues: [], blocks: [] });
    assert.deepEqual(parseWebVtt('WEBVTT\n\n'), { cues: [], blocks: [] });
    assert.deepEqual(parseWebVtt('WEBVTT\tKind: captions\nLanguage: en\n\n\n'), { cues: [], blocks: [] });
  });

  it('skips header lines such as X-TIMESTAMP-MAP', () => {
    const doc = parseWebVtt(
      vtt('WEBVTT', 'X-TIMESTAMP-MAP=MPEGTS:900000,LOCAL:00:00:00.000', '', '00:01.000 --> 00:02.000', 'a'),
    );
    assert.deepEqual(doc.cues, [{ start: 1, end: 2, text: 'a' }]);
  });

  it('strips a BOM and reads CRLF and CR line endings', () => {
    const lf = parseWebVtt('WEBVTT\n\n1\n00:01.000 --> 00:02.000\na\nb\n\n00:03.000 --> 00:04.000\nc\n');
    assert.deepEqual(
      parseWebVtt('\uFEFFWEBVTT\r\n\r\n1\r\n00:01.000 --> 00:02.000\r\na\r\nb\r\n\r\n00:03.000 --> 00:04.000\r\nc'),
      lf,
    );
    assert.deepEqual(parseWebVtt('WEBVTT\r\r1\r00:01.000 --> 00:02.000\ra\rb\r\r00:03.000 --> 00:04.000\rc\r'), lf);
  });

  it('reads hours beyond 99', () => {
    const doc = parseWebVtt(vtt('WEBVTT', '', '100:00:00.000 --> 1234:05:06.789', 'late'));
    assert.deepEqual(doc.cues, [{ start: 360_000, end: 1234 * 3600 + 5 * 60 + 6.789, text: 'late' }]);
  });

  it('keeps STYLE and REGION blocks verbatim and drops NOTE blocks', () => {
    const doc = parseWebVtt(
      vtt(
        'WEBVTT',
        '',
        'NOTE made by hand',
        'over two lines',
        '',
        'STYLE',
        '::cue { color: yellow; }',
        '::cue(b) { color: red; }',
        '',
        'REGION',
        'id:fred width:40% lines:3',
        '',
        'NOTE',
        '',
        '00:01.000 --> 00:02.000 region:fred',
        'a',
        '',
        'NOTE between cues',
        '',
        '00:03.000 --> 00:04.000',
        'b',
      ),
    );
    assert.deepEqual(doc.blocks, [
      'STYLE\n::cue { color: yellow; }\n::cue(b) { color: red; }',
      'REGION\nid:fred width:40% lines:3',
    ]);
    assert.deepEqual(
      doc.cues.map((c) => c.text),
      ['a', 'b'],
    );
    assert.equal(doc.cues[0]?.settings, 'region:fred');
  });

  it('reads a cue with empty text', () => {
    const doc = parseWebVtt(vtt('WEBVTT', '', 'id', '00:01.000 --> 00:02.000', '', '00:03.000 --> 00:04.000'));
    assert.deepEqual(doc.cues, [
      { id: 'id', start: 1, end: 2, text: '' },
      { start: 3, end: 4, text: '' },
    ]);
  });

  it('ends a cue at a timing line even without a blank line (§6.1)', () => {
    const doc = parseWebVtt(vtt('WEBVTT', '', '00:01.000 --> 00:02.000', 'a', '00:03.000 --> 00:04.000', 'b'));
    assert.deepEqual(
      doc.cues.map((c) => [c.start, c.text]),
      [
        [1, 'a'],
        [3, 'b'],
      ],
    );
  });

  it('treats NOTE and STYLE as identifiers when a timing line follows (§6.1)', () => {
    const doc = parseWebVtt(vtt('WEBVTT', '', 'NOTE', '00:01.000 --> 00:02.000', 'a'));
    assert.deepEqual(doc.cues, [{ id: 'NOTE', start: 1, end: 2, text: 'a' }]);
  });

  it('refuses a file without the WEBVTT line', () => {
    assertCaptionInvalid(() => parseWebVtt('00:01.000 --> 00:02.000\na\n'), /missing WEBVTT header/);
    assertCaptionInvalid(() => parseWebVtt('WEBVTTX\n\n'), /missing WEBVTT header/);
    assertCaptionInvalid(() => parseWebVtt(''), /missing WEBVTT header/);
  });

  it('refuses cues out of order, naming the cues', () => {
    assertCaptionInvalid(
      () =>
        parseWebVtt(
          vtt(
            'WEBVTT',
            '',
            '00:00.000 --> 00:01.000',
            'a',
            '',
            '00:02.000 --> 00:03.000',
            'b',
            '',
            '00:01.000 --> 00:04.000',
            'c',
          ),
        ),
      /^cues out of order: cue 3 starts at 00:00:01\.000, before cue 2 at 00:00:02\.000$/,
    );
    // Equal starts are in order (§4.1: "greater than or equal to").
    assert.equal(
      parseWebVtt(vtt('WEBVTT', '', '00:01.000 --> 00:02.000', '', '00:01.000 --> 00:03.000')).cues.length,
      2,
    );
  });

  it('refuses a cue that does not end after it starts', () => {
    assertCaptionInvalid(
      () => parseWebVtt(vtt('WEBVTT', '', '00:02.000 --> 00:01.000', 'a')),
      /cue 1 ends at 00:00:01\.000/,
    );
    assertCaptionInvalid(() => parseWebVtt(vtt('WEBVTT', '', '00:02.000 --> 00:02.000', 'a')), /not after its start/);
  });

  it('refuses malformed timestamps', () => {
    for (const timing of [
      '00:60.000 --> 00:61.000', // seconds ≥ 60
      '60:00.000 --> 61:00.000', // two-digit first field over 59 means hours, so this lacks the seconds
      '00:00:60.000 --> 00:01:00.000',
      '00:60:00.000 --> 01:00:00.000',
      '1:00.000 --> 2:00.000', // one-digit minutes
      '00:01.00 --> 00:02.000', // two decimals
      '00:01,000 --> 00:02,000', // SubRip comma
      '00:01.000 --> 00:02.000align:start', // settings need whitespace before them
      '00:01.000 --> 00:02.000 --> 00:03.000',
      '-00:01.000 --> 00:02.000',
      '0000000000001:00:00.000 --> 0000000000002:00:00.000', // more hour digits than milliseconds can hold
      '00:01.000 -->',
    ]) {
      assertCaptionInvalid(() => parseWebVtt(vtt('WEBVTT', '', timing, 'a')), /line 3: invalid cue timing/, timing);
    }
  });

  it('refuses blocks that are not cues, and a cue inside the header', () => {
    // An arrow without its '--' is no timing line at all.
    assertCaptionInvalid(
      () => parseWebVtt(vtt('WEBVTT', '', '00:01.000 -> 00:02.000', 'a')),
      /^line 3: .* starts no cue/,
    );
    assertCaptionInvalid(
      () => parseWebVtt(vtt('WEBVTT', '', '00:01.000 --> 00:02.000', 'a', '', 'stray text', '')),
      /^line 6: "stray text" starts no cue/,
    );
    assertCaptionInvalid(() => parseWebVtt(vtt('WEBVTT', '00:01.000 --> 00:02.000', 'a')), /line 2: a blank line must/);
  });

  it('refuses STYLE and REGION blocks after the first cue (§4.1)', () => {
    assertCaptionInvalid(
      () => parseWebVtt(vtt('WEBVTT', '', '00:01.000 --> 00:02.000', 'a', '', 'STYLE', '::cue {}')),
      /line 6: STYLE blocks must come before the first cue/,
    );
  });

  it('quotes at most about 40 characters of the input in messages', () => {
    const long = 'x'.repeat(10_000);
    assert.throws(
      () => parseWebVtt(vtt('WEBVTT', '', long)),
      (e: Error) => e.message.length < 200,
    );
    assert.throws(
      () => parseWebVtt(vtt('WEBVTT', '', `00:01.000 --> ${long}`)),
      (e: Error) => e.message.length < 200,
    );
  });

  it('enforces the parse limits', () => {
    const limits: ParseLimits = { maxCues: 2, maxCueTextLength: 5 };
    const cue = (s: number, text: string) => [`00:0${s}.000 --> 00:0${s + 1}.000`, text, ''];
    assert.equal(parseWebVtt(vtt('WEBVTT', '', ...cue(1, 'a'), ...cue(2, '12345')), limits).cues.length, 2);
    assertCaptionInvalid(
      () => parseWebVtt(vtt('WEBVTT', '', ...cue(1, 'a'), ...cue(2, 'b'), ...cue(3, 'c')), limits),
      /more than 2/,
    );
    assertCaptionInvalid(
      () => parseWebVtt(vtt('WEBVTT', '', '00:01.000 --> 00:02.000', '123', '456'), limits),
      /cue 1: text longer than 5/,
    );
  });

  it('refuses control characters (binary data)', () => {
    assertCaptionInvalid(() => parseWebVtt('WEBVTT\n\n00:01.000 --> 00:02.000\na\0b\n'), /binary data.*0x00 on line 4/);
    assertCaptionInvalid(() => parseWebVtt('WEBVTT\n\n00:01.000 --> 00:02.000\na\x1bb\n'), /binary data/);
    // Tab and form feed are text.
    assert.equal(parseWebVtt('WEBVTT\n\n00:01.000 --> 00:02.000\ta\n\ta\fb\n').cues[0]?.text, '\ta\fb');
  });
});
