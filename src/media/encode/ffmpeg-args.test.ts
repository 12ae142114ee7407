// REAL-ENCODE TESTS: buildEncodeArgs / buildPosterArgs run by ffmpeg on tiny lavfi sources, checked with ffprobe:
// keyframes at the same instants in every rung (and at the forced instants), equal frame counts, duration,
// even planned sizes, one fragment per segment, AAC-LC stereo 48 kHz audio in sync with the video.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ffmpegFixture, ffprobeJson, testSource } from '../../../test/helpers/media.ts';
import {
  buildEncodeArgs,
  buildPosterArgs,
  buildSubtitleArgs,
  buildWaveformArgs,
  presentationDelay,
} from './ffmpeg-args.ts';
import { type LadderPlan, planLadder } from './ladder.ts';
import { ffprobeArgs, interpretProbe, type MediaLimits, type SourceSummary } from './probe.ts';
import { ProgressParser } from './progress.ts';

const run = promisify(execFile);
const limits: MediaLimits = {
  maxFileSize: 1e9,
  maxDuration: 3600,
  maxWidth: 3840,
  maxHeight: 2160,
  maxPixels: 1 << 24,
};
const x264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p'];
const aac = ['-c:a', 'aac', '-b:a', '96k'];
const work = mkdtempSync(join(tmpdir(), 'smoothcast-encode-'));
after(() => rmSync(work, { recursive: true, force: true }));

async function summarize(file: string): Promise<SourceSummary> {
  const { stdout } = await run('ffprobe', ffprobeArgs(file, limits), { maxBuffer: 1 << 24 });
  return interpretProbe(JSON.parse(stdout), limits, statSync(file).size);
}

interface Packet {
  pts: number;
  duration: number;
  key: boolean;
}

async function packets(file: string): Promise<{ tb: number; list: Packet[]; stream: Record<string, unknown> }> {
  const j = await ffprobeJson(file, ['-show_streams', '-show_packets', '-select_streams', 'v:0']);
  const stream = (j.streams as Record<string, unknown>[])[0]!;
  const [n, d] = String(stream.time_base).split('/').map(Number);
  const list = (j.packets as Record<string, string>[])
    .map((p) => ({ pts: Number(p.pts), duration: Number(p.duration), key: String(p.flags).startsWith('K') }))
    .sort((a, b) => a.pts - b.pts);
  return { tb: n! / d!, list, stream };
}

/** Top-level box types of an MP4 file (ISO/IEC 14496-12 §4.2: 32-bit size, or 1 + 64-bit largesize). */
function topBoxes(file: string): string[] {
  const b = readFileSync(file);
  const types: string[] = [];
  for (let off = 0; off + 8 <= b.length; ) {
    let size = b.readUInt32BE(off);
    if (size === 1) size = Number(b.readBigUInt64BE(off + 8));
    if (size === 0) size = b.length - off;
    types.push(b.toString('latin1', off + 4, off + 8));
    off += size;
  }
  return types;
}

interface Encoded {
  src: SourceSummary;
  plan: LadderPlan;
  video: string[];
  audio: string[];
  stdout: string;
}

async function encode(file: string, name: string): Promise<Encoded> {
  const src = await summarize(file);
  const plan = planLadder(src);
  const video = plan.video.map((r) => join(work, `${name}-${r.id}.mp4`));
  const audio = plan.audio.map((a) => join(work, `${name}-${a.id}.mp4`));
  const args = buildEncodeArgs(file, plan, { video, audio }, { maxPixels: limits.maxPixels });
  const { stdout } = await run('ffmpeg', args, { maxBuffer: 1 << 24, timeout: 120_000 });
  return { src, plan, video, audio, stdout };
}

/** Every check the brief asks for; returns per-rung sizes for case-specific assertions. */
async function check(e: Encoded): Promise<{ width: number; height: number }[]> {
  const { plan } = e;
  const D = plan.segmentDuration;
  const fps = plan.outputFrameRate.num / plan.outputFrameRate.den;
  const delay = presentationDelay(plan);
  const rungs = await Promise.all(e.video.map(packets));
  const sizes: { width: number; height: number }[] = [];
  let reference: number[] | undefined;
  for (const [i, r] of rungs.entries()) {
    const planned = plan.video[i]!;
    const { width, height } = r.stream as { width: number; height: number };
    assert.deepEqual({ width, height }, { width: planned.width, height: planned.height }, `${planned.id} size`);
    assert.ok(width % 2 === 0 && height % 2 === 0, 'even dimensions');
    assert.equal(r.stream.sample_aspect_ratio ?? '1:1', '1:1');
    assert.equal(r.stream.side_data_list, undefined, 'no display matrix left on autorotated output');
    sizes.push({ width, height });

    // Keyframes: the first frame at or after each instant of the grid 0, first, D, 2D, … (source time =
    // presentation time − reorder delay).
    const times = r.list.map((p) => p.pts * r.tb - delay);
    const keys = r.list.filter((p) => p.key).map((p) => p.pts);
    const expected: number[] = [];
    const grid = [0, plan.firstSegmentDuration];
    for (let n = 1; n * D <= times.at(-1)! + 1e-6; n++) if (n * D > plan.firstSegmentDuration) grid.push(n * D);
    for (const instant of grid) {
      const first = r.list.find((_, k) => times[k]! >= instant - 1e-6);
      if (first && !expected.includes(first.pts)) expected.push(first.pts);
    }
    assert.deepEqual(keys, expected, `${planned.id}: keyframes only at the forced instants`);
    if (reference) assert.deepEqual(keys, reference, `${planned.id}: keyframes as in v0`);
    reference = keys;
    assert.equal(r.list.length, rungs[0]!.list.length, `${planned.id}: frame count as in v0`);
    assert.ok(Math.abs(r.list[0]!.pts * r.tb - delay) < 1e-6, 'the first frame is presented at the reorder delay');

    const duration = (r.list.at(-1)!.pts + r.list.at(-1)!.duration - r.list[0]!.pts) * r.tb;
    assert.ok(Math.abs(duration - e.src.duration) <= 1 / fps + 1e-3, `duration ${duration} vs ${e.src.duration}`);
    // One moof+mdat per segment.
    const boxes = topBoxes(e.video[i]!);
    assert.equal(boxes.filter((t) => t === 'moof').length, keys.length);
    assert.deepEqual(boxes.slice(0, 3), ['ftyp', 'moov', 'moof']);
  }

  for (const [i, rendition] of plan.audio.entries()) {
    const j = await ffprobeJson(e.audio[i]!, ['-show_streams']);
    const a = (j.streams as Record<string, unknown>[])[0]!;
    assert.deepEqual(
      [a.codec_name, a.profile, a.channels, a.channel_layout, a.sample_rate],
      ['aac', 'LC', 2, 'stereo', '48000'],
    );
    const moofs = topBoxes(e.audio[i]!).filter((t) => t === 'moof').length;
    const F = rendition.fragmentDuration;
    assert.ok(Math.abs(moofs - Math.ceil(e.src.duration / F)) <= 1, `${moofs} audio fragments of ${F} s`);
  }
  if (plan.audio.length === 0) {
    assert.equal(e.src.audio, undefined);
  }

  // The progress stream ends with a final block near the end of the media (ffmpeg's out_time is the last packet's
  // timestamp, so it stops a frame or two short).
  const updates = new ProgressParser().push(e.stdout);
  assert.equal(updates.at(-1)?.done, true);
  assert.ok(updates.at(-1)!.outTimeSeconds >= e.src.duration - 0.2);
  return sizes;
}

async function landscape() {
  return ffmpegFixture([...testSource({ seconds: 5, width: 640, height: 360 }), ...x264, ...aac, '-shortest'], 'mp4');
}

describe('real encode', { concurrency: false }, () => {
  it('(a) 30 fps landscape with audio', async () => {
    const e = await encode(await landscape(), 'a');
    assert.equal(e.plan.frameRate, null);
    assert.deepEqual(await check(e), [
      { width: 640, height: 360 },
      { width: 416, height: 234 },
    ]);
  });

  it('(b) 29.97 fps keeps 30000/1001 and its keyframes fall on the first frame after each 2 s', async () => {
    const f = await ffmpegFixture(
      [...testSource({ seconds: 5, width: 640, height: 360, rate: '30000/1001' }), ...x264, ...aac, '-shortest'],
      'mp4',
    );
    const e = await encode(f, 'b');
    assert.deepEqual(e.src.video?.frameRateFraction, { num: 30000, den: 1001 });
    await check(e);
    const r = await packets(e.video[0]!);
    assert.equal(r.stream.r_frame_rate, '30000/1001');
  });

  for (const [rate, out] of [
    ['24000/1001', null],
    ['60000/1001', null],
    ['120', { num: 60, den: 1 }],
  ] as const) {
    it(`(b') ${rate} fps: keyframes aligned${out ? ', capped at 60 fps' : ''}`, async () => {
      const f = await ffmpegFixture(
        [...testSource({ seconds: 3, width: 640, height: 360, rate, audio: false }), ...x264],
        'mp4',
      );
      const e = await encode(f, `rate${rate.replace('/', '_')}`);
      assert.deepEqual(e.plan.frameRate, out);
      await check(e);
    });
  }

  it('(c) variable frame rate (15 fps then 30 fps) becomes constant 30 fps with aligned keyframes', async () => {
    const f = await ffmpegFixture(
      [
        '-f',
        'lavfi',
        '-i',
        'sine=frequency=440:sample_rate=48000:duration=5',
        '-filter_complex',
        'testsrc2=s=640x360:r=15:d=2.5[a];testsrc2=s=640x360:r=30:d=2.5[b];[a][b]concat=n=2:v=1:a=0[v]',
        '-map',
        '[v]',
        '-map',
        '0:a',
        '-fps_mode',
        'vfr',
        ...x264,
        ...aac,
      ],
      'mp4',
    );
    const e = await encode(f, 'c');
    assert.equal(e.src.video?.variableFrameRate, true);
    assert.deepEqual(e.plan.frameRate, { num: 30, den: 1 });
    await check(e);
  });

  it('(d) rotation metadata: the output is portrait pixels, without a display matrix', async () => {
    const f = await ffmpegFixture(['-i', await landscape(), '-c', 'copy', '-metadata:s:v:0', 'rotate=90'], 'mp4');
    const e = await encode(f, 'd');
    assert.equal(e.src.video?.rotation, 270); // ffmpeg 5.1 writes `rotate=90` as a counter-clockwise matrix
    for (const s of await check(e)) assert.ok(s.height > s.width, `${s.width}x${s.height} is portrait`);
  });

  it('(e) 5.1 audio at 44.1 kHz becomes stereo 48 kHz', async () => {
    const tones = [440, 550, 660, 110, 770, 880].map((f) => `sin(${f}*2*PI*t)`).join('|');
    const f = await ffmpegFixture(
      [
        ...testSource({ seconds: 5, width: 640, height: 360, audio: false }),
        '-f',
        'lavfi',
        '-i',
        `aevalsrc=${tones}:c=5.1:s=44100:d=5`,
        ...x264,
        ...aac,
      ],
      'mp4',
    );
    const e = await encode(f, 'e');
    assert.equal(e.src.audio?.channels, 6);
    await check(e);
  });

  it('(f) no audio: video only, no audio output', async () => {
    const f = await ffmpegFixture(
      [...testSource({ seconds: 5, width: 640, height: 360, audio: false }), ...x264],
      'mp4',
    );
    const e = await encode(f, 'f');
    assert.deepEqual(e.plan.audio, []);
    const args = buildEncodeArgs(f, e.plan, { video: e.video, audio: [] });
    assert.ok(!args.includes('-c:a'));
    await check(e);
  });

  it('(g) odd dimensions 321x179 give one even rung, never upscaled', async () => {
    const f = await ffmpegFixture(
      [...testSource({ seconds: 4, width: 321, height: 179 }), '-c:v', 'ffv1', ...aac, '-shortest'],
      'mkv',
    );
    const e = await encode(f, 'g');
    assert.deepEqual(await check(e), [{ width: 320, height: 178 }]);
  });

  it('(h) hard scene cuts between the forced keyframes add no keyframes', async () => {
    // testsrc2 and a cellular automaton, switching at 0.5 s, 1.5 s, …: x264's default scenecut puts an IDR on each
    // cut at least min-keyint (25) frames after the previous keyframe.
    const f = await ffmpegFixture(
      [
        '-filter_complex',
        'testsrc2=s=640x360:r=30:d=5[a];cellauto=s=640x360:r=30:rule=110,trim=duration=5[c];' +
          "[a][c]blend=all_expr='if(mod(floor((N+15)/30),2),A,B)'",
        ...x264,
      ],
      'mp4',
    );
    // Control: the same source encoded with x264 defaults does get extra keyframes.
    const control = join(work, 'h-control.mp4');
    await run('ffmpeg', ['-v', 'error', '-y', '-i', f, '-c:v', 'libx264', '-preset', 'veryfast', control]);
    assert.ok((await packets(control)).list.filter((p) => p.key).length > 3, 'the fixture triggers scene cuts');
    await check(await encode(f, 'h'));
  });

  it('(i) interlaced anamorphic PAL (720x576, SAR 64:45, tff) is deinterlaced to square-pixel 1024x576', async () => {
    const f = await ffmpegFixture(
      [
        ...testSource({ seconds: 3, width: 720, height: 576, rate: '25' }),
        '-vf',
        'setsar=64/45',
        ...x264,
        '-flags',
        '+ildct+ilme',
        '-x264-params',
        'tff=1',
        ...aac,
        '-shortest',
      ],
      'mp4',
    );
    const e = await encode(f, 'i');
    assert.equal(e.plan.deinterlace, true);
    assert.deepEqual((await check(e)).at(0), { width: 1024, height: 576 });
    const out = await packets(e.video[0]!);
    assert.equal(out.stream.field_order, 'progressive');
  });

  it('keeps audio and video in sync (a flash and a beep at t = 1 s)', async () => {
    const f = await ffmpegFixture(
      [
        '-f',
        'lavfi',
        '-i',
        "color=black:s=640x360:r=30:d=4,drawbox=c=white:t=fill:enable='eq(n,30)'",
        '-f',
        'lavfi',
        '-i',
        "aevalsrc='if(between(t,1,1.2),sin(2*PI*1000*t),0)':s=44100:d=4",
        ...x264,
        ...aac,
      ],
      'mp4',
    );
    const e = await encode(f, 'sync');
    const flash = await flashTime(e.video[1]!);
    const beep = await beepTime(e.audio[0]!);
    assert.ok(Math.abs(flash - 1 - presentationDelay(e.plan)) < 1e-3, `flash at ${flash}`);
    assert.ok(Math.abs(beep - flash) < 0.005, `beep at ${beep}, flash at ${flash}`);
  });

  it('(j) three audio languages: one AAC rendition per track, each from its own track', async () => {
    // Each track at its own level (x4 apart: 12 dB), so an output shows which track it was made from.
    const amplitudes = [0.05, 0.2, 0.8];
    const f = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'testsrc2=s=160x90:r=30:d=3'],
        ...amplitudes.flatMap((a) => ['-f', 'lavfi', '-i', `aevalsrc=${a}*sin(2*PI*440*t):s=48000:d=3`]),
        ...['-map', '0', '-map', '1', '-map', '2', '-map', '3', ...x264, ...aac],
        ...['-metadata:s:a:0', 'language=eng', '-metadata:s:a:1', 'language=fre', '-metadata:s:a:2', 'language=spa'],
        ...['-disposition:a:0', '0', '-disposition:a:1', 'default', '-disposition:a:2', 'comment'],
      ],
      'mkv',
    );
    const e = await encode(f, 'j');
    assert.deepEqual(
      e.plan.audio.map((a) => [a.id, a.stream, a.language, a.default, a.role]),
      [
        ['a0', 1, 'eng', false, undefined],
        ['a1', 2, 'fre', true, undefined],
        ['a2', 3, 'spa', false, 'commentary'],
      ],
    );
    const args = buildEncodeArgs(f, e.plan, { video: e.video, audio: e.audio });
    const outs = args.filter((a) => a.startsWith('file:') && a.endsWith('.mp4'));
    assert.deepEqual(
      outs,
      [...e.video, ...e.audio].map((p) => `file:${p}`),
    );
    e.audio.forEach((path, i) => {
      const out = args.indexOf(`file:${path}`);
      const map = args.lastIndexOf('-map', out);
      assert.equal(args[map + 1], `0:${i + 1}`, `${path} maps its own track`);
      assert.ok(map > (i === 0 ? args.indexOf(`file:${e.video.at(-1)}`) : args.indexOf(`file:${e.audio[i - 1]}`)));
    });
    await check(e);
    const levels = await Promise.all(e.audio.map(meanVolume));
    for (let i = 1; i < levels.length; i++) {
      const step = levels[i]! - levels[i - 1]!;
      assert.ok(Math.abs(step - 20 * Math.log10(4)) < 1.5, `levels ${levels.join(', ')} dB`);
    }
  });

  it('(k) audio only (FLAC): no video graph, one fragmented AAC file, the source timed by the AAC priming', async () => {
    const f = await audioOnlySource();
    const e = await encode(f, 'k');
    assert.deepEqual([e.plan.video, e.plan.streams.video, e.video], [[], null, []]);
    const args = buildEncodeArgs(f, e.plan, { video: [], audio: e.audio });
    for (const flag of ['-filter_complex', '-c:v', '-force_key_frames']) assert.ok(!args.includes(flag), flag);
    assert.equal(args[args.indexOf('-map') + 1], '0:0');
    await check(e);
    const j = await ffprobeJson(e.audio[0]!, ['-show_streams', '-show_format']);
    const streams = j.streams as Record<string, unknown>[];
    assert.deepEqual(
      streams.map((x) => [x.codec_type, x.codec_name]),
      [['audio', 'aac']],
    );
    assert.equal((j.format as Record<string, unknown>).format_name, 'mov,mp4,m4a,3gp,3g2,mj2');
    const boxes = topBoxes(e.audio[0]!);
    assert.deepEqual(boxes.slice(0, 3), ['ftyp', 'moov', 'moof']);
    // The tone starts at 1 s in the source: presented at 1 s + presentationDelay (1024 / 48000 s).
    assert.equal(presentationDelay(e.plan), 1024 / 48000);
    const beep = await beepTime(e.audio[0]!);
    assert.ok(Math.abs(beep - 1 - presentationDelay(e.plan)) < 0.005, `tone at ${beep}`);
  });

  it('subtitles: both SubRip tracks of an MKV are extracted as SubRip text in one run, on the source timeline', async () => {
    const srt = (name: string, a: string, b: string) => {
      const file = join(work, name);
      writeFileSync(file, `1\n00:00:00,500 --> 00:00:01,500\n${a}\n\n2\n00:00:02,000 --> 00:00:02,800\n${b}\n`);
      return file;
    };
    const mkv = join(work, 'subs.mkv');
    await run('ffmpeg', [
      ...['-hide_banner', '-loglevel', 'error', '-y', ...testSource({ seconds: 3, audio: false })],
      ...['-i', srt('en.srt', 'Hello there', 'Second line'), '-i', srt('fr.srt', 'Bonjour', 'Deuxième ligne')],
      // Timestamps from 5 s (as a cut from a broadcast recording has): -copyts must keep them.
      ...['-map', '0', '-map', '1', '-map', '2', ...x264, '-c:s', 'srt', '-output_ts_offset', '5', mkv],
    ]);
    const src = await summarize(mkv);
    assert.equal(src.startTime, 5);
    assert.deepEqual(
      src.subtitles.map((t) => [t.index, t.text]),
      [
        [1, true],
        [2, true],
      ],
    );
    const tracks = src.subtitles.map((t) => ({ stream: t.index, output: join(work, `subs-${t.index}.srt`) }));
    const args = buildSubtitleArgs(mkv, tracks, limits.maxPixels);
    assert.equal(args.filter((a) => a === '-i').length, 1);
    // SubRip, not ffmpeg's webvtt muxer (it does not escape cue text): the captions module writes the WebVTT.
    assert.deepEqual(
      tracks.map((t) => args[args.indexOf(`file:${t.output}`) - 1]),
      ['srt', 'srt'],
    );
    await run('ffmpeg', args);
    const [en, fr] = tracks.map((t) => readFileSync(t.output, 'utf8'));
    assert.match(en!, /^1\r?\n00:00:05,500 --> 00:00:06,500\r?\nHello there\r?\n/);
    assert.match(en!, /\n2\r?\n00:00:07,000 --> 00:00:07,800\r?\nSecond line\r?\n/);
    assert.match(fr!, /^1\r?\n00:00:05,500 --> 00:00:06,500\r?\nBonjour\r?\n/);
    assert.match(fr!, /\n2\r?\n00:00:07,000 --> 00:00:07,800\r?\nDeuxième ligne\r?\n/);
    assert.ok(!fr!.includes('Hello'));
  });

  it('waveform poster for audio-only media: one 1280x720 JPEG', async () => {
    const out = join(work, 'waveform.jpg');
    await run('ffmpeg', buildWaveformArgs(await audioOnlySource(), 0, out, limits.maxPixels));
    const j = await ffprobeJson(out, ['-show_streams']);
    const streams = j.streams as Record<string, unknown>[];
    assert.deepEqual(
      streams.map((x) => [x.codec_name, x.width, x.height]),
      [['mjpeg', 1280, 720]],
    );
  });

  it('poster: one JPEG frame, rotation applied, never wider than asked', async () => {
    const f = await ffmpegFixture(['-i', await landscape(), '-c', 'copy', '-metadata:s:v:0', 'rotate=90'], 'mp4');
    const out = join(work, 'poster.jpg');
    await run('ffmpeg', buildPosterArgs(f, 1, out, 200, { maxPixels: limits.maxPixels }));
    const s = ((await ffprobeJson(out, ['-show_streams'])).streams as Record<string, unknown>[])[0]!;
    assert.deepEqual([s.codec_name, s.width, s.height], ['mjpeg', 200, 354]);
  });
});

/** 3 s of FLAC (44.1 kHz mono): silence, then a tone from 1 s. */
function audioOnlySource(): Promise<string> {
  return ffmpegFixture(
    ['-f', 'lavfi', '-i', "aevalsrc='if(gte(t,1),sin(2*PI*440*t),0)':s=44100:d=3", '-c:a', 'flac'],
    'flac',
  );
}

/** volumedetect's mean volume of a file's audio, dB. */
async function meanVolume(file: string): Promise<number> {
  const { stderr } = await run('ffmpeg', [
    '-hide_banner',
    '-nostats',
    '-i',
    file,
    '-af',
    'volumedetect',
    '-f',
    'null',
    '-',
  ]);
  const m = /mean_volume: (-?[\d.]+) dB/.exec(stderr);
  if (!m) throw new Error('no volume found');
  return Number(m[1]);
}

/** Presentation time (file timeline, -copyts) of the first bright frame. */
async function flashTime(file: string): Promise<number> {
  const { stdout } = await run('ffmpeg', [
    '-v',
    'error',
    '-copyts',
    '-i',
    file,
    '-vf',
    'signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG:file=-',
    '-f',
    'null',
    '-',
  ]);
  let t = Number.NaN;
  for (const line of stdout.split('\n')) {
    const pts = /pts_time:([\d.]+)/.exec(line);
    if (pts) t = Number(pts[1]);
    const y = /YAVG=([\d.]+)/.exec(line);
    if (y && Number(y[1]) > 100) return t;
  }
  throw new Error('no flash found');
}

/** Presentation time of the end of the initial silence. */
async function beepTime(file: string): Promise<number> {
  const { stderr } = await run('ffmpeg', [
    '-hide_banner',
    '-nostats',
    '-copyts',
    '-i',
    file,
    '-af',
    'silencedetect=n=-40dB:d=0.05',
    '-f',
    'null',
    '-',
  ]);
  const m = /silence_end: ([\d.]+)/.exec(stderr);
  if (!m) throw new Error('no beep found');
  return Number(m[1]);
}
