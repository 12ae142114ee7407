import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSrt } from './index.ts';
import { assertCaptionInvalid } from './testing.ts';

const srt = (...lines: string[]) => `${lines.join('\n')}\n`;
const texts = (s: string) => parseSrt(s).cues.map((c) => c.text);

describe('parseSrt', () => {
  it('reads numbered cues with comma or dot milliseconds', () => {
    const doc = parseSrt(
      srt('1', '00:00:01,000 --> 00:00:02,500', 'Hello', 'world', '', '2', '00:00:02.500 --> 01:00:00.001', 'Dot'),
    );
    assert.deepEqual(doc, {
      blocks: [],
      cues: [
        { start: 1, end: 2.5, text: 'Hello\nworld' },
        { start: 2.5, end: 3600.001, text: 'Dot' },
      ],
    });
  });

  it('tolerates missing, odd and repeated cue numbers, extra blank lines and trailing positions', () => {
    const doc = parseSrt(
      srt(
        '',
        '',
        '00:00:01,000 --> 00:00:02,000',
        'no number',
        '',
        '',
        '',
        '7',
        '00:00:03,000-->00:00:04,000  X1:100 X2:200 Y1:10 Y2:20',
        'odd number, no spaces around the arrow',
        '   ',
        'seven',
        '00:00:05,000 --> 00:00:06,000',
        'not a number',
      ),
    );
    assert.deepEqual(
      doc.cues.map((c) => [c.start, c.end, c.text]),
      [
        [1, 2, 'no number'],
        [3, 4, 'odd number, no spaces around the arrow'],
        [5, 6, 'not a number'],
      ],
    );
  });

  it('ends a cue at the next cue when the blank line is missing', () => {
    const s = srt(
      '1',
      '00:00:01,000 --> 00:00:02,000',
      'a',
      '2',
      '00:00:03,000 --> 00:00:04,000',
      'b',
      '00:00:05,000 --> 00:00:06,000',
      'c',
    );
    assert.deepEqual(texts(s), ['a', 'b', 'c']);
    // A number that is not followed by a timing line is text.
    assert.deepEqual(
      texts(srt('1', '00:00:01,000 --> 00:00:02,000', 'count:', '3', '', '2', '00:00:03,000 --> 00:00:04,000', 'b')),
      ['count:\n3', 'b'],
    );
  });

  it('reads CRLF, a BOM and hours beyond 99', () => {
    const doc = parseSrt('\uFEFF1\r\n100:00:00,000 --> 100:00:01,000\r\nlate\r\n\r\n');
    assert.deepEqual(doc.cues, [{ start: 360_000, end: 360_001, text: 'late' }]);
  });

  it('keeps <b>, <i>, <u>, strips <font> and other tags and ASS overrides', () => {
    assert.deepEqual(
      texts(
        srt(
          '1',
          '00:00:01,000 --> 00:00:02,000',
          '<font color="#ffff00">Yellow</font> and <i>italic</i>',
          '<B>Bold</B> <U>under</U> <s>struck</s> <span class="x">span</span>',
          '{\\an8}On top',
        ),
      ),
      ['Yellow and <i>italic</i>\n<b>Bold</b> <u>under</u> struck span\nOn top'],
    );
  });

  it("escapes & < > that are not tags, so the text is WebVTT's", () => {
    assert.deepEqual(
      texts(
        srt(
          '1',
          '00:00:01,000 --> 00:00:02,000',
          'Tom & Jerry: 5 > 3 < 4, a <3 b',
          '&amp; is not an entity in SubRip',
          '--> arrow',
        ),
      ),
      ['Tom &amp; Jerry: 5 &gt; 3 &lt; 4, a &lt;3 b\n&amp;amp; is not an entity in SubRip\n--&gt; arrow'],
    );
  });

  it('trims lines and drops lines left empty by stripped tags', () => {
    assert.deepEqual(texts(srt('1', '00:00:01,000 --> 00:00:02,000', '  a  ', '<font color=red></font>', '\tb')), [
      'a\nb',
    ]);
    assert.deepEqual(texts(srt('1', '00:00:01,000 --> 00:00:02,000', '', '2', '00:00:03,000 --> 00:00:04,000', 'x')), [
      '',
      'x',
    ]);
  });

  it('is empty for an empty file', () => {
    assert.deepEqual(parseSrt(''), { cues: [], blocks: [] });
    assert.deepEqual(parseSrt('\n\n  \n'), { cues: [], blocks: [] });
  });

  it('refuses cues out of order and cues that end before they start', () => {
    assertCaptionInvalid(
      () =>
        parseSrt(
          srt(
            '1',
            '00:00:00,000 --> 00:00:01,000',
            'a',
            '',
            '2',
            '00:00:02,000 --> 00:00:03,000',
            'b',
            '',
            '3',
            '00:00:01,000 --> 00:00:04,000',
            'c',
          ),
        ),
      /^cues out of order: cue 3 starts at 00:00:01\.000, before cue 2 at 00:00:02\.000$/,
    );
    assertCaptionInvalid(
      () => parseSrt(srt('1', '00:00:02,000 --> 00:00:01,000', 'a')),
      /cue 1 ends at 00:00:01\.000, not after/,
    );
  });

  it('refuses lines that are neither a cue number nor a timing line', () => {
    assertCaptionInvalid(
      () => parseSrt(srt('1', '00:00:01,000 --> 00:00:02,000', 'a', '', 'junk', 'more junk')),
      /^line 5: expected a cue number/,
    );
    for (const timing of [
      '00:00:01 --> 00:00:02', // no milliseconds
      '00:01,000 --> 00:02,000', // no hours
      '00:00:01,00 --> 00:00:02,000',
      '00:61:01,000 --> 00:62:02,000',
      '00:00:01;000 --> 00:00:02;000',
      '00:00:01,000 --> 00:00:02,000x',
    ]) {
      assertCaptionInvalid(() => parseSrt(srt('1', timing, 'a')), /^line 1: expected a cue number/, timing);
    }
  });

  it('enforces the parse limits', () => {
    const s = srt('00:00:01,000 --> 00:00:02,000', 'a', '', '00:00:03,000 --> 00:00:04,000', 'b & c');
    assertCaptionInvalid(() => parseSrt(s, { maxCues: 1, maxCueTextLength: 100 }), /too many cues: more than 1/);
    // The limit is on the WebVTT text, escapes included.
    assertCaptionInvalid(
      () => parseSrt(s, { maxCues: 10, maxCueTextLength: 5 }),
      /cue 2: text longer than 5 characters/,
    );
  });
});
