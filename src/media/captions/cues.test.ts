import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import {
  type CaptionDoc,
  captionDuration,
  DEFAULT_PARSE_LIMITS,
  parseWebVtt,
  shiftCues,
  writeWebVtt,
} from './index.ts';

const doc: CaptionDoc = {
  blocks: ['STYLE\n::cue { color: yellow; }'],
  cues: [
    { id: 'one', start: 0, end: 1.5, text: '<i>Hi</i> &amp; bye', settings: 'align:start line:0' },
    { start: 61.0004, end: 3723.0456, text: 'two\nlines' },
    { start: 400_000, end: 400_001, text: '' },
  ],
};

describe('writeWebVtt', () => {
  it('writes the header, blocks and cues with hours and three decimals, rounded to the millisecond', () => {
    assert.equal(
      writeWebVtt(doc),
      [
        'WEBVTT',
        '',
        'STYLE',
        '::cue { color: yellow; }',
        '',
        'one',
        '00:00:00.000 --> 00:00:01.500 align:start line:0',
        '<i>Hi</i> &amp; bye',
        '',
        '00:01:01.000 --> 01:02:03.046',
        'two',
        'lines',
        '',
        '111:06:40.000 --> 111:06:41.000',
        '',
        '',
      ].join('\n'),
    );
  });

  it('writes header lines right after WEBVTT', () => {
    const out = writeWebVtt({ cues: [], blocks: [] }, { header: 'X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000' });
    assert.equal(out, 'WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n');
    assert.equal(writeWebVtt({ cues: [], blocks: [] }), 'WEBVTT\n\n');
  });

  it('reads back to the same cues', () => {
    const back = parseWebVtt(writeWebVtt(doc));
    assert.deepEqual(back.blocks, doc.blocks);
    assert.deepEqual(back.cues, [
      doc.cues[0],
      { start: 61, end: 3723.046, text: 'two\nlines' },
      { start: 400_000, end: 400_001, text: '' },
    ]);
  });

  it('writes text that would break the file in a form that reads back as one cue', () => {
    const out = writeWebVtt({ blocks: [], cues: [{ start: 1, end: 2, text: 'a\n\nb --> c\r\nd', id: '' }] });
    assert.equal(out, 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\na\nb --&gt; c\nd\n\n');
    assert.equal(parseWebVtt(out).cues.length, 1);
  });

  it('refuses a doc that cannot be written', () => {
    const bad = (cue: object) => () => writeWebVtt({ blocks: [], cues: [{ start: 1, end: 2, text: '', ...cue }] });
    for (const cue of [
      { end: 1 },
      { end: 1.0004 },
      { start: -1 },
      { end: Number.NaN },
      { id: 'a\nb' },
      { id: 'a-->b' },
      { settings: 'x-->' },
    ]) {
      assert.throws(
        bad(cue),
        (e: unknown) => e instanceof SmoothcastError && e.code === 'INTERNAL',
        JSON.stringify(cue),
      );
    }
    const outOfOrder = {
      blocks: [],
      cues: [
        { start: 2, end: 3, text: '' },
        { start: 1, end: 3, text: '' },
      ],
    };
    assert.throws(() => writeWebVtt(outOfOrder), /cue 2: invalid or out-of-order times/);
    assert.throws(() => writeWebVtt({ blocks: ['STYLE\n-->'], cues: [] }), /cannot contain/);
  });
});

describe('shiftCues', () => {
  const base: CaptionDoc = {
    blocks: ['STYLE'],
    cues: [
      { start: 0.5, end: 1, text: 'a' },
      { start: 1.5, end: 3, text: 'b', id: 'b' },
      { start: 2, end: 4, text: 'c' },
    ],
  };

  it('moves every cue forward into a new doc', () => {
    const out = shiftCues(base, 10);
    assert.deepEqual(
      out.cues.map((c) => [c.start, c.end]),
      [
        [10.5, 11],
        [11.5, 13],
        [12, 14],
      ],
    );
    assert.equal(out.cues[1]?.id, 'b');
    assert.notEqual(out, base);
    assert.notEqual(out.blocks, base.blocks);
    assert.equal(base.cues[0]?.start, 0.5, 'the input is unchanged');
  });

  it('drops cues that end at or before 0 and clamps starts at 0', () => {
    const out = shiftCues(base, -1.75);
    assert.deepEqual(out.cues, [
      { start: 0, end: 1.25, text: 'b', id: 'b' },
      { start: 0.25, end: 2.25, text: 'c' },
    ]);
    assert.deepEqual(shiftCues(base, -1).cues.length, 2, 'a cue ending exactly at 0 is dropped');
    assert.deepEqual(shiftCues(base, -100).cues, []);
  });

  it('rounds to the millisecond, so shifted docs still write and read back', () => {
    const out = shiftCues(base, 0.1 + 0.2);
    assert.deepEqual(out.cues[0], { start: 0.8, end: 1.3, text: 'a' });
    assert.deepEqual(parseWebVtt(writeWebVtt(out)).cues, out.cues);
    assert.throws(() => shiftCues(base, Number.NaN), RangeError);
  });
});

describe('captionDuration', () => {
  it('is the latest end, or 0 without cues', () => {
    assert.equal(captionDuration({ cues: [], blocks: [] }), 0);
    const cues = [
      { start: 0, end: 10, text: '' },
      { start: 1, end: 2, text: '' },
    ];
    assert.equal(captionDuration({ cues, blocks: [] }), 10);
  });
});

describe('DEFAULT_PARSE_LIMITS', () => {
  it('is 100 000 cues of 10 000 characters, frozen', () => {
    assert.deepEqual(DEFAULT_PARSE_LIMITS, { maxCues: 100_000, maxCueTextLength: 10_000 });
    assert.ok(Object.isFrozen(DEFAULT_PARSE_LIMITS));
  });
});
