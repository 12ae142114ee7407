// interpretProbe on ffprobe JSON we write by hand (edge cases), then on REAL ffprobe output of lavfi fixtures.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ffmpegFixture, testSource } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { ffprobeArgs, interpretProbe, type MediaLimits, probeFailure, snapFrameRate } from './probe.ts';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'smoothcast-probe-'));
after(() => rmSync(work, { recursive: true, force: true }));
const limits: MediaLimits = {
  maxFileSize: 1e9,
  maxDuration: 3600,
  maxWidth: 3840,
  maxHeight: 2160,
  maxPixels: 3840 * 2160,
};

const video = (extra: Record<string, unknown> = {}) => ({
  index: 0,
  codec_type: 'video',
  codec_name: 'h264',
  profile: 'High',
  width: 1920,
  height: 1080,
  sample_aspect_ratio: '1:1',
  r_frame_rate: '30/1',
  avg_frame_rate: '30/1',
  pix_fmt: 'yuv420p',
  field_order: 'progressive',
  disposition: { default: 1, attached_pic: 0 },
  ...extra,
});
const audio = (extra: Record<string, unknown> = {}) => ({
  index: 1,
  codec_type: 'audio',
  codec_name: 'aac',
  channels: 6,
  channel_layout: '5.1',
  sample_rate: '44100',
  bit_rate: '384000',
  disposition: { default: 1 },
  ...extra,
});
const probe = (streams: unknown[], format: Record<string, unknown> = {}) => ({
  streams,
  format: { format_name: 'mov,mp4,m4a,3gp,3g2,mj2', duration: '10.000000', size: '1000', bit_rate: '800', ...format },
});
const code = (c: string) => (e: unknown) => e instanceof SmoothcastError && e.code === c;

describe('interpretProbe (hand-written JSON)', () => {
  it('summarizes a plain 1080p30 file', () => {
    const s = interpretProbe(probe([video({ bit_rate: '5000000' }), audio()]), limits, 1000);
    assert.equal(s.container, 'mov,mp4,m4a,3gp,3g2,mj2');
    assert.equal(s.duration, 10);
    assert.deepEqual(s.video, {
      index: 0,
      codec: 'h264',
      profile: 'High',
      width: 1920,
      height: 1080,
      displayWidth: 1920,
      displayHeight: 1080,
      rotation: 0,
      sar: { num: 1, den: 1 },
      frameRate: 30,
      frameRateFraction: { num: 30, den: 1 },
      variableFrameRate: false,
      interlaced: false,
      pixFmt: 'yuv420p',
      bitrate: 5000000,
    });
    assert.deepEqual(s.audio, {
      index: 1,
      codec: 'aac',
      channels: 6,
      channelLayout: '5.1',
      sampleRate: 44100,
      bitrate: 384000,
      default: true,
    });
  });

  it('reads the display matrix as counter-clockwise and the legacy rotate tag as clockwise', () => {
    const dm = (rotation: number) => video({ side_data_list: [{ side_data_type: 'Display Matrix', rotation }] });
    const a = interpretProbe(probe([dm(-90)]), limits, 1).video!;
    assert.deepEqual([a.rotation, a.displayWidth, a.displayHeight], [90, 1080, 1920]);
    assert.equal(interpretProbe(probe([dm(90)]), limits, 1).video!.rotation, 270);
    assert.equal(interpretProbe(probe([dm(180)]), limits, 1).video!.rotation, 180);
    assert.equal(interpretProbe(probe([dm(-180)]), limits, 1).video!.rotation, 180);
    assert.equal(interpretProbe(probe([video({ tags: { rotate: '90' } })]), limits, 1).video!.rotation, 90);
  });

  it('applies the sample aspect ratio before the rotation', () => {
    const pal = video({ width: 720, height: 576, sample_aspect_ratio: '64:45' });
    assert.deepEqual(
      [
        interpretProbe(probe([pal]), limits, 1).video!.displayWidth,
        interpretProbe(probe([pal]), limits, 1).video!.displayHeight,
      ],
      [1024, 576],
    );
    const turned = { ...pal, side_data_list: [{ side_data_type: 'Display Matrix', rotation: -90 }] };
    const s = interpretProbe(probe([turned]), limits, 1).video!;
    assert.deepEqual([s.displayWidth, s.displayHeight, s.sar], [576, 1024, { num: 64, den: 45 }]);
    assert.deepEqual(interpretProbe(probe([video({ sample_aspect_ratio: '0:1' })]), limits, 1).video!.sar, {
      num: 1,
      den: 1,
    });
  });

  it('snaps frame rates and tells variable from field-doubled rates', () => {
    assert.deepEqual(snapFrameRate({ num: 2997, den: 100 }), { num: 30000, den: 1001 });
    assert.deepEqual(snapFrameRate({ num: 1000000, den: 41708 }), { num: 24000, den: 1001 });
    assert.deepEqual(snapFrameRate({ num: 45, den: 2 }), { num: 45, den: 2 });
    const v = (r: string, avg: string) =>
      interpretProbe(probe([video({ r_frame_rate: r, avg_frame_rate: avg })]), limits, 1).video!;
    assert.deepEqual(v('30000/1001', '2997/100').frameRateFraction, { num: 30000, den: 1001 });
    assert.equal(v('30000/1001', '2997/100').variableFrameRate, false);
    assert.equal(v('30/1', '45/2').variableFrameRate, true);
    assert.deepEqual(v('50/1', '25/1').frameRateFraction, { num: 25, den: 1 }); // field rate reported as r_frame_rate
    assert.equal(v('50/1', '25/1').variableFrameRate, false);
    assert.deepEqual(v('1000/1', '24/1').frameRateFraction, { num: 24, den: 1 }); // mkv timebase, not a rate
    assert.deepEqual(v('0/0', '0/0'), { ...v('0/0', '0/0'), frameRate: 30, variableFrameRate: true });
  });

  it('takes the duration from the streams when the container has none', () => {
    const s = interpretProbe(probe([video({ duration: '7.5' })], { duration: 'N/A' }), limits, 1);
    assert.equal(s.duration, 7.5);
    assert.throws(() => interpretProbe(probe([video()], { duration: 'N/A' }), limits, 1), code('MEDIA_UNREADABLE'));
  });

  it('ignores cover art and refuses audio-only files with a precise message', () => {
    const cover = video({ index: 1, codec_name: 'mjpeg', disposition: { attached_pic: 1 } });
    assert.throws(
      () => interpretProbe(probe([audio({ index: 0 }), cover]), limits, 1),
      (e: unknown) => code('MEDIA_NO_VIDEO')(e) && /has audio but no video stream/.test((e as Error).message),
    );
    assert.throws(() => interpretProbe(probe([]), limits, 1), code('MEDIA_NO_VIDEO'));
    assert.throws(
      () => interpretProbe(probe([video()], { format_name: 'png_pipe' }), limits, 1),
      code('MEDIA_NO_VIDEO'),
    );
    // The real video is found even when cover art comes first; the default audio is preferred.
    const s = interpretProbe(
      probe([cover, video({ index: 2 }), audio({ index: 3, disposition: { default: 0 } }), audio({ index: 4 })]),
      limits,
      1,
    );
    assert.deepEqual([s.video?.index, s.audio?.index], [2, 4]);
  });

  it('refuses garbage, and applies the limits in order', () => {
    for (const junk of [null, 42, 'x', [], {}, { format: {} }, { streams: [video()] }]) {
      assert.throws(() => interpretProbe(junk, limits, 1), code('MEDIA_UNREADABLE'), JSON.stringify(junk));
    }
    assert.throws(() => interpretProbe(probe([video()]), limits, 2e9), code('MEDIA_TOO_LARGE'));
    assert.throws(() => interpretProbe(probe([video()], { duration: '3601' }), limits, 1), code('MEDIA_TOO_LONG'));
    const big = (width: number, height: number) => () =>
      interpretProbe(probe([video({ width, height })], { duration: '1e9' }), limits, 1);
    assert.throws(big(4096, 2160), code('MEDIA_RESOLUTION_TOO_LARGE')); // checked before the duration
    assert.throws(big(100000, 16), code('MEDIA_RESOLUTION_TOO_LARGE'));
    assert.throws(() => interpretProbe(probe([video({ width: 0 })]), limits, 1), code('MEDIA_UNREADABLE'));
    // Either orientation: a portrait 2160x3840 passes a 3840x2160 limit.
    assert.equal(interpretProbe(probe([video({ width: 2160, height: 3840 })]), limits, 1).video!.height, 3840);
  });
});

async function ffprobe(
  file: string,
  l: MediaLimits = limits,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('ffprobe', ffprobeArgs(file, l), { maxBuffer: 1 << 24 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

async function summarize(file: string, l: MediaLimits = limits) {
  const r = await ffprobe(file, l);
  if (r.code !== 0) throw probeFailure(r.stderr);
  return interpretProbe(JSON.parse(r.stdout), l, statSync(file).size);
}

describe('ffprobe + interpretProbe (real files)', () => {
  const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];

  it('a landscape MP4 with audio', async () => {
    const f = await ffmpegFixture(
      [...testSource({ seconds: 3, width: 640, height: 360 }), ...x264, '-c:a', 'aac'],
      'mp4',
    );
    const s = await summarize(f);
    assert.equal(s.container, 'mov,mp4,m4a,3gp,3g2,mj2');
    assert.ok(Math.abs(s.duration - 3) < 0.1);
    assert.equal(s.size, statSync(f).size);
    assert.deepEqual([s.video?.codec, s.video?.width, s.video?.height, s.video?.frameRate], ['h264', 640, 360, 30]);
    assert.deepEqual([s.audio?.codec, s.audio?.channels, s.audio?.sampleRate], ['aac', 1, 48000]);
  });

  it('rotation metadata written by ffmpeg 5.1 (`rotate=90`) and anamorphic PAL', async () => {
    const base = await ffmpegFixture(
      [...testSource({ seconds: 2, width: 640, height: 360, audio: false }), ...x264],
      'mp4',
    );
    const rotated = await ffmpegFixture(['-i', base, '-c', 'copy', '-metadata:s:v:0', 'rotate=90'], 'mp4');
    const r = (await summarize(rotated)).video!;
    assert.deepEqual([r.rotation % 180, r.displayWidth, r.displayHeight], [90, 360, 640]);
    const pal = await ffmpegFixture(
      [...testSource({ seconds: 2, width: 720, height: 576, audio: false }), '-vf', 'setsar=64/45', ...x264],
      'mp4',
    );
    const p = (await summarize(pal)).video!;
    assert.deepEqual([p.displayWidth, p.displayHeight, p.sar], [1024, 576, { num: 64, den: 45 }]);
  });

  it('interlaced and variable-frame-rate sources are recognised', async () => {
    const il = await ffmpegFixture(
      [
        ...testSource({ seconds: 1, width: 720, height: 576, rate: '25', audio: false }),
        ...x264,
        '-flags',
        '+ildct+ilme',
      ],
      'mp4',
    );
    assert.equal((await summarize(il)).video!.interlaced, true);
    const vfr = await ffmpegFixture(
      [
        '-filter_complex',
        'testsrc2=s=320x180:r=15:d=1[a];testsrc2=s=320x180:r=30:d=1[b];[a][b]concat=n=2:v=1:a=0[v]',
        '-map',
        '[v]',
        '-fps_mode',
        'vfr',
        ...x264,
      ],
      'mp4',
    );
    const v = (await summarize(vfr)).video!;
    assert.deepEqual([v.variableFrameRate, v.frameRateFraction], [true, { num: 30, den: 1 }]);
  });

  it('an MP3 with cover art is refused as audio-only', async () => {
    const f = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'sine=duration=1', '-f', 'lavfi', '-i', 'testsrc2=s=64x64:d=0.04'],
        ...['-map', '0', '-map', '1', '-c:a', 'libmp3lame', '-c:v', 'mjpeg', '-disposition:v', 'attached_pic'],
      ],
      'mp3',
    );
    await assert.rejects(summarize(f), code('MEDIA_NO_VIDEO'));
  });

  it('a frame larger than maxPixels is refused before any decoding', async () => {
    const f = await ffmpegFixture(['-f', 'lavfi', '-i', 'color=black:s=4096x2304:r=5:d=0.2', ...x264], 'mp4');
    const small = { ...limits, maxPixels: 1920 * 1080 };
    const r = await ffprobe(f, small);
    assert.notEqual(r.code, 0); // the decoder refuses to open: ffprobe prints no streams at all
    assert.ok(probeFailure(r.stderr).code === 'MEDIA_RESOLUTION_TOO_LARGE', r.stderr);
    // A header declaring 30000x30000 in a few bytes: the y4m demuxer itself refuses it ("Picture size … is invalid").
    const y4m = join(work, 'huge.y4m');
    writeFileSync(
      y4m,
      Buffer.concat([Buffer.from('YUV4MPEG2 W30000 H30000 F25:1 Ip A1:1 C420jpeg\nFRAME\n'), Buffer.alloc(4096)]),
    );
    const h = await ffprobe(y4m);
    assert.equal(probeFailure(h.stderr).code, 'MEDIA_RESOLUTION_TOO_LARGE', h.stderr);
    // Within maxPixels but wider than maxWidth: refused from the declared size.
    await assert.rejects(
      summarize(f, { ...limits, maxWidth: 3840, maxHeight: 2160 }),
      code('MEDIA_RESOLUTION_TOO_LARGE'),
    );
  });

  it('playlists, concat scripts, garbage and truncated files are refused without reading anything else', async () => {
    const target = await ffmpegFixture([...testSource({ seconds: 1, audio: false }), ...x264], 'mp4');
    const cases: [string, string | Buffer, string][] = [
      ['up-hls', `#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n${target}\n#EXT-X-ENDLIST\n`, 'MEDIA_UNREADABLE'],
      ['up-concat', `ffconcat version 1.0\nfile ${target}\n`, 'MEDIA_UNREADABLE'],
      ['up-junk', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)), 'MEDIA_UNREADABLE'],
    ];
    const mp4 = await ffmpegFixture([...testSource({ seconds: 2 }), ...x264, '-c:a', 'aac'], 'mp4');
    cases.push(['up-cut', readFileSync(mp4).subarray(0, 20000), 'MEDIA_TRUNCATED']);
    for (const [name, content, expected] of cases) {
      const f = join(work, name);
      writeFileSync(f, content);
      const r = await ffprobe(f);
      assert.notEqual(r.code, 0, name);
      assert.equal(probeFailure(r.stderr).code, expected, `${name}: ${r.stderr}`);
    }
    assert.equal(probeFailure('something else').code, 'PROBE_FAILED');
  });
});

it('a missing moov is truncation only when the file starts like an MP4; anything else is unreadable', () => {
  const stderr = '[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] moov atom not found\nfile:/x/source.mp4: Invalid data found';
  const mp4Head = Uint8Array.from([0, 0, 0, 0x20, ...Buffer.from('ftypisom')]);
  assert.equal(probeFailure(stderr, mp4Head).code, 'MEDIA_TRUNCATED');
  assert.equal(probeFailure(stderr, Buffer.from('This is a shopping list')).code, 'MEDIA_UNREADABLE');
  assert.equal(probeFailure(stderr).code, 'MEDIA_TRUNCATED');
});
