// The Smooth Streaming manifest and the tfxd rewrite, against ffmpeg's reading of the rewritten fragments (GStreamer
// mssdemux and dash.js play the real thing in the interoperability matrix).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cmafFixture } from '../../../test/helpers/media.ts';
import { packets } from '../../../test/helpers/verify.ts';
import { indexBuffer } from '../bmff/index.ts';
import { addTfxd, TFXD_SIZE } from '../bmff/piff.ts';
import { avcCodecPrivateData, smoothBitrates, writeSmoothManifest } from './smooth.ts';

describe('Smooth Streaming', () => {
  it('adds a tfxd to every fragment; ffmpeg reads the result packet for packet like the original', async () => {
    for (const kind of ['video', 'audio'] as const) {
      const file = await cmafFixture(kind, 6, 2);
      const buf = readFileSync(file);
      const { track, segments } = indexBuffer(buf);
      const parts = [buf.subarray(0, track.initSize)];
      for (const s of segments) {
        const out = addTfxd(buf.subarray(s.offset, s.offset + s.size), s.start, s.duration);
        assert.equal(out.length, s.size + TFXD_SIZE);
        // The tfxd carries the fragment's time and duration (version 1, 64-bit).
        const at = Buffer.from(out).indexOf(Buffer.from('6d1d9b0542d544e680e2141daff757b2', 'hex'));
        assert.ok(at > 0);
        const v = new DataView(out.buffer, out.byteOffset);
        assert.equal(v.getBigUint64(at + 20), BigInt(s.start));
        assert.equal(v.getBigUint64(at + 28), BigInt(s.duration));
        parts.push(Buffer.from(out));
      }
      const rewritten = join(mkdtempSync(join(tmpdir(), 'sc-piff-')), `piff-${kind}.mp4`);
      writeFileSync(rewritten, Buffer.concat(parts));
      const stream = kind === 'video' ? 'v:0' : 'a:0';
      assert.deepEqual(await packets(rewritten, stream), await packets(file, stream), kind);
      // And our own indexer still finds the same fragments (samples, durations).
      const again = indexBuffer(readFileSync(rewritten)).segments;
      assert.deepEqual(
        again.map((s) => [s.start, s.duration, s.samples]),
        segments.map((s) => [s.start, s.duration, s.samples]),
      );
    }
  });

  it('writes CodecPrivateData as Annex B SPS and PPS, and the chunk lists in the track timescale', async () => {
    const buf = readFileSync(await cmafFixture('video', 6, 2));
    const { track, segments } = indexBuffer(buf);
    const cpd = avcCodecPrivateData(track.codecConfig);
    assert.match(cpd, /^0000000167[0-9A-F]+0000000168[0-9A-F]+$/, 'SPS (NAL type 7) then PPS (type 8)');
    const v = { id: 'v0', track, segments, peakBitrate: 1e6, averageBitrate: 8e5, width: 320, height: 180 };
    const xml = writeSmoothManifest({ complete: true, duration: 6, renditions: [v] }, smoothBitrates([v]));
    assert.match(
      xml,
      /<SmoothStreamingMedia MajorVersion="2" MinorVersion="2" TimeScale="10000000" Duration="60000000">/,
    );
    assert.match(xml, new RegExp(`TimeScale="${track.timescale}"`));
    assert.match(xml, /FourCC="AVC1"/);
    assert.equal((xml.match(/<c /g) ?? []).length, segments.length);
    assert.match(xml, new RegExp(`<c t="${segments[0]!.start}" d="${segments[0]!.duration}"/>`));
    assert.throws(() => writeSmoothManifest({ complete: false, duration: 6, renditions: [v] }, smoothBitrates([v])));
    assert.throws(() => avcCodecPrivateData(track.codecConfig.subarray(0, 8)));
  });
});

describe('several audio languages', () => {
  it('writes one audio StreamIndex per language, each with its own fragment name', async () => {
    const file = await cmafFixture('audio', 4, 2);
    const { track, segments } = indexBuffer(readFileSync(file));
    const r = (id: string, language: string) => ({
      id,
      track,
      segments,
      peakBitrate: 130_000,
      averageBitrate: 128_000,
      language,
    });
    const reps = [r('a0', 'en'), r('a1', 'fr')];
    const xml = writeSmoothManifest({ complete: true, renditions: reps, duration: 4 }, smoothBitrates(reps));
    const streams = xml.split('<StreamIndex').slice(1);
    assert.equal(streams.length, 2);
    assert.match(
      streams[0]!,
      /Name="audio" Language="en"[^>]*Url="QualityLevels\(\{bitrate\}\)\/Fragments\(audio=\{start time\}\)"/,
    );
    assert.match(streams[1]!, /Name="audio_a1" Language="fr"[^>]*Fragments\(audio_a1=\{start time\}\)/);
  });
});
