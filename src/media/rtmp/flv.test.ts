import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ffmpegFixture, ffprobeJson } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { decodeAmf0All, EcmaArray } from './amf0.ts';
import {
  audioCodec,
  FLV_TAG,
  flvHeader,
  flvTag,
  metadataBody,
  metadataCodecs,
  readFlvTags,
  type VideoTagInfo,
  videoCodec,
} from './flv.ts';
import { concat, flvTags } from './testing.ts';

const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const isProtocolError = (err: unknown) => err instanceof SmoothcastError && err.code === 'RTMP_PROTOCOL';
const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

describe('flv', () => {
  it('writes the header with PreviousTagSize0 and tags with their PreviousTagSize (E.2, E.4.1)', () => {
    assert.equal(hex(flvHeader()), '464c5601050000000900000000');
    assert.equal(hex(flvHeader({ audio: false, video: true })), '464c5601010000000900000000');
    // Timestamp 0x12345678: low 24 bits, then the high 8 in TimestampExtended.
    assert.equal(
      hex(flvTag(FLV_TAG.video, 0x12345678, bytes('aabb'))),
      '09000002345678120000 00aabb0000000d'.replace(/ /g, ''),
    );
    assert.throws(() => flvTag(FLV_TAG.audio, 0, new Uint8Array(0x1000000)), isProtocolError);
  });

  it('metadataBody is the onMetaData script data ffmpeg reads', () => {
    const [name, data] = decodeAmf0All(metadataBody({ width: 320, encoder: 'x' }));
    assert.equal(name, 'onMetaData');
    assert.ok(data instanceof EcmaArray);
    assert.deepEqual(data.properties, { width: 320, encoder: 'x' });
  });

  it('tags written by flvTag make a file ffprobe reads back, and the codecs are recognised from ffmpeg’s bodies', async () => {
    const source = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=1', '-f', 'lavfi', '-i', 'sine=duration=1'],
        ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', '-c:a', 'aac', '-f', 'flv'],
      ],
      'flv',
    );
    const tags = flvTags(new Uint8Array(readFileSync(source)));
    const video = tags.filter((t) => t.type === FLV_TAG.video);
    const audio = tags.filter((t) => t.type === FLV_TAG.audio);
    const v0 = videoCodec(video[0]?.body ?? new Uint8Array(0));
    assert.deepEqual({ ...v0 }, {
      codec: 'avc',
      codecId: 7,
      fourcc: null,
      frameType: 1,
      keyframe: true,
      sequenceHeader: true,
      endOfSequence: false,
    } satisfies VideoTagInfo);
    assert.equal(videoCodec(video[1]?.body as Uint8Array).sequenceHeader, false);
    assert.equal(videoCodec(video[1]?.body as Uint8Array).keyframe, true);
    assert.equal(videoCodec(video[2]?.body as Uint8Array).keyframe, false);
    assert.deepEqual(audioCodec(audio[0]?.body as Uint8Array), {
      codec: 'aac',
      soundFormat: 10,
      fourcc: null,
      sequenceHeader: true,
    });
    assert.equal(audioCodec(audio[1]?.body as Uint8Array).sequenceHeader, false);

    // Re-framed with our writer, without the script tag: still an h264+aac FLV of 1 s.
    const dir = mkdtempSync(join(tmpdir(), 'smoothcast-flv-'));
    const copy = join(dir, 'reframed.flv');
    const media = tags.filter((t) => t.type !== FLV_TAG.script);
    writeFileSync(copy, concat([flvHeader(), ...media.map((t) => flvTag(t.type as 8 | 9, t.timestamp, t.body))]));
    const probe = (await ffprobeJson(copy, ['-show_streams'])) as { streams: { codec_name: string }[] };
    assert.deepEqual(probe.streams.map((s) => s.codec_name).sort(), ['aac', 'h264']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('recognises Enhanced RTMP FourCC headers: hvc1, av01, vp09, and multitrack / ModEx wrappers', () => {
    const ex = (frameType: number, packetType: number, ...rest: number[]) =>
      Uint8Array.of(0x80 | (frameType << 4) | packetType, ...rest);
    const hevcStart = videoCodec(ex(1, 0, ...ascii('hvc1'), 1, 2, 3));
    assert.equal(hevcStart.codec, 'hevc');
    assert.equal(hevcStart.fourcc, 'hvc1');
    assert.equal(hevcStart.sequenceHeader, true);
    assert.equal(hevcStart.keyframe, true);
    assert.equal(hevcStart.codecId, null);
    const av1 = videoCodec(ex(2, 3, ...ascii('av01'), 0));
    assert.deepEqual([av1.codec, av1.sequenceHeader, av1.keyframe], ['av1', false, false]);
    assert.equal(videoCodec(ex(1, 2, ...ascii('vp09'))).endOfSequence, true);
    // Multitrack (6): AvMultitrackType 0 (one track) | packet type 0, then the FourCC.
    const multi = videoCodec(ex(1, 6, 0x00, ...ascii('hvc1'), 0));
    assert.deepEqual([multi.codec, multi.sequenceHeader], ['hevc', true]);
    // ModEx (7): one byte of modifier data, then modExType | the real packet type (1), then the FourCC.
    const modex = videoCodec(ex(2, 7, 0, 0x55, 0x01, ...ascii('av01')));
    assert.deepEqual([modex.codec, modex.sequenceHeader], ['av1', false]);
    assert.equal(videoCodec(ex(1, 0, ...ascii('xyz1'))).codec, null, 'unknown FourCC');
    // A command frame carries no FourCC.
    assert.equal(videoCodec(ex(5, 1, 0)).codec, null);
    assert.throws(() => videoCodec(ex(1, 0, ...ascii('hv'))), isProtocolError);

    // Audio: SoundFormat 9 = ExHeader, then the FourCC.
    const opus = audioCodec(Uint8Array.of(0x90, ...ascii('Opus'), 0));
    assert.deepEqual(opus, { codec: 'opus', soundFormat: 9, fourcc: 'Opus', sequenceHeader: true });
    assert.equal(audioCodec(Uint8Array.of(0x91, ...ascii('fLaC'))).sequenceHeader, false);
    assert.equal(audioCodec(Uint8Array.of(0x95, 0x00, ...ascii('ac-3'))).codec, 'ac3');
  });

  it('legacy codec ids other than AVC/AAC are named so they can be refused by name', () => {
    assert.equal(videoCodec(Uint8Array.of(0x22, 0)).codec, 'h263');
    assert.equal(videoCodec(Uint8Array.of(0x24, 0, 0)).codec, 'vp6');
    assert.equal(videoCodec(Uint8Array.of(0x1c, 0, 0, 0, 0)).codec, 'hevc', 'the CDN extension id 12');
    assert.equal(videoCodec(Uint8Array.of(0x1f)).codec, null);
    assert.equal(audioCodec(Uint8Array.of(0x2f)).codec, 'mp3');
    assert.equal(audioCodec(Uint8Array.of(0xbe)).codec, 'speex');
    assert.equal(audioCodec(Uint8Array.of(0x7e)).codec, 'g711a');
    assert.equal(audioCodec(Uint8Array.of(0xf0)).codec, null);
    for (const body of [new Uint8Array(0), Uint8Array.of(0x17, 0)]) {
      assert.throws(() => videoCodec(body), isProtocolError);
    }
    assert.throws(() => audioCodec(Uint8Array.of(0xaf)), isProtocolError, 'AAC without AACPacketType');
    assert.throws(() => audioCodec(new Uint8Array(0)), isProtocolError);
  });

  it('readFlvTags walks tags with their PreviousTagSize and refuses one that runs past the end', () => {
    const two = concat([flvTag(FLV_TAG.audio, 5, bytes('af01')), flvTag(FLV_TAG.video, 0x01000000, bytes('2701'))]);
    assert.deepEqual(
      readFlvTags(two).map((t) => [t.type, t.timestamp, hex(t.body)]),
      [
        [8, 5, 'af01'],
        [9, 0x01000000, '2701'],
      ],
    );
    assert.throws(() => readFlvTags(two.subarray(0, two.length - 1)), isProtocolError);
    assert.throws(() => readFlvTags(two.subarray(0, 5)), isProtocolError);
  });

  it('metadataCodecs reads videocodecid/audiocodecid as ids, FourCC numbers or FourCC strings', () => {
    assert.deepEqual(metadataCodecs({ videocodecid: 7, audiocodecid: 10 }), { video: 'avc', audio: 'aac' });
    const hvc1 = 0x68766331;
    assert.deepEqual(metadataCodecs({ videocodecid: hvc1, audiocodecid: 'Opus' }), { video: 'hevc', audio: 'opus' });
    assert.deepEqual(metadataCodecs({ videocodecid: 'constructor', audiocodecid: -1 }), { video: null, audio: null });
    assert.deepEqual(metadataCodecs({}), { video: null, audio: null });
  });
});
