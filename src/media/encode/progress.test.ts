import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProgressParser, type ProgressUpdate, progressFigures } from './progress.ts';

// Recorded from ffmpeg 5.1 (Debian 12): `ffmpeg -nostats -stats_period 0.1 -progress pipe:1` encoding a 4 s lavfi
// source to two x264 rungs and one AAC output (stdout, verbatim).
const RECORDING = `frame=1
fps=0.00
stream_0_0_q=0.0
stream_1_0_q=0.0
bitrate=N/A
total_size=48
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=   0x
progress=continue
frame=48
fps=0.00
stream_0_0_q=29.0
stream_1_0_q=29.0
bitrate=N/A
total_size=48
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=   0x
progress=continue
frame=64
fps=0.00
stream_0_0_q=29.0
stream_1_0_q=29.0
bitrate=   0.8kbits/s
total_size=48
out_time_us=487619
out_time_ms=487619
out_time=00:00:00.487619
dup_frames=0
drop_frames=0
speed=2.24x
progress=continue
frame=80
fps=0.00
stream_0_0_q=29.0
stream_1_0_q=29.0
bitrate=   0.4kbits/s
total_size=48
out_time_us=1044898
out_time_ms=1044898
out_time=00:00:01.044898
dup_frames=0
drop_frames=0
speed=3.28x
progress=continue
frame=97
fps=0.00
stream_0_0_q=29.0
stream_1_0_q=29.0
bitrate=   0.2kbits/s
total_size=48
out_time_us=1578957
out_time_ms=1578957
out_time=00:00:01.578957
dup_frames=0
drop_frames=0
speed=3.77x
progress=continue
frame=115
fps=0.00
stream_0_0_q=29.0
stream_1_0_q=29.0
bitrate=   0.2kbits/s
total_size=48
out_time_us=2182676
out_time_ms=2182676
out_time=00:00:02.182676
dup_frames=0
drop_frames=0
speed=4.17x
progress=continue
frame=120
fps=0.00
stream_0_0_q=-1.0
stream_1_0_q=-1.0
bitrate= 794.6kbits/s
total_size=398980
out_time_us=4017052
out_time_ms=4017052
out_time=00:00:04.017052
dup_frames=0
drop_frames=0
speed=5.23x
progress=end
`;

const expected = [
  { outTimeSeconds: 0, speed: null, frame: 1, fps: 0, done: false },
  { outTimeSeconds: 0, speed: null, frame: 48, fps: 0, done: false },
  { outTimeSeconds: 0.487619, speed: 2.24, frame: 64, fps: 0, done: false },
  { outTimeSeconds: 1.044898, speed: 3.28, frame: 80, fps: 0, done: false },
  { outTimeSeconds: 1.578957, speed: 3.77, frame: 97, fps: 0, done: false },
  { outTimeSeconds: 2.182676, speed: 4.17, frame: 115, fps: 0, done: false },
  { outTimeSeconds: 4.017052, speed: 5.23, frame: 120, fps: 0, done: true },
];

describe('ProgressParser', () => {
  it('parses a real recording pushed in one piece', () => {
    assert.deepEqual(new ProgressParser().push(RECORDING), expected);
  });

  it('gives the same updates whatever the chunk boundaries', () => {
    for (const size of [1, 2, 3, 7, 13, 64, 1000]) {
      const parser = new ProgressParser();
      const got: ProgressUpdate[] = [];
      for (let i = 0; i < RECORDING.length; i += size) got.push(...parser.push(RECORDING.slice(i, i + size)));
      assert.deepEqual(got, expected, `chunks of ${size}`);
    }
    // Pseudo-random boundaries, including CRLF line ends.
    const crlf = RECORDING.replaceAll('\n', '\r\n');
    const parser = new ProgressParser();
    const got: ProgressUpdate[] = [];
    for (let i = 0, step = 1; i < crlf.length; i += step, step = (step * 31 + 7) % 23 || 1) {
      got.push(...parser.push(crlf.slice(i, i + step)));
    }
    assert.deepEqual(got, expected);
  });

  it('returns nothing until a block is complete', () => {
    const parser = new ProgressParser();
    assert.deepEqual(parser.push('frame=5\nout_time_us=1000000\nprogress=cont'), []);
    assert.deepEqual(parser.push('inue\n'), [{ outTimeSeconds: 1, speed: null, frame: 5, done: false }]);
  });

  it('copes with unknown values and older field spellings', () => {
    const parser = new ProgressParser();
    const [na, ms, clock, negative] = parser.push(
      [
        'out_time_us=N/A\nout_time_ms=N/A\nout_time=N/A\nspeed=N/A\nprogress=continue',
        'out_time_ms=2500000\nspeed=0.5x\nprogress=continue',
        'out_time=01:02:03.500000\nprogress=continue',
        'out_time_us=-9223372036854775807\nout_time=-2562047788:00:54.775807\nprogress=continue',
        'garbage without equals sign\n=orphan\n',
      ].join('\n'),
    );
    assert.deepEqual(na, { outTimeSeconds: 0, speed: null, done: false });
    assert.deepEqual(ms, { outTimeSeconds: 2.5, speed: 0.5, done: false });
    assert.equal(clock?.outTimeSeconds, 3723.5);
    assert.equal(negative?.outTimeSeconds, 0);
  });

  it('drops an absurdly long line instead of buffering it forever', () => {
    const parser = new ProgressParser();
    parser.push('x'.repeat(10_000));
    assert.deepEqual(parser.push('\nout_time_us=1\nprogress=end\n'), [
      { outTimeSeconds: 0.000001, speed: null, done: true },
    ]);
  });
});

describe('progressFigures', () => {
  const at = (outTimeSeconds: number, speed: number | null, done = false): ProgressUpdate => ({
    outTimeSeconds,
    speed,
    done,
  });

  it('computes percent and ETA from the media time and ffmpeg speed', () => {
    assert.deepEqual(progressFigures(at(15, 3), 60, 5), { percent: 25, speed: 3, etaSeconds: 15 });
  });

  it('falls back to media time / wall time for the speed, and knows when it cannot tell', () => {
    assert.deepEqual(progressFigures(at(10, null), 40, 5), { percent: 25, speed: 2, etaSeconds: 15 });
    assert.deepEqual(progressFigures(at(0, null), 40, 0), { percent: 0, speed: null, etaSeconds: null });
    assert.deepEqual(progressFigures(at(5, 1), 0, 5), { percent: 0, speed: 1, etaSeconds: null });
  });

  it('clamps past the end (audio outlasting the declared duration) and finishes at 100', () => {
    assert.deepEqual(progressFigures(at(4.017, 5.23), 4, 1), { percent: 100, speed: 5.23, etaSeconds: 0 });
    assert.deepEqual(progressFigures(at(3.9, 5, true), 4, 1), { percent: 100, speed: 5, etaSeconds: 0 });
  });
});
