// buildEncodeArgs / buildPosterArgs: the argument shapes (no ffmpeg run; ffmpeg-args.test.ts runs them for real).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  audioDelaySamples,
  buildEncodeArgs,
  buildPosterArgs,
  buildSubtitleArgs,
  buildWaveformArgs,
  keyframeExpr,
  presentationDelay,
} from './ffmpeg-args.ts';
import type { AudioRendition, LadderPlan } from './ladder.ts';

describe('buildEncodeArgs (shape)', () => {
  const plan: LadderPlan = {
    segmentDuration: 2,
    firstSegmentDuration: 1,
    frameRate: null,
    outputFrameRate: { num: 30, den: 1 },
    gopSize: 120,
    deinterlace: false,
    streams: { video: 0 },
    video: [
      {
        id: 'v0',
        width: 1920,
        height: 1080,
        bitrate: 6e6,
        maxrate: 6.6e6,
        bufsize: 10.8e6,
        profile: 'high',
        level: '4.0',
      },
      {
        id: 'v1',
        width: 1280,
        height: 720,
        bitrate: 3e6,
        maxrate: 3.3e6,
        bufsize: 5.4e6,
        profile: 'high',
        level: '3.1',
      },
    ],
    audio: [
      { id: 'a0', stream: 1, default: true, bitrate: 128000, channels: 2, sampleRate: 48000, fragmentDuration: 1 },
    ],
    poster: { time: 1 },
  };
  const args = buildEncodeArgs('/in/source', plan, { video: ['/o/v0.mp4', '/o/v1.mp4'], audio: ['/o/a0.mp4'] });
  const after = (flag: string, from = 0) => args[args.indexOf(flag, from) + 1];

  it('reads the input once, safely, and reports progress on stdout', () => {
    assert.equal(args.filter((a) => a === '-i').length, 1);
    assert.equal(after('-i'), 'file:/in/source');
    assert.equal(after('-protocol_whitelist'), 'file');
    assert.ok(args.indexOf('-max_pixels') < args.indexOf('-i'));
    assert.equal(after('-progress'), 'pipe:1');
    for (const f of ['-nostdin', '-nostats', '-y', '-hide_banner']) assert.ok(args.includes(f), f);
  });

  it('splits the decoded video into one scaled branch per rung', () => {
    assert.equal(
      after('-filter_complex'),
      '[0:0]split=2[s0][s1];[s0]scale=1920:1080,setsar=1,format=yuv420p[v0];' +
        '[s1]scale=1280:720,setsar=1,format=yuv420p[v1]',
    );
  });

  it('writes each rung to its own CMAF file with forced, aligned keyframes', () => {
    const outs = args.filter((a) => a.startsWith('file:/o/'));
    assert.deepEqual(outs, ['file:/o/v0.mp4', 'file:/o/v1.mp4', 'file:/o/a0.mp4']);
    const v1 = args.indexOf('[v1]');
    assert.ok(v1 > args.indexOf('file:/o/v0.mp4') && v1 < args.indexOf('file:/o/v1.mp4'));
    // 0, 1, 2, 4, 6, …: a short first segment, then the 2 s grid.
    assert.equal(after('-force_key_frames', v1), 'expr:gte(t,if(n_forced,max(1,(n_forced-1)*2),0))');
    assert.equal(keyframeExpr(2, 2), 'expr:gte(t,n_forced*2)');
    assert.equal(keyframeExpr(2), 'expr:gte(t,n_forced*2)');
    assert.equal(after('-sc_threshold', v1), '0');
    assert.equal(after('-b:v', v1), '3000k');
    assert.equal(after('-level:v', v1), '3.1');
    assert.equal(after('-movflags', v1), '+frag_keyframe+empty_moov+default_base_moof+cmaf');
  });

  it('downmixes the first audio stream to AAC stereo 48 kHz in 1 s fragments, delayed to match the video', () => {
    const a = args.indexOf('0:1');
    assert.ok(a > args.indexOf('file:/o/v1.mp4'));
    assert.equal(after('-c:a', a), 'aac');
    assert.equal(after('-ac', a), '2');
    assert.equal(after('-ar', a), '48000');
    assert.equal(after('-frag_duration', a), '1000000');
    assert.equal(audioDelaySamples(plan), 3200 - 1024);
    assert.match(after('-af', a) ?? '', /adelay=delays=2176S:all=1$/);
  });

  it('refuses mismatched outputs', () => {
    assert.throws(() => buildEncodeArgs('x', plan, { video: ['/o/v0.mp4'], audio: ['/o/a.mp4'] }), RangeError);
    assert.throws(() => buildEncodeArgs('x', plan, { video: ['/a', '/b'], audio: [] }), RangeError);
  });

  it('builds a one-frame JPEG poster command, seeking on the input', () => {
    const p = buildPosterArgs('/in/x', 12.5, '/o/poster.jpg', 1280, { videoStream: 3 });
    assert.ok(p.indexOf('-ss') < p.indexOf('-i'));
    assert.equal(p[p.indexOf('-ss') + 1], '12.500');
    assert.equal(p[p.indexOf('-map') + 1], '0:3');
    assert.equal(p.at(-1), 'file:/o/poster.jpg');
  });
});

describe('buildEncodeArgs (shape): several audio tracks, audio only', () => {
  const rendition = (i: number, stream: number, extra: Partial<AudioRendition> = {}): AudioRendition => ({
    id: `a${i}`,
    stream,
    default: i === 0,
    bitrate: 128000,
    channels: 2,
    sampleRate: 48000,
    fragmentDuration: 1,
    ...extra,
  });
  const video: LadderPlan = {
    segmentDuration: 2,
    firstSegmentDuration: 1,
    frameRate: null,
    outputFrameRate: { num: 25, den: 1 },
    gopSize: 100,
    deinterlace: false,
    streams: { video: 0 },
    video: [
      {
        id: 'v0',
        width: 640,
        height: 360,
        bitrate: 7e5,
        maxrate: 7.7e5,
        bufsize: 1.26e6,
        profile: 'main',
        level: '3.0',
      },
    ],
    audio: [rendition(0, 2, { language: 'eng' }), rendition(1, 4, { language: 'fre' }), rendition(2, 5)],
    poster: { time: 1 },
  };
  const audioOnly: LadderPlan = {
    ...video,
    firstSegmentDuration: 2,
    gopSize: 0,
    streams: { video: null },
    video: [],
    audio: [rendition(0, 0, { fragmentDuration: 2 })],
  };

  it('writes one AAC output per audio track, each mapping its own source stream', () => {
    const outputs = { video: ['/o/v0.mp4'], audio: ['/o/a0.mp4', '/o/a1.mp4', '/o/a2.mp4'] };
    const args = buildEncodeArgs('/in/film.mkv', video, outputs);
    assert.deepEqual(
      args.filter((a) => a.startsWith('file:/o/')),
      ['file:/o/v0.mp4', 'file:/o/a0.mp4', 'file:/o/a1.mp4', 'file:/o/a2.mp4'],
    );
    const maps: string[] = [];
    for (const [i, a] of args.entries()) if (a === '-map') maps.push(args[i + 1]!);
    assert.deepEqual(maps, ['[v0]', '0:2', '0:4', '0:5']);
    // Each output's options sit between the previous output and its own file.
    outputs.audio.forEach((path, i) => {
      const end = args.indexOf(`file:${path}`);
      const from = args.indexOf(`file:${i === 0 ? outputs.video[0] : outputs.audio[i - 1]}`);
      const own = args.slice(from + 1, end);
      assert.equal(own[own.indexOf('-map') + 1], `0:${video.audio[i]!.stream}`);
      assert.equal(own[own.indexOf('-c:a') + 1], 'aac');
      assert.equal(own[own.indexOf('-frag_duration') + 1], '1000000');
      // Every audio track gets the same A/V delay (2 frames at 25 fps = 3840 samples, minus the priming).
      assert.match(own[own.indexOf('-af') + 1] ?? '', /adelay=delays=2816S:all=1$/);
    });
    assert.equal(args.filter((a) => a === '-filter_complex').length, 1);
    assert.equal(args.filter((a) => a === '-i').length, 1);
  });

  it('builds an audio-only encode without any video option', () => {
    const args = buildEncodeArgs('/in/song.flac', audioOnly, { video: [], audio: ['/o/a0.mp4'] });
    for (const flag of ['-filter_complex', '-c:v', '-force_key_frames', '-g', '-bf']) {
      assert.ok(!args.includes(flag), flag);
    }
    assert.equal(args[args.indexOf('-map') + 1], '0:0');
    assert.equal(args[args.indexOf('-frag_duration') + 1], '2000000');
    assert.equal(args.at(-1), 'file:/o/a0.mp4');
    // Nothing to line up with: no added silence; the AAC priming is what puts t = 0 later.
    assert.equal(audioDelaySamples(audioOnly), 0);
    assert.match(args[args.indexOf('-af') + 1] ?? '', /adelay=delays=0S:all=1$/);
    assert.equal(presentationDelay(audioOnly), 1024 / 48000);
    assert.equal(presentationDelay(video), 2 / 25);
  });

  it('refuses mismatched audio outputs and a plan with nothing to encode', () => {
    assert.throws(() => buildEncodeArgs('x', video, { video: ['/v'], audio: ['/a0', '/a1'] }), RangeError);
    assert.throws(() => buildEncodeArgs('x', audioOnly, { video: [], audio: [] }), RangeError);
    assert.throws(() => buildEncodeArgs('x', audioOnly, { video: ['/v'], audio: ['/a'] }), RangeError);
    const nothing: LadderPlan = { ...audioOnly, audio: [] };
    assert.throws(() => buildEncodeArgs('x', nothing, { video: [], audio: [] }), RangeError);
  });
});

describe('buildSubtitleArgs and buildWaveformArgs (shape)', () => {
  it('converts every text track in one pass, on the source timeline', () => {
    const args = buildSubtitleArgs(
      '/in/film.mkv',
      [
        { stream: 3, output: '/o/s3' },
        { stream: 5, output: '/o/s5' },
      ],
      1920 * 1080,
    );
    assert.equal(args.filter((a) => a === '-i').length, 1);
    assert.equal(args[args.indexOf('-i') + 1], 'file:/in/film.mkv');
    assert.ok(args.indexOf('-copyts') >= 0 && args.indexOf('-copyts') < args.indexOf('-i'));
    assert.equal(args[args.indexOf('-max_pixels') + 1], String(1920 * 1080));
    assert.equal(args[args.indexOf('-protocol_whitelist') + 1], 'file');
    const s3 = args.slice(args.indexOf('-i') + 2, args.indexOf('file:/o/s3'));
    const s5 = args.slice(args.indexOf('file:/o/s3') + 1, args.indexOf('file:/o/s5'));
    assert.deepEqual([s3[s3.indexOf('-map') + 1], s5[s5.indexOf('-map') + 1]], ['0:3', '0:5']);
    // The same codec and format for every track, and no source metadata carried over.
    for (const own of [s3, s5]) {
      assert.equal(own[own.indexOf('-c:s') + 1], s3[s3.indexOf('-c:s') + 1]);
      assert.equal(own[own.indexOf('-f') + 1], s3[s3.indexOf('-f') + 1]);
      assert.equal(own[own.indexOf('-map_metadata') + 1], '-1');
    }
    assert.equal(args.at(-1), 'file:/o/s5');
    assert.throws(() => buildSubtitleArgs('/in/film.mkv', []), RangeError);
  });

  it('draws the waveform of the chosen audio stream into one 1280x720 JPEG', () => {
    const args = buildWaveformArgs('/in/song.mp3', 2, '/o/wave.jpg', 1000);
    assert.equal(args[args.indexOf('-i') + 1], 'file:/in/song.mp3');
    assert.equal(args[args.indexOf('-max_pixels') + 1], '1000');
    const graph = args[args.indexOf('-filter_complex') + 1] ?? '';
    assert.ok(graph.startsWith('[0:2]'), graph);
    assert.match(graph, /showwavespic=/);
    assert.match(graph, /s=1280x720/);
    assert.equal(args[args.indexOf('-map') + 1], '[out]');
    assert.equal(args[args.indexOf('-frames:v') + 1], '1');
    assert.equal(args.at(-1), 'file:/o/wave.jpg');
  });
});
