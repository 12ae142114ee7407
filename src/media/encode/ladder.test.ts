import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { h264Level, LADDER_TABLE, type LadderPlan, planLadder, tableBitrate } from './ladder.ts';
import type { SourceAudio, SourceSummary, SourceVideo } from './probe.ts';

function source(v: Partial<SourceVideo> = {}, rest: Partial<SourceSummary> = {}): SourceSummary {
  const width = v.width ?? 1920;
  const height = v.height ?? 1080;
  const rate = v.frameRateFraction ?? { num: 30, den: 1 };
  const audio: SourceAudio = { index: 1, codec: 'aac', channels: 2, sampleRate: 44100, default: true };
  return {
    container: 'mov,mp4,m4a,3gp,3g2,mj2',
    duration: 60,
    durationFrom: 'header',
    size: 1e8,
    bitrate: 0, // unknown: no cap to the source's bitrate unless a test sets one
    video: {
      index: 0,
      codec: 'h264',
      width,
      height,
      displayWidth: width,
      displayHeight: height,
      rotation: 0,
      sar: { num: 1, den: 1 },
      frameRate: rate.num / rate.den,
      frameRateFraction: rate,
      variableFrameRate: false,
      interlaced: false,
      pixFmt: 'yuv420p',
      ...v,
    },
    audio,
    audioTracks: [audio],
    subtitles: [],
    startTime: 0,
    ...rest,
  };
}

const sizes = (p: LadderPlan) => p.video.map((r) => `${r.width}x${r.height}`);

describe('planLadder', () => {
  it('plans the whole table for a 1080p30 source', () => {
    const p = planLadder(source());
    assert.deepEqual(
      p.video.map((r) => [
        r.id,
        `${r.width}x${r.height}`,
        r.bitrate / 1000,
        r.maxrate / 1000,
        r.bufsize / 1000,
        r.profile,
        r.level,
      ]),
      [
        ['v0', '1920x1080', 6000, 6600, 10800, 'high', '4.0'],
        ['v1', '1280x720', 3000, 3300, 5400, 'high', '3.1'],
        ['v2', '960x540', 2000, 2200, 3600, 'main', '3.1'],
        ['v3', '768x432', 1100, 1210, 1980, 'main', '3.0'],
        ['v4', '640x360', 730, 803, 1314, 'main', '3.0'],
        ['v5', '416x234', 145, 160, 261, 'main', '1.3'],
      ],
    );
    assert.deepEqual(p.audio, [
      { id: 'a0', stream: 1, default: true, bitrate: 128000, channels: 2, sampleRate: 48000, fragmentDuration: 1 },
    ]);
    assert.deepEqual(p.streams, { video: 0 });
    assert.equal(p.frameRate, null);
    assert.deepEqual(p.outputFrameRate, { num: 30, den: 1 });
    assert.equal(p.segmentDuration, 2);
    assert.equal(p.firstSegmentDuration, 1);
    assert.equal(p.audio[0]?.fragmentDuration, 1);
    assert.equal(p.gopSize, 120);
    assert.equal(p.poster.time, 6);
  });

  it('chooses rungs by the short side: portrait by rotation', () => {
    const p = planLadder(source({ rotation: 90, displayWidth: 1080, displayHeight: 1920 }));
    assert.deepEqual(sizes(p).slice(0, 3), ['1080x1920', '720x1280', '540x960']);
    assert.equal(p.video[0]!.level, '4.0');
  });

  it('plans anamorphic sources from their display size, in square pixels', () => {
    const p = planLadder(source({ width: 720, height: 576, sar: { num: 64, den: 45 }, displayWidth: 1024 }));
    assert.deepEqual(sizes(p), ['1024x576', '768x432', '640x360', '416x234']);
  });

  it('never upscales; a source between rungs gets its own size on top', () => {
    assert.deepEqual(sizes(planLadder(source({ width: 3840, height: 2160 }))).at(0), '1920x1080');
    assert.deepEqual(sizes(planLadder(source({ width: 1244, height: 700 }))).slice(0, 2), ['1244x700', '960x540']);
    // Within 15% of the rung below: replaces it rather than adding a near-duplicate.
    assert.deepEqual(sizes(planLadder(source({ width: 1000, height: 600 }))).slice(0, 2), ['1000x600', '720x432']);
    assert.deepEqual(sizes(planLadder(source({ width: 321, height: 179 }))), ['320x178']);
    const tiny = planLadder(source({ width: 64, height: 36 }));
    assert.deepEqual(sizes(tiny), ['64x36']);
    assert.equal(tiny.video[0]!.bitrate, 64000);
  });

  it('holds its invariants for any size, rotation and aspect ratio', () => {
    for (let i = 0; i < 2000; i++) {
      const w = 2 + ((i * 7919) % 4000);
      const h = 2 + ((i * 104729) % 2300);
      const p = planLadder(source({ width: w, height: h, displayWidth: w, displayHeight: h }));
      assert.ok(p.video.length >= 1 && p.video.length <= LADDER_TABLE.length + 1, `${w}x${h}`);
      p.video.forEach((r, k) => {
        assert.equal(r.id, `v${k}`);
        assert.ok(r.width % 2 === 0 && r.height % 2 === 0 && r.width >= 2 && r.height >= 2, `${w}x${h}: even`);
        assert.ok(
          r.width <= Math.max(2, w) && r.height <= Math.max(2, h),
          `${w}x${h}: ${r.width}x${r.height} upscaled`,
        );
        assert.ok(w >= h === r.width >= r.height || Math.abs(w - h) < 4, `${w}x${h}: orientation`);
        if (k > 0) assert.ok(r.height * r.width < p.video[k - 1]!.height * p.video[k - 1]!.width, 'descending');
        if (k > 0) assert.ok(r.bitrate <= p.video[k - 1]!.bitrate, 'bitrate descending');
        assert.ok(r.maxrate > r.bitrate && r.bufsize > r.bitrate);
      });
    }
  });

  it('caps the frame rate at 60 by an integer divisor and keeps lower rates as they are', () => {
    const rate = (num: number, den = 1, vfr = false) =>
      planLadder(source({ frameRateFraction: { num, den }, variableFrameRate: vfr })).frameRate;
    assert.deepEqual(rate(120), { num: 60, den: 1 });
    assert.deepEqual(rate(120000, 1001), { num: 60000, den: 1001 });
    assert.deepEqual(rate(100), { num: 50, den: 1 });
    assert.deepEqual(rate(240), { num: 60, den: 1 });
    assert.equal(rate(30000, 1001), null);
    assert.equal(rate(60), null);
    assert.deepEqual(rate(30, 1, true), { num: 30, den: 1 }, 'variable frame rate is made constant');
  });

  it('raises bitrates by 1.5× above 30 fps and fits the level to the rate', () => {
    const p = planLadder(source({ frameRateFraction: { num: 60000, den: 1001 } }));
    assert.deepEqual(
      p.video.slice(0, 2).map((r) => [r.bitrate / 1000, r.level]),
      [
        [9000, '4.2'],
        [4500, '3.2'],
      ],
    );
    assert.equal(p.gopSize, 2 * Math.ceil(2 * 59.94));
  });

  it('scales the ladder down to what the source bitrate justifies (never up)', () => {
    const h264 = planLadder(source({ bitrate: 2_000_000 }));
    assert.deepEqual(
      h264.video.map((r) => r.bitrate / 1000),
      [3000, 1500, 1000, 550, 365, 73],
    );
    const hevc = planLadder(source({ codec: 'hevc', bitrate: 2_000_000 }));
    assert.equal(hevc.video[0]!.bitrate, 4_500_000);
    assert.equal(planLadder(source({ bitrate: 50_000_000 })).video[0]!.bitrate, 6_000_000);
    assert.equal(planLadder(source({ bitrate: 2_000_000 }), { capToSource: false }).video[0]!.bitrate, 6_000_000);
    // Without a stream bitrate, the container's minus the audio's is used.
    assert.equal(planLadder(source({}, { bitrate: 2_128_000 })).video[0]!.bitrate, 3_000_000);
  });

  it('has no audio rendition for a silent source, and honours the options', () => {
    const p = planLadder(source({}, { audio: undefined, audioTracks: [] }), {
      segmentDuration: 4,
      maxShortSide: 720,
      audioBitrate: 96000,
    });
    assert.deepEqual(p.audio, []);
    assert.deepEqual(p.streams, { video: 0 });
    assert.deepEqual(sizes(p).at(0), '1280x720');
    assert.equal(p.video[0]!.bufsize, 2 * p.video[0]!.bitrate);
    assert.equal(p.gopSize, 240);
    assert.equal(planLadder(source(), { audioBitrate: 96000 }).audio[0]?.bitrate, 96000);
    assert.throws(() => planLadder(source(), { segmentDuration: 0 }), RangeError);
    assert.throws(() => planLadder(source(), { firstSegmentDuration: 0 }), RangeError);
    // The first segment is never longer than the rest.
    const even = planLadder(source(), { segmentDuration: 2, firstSegmentDuration: 5 });
    assert.deepEqual([even.firstSegmentDuration, even.audio[0]?.fragmentDuration], [2, 2]);
  });

  it('deinterlaces interlaced sources and picks the poster within short clips', () => {
    assert.equal(planLadder(source({ interlaced: true })).deinterlace, true);
    assert.equal(planLadder(source({}, { duration: 3 })).poster.time, 0.3);
    assert.equal(planLadder(source({}, { duration: 7200 })).poster.time, 10);
  });
});

describe('planLadder: audio tracks and audio-only media', () => {
  const track = (index: number, extra: Partial<SourceAudio> = {}): SourceAudio => ({
    index,
    codec: 'aac',
    channels: 2,
    sampleRate: 48000,
    default: false,
    ...extra,
  });

  it('plans one AAC rendition per source audio track, keeping language, title, role and the default', () => {
    const tracks = [
      track(1, { language: 'eng' }),
      track(2, { language: 'fre', default: true, channels: 6 }),
      track(4, { language: 'spa', title: 'Director commentary', role: 'commentary' }),
    ];
    const p = planLadder(source({}, { audio: tracks[1], audioTracks: tracks }), { audioBitrate: 96000 });
    assert.deepEqual(p.audio, [
      {
        id: 'a0',
        stream: 1,
        language: 'eng',
        default: false,
        bitrate: 96000,
        channels: 2,
        sampleRate: 48000,
        fragmentDuration: 1,
      },
      {
        id: 'a1',
        stream: 2,
        language: 'fre',
        default: true,
        bitrate: 96000,
        channels: 2,
        sampleRate: 48000,
        fragmentDuration: 1,
      },
      {
        id: 'a2',
        stream: 4,
        language: 'spa',
        title: 'Director commentary',
        role: 'commentary',
        default: false,
        bitrate: 96000,
        channels: 2,
        sampleRate: 48000,
        fragmentDuration: 1,
      },
    ]);
    assert.equal(p.video.length, 6, 'the video ladder is unchanged');
  });

  it("subtracts every audio track's bitrate from the container's to cap the video", () => {
    const tracks = [track(1, { bitrate: 64_000 }), track(2), track(3, { bitrate: 192_000 })];
    // 2 384 000 − (64 000 + 128 000 assumed + 192 000) = 2 000 000 for the video: as in the single-track case.
    const p = planLadder(source({}, { bitrate: 2_384_000, audioTracks: tracks }));
    assert.equal(p.video[0]!.bitrate, 3_000_000);
  });

  it('gives audio-only media no video rung, on a plain segment grid', () => {
    const a = track(0, { default: true, codec: 'flac', channels: 1, sampleRate: 44100 });
    const music: SourceSummary = { ...source(), video: undefined, audio: a, audioTracks: [a], duration: 200 };
    const p = planLadder(music, { segmentDuration: 4, firstSegmentDuration: 1 });
    assert.deepEqual(p.video, []);
    assert.deepEqual(p.streams, { video: null });
    assert.equal(p.segmentDuration, 4);
    assert.equal(p.firstSegmentDuration, p.segmentDuration, 'no short first segment without video');
    assert.deepEqual(
      p.audio.map((r) => [r.id, r.stream, r.default, r.channels, r.sampleRate, r.fragmentDuration]),
      [['a0', 0, true, 2, 48000, 4]],
    );
    assert.equal(p.frameRate, null);
    assert.equal(p.deinterlace, false);
    assert.equal(planLadder(music).firstSegmentDuration, 2);
    assert.equal(planLadder(music).audio[0]!.fragmentDuration, 2);
    const two = planLadder({ ...music, audioTracks: [a, track(3, { language: 'ger' })] });
    assert.deepEqual(
      two.audio.map((r) => [r.id, r.stream, r.language]),
      [
        ['a0', 0, undefined],
        ['a1', 3, 'ger'],
      ],
    );
    assert.throws(() => planLadder({ ...music, audio: undefined, audioTracks: [] }), RangeError);
    assert.throws(() => planLadder(music, { segmentDuration: 0 }), RangeError);
  });
});

describe('tableBitrate and h264Level', () => {
  it('interpolates between table rows by pixel count', () => {
    assert.equal(Math.round(tableBitrate(1920 * 1080)), 6_000_000);
    assert.equal(Math.round(tableBitrate(416 * 234)), 145_000);
    const mid = tableBitrate(1600 * 900);
    assert.ok(mid > 3_000_000 && mid < 6_000_000);
    assert.equal(Math.round(tableBitrate(208 * 117)), 36_250); // proportional below the table
  });

  it('picks the lowest level of ITU-T H.264 Table A-1 that fits', () => {
    assert.equal(h264Level(1920, 1080, 30, 6.6e6, 10.8e6, 'high'), '4.0');
    assert.equal(h264Level(1920, 1080, 30, 22e6, 40e6, 'high'), '4.1'); // MaxBR 20000 × 1.25 exceeded
    assert.equal(h264Level(1920, 1080, 60, 9.9e6, 16.2e6, 'high'), '4.2');
    assert.equal(h264Level(2048, 1080, 30, 6.6e6, 10.8e6, 'high'), '4.2'); // 8704 macroblocks
    assert.equal(h264Level(3840, 2160, 30, 20e6, 40e6, 'high'), '5.1');
    assert.equal(h264Level(1280, 720, 30, 3.3e6, 5.4e6, 'high'), '3.1');
    assert.equal(h264Level(416, 234, 30, 160e3, 261e3, 'main'), '1.3');
    assert.equal(h264Level(16, 8000, 1, 1e3, 1e3, 'main'), '5.1'); // 500 MB tall: each side ≤ √(8·MaxFS) MBs
  });
});
