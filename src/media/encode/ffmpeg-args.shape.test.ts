// buildEncodeArgs / buildPosterArgs: the argument shapes (no ffmpeg run; ffmpeg-args.test.ts runs them for real).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { audioDelaySamples, buildEncodeArgs, buildPosterArgs, keyframeExpr } from './ffmpeg-args.ts';
import type { LadderPlan } from './ladder.ts';

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
