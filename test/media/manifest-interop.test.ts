// Checks the manifest writers against readers we did not write: ffmpeg's hls and dash demuxers and ffprobe read
// playlists/MPDs written for real CMAF files (cut into init + segment files), and must decode exactly the frames
// that decoding the CMAF files directly gives.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { writeMpd } from '../../src/media/manifest/dash.ts';
import { writeMediaPlaylist, writeMultivariantPlaylist } from '../../src/media/manifest/hls.ts';
import { testUrls as urls } from '../../src/media/manifest/testing.ts';
import type { ManifestRendition, Presentation, Segment, TrackInfo } from '../../src/media/types.ts';
import { cmafFixture, ffmpegFixture, testSource } from '../helpers/media.ts';

const run = promisify(execFile);

// ---- A minimal ISO-BMFF walker, for this test only (ISO/IEC 14496-12 §4.2, §8.8) -----------------------------------

interface Box {
  type: string;
  start: number;
  body: number; // first byte after the header
  end: number;
}

function boxes(b: Buffer, start = 0, end = b.length): Box[] {
  const out: Box[] = [];
  for (let at = start; at + 8 <= end; ) {
    let size = b.readUInt32BE(at);
    let body = at + 8;
    if (size === 1) {
      size = Number(b.readBigUInt64BE(at + 8));
      body += 8;
    } else if (size === 0) size = end - at;
    out.push({ type: b.toString('latin1', at + 4, at + 8), start: at, body, end: at + size });
    at += size;
  }
  return out;
}

function child(b: Buffer, parent: Box, path: string, skip = 0): Box {
  let box = parent;
  for (const type of path.split('/')) {
    const found = boxes(b, box.body + skip, box.end).find((x) => x.type === type);
    assert.ok(found, `no ${type} box`);
    box = found;
    skip = 0;
  }
  return box;
}

function rendition(id: string, b: Buffer): ManifestRendition {
  const top = boxes(b);
  const moov = top.find((x) => x.type === 'moov')!;
  const mdia = child(b, moov, 'trak/mdia');
  const handler = b.toString('latin1', child(b, mdia, 'hdlr').body + 8, child(b, mdia, 'hdlr').body + 12);
  const mdhd = child(b, mdia, 'mdhd');
  const timescale = b.readUInt32BE(mdhd.body + (b[mdhd.body] === 1 ? 20 : 12));
  const entry = boxes(b, child(b, mdia, 'minf/stbl/stsd').body + 8)[0]!;
  const trex = child(b, moov, 'mvex/trex').body;
  const video = handler === 'vide';
  let codec: string;
  let extra: Partial<TrackInfo>;
  if (video) {
    const avcC = child(b, entry, 'avcC', 78).body; // VisualSampleEntry fields take 78 bytes (§12.1.3)
    codec = `avc1.${b
      .subarray(avcC + 1, avcC + 4)
      .toString('hex')
      .toUpperCase()}`;
    extra = { width: b.readUInt16BE(entry.body + 24), height: b.readUInt16BE(entry.body + 26) };
  } else {
    const esds = child(b, entry, 'esds', 28); // AudioSampleEntry fields take 28 bytes (§12.2.3)
    const dsi = b.indexOf(0x05, esds.body + 4 + 20); // DecoderSpecificInfo tag after ES_Descriptor + DecoderConfig
    let at = dsi + 1;
    while (b[at]! & 0x80) at++;
    codec = `mp4a.40.${b[at + 1]! >> 3}`; // AudioSpecificConfig: audioObjectType in the first 5 bits
    extra = { channels: b.readUInt16BE(entry.body + 16), sampleRate: b.readUInt32BE(entry.body + 24) >>> 16 };
  }
  const track: TrackInfo = {
    trackId: 1,
    kind: video ? 'video' : 'audio',
    timescale,
    sampleEntry: entry.type,
    codec,
    codecConfig: new Uint8Array(),
    defaultSampleDuration: b.readUInt32BE(trex + 12),
    defaultSampleSize: b.readUInt32BE(trex + 16),
    defaultSampleFlags: b.readUInt32BE(trex + 20),
    initSize: moov.end,
    ...extra,
  };
  const segments: Segment[] = [];
  top.forEach((moof, i) => {
    const mdat = top[i + 1];
    if (moof.type !== 'moof' || mdat?.type !== 'mdat') return;
    segments.push(fragment(b, moof, mdat, track));
  });
  const bits = segments.reduce((n, s) => n + s.size * 8, 0);
  const ticks = segments.reduce((n, s) => n + s.duration, 0);
  const peak = Math.max(...segments.map((s) => (s.size * 8 * timescale) / s.duration));
  return { id, track, segments, peakBitrate: peak, averageBitrate: (bits * timescale) / ticks, ...extra };
}

/** §8.8.7 tfhd, §8.8.12 tfdt, §8.8.8 trun: timing and keyframe flag of one moof+mdat. */
function fragment(b: Buffer, moof: Box, mdat: Box, track: TrackInfo): Segment {
  const tfhd = child(b, moof, 'traf/tfhd');
  const tfhdFlags = b.readUInt32BE(tfhd.body) & 0xffffff;
  let at = tfhd.body + 8 + (tfhdFlags & 0x1 ? 8 : 0) + (tfhdFlags & 0x2 ? 4 : 0);
  let defaultDuration = track.defaultSampleDuration;
  let defaultFlags = track.defaultSampleFlags;
  if (tfhdFlags & 0x8) {
    defaultDuration = b.readUInt32BE(at);
    at += 4;
  }
  if (tfhdFlags & 0x10) at += 4;
  if (tfhdFlags & 0x20) defaultFlags = b.readUInt32BE(at);
  const tfdt = child(b, moof, 'traf/tfdt');
  const start = Number(b[tfdt.body] === 1 ? b.readBigUInt64BE(tfdt.body + 4) : b.readUInt32BE(tfdt.body + 4));
  const trun = child(b, moof, 'traf/trun');
  const version = b[trun.body]!;
  const flags = b.readUInt32BE(trun.body) & 0xffffff;
  const count = b.readUInt32BE(trun.body + 4);
  at = trun.body + 8 + (flags & 0x1 ? 4 : 0);
  let firstFlags = defaultFlags;
  if (flags & 0x4) {
    firstFlags = b.readUInt32BE(at);
    at += 4;
  }
  let duration = 0;
  let firstOffset = 0;
  for (let i = 0; i < count; i++) {
    if (flags & 0x100) {
      duration += b.readUInt32BE(at);
      at += 4;
    } else duration += defaultDuration;
    if (flags & 0x200) at += 4;
    if (flags & 0x400) {
      if (i === 0 && !(flags & 0x4)) firstFlags = b.readUInt32BE(at);
      at += 4;
    }
    if (flags & 0x800) {
      if (i === 0) firstOffset = version === 1 ? b.readInt32BE(at) : b.readUInt32BE(at);
      at += 4;
    }
  }
  return {
    start,
    duration,
    offset: moof.start,
    size: mdat.end - moof.start,
    samples: count,
    startsWithKeyframe: ((firstFlags >> 16) & 1) === 0,
    presentationStart: start + firstOffset,
  };
}

// ---- Decoding with ffmpeg ---------------------------------------------------------------------------------------------

interface Decoded {
  crcs: string[];
  seconds: number;
}

/**
 * Decodes one stream (`-map`) with `-f framecrc`: its frame checksums and the decoded span in seconds. One stream at
 * a time: ffmpeg 5.1's dash demuxer loses a few packets per stream while probing when it reads several
 * Representations at once, whatever the MPD (its own dash muxer's output too; through HLS the same files lose none).
 */
async function decode(input: string, map = '0:0'): Promise<Decoded> {
  const args = ['-v', 'error', '-i', input, '-map', map, '-fps_mode', 'passthrough', '-f', 'framecrc', '-'];
  const { stdout, stderr } = await run('ffmpeg', args, { maxBuffer: 64 * 1024 * 1024, timeout: 60_000 });
  assert.equal(stderr, '', `ffmpeg framecrc ${input}`);
  const tb = /^#tb 0: (\d+)\/(\d+)$/m.exec(stdout);
  assert.ok(tb, 'framecrc time base');
  const crcs: string[] = [];
  let first: number | undefined;
  let end = 0;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const [, , pts, duration, , crc] = line.split(',').map((f) => f.trim());
    crcs.push(crc!);
    first ??= Number(pts);
    end = Math.max(end, Number(pts) + Number(duration));
  }
  return { crcs, seconds: ((end - (first ?? 0)) * Number(tb[1])) / Number(tb[2]) };
}

async function streamCount(input: string): Promise<number> {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-of', 'json', '-show_streams', input], { timeout: 60_000 });
  return (JSON.parse(stdout) as { streams: unknown[] }).streams.length;
}

// ---- The test ------------------------------------------------------------------------------------------------------

describe('manifests read by ffmpeg (hls and dash demuxers)', { timeout: 180_000 }, () => {
  let dir: string;
  let sources: string[];
  let p: Presentation;

  before(async () => {
    // A second, smaller video rendition made exactly as cmafFixture makes its video (same forced keyframes).
    const small = ffmpegFixture(
      [
        ...testSource({ seconds: 6, width: 160, height: 90, audio: false }),
        ...[
          '-c:v',
          'libx264',
          '-preset',
          'veryfast',
          '-pix_fmt',
          'yuv420p',
          '-force_key_frames',
          'expr:gte(t,n_forced*2)',
        ],
        ...['-sc_threshold', '0', '-g', '1000', '-movflags', '+frag_keyframe+empty_moov+default_base_moof+cmaf'],
        ...['-f', 'mp4'],
      ],
      'mp4',
    );
    sources = await Promise.all([cmafFixture('video'), small, cmafFixture('audio')]);
    dir = mkdtempSync(join(tmpdir(), 'smoothcast-manifest-'));
    const renditions = ['v0', 'v1', 'a0'].map((id, i) => {
      const bytes = readFileSync(sources[i]!);
      const r = rendition(id, bytes);
      mkdirSync(join(dir, id));
      writeFileSync(join(dir, id, 'init.mp4'), bytes.subarray(0, r.track.initSize));
      for (const [n, s] of r.segments.entries()) {
        writeFileSync(join(dir, id, `${n}.m4s`), bytes.subarray(s.offset, s.offset + s.size));
      }
      return r;
    });
    const duration = Math.max(
      ...renditions.map((r) => r.segments.reduce((n, s) => n + s.duration, 0) / r.track.timescale),
    );
    p = { complete: true, renditions, duration };
    writeFileSync(join(dir, 'master.m3u8'), writeMultivariantPlaylist(p, urls));
    for (const r of renditions)
      writeFileSync(join(dir, `${r.id}.m3u8`), writeMediaPlaylist(r, p, urls, { targetDuration: 2 }));
    writeFileSync(join(dir, 'manifest.mpd'), writeMpd(p, urls));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('walked the fixtures as expected', () => {
    const [v0, v1, a0] = p.renditions;
    assert.equal(v0!.track.codec.slice(0, 5), 'avc1.');
    assert.equal(a0!.track.codec, 'mp4a.40.2');
    assert.deepEqual([v0!.width, v0!.height, v1!.width, v1!.height], [320, 180, 160, 90]);
    assert.equal(v0!.segments.length, 3);
    assert.ok(v0!.segments.every((s) => s.startsWithKeyframe));
    // Same keyframe instants in both video renditions, so the MPD shares one timeline.
    assert.deepEqual(
      v0!.segments.map((s) => [s.presentationStart, s.duration]),
      v1!.segments.map((s) => [s.presentationStart, s.duration]),
    );
    assert.equal(readFileSync(join(dir, 'manifest.mpd'), 'utf8').match(/<SegmentTemplate /g)?.length, 2);
  });

  for (const manifest of ['master.m3u8', 'manifest.mpd']) {
    it(`${manifest}: ffmpeg reads it without a word and decodes exactly the source frames`, async () => {
      const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', join(dir, manifest), '-f', 'null', '-'], {
        timeout: 60_000,
      });
      assert.equal(stderr, '');
      const input = join(dir, manifest);
      assert.equal(await streamCount(input), 3, 'two video streams and one audio stream');
      const got = await Promise.all([0, 1, 2].map((i) => decode(input, `0:${i}`)));
      const want = await Promise.all(sources.map((s) => decode(s)));
      for (const [i, source] of want.entries()) {
        const match = got.find(
          (g) => g.crcs.length === source.crcs.length && g.crcs.every((c, k) => c === source.crcs[k]),
        );
        assert.ok(match, `${p.renditions[i]!.id}: no decoded stream has the source's frames`);
        const frame = p.renditions[i]!.track.kind === 'video' ? 1 / 30 : 1024 / 48000;
        assert.ok(Math.abs(match.seconds - source.seconds) <= frame, `${match.seconds} s vs ${source.seconds} s`);
      }
    });
  }

  it('ffprobe lists the variants of the multivariant playlist', async () => {
    const { stdout } = await run('ffprobe', ['-v', 'error', '-of', 'json', '-show_programs', join(dir, 'master.m3u8')]);
    const programs = (JSON.parse(stdout) as { programs: { tags?: { variant_bitrate?: string } }[] }).programs;
    const bandwidths = [...readFileSync(join(dir, 'master.m3u8'), 'utf8').matchAll(/STREAM-INF:BANDWIDTH=(\d+)/g)].map(
      (m) => m[1],
    );
    assert.deepEqual(
      programs.map((x) => x.tags?.variant_bitrate),
      bandwidths,
    );
    assert.equal(programs.length, 2);
  });
});
