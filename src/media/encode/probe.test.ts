// interpretProbe on ffprobe JSON we write by hand (edge cases), then on REAL ffprobe output of lavfi fixtures.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ffmpegFixture, pipedMatroska, testSource } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import {
  declaredDuration,
  ffprobeArgs,
  interpretProbe,
  type MediaLimits,
  probeFailure,
  snapFrameRate,
} from './probe.ts';

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

  it('ignores cover art and takes audio-only files as audio-only media', () => {
    const cover = video({ index: 1, codec_name: 'mjpeg', disposition: { attached_pic: 1 } });
    const music = interpretProbe(probe([audio({ index: 0 }), cover]), limits, 1);
    assert.deepEqual([music.video, music.audio?.index, music.coverArt], [undefined, 0, { index: 1 }]);
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

describe('interpretProbe: audio tracks, subtitles, cover art, start and duration (hand-written JSON)', () => {
  it('lists every usable audio track in file order, with language, title, role and the default one', () => {
    const s = interpretProbe(
      probe([
        video(),
        audio({ index: 1, disposition: { default: 0 }, tags: { language: 'eng' } }),
        audio({ index: 2, tags: { language: 'fre', title: 'Version française' } }),
        audio({ index: 3, disposition: { default: 0, comment: 1 }, tags: { language: 'spa', title: 'x'.repeat(300) } }),
        audio({ index: 4, disposition: { default: 0, visual_impaired: 1 } }),
        audio({ index: 5, disposition: { default: 0, dub: 1 }, tags: { language: 'und' } }),
        audio({ index: 6, channels: 0 }), // not decodable: no channels
        audio({ index: 7, codec_name: 'unknown' }),
        { index: 8, codec_type: 'data', codec_name: 'bin_data' },
      ]),
      limits,
      1,
    );
    assert.deepEqual(
      s.audioTracks.map((a) => [a.index, a.language, a.default, a.role]),
      [
        [1, 'eng', false, undefined],
        [2, 'fre', true, undefined],
        [3, 'spa', false, 'commentary'],
        [4, undefined, false, 'description'],
        [5, 'und', false, 'dub'],
      ],
    );
    assert.equal(s.audioTracks[1]!.title, 'Version française');
    assert.equal(s.audioTracks[2]!.title, 'x'.repeat(200), 'titles are cut at 200 characters');
    assert.equal(s.audioTracks[0]!.title, undefined);
    // The summary's audio is the default track, the very same entry.
    assert.equal(s.audio, s.audioTracks[1]);
    assert.deepEqual(s.subtitles, []);
    assert.equal(s.coverArt, undefined);
  });

  it('makes the first audio track the default when none is flagged', () => {
    const s = interpretProbe(
      probe([video(), audio({ index: 1, disposition: { default: 0 } }), audio({ index: 2, disposition: {} })]),
      limits,
      1,
    );
    assert.deepEqual(
      s.audioTracks.map((a) => a.default),
      [true, false],
    );
    assert.equal(s.audio?.index, 1);
    const silent = interpretProbe(probe([video()]), limits, 1);
    assert.deepEqual([silent.audio, silent.audioTracks], [undefined, []]);
  });

  it('lists subtitle tracks, text or image, with their flags', () => {
    const sub = (index: number, codec_name: string, extra: Record<string, unknown> = {}) => ({
      index,
      codec_type: 'subtitle',
      codec_name,
      ...extra,
    });
    const s = interpretProbe(
      probe([
        video(),
        sub(1, 'subrip', { tags: { language: 'eng', title: 'English' }, disposition: { default: 1 } }),
        sub(2, 'ass', { tags: { language: 'fre' }, disposition: { forced: 1 } }),
        sub(3, 'mov_text', { disposition: { hearing_impaired: 1 } }),
        sub(4, 'webvtt', { disposition: { captions: 1 } }),
        sub(5, 'hdmv_pgs_subtitle', { tags: { language: 'ger' } }),
        sub(6, 'dvd_subtitle'),
        sub(7, 'dvb_subtitle'),
      ]),
      limits,
      1,
    );
    assert.deepEqual(s.subtitles, [
      {
        index: 1,
        codec: 'subrip',
        text: true,
        language: 'eng',
        title: 'English',
        default: true,
        forced: false,
        hearingImpaired: false,
      },
      { index: 2, codec: 'ass', text: true, language: 'fre', default: false, forced: true, hearingImpaired: false },
      { index: 3, codec: 'mov_text', text: true, default: false, forced: false, hearingImpaired: true },
      { index: 4, codec: 'webvtt', text: true, default: false, forced: false, hearingImpaired: true },
      {
        index: 5,
        codec: 'hdmv_pgs_subtitle',
        text: false,
        language: 'ger',
        default: false,
        forced: false,
        hearingImpaired: false,
      },
      { index: 6, codec: 'dvd_subtitle', text: false, default: false, forced: false, hearingImpaired: false },
      { index: 7, codec: 'dvb_subtitle', text: false, default: false, forced: false, hearingImpaired: false },
    ]);
  });

  it("takes the video's start time, else the default audio track's, else the container's", () => {
    const start = (streams: unknown[], format: Record<string, unknown> = {}) =>
      interpretProbe(probe(streams, format), limits, 1).startTime;
    assert.equal(start([video({ start_time: '1.500000' }), audio({ start_time: '1.400000' })]), 1.5);
    // The source's own timeline, as ffmpeg -copyts sees it: a start before 0 is kept.
    assert.equal(start([video({ start_time: '-0.042000' })]), -0.042);
    assert.equal(start([video(), audio()], { start_time: '0.250000' }), 0.25);
    assert.equal(start([video({ start_time: 'N/A' })]), 0);
    // Audio only: timed from the default track.
    const music = [
      audio({ index: 0, start_time: '0.100000', disposition: { default: 0 } }),
      audio({ index: 1, start_time: '0.025057' }),
    ];
    assert.equal(start(music, { start_time: '0.010000' }), 0.025057);
    assert.equal(start([audio({ index: 0 })], { start_time: '0.010000' }), 0.01);
  });

  it('refuses files with neither video nor audio, and still images or text even with audio', () => {
    const sub = { index: 0, codec_type: 'subtitle', codec_name: 'subrip' };
    assert.throws(() => interpretProbe(probe([sub]), limits, 1), code('MEDIA_NO_VIDEO'));
    assert.throws(() => interpretProbe(probe([audio({ index: 0, channels: 0 })]), limits, 1), code('MEDIA_NO_VIDEO'));
    const cover = video({ index: 0, codec_name: 'mjpeg', disposition: { attached_pic: 1 } });
    assert.throws(() => interpretProbe(probe([cover]), limits, 1), code('MEDIA_NO_VIDEO'));
    for (const format_name of ['tty', 'image2', 'jpeg_pipe']) {
      assert.throws(
        () => interpretProbe(probe([video(), audio()], { format_name }), limits, 1),
        code('MEDIA_NO_VIDEO'),
        format_name,
      );
    }
  });

  it('says where the duration came from; a scanned duration wins and is held to the limit', () => {
    const header = interpretProbe(probe([video(), audio()]), limits, 1);
    assert.deepEqual([header.duration, header.durationFrom], [10, 'header']);
    const none = probe([video(), audio()], { duration: 'N/A', bit_rate: 'N/A', size: '2000000' });
    assert.throws(() => interpretProbe(none, limits, 2_000_000), code('MEDIA_UNREADABLE'));
    const scanned = interpretProbe(none, limits, 2_000_000, 16);
    assert.deepEqual([scanned.duration, scanned.durationFrom], [16, 'packets']);
    assert.equal(scanned.bitrate, 1_000_000, 'size / scanned duration');
    // The packets say more than a header that does declare one (the header is the one that lies).
    assert.deepEqual(
      [
        interpretProbe(probe([video()]), limits, 1, 12.5).duration,
        interpretProbe(probe([video()]), limits, 1, 12.5).durationFrom,
      ],
      [12.5, 'packets'],
    );
    // A scan that found nothing is no duration.
    assert.equal(interpretProbe(probe([video()]), limits, 1, 0).durationFrom, 'header');
    assert.throws(() => interpretProbe(none, limits, 1, 0), code('MEDIA_UNREADABLE'));
    assert.throws(() => interpretProbe(none, limits, 1, 3601), code('MEDIA_TOO_LONG'));
    assert.throws(() => interpretProbe(probe([audio({ index: 0 })]), limits, 1, 3601), code('MEDIA_TOO_LONG'));
  });

  it('declaredDuration: the first positive duration of the container or an audio/video stream', () => {
    assert.equal(declaredDuration(probe([video({ duration: '9' })])), 10);
    assert.equal(declaredDuration(probe([video({ duration: '9' })], { duration: 'N/A' })), 9);
    assert.equal(declaredDuration(probe([video(), audio({ duration: '8.5' })], { duration: '0' })), 8.5);
    assert.equal(declaredDuration(probe([video(), audio()], { duration: 'N/A' })), undefined);
    // Subtitle, data and cover art streams do not say how long the media is.
    const sub = { index: 2, codec_type: 'subtitle', codec_name: 'subrip', duration: '30' };
    const cover = video({ index: 3, codec_name: 'mjpeg', disposition: { attached_pic: 1 }, duration: '30' });
    assert.equal(declaredDuration(probe([video(), audio(), sub, cover], { duration: 'N/A' })), undefined);
    for (const junk of [null, 42, 'x', [], {}, { format: 'x', streams: 'y' }]) {
      assert.equal(declaredDuration(junk), undefined, JSON.stringify(junk));
    }
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

async function probeJson(file: string): Promise<unknown> {
  const r = await ffprobe(file);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as unknown;
}

/** ffmpeg into the test's own folder (for fixtures made from files of this run, which ffmpegFixture cannot key). */
async function ffmpegHere(args: readonly string[], name: string): Promise<string> {
  const out = join(work, name);
  await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, out], { timeout: 60_000 });
  return out;
}

/** SubRip files for the subtitle fixtures. */
function srtFile(name: string, cues: readonly string[]): string {
  const f = join(work, name);
  const at = (s: number) => `00:00:0${Math.floor(s)},${String(Math.round((s % 1) * 1000)).padStart(3, '0')}`;
  writeFileSync(
    f,
    cues.map((text, i) => `${i + 1}\n${at(0.5 + i * 1.5)} --> ${at(1.5 + i * 1.5)}\n${text}\n`).join('\n'),
  );
  return f;
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

  it('an MP3 with cover art is audio-only media', async () => {
    const f = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'sine=duration=1', '-f', 'lavfi', '-i', 'testsrc2=s=64x64:d=0.04'],
        ...['-map', '0', '-map', '1', '-c:a', 'libmp3lame', '-c:v', 'mjpeg', '-disposition:v', 'attached_pic'],
      ],
      'mp3',
    );
    const s = await summarize(f);
    assert.deepEqual([s.video, s.audio?.codec, s.coverArt], [undefined, 'mp3', { index: 1 }]);
  });

  it('an MKV with three audio languages: every track, the flagged default, the commentary', async () => {
    const f = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'testsrc2=s=160x90:r=30:d=2'],
        ...[440, 550, 660].flatMap((hz) => ['-f', 'lavfi', '-i', `sine=frequency=${hz}:sample_rate=48000:duration=2`]),
        ...['-map', '0', '-map', '1', '-map', '2', '-map', '3', ...x264, '-c:a', 'aac'],
        ...['-metadata:s:a:0', 'language=eng', '-metadata:s:a:1', 'language=fre', '-metadata:s:a:2', 'language=spa'],
        ...['-metadata:s:a:2', 'title=Director commentary'],
        ...['-disposition:a:0', '0', '-disposition:a:1', 'default', '-disposition:a:2', 'comment'],
      ],
      'mkv',
    );
    const s = await summarize(f);
    assert.equal(s.video?.index, 0);
    assert.deepEqual(
      s.audioTracks.map((a) => [a.index, a.codec, a.language, a.default, a.role, a.title]),
      [
        [1, 'aac', 'eng', false, undefined, undefined],
        [2, 'aac', 'fre', true, undefined, undefined],
        [3, 'aac', 'spa', false, 'commentary', 'Director commentary'],
      ],
    );
    assert.equal(s.audio?.index, 2);
    assert.deepEqual(s.subtitles, []);
  });

  it('text subtitles: two SubRip tracks in Matroska, mov_text in MP4', async () => {
    const en = srtFile('en.srt', ['Hello there', 'Second line']);
    const fr = srtFile('fr.srt', ['Bonjour', 'Deuxième ligne']);
    const mkv = await ffmpegHere(
      [
        ...testSource({ seconds: 3, audio: false }),
        ...['-i', en, '-i', fr, '-map', '0', '-map', '1', '-map', '2', ...x264, '-c:s', 'srt'],
        ...['-metadata:s:s:0', 'language=eng', '-metadata:s:s:0', 'title=English'],
        ...['-metadata:s:s:1', 'language=fre', '-metadata:s:s:1', 'title=Français'],
        ...['-disposition:s:0', 'hearing_impaired', '-disposition:s:1', 'default+forced'],
      ],
      'subs.mkv',
    );
    const s = await summarize(mkv);
    assert.deepEqual(s.subtitles, [
      {
        index: 1,
        codec: 'subrip',
        text: true,
        language: 'eng',
        title: 'English',
        default: false,
        forced: false,
        hearingImpaired: true,
      },
      {
        index: 2,
        codec: 'subrip',
        text: true,
        language: 'fre',
        title: 'Français',
        default: true,
        forced: true,
        hearingImpaired: false,
      },
    ]);
    assert.deepEqual([s.video?.index, s.audioTracks], [0, []]);
    const mp4 = await ffmpegHere(
      [
        ...testSource({ seconds: 3 }),
        ...['-i', en, '-map', '0', '-map', '1', '-map', '2', ...x264, '-c:a', 'aac', '-c:s', 'mov_text'],
        ...['-metadata:s:s:0', 'language=eng'],
      ],
      'subs.mp4',
    );
    const m = await summarize(mp4);
    assert.equal(m.subtitles.length, 1);
    const sub = m.subtitles[0]!;
    // ffmpeg 5.1's MP4 muxer writes no track title; its handler name ('SubtitleHandler') is not taken for one.
    assert.deepEqual(
      [sub.index, sub.codec, sub.text, sub.language, sub.title, sub.forced, sub.hearingImpaired],
      [2, 'mov_text', true, 'eng', undefined, false, false],
    );
    assert.deepEqual([m.video?.index, m.audio?.index], [0, 1]);
  });

  it('an MP3 with cover art: audio, the cover, no video', async () => {
    const f = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'sine=duration=3', '-f', 'lavfi', '-i', 'color=c=red:s=64x64:d=1'],
        ...['-map', '0:a', '-map', '1:v', '-c:a', 'libmp3lame', '-c:v', 'mjpeg', '-frames:v', '1'],
        ...['-disposition:v', 'attached_pic'],
      ],
      'mp3',
    );
    const s = await summarize(f);
    assert.equal(s.container, 'mp3');
    assert.equal(s.video, undefined);
    assert.deepEqual(s.coverArt, { index: 1 });
    assert.deepEqual(
      s.audioTracks.map((a) => [a.index, a.codec, a.channels, a.sampleRate, a.default]),
      [[0, 'mp3', 1, 44100, true]],
    );
    assert.equal(s.audio, s.audioTracks[0]);
    assert.ok(Math.abs(s.duration - 3) < 0.1, `${s.duration} s`);
    assert.equal(s.durationFrom, 'header');
  });

  it('a FLAC file is audio-only media', async () => {
    const f = await ffmpegFixture(['-f', 'lavfi', '-i', 'sine=duration=3:sample_rate=44100', '-c:a', 'flac'], 'flac');
    const s = await summarize(f);
    assert.equal(s.container, 'flac');
    assert.deepEqual([s.video, s.coverArt, s.subtitles], [undefined, undefined, []]);
    assert.deepEqual(
      [s.audio?.index, s.audio?.codec, s.audio?.channels, s.audio?.sampleRate, s.audio?.default],
      [0, 'flac', 1, 44100, true],
    );
    assert.equal(s.audioTracks.length, 1);
    assert.deepEqual([s.duration, s.durationFrom, s.startTime], [3, 'header', 0]);
    assert.ok(s.bitrate > 0);
  });

  it('a Matroska written to a pipe declares no duration: the scanned one is needed, and held to the limit', async () => {
    const f = await pipedMatroska();
    const json = await probeJson(f);
    const size = statSync(f).size;
    assert.equal(declaredDuration(json), undefined);
    assert.throws(() => interpretProbe(json, limits, size), code('MEDIA_UNREADABLE'));
    const s = interpretProbe(json, limits, size, 10.02);
    assert.deepEqual([s.duration, s.durationFrom], [10.02, 'packets']);
    assert.equal(s.container, 'matroska,webm');
    assert.deepEqual([s.video?.width, s.video?.height, s.video?.frameRate, s.audio?.codec], [160, 90, 30, 'aac']);
    assert.equal(s.bitrate, Math.round((size * 8) / 10.02));
    assert.throws(() => interpretProbe(json, { ...limits, maxDuration: 10 }, size, 10.02), code('MEDIA_TOO_LONG'));
    // A file that does declare one.
    const mkv = await ffmpegFixture([...testSource({ seconds: 2 }), ...x264, '-c:a', 'aac'], 'mkv');
    const declared = declaredDuration(await probeJson(mkv));
    assert.ok(declared !== undefined && Math.abs(declared - 2) < 0.1, `${declared}`);
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
