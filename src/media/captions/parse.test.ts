import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCaptionFile, parseSrt, parseWebVtt } from './index.ts';
import { assertCaptionInvalid } from './testing.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const VTT = 'WEBVTT\n\n00:01.000 --> 00:02.000\nhé\n';
const SRT = '1\n00:00:01,000 --> 00:00:02,000\nhé\n';
const expected = { cues: [{ start: 1, end: 2, text: 'hé' }], blocks: [] };

describe('parseCaptionFile', () => {
  it('tells WebVTT from SubRip by content', () => {
    assert.deepEqual(parseCaptionFile(utf8(VTT)), expected);
    assert.deepEqual(parseCaptionFile(utf8(SRT)), expected);
    // Without a final line break, and without cue numbers after blank lines.
    assert.deepEqual(parseCaptionFile(utf8(SRT.trimEnd())), expected);
    assert.deepEqual(
      parseCaptionFile(utf8(`${SRT}${'x'.repeat(10_000)}\n`), undefined, { maxCues: 9, maxCueTextLength: 20_000 }),
      {
        cues: [{ start: 1, end: 2, text: `hé\n${'x'.repeat(10_000)}` }],
        blocks: [],
      },
    );
    assert.deepEqual(parseCaptionFile(utf8('\n\n00:00:01,000 --> 00:00:02,000\nhé\n')), expected);
  });

  it('strips a UTF-8 BOM and reads CRLF files', () => {
    const bom = [0xef, 0xbb, 0xbf];
    assert.deepEqual(parseCaptionFile(new Uint8Array([...bom, ...utf8(VTT.replaceAll('\n', '\r\n'))])), expected);
    assert.deepEqual(parseCaptionFile(new Uint8Array([...bom, ...utf8(SRT.replaceAll('\n', '\r\n'))])), expected);
  });

  it('follows the hint', () => {
    assert.deepEqual(parseCaptionFile(utf8(VTT), 'vtt'), expected);
    assert.deepEqual(parseCaptionFile(utf8(SRT), 'srt'), expected);
    assertCaptionInvalid(() => parseCaptionFile(utf8(SRT), 'vtt'), /missing WEBVTT header/);
    assertCaptionInvalid(() => parseCaptionFile(utf8(VTT), 'srt'), /line 1: expected a cue number/);
  });

  it('passes the limits on', () => {
    assertCaptionInvalid(
      () => parseCaptionFile(utf8(SRT), undefined, { maxCues: 0, maxCueTextLength: 10 }),
      /too many cues/,
    );
  });

  it('refuses what is neither format', () => {
    assertCaptionInvalid(() => parseCaptionFile(new Uint8Array()), /empty/);
    assertCaptionInvalid(() => parseCaptionFile(utf8('\n \n')), /empty/);
    assertCaptionInvalid(() => parseCaptionFile(utf8('hello world\n')), /not a WebVTT or SubRip file/);
    assertCaptionInvalid(
      () => parseCaptionFile(utf8('<tt xmlns="http://www.w3.org/ns/ttml">')),
      /not a WebVTT or SubRip/,
    );
    assertCaptionInvalid(() => parseCaptionFile(utf8('[Script Info]\nScriptType: v4.00+\n')), /not a WebVTT or SubRip/);
  });

  it('refuses text that is not UTF-8', () => {
    assertCaptionInvalid(
      () => parseCaptionFile(new Uint8Array([0x57, 0x45, 0x42, 0x56, 0x54, 0x54, 0x0a, 0xe9])),
      /not UTF-8 text/,
    );
    // Latin-1 "é" in a SubRip file.
    const latin1 = new Uint8Array([...utf8('1\n00:00:01,000 --> 00:00:02,000\nh'), 0xe9, 0x0a]);
    assertCaptionInvalid(() => parseCaptionFile(latin1), /not UTF-8 text/);
    // UTF-16LE with its BOM.
    const utf16 = new Uint8Array([0xff, 0xfe, ...[...'WEBVTT'].flatMap((c) => [c.charCodeAt(0), 0])]);
    assertCaptionInvalid(() => parseCaptionFile(utf16), /not UTF-8 text/);
  });

  it('refuses binary data', () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0x44, 0x52]);
    assertCaptionInvalid(() => parseCaptionFile(png));
    assertCaptionInvalid(() => parseCaptionFile(png, 'vtt'));
    assertCaptionInvalid(() => parseCaptionFile(new Uint8Array(1024)), /binary data/);
    assertCaptionInvalid(() => parseCaptionFile(utf8(`${VTT}\n\0\0\0\0`)), /binary data/);
    assertCaptionInvalid(() => parseCaptionFile(utf8(SRT.replace('hé', 'h\x01é'))), /binary data.*line 3/);
    let seed = 1;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) >>> 0;
      return seed >>> 24;
    };
    for (let n = 0; n < 50; n++) {
      const bytes = Uint8Array.from({ length: 64 + n * 37 }, random);
      assertCaptionInvalid(() => parseCaptionFile(bytes), undefined, `random bytes #${n}`);
    }
  });

  it('stays linear on hostile input', () => {
    const big = 5 * 1024 * 1024;
    const junk = 'x'.repeat(big);
    const arrows = 'a-->'.repeat(big / 4);
    const digits = '0'.repeat(big);
    const start = performance.now();
    assertCaptionInvalid(() => parseCaptionFile(utf8(junk)));
    assertCaptionInvalid(() => parseCaptionFile(utf8(arrows)));
    assertCaptionInvalid(() => parseCaptionFile(utf8(arrows), 'srt'));
    assertCaptionInvalid(() => parseWebVtt(`WEBVTT\n\n${arrows}`));
    assertCaptionInvalid(() => parseWebVtt(`WEBVTT\n\n${digits}:00.000 --> 1`));
    assertCaptionInvalid(() => parseWebVtt(`WEBVTT\n\n00:00.000 --> 00:01.000\n${junk}`), /text longer than/);
    assertCaptionInvalid(() => parseSrt(`00:00:00,000 --> 00:00:01,000\n${'<'.repeat(big)}`), /text longer than/);
    assertCaptionInvalid(() => parseSrt(`00:00:00,000 --> 00:00:01,000\n${'<b '.repeat(big / 3)}`), /text longer than/);
    assertCaptionInvalid(() => parseSrt(`00:00:00,000 --> 00:00:01,000\n${'{\\'.repeat(big / 2)}`), /text longer than/);
    assertCaptionInvalid(() => parseSrt('\n'.repeat(big) + junk));
    assertCaptionInvalid(() => parseWebVtt(`WEBVTT\n\n${'a-->\n'.repeat(big / 5)}`));
    // Not a timing assertion (machines differ), only a sign of quadratic work: each case is ~5 MB.
    assert.ok(performance.now() - start < 20_000);
  });
});
