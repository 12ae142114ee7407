import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ffmpegFixture } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { ecmaArray, encodeAmf0 } from './amf0.ts';
import { FLV_TAG, flvHeader, flvTag, metadataBody } from './flv.ts';
import { type FlvItem, FlvReader, scriptMetadata } from './flv-reader.ts';
import { concat, flvTags, prng } from './testing.ts';

const isProtocolError = (err: unknown) => err instanceof SmoothcastError && err.code === 'RTMP_PROTOCOL';
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Feeds `bytes` to a reader in pieces of 1..maxPiece bytes (seeded) and collects what comes out. */
function readInPieces(bytes: Uint8Array, maxPiece: number, seed: number): { items: FlvItem[]; reader: FlvReader } {
  const rand = prng(seed);
  const reader = new FlvReader();
  const items: FlvItem[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(rand() * maxPiece);
    items.push(...reader.push(bytes.subarray(at, at + n)));
    at += n;
  }
  return { items, reader };
}

describe('FlvReader', () => {
  it('reads an ffmpeg FLV whatever the pieces it arrives in, tag for tag as readFlvTags', async () => {
    const source = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=1', '-f', 'lavfi', '-i', 'sine=duration=1'],
        ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-c:a', 'aac', '-f', 'flv'],
      ],
      'flv',
    );
    const file = new Uint8Array(readFileSync(source));
    const expected = flvTags(file).map((t) => [t.type, t.timestamp, hex(t.body)]);
    for (const [maxPiece, seed] of [
      [1, 1],
      [7, 2],
      [1000, 3],
      [65536, 4],
      [file.length, 5],
    ] as const) {
      const { items, reader } = readInPieces(file, maxPiece, seed);
      assert.deepEqual(items[0], { kind: 'header', version: 1, flags: { audio: true, video: true } });
      const tags = items.slice(1).map((t) => (t.kind === 'tag' ? [t.type, t.timestamp, hex(t.body)] : t));
      assert.deepEqual(tags, expected, `pieces of up to ${maxPiece} bytes`);
      assert.equal(reader.buffered, 0);
      assert.equal(reader.bytesRead, file.length);
      reader.finish();
    }
    const script = flvTags(file).find((t) => t.type === FLV_TAG.script);
    const meta = script && scriptMetadata(script.body);
    assert.equal(meta?.width, 160);
    assert.equal(meta?.videocodecid, 7);
  });

  it('bodies are copies, a DataOffset past 9 is skipped, a 1 MiB tag crosses many pieces', () => {
    const header = Uint8Array.of(0x46, 0x4c, 0x56, 1, 1, 0, 0, 0, 12, 0xaa, 0xbb, 0xcc, 0, 0, 0, 0);
    const big = new Uint8Array(1 << 20).map((_, i) => i & 0xff);
    const stream = concat([header, flvTag(FLV_TAG.video, 0x01020304, big), flvTag(FLV_TAG.audio, 7, Uint8Array.of(9))]);
    const { items } = readInPieces(stream, 4096, 9);
    assert.equal(items.length, 3);
    assert.deepEqual(items[0], { kind: 'header', version: 1, flags: { audio: false, video: true } });
    const [, video, audio] = items;
    assert.ok(video?.kind === 'tag' && audio?.kind === 'tag');
    assert.deepEqual([video.type, video.timestamp, video.body.length], [9, 0x01020304, 1 << 20]);
    assert.deepEqual(video.body, big);
    assert.deepEqual([audio.type, audio.timestamp, hex(audio.body)], [8, 7, '09']);

    // A body stays valid after later pushes reuse the reader's buffer.
    const r = new FlvReader();
    const [, first] = r.push(concat([flvHeader(), flvTag(FLV_TAG.audio, 0, Uint8Array.of(1, 2, 3))]));
    r.push(flvTag(FLV_TAG.audio, 0, Uint8Array.of(7, 7, 7)));
    assert.ok(first?.kind === 'tag');
    assert.equal(hex(first.body), '010203');
  });

  it('refuses what is not FLV, a wrong PreviousTagSize, and a stream cut inside a tag; it then stays failed', () => {
    assert.throws(() => new FlvReader().push(Uint8Array.of(0x47)), isProtocolError, 'a TS sync byte is not FLV');
    assert.throws(() => new FlvReader().push(new TextEncoder().encode('GET / HTTP/1.1\r\n')), isProtocolError);
    const badOffset = Uint8Array.of(0x46, 0x4c, 0x56, 1, 5, 0, 0, 0, 3, 0, 0, 0, 0);
    assert.throws(() => new FlvReader().push(badOffset), isProtocolError);

    const tag = flvTag(FLV_TAG.video, 0, Uint8Array.of(0x17, 1, 0, 0, 0));
    const corrupt = tag.slice();
    corrupt[corrupt.length - 1] = 0;
    const r = new FlvReader();
    r.push(flvHeader());
    assert.throws(() => r.push(corrupt), isProtocolError);
    assert.throws(() => r.push(tag), isProtocolError, 'no resynchronisation after an error');

    const cut = new FlvReader();
    assert.deepEqual(
      cut.push(concat([flvHeader(), tag.subarray(0, 8)])).map((i) => i.kind),
      ['header'],
    );
    assert.equal(cut.buffered, 8);
    assert.throws(() => cut.finish(), isProtocolError);
  });

  it('scriptMetadata reads onMetaData with or without @setDataFrame and nothing else', () => {
    assert.deepEqual(scriptMetadata(metadataBody({ width: 640, framerate: 30 })), { width: 640, framerate: 30 });
    assert.deepEqual(scriptMetadata(encodeAmf0('@setDataFrame', 'onMetaData', { height: 360 })), { height: 360 });
    assert.equal(scriptMetadata(encodeAmf0('onCuePoint', ecmaArray({ name: 'x' }))), null);
    assert.equal(scriptMetadata(encodeAmf0('onMetaData')), null);
    assert.equal(scriptMetadata(encodeAmf0('onMetaData', 5)), null);
    assert.equal(scriptMetadata(Uint8Array.of(0x02, 0xff, 0xff)), null, 'a cut string');
  });
});
