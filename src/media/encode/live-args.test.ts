// REAL-FFMPEG TESTS for the live ladder: FLV made by ffmpeg is fed to buildLiveEncodeArgs' argv on stdin (as fast as
// ffmpeg reads it, or paced at 1× by its own timestamps), and every growing CMAF file is indexed as it lands: rungs
// with identical fragment times, whole-frame parts that divide the 2 s segments, keyframes on the grid, audio parts
// of one length, LiveTimeline segments, clean decodes, A/V sync, and the latency the pipeline adds.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ffmpegFixture } from '../../../test/helpers/media.ts';
import { FragmentIndexer, indexBuffer } from '../bmff/index.ts';
import { LiveTimeline } from '../live/parts.ts';
import { decodeAmf0All, propertiesOf } from '../rtmp/amf0.ts';
import { FLV_TAG, readFlvTags } from '../rtmp/flv.ts';
import type { Segment, TrackInfo } from '../types.ts';
import {
  buildLiveEncodeArgs,
  type LiveEncodeOptions,
  type LiveGrid,
  liveGrid,
  liveInputFromMetadata,
  livePartFrames,
  planLiveLadder,
} from './live-args.ts';
import type { Fraction } from './probe.ts';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'smoothcast-live-args-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** testsrc2 + a sine as FLV, H.264 (a 2 s GOP unless told) and AAC, the way `ffmpeg -f flv rtmp://…` publishes. */
function fixture(rate: string, size: string, seconds: number, x264 = ['-preset', 'ultrafast'], gop?: number) {
  const [num, den = 1] = rate.split('/').map(Number);
  const g = String(gop ?? Math.round((2 * num!) / den));
  return ffmpegFixture(
    [
      ...['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}`, '-f', 'lavfi', '-i', 'sine=f=440:r=48000'],
      ...['-t', String(seconds), '-c:v', 'libx264', ...x264, '-pix_fmt', 'yuv420p', '-g', g, '-sc_threshold', '0'],
      ...['-c:a', 'aac', '-b:a', '128k', '-f', 'flv'],
    ],
    'flv',
  );
}

/** Decoded output of ffmpeg reading `file`. */
async function decode(file: string, args: string[]): Promise<Buffer> {
  const opts = { encoding: 'buffer', maxBuffer: 1 << 26, timeout: 60_000 } as const;
  return (await run('ffmpeg', ['-v', 'error', '-i', file, ...args, '-'], opts)).stdout;
}

function metadata(file: string) {
  const script = readFlvTags(new Uint8Array(readFileSync(file)), 13).find((t) => t.type === FLV_TAG.script)!;
  const input = liveInputFromMetadata(propertiesOf(decodeAmf0All(script.body)[1])!);
  assert.ok(input, 'onMetaData describes the video');
  return input;
}

interface Indexed {
  track: TrackInfo;
  segments: Segment[];
}

interface Run {
  /** Seconds after spawn at which each fragment of each output was whole on disk (-1: only seen after exit). */
  landed: number[][];
  cpuSeconds: number;
  outputs: Indexed[];
}

/** Spawns ffmpeg with `src` on stdin (paced: each FLV tag written at its timestamp) and follows every output. */
async function live(args: string[], src: string, files: string[], paced: boolean): Promise<Run> {
  const t0 = performance.now();
  const child = spawn('ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin.on('error', () => {});
  let timer: NodeJS.Timeout | undefined;
  if (!paced) createReadStream(src).pipe(child.stdin);
  else {
    const bytes = readFileSync(src);
    const tags = readFlvTags(new Uint8Array(bytes), 13);
    child.stdin.write(bytes.subarray(0, 13));
    let at = 13;
    let i = 0;
    const feed = () => {
      const now = performance.now() - t0;
      const from = at;
      while (i < tags.length && tags[i]!.timestamp <= now) at += 15 + tags[i++]!.body.length;
      if (at > from) child.stdin.write(bytes.subarray(from, at));
      if (i < tags.length) timer = setTimeout(feed, tags[i]!.timestamp - now);
      else child.stdin.end();
    };
    feed();
  }
  const indexers = files.map(() => new FragmentIndexer());
  const landed: number[][] = files.map(() => []);
  let cpuSeconds = 0;
  const poll = (final = false) => {
    try {
      // utime + stime (fields 14 and 15 of /proc/<pid>/stat) in clock ticks of 1/100 s, all threads together.
      const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      cpuSeconds = (Number(f[11]) + Number(f[12])) / 100;
    } catch {}
    files.forEach((file, k) => {
      let size = 0;
      try {
        size = statSync(file).size;
      } catch {
        return;
      }
      const ix = indexers[k]!;
      const fd = openSync(file, 'r');
      for (let r = ix.next(size); r; r = ix.next(size)) {
        const b = Buffer.alloc(r.length);
        ix.push(r.offset, b.subarray(0, readSync(fd, b, 0, r.length, r.offset)));
      }
      closeSync(fd);
      const now = final ? -1 : (performance.now() - t0) / 1000;
      while (landed[k]!.length < ix.segments.length) landed[k]!.push(now);
    });
  };
  const interval = setInterval(() => poll(), 20);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(interval);
  clearTimeout(timer);
  poll(true);
  assert.equal(code, 0, stderr);
  assert.equal(stderr, '');
  return { landed, cpuSeconds, outputs: files.map((f) => indexBuffer(new Uint8Array(readFileSync(f)))) };
}

const seconds = (f: Fraction) => f.num / f.den;
/** Ticks of `timescale` × (f seconds), asserted whole. */
function ticks(f: Fraction, timescale: number): number {
  const t = (f.num * timescale) / f.den;
  assert.ok(Number.isInteger(t), `${f.num}/${f.den} s is not a whole number of 1/${timescale} s`);
  return t;
}

/** The rungs' fragments: the same instants everywhere, whole-frame parts of one length, keyframes on the grid. */
function checkRungs(rungs: Indexed[], fps: Fraction, grid: LiveGrid): LiveTimeline {
  const partsPerSegment = grid.gopFrames / grid.partFrames;
  const ref = rungs[0]!;
  for (const r of rungs) {
    const ts = r.track.timescale;
    const segs = r.segments;
    assert.equal(segs.length, ref.segments.length);
    segs.forEach((s, i) => {
      const refStart = ref.segments[i]!.start;
      assert.equal(s.start * ref.track.timescale, refStart * ts, `fragment ${i} starts where the top rung's does`);
      assert.equal(s.duration * fps.num, s.samples * fps.den * ts, `fragment ${i}: whole frames`);
      assert.ok(s.duration <= ts / 2, `fragment ${i}: ${s.duration / ts} s > 0.5 s`);
      if (i < segs.length - 1) assert.equal(s.samples, grid.partFrames, `fragment ${i}: ${s.samples} frames`);
      assert.equal(s.start, i * ticks(grid.partDuration, ts));
      assert.equal(s.startsWithKeyframe, i % partsPerSegment === 0, `fragment ${i}: keyframe only on the grid`);
      assert.equal(s.presentationStart, s.start, 'no B-frames: presented at the decode time');
    });
  }
  const timeline = new LiveTimeline({ timescale: ref.track.timescale });
  timeline.append(ref.segments);
  timeline.end();
  const segs = timeline.segments;
  assert.ok(segs.length >= 3);
  for (const s of segs.slice(0, -1)) {
    assert.equal(s.duration, ticks(grid.segmentDuration, ref.track.timescale));
    assert.equal(s.parts.length, partsPerSegment);
    assert.deepEqual(
      s.parts.map((p) => p.independent),
      s.parts.map((_, i) => i === 0),
    );
  }
  return timeline;
}

/**
 * Audio parts of one length, grid.audioPartFrames AAC frames (to within `slack` seconds: copied audio keeps FLV's
 * millisecond timestamps), no longer than a video part; segmented on the video's boundaries.
 */
function checkAudio(audio: Indexed, video: LiveTimeline, grid: LiveGrid, slack = 0): void {
  assert.equal(audio.track.codec, 'mp4a.40.2');
  const ts = audio.track.timescale;
  const partTicks = (grid.audioPartFrames * 1024 * ts) / 48000;
  const segs = audio.segments;
  for (const [i, s] of segs.slice(0, -1).entries()) {
    assert.ok(Math.abs(s.duration - partTicks) <= slack * ts, `audio part ${i}: ${s.duration} ticks`);
    assert.ok(s.duration / ts <= seconds(grid.partDuration) + slack, 'an audio part is no longer than a video part');
  }
  const timeline = new LiveTimeline({ timescale: ts, boundaries: video });
  timeline.append(segs);
  timeline.end();
  const target = seconds(grid.segmentDuration);
  for (const s of timeline.segments.slice(1, -1)) {
    const d = s.duration / ts;
    assert.ok(Math.abs(d - target) <= partTicks / ts + slack, `audio segment ${s.msn}: ${d} s`);
  }
  assert.deepEqual(
    timeline.segments.map((s) => s.msn),
    video.segments.slice(0, timeline.segments.length).map((s) => s.msn),
  );
}

async function decodesCleanly(files: string[]): Promise<void> {
  await Promise.all(
    files.map(async (f) => {
      const { stderr } = await run('ffmpeg', ['-v', 'error', '-i', f, '-f', 'null', '-'], { timeout: 60_000 });
      assert.equal(stderr, '', `${f} decodes without an error`);
    }),
  );
}

async function transcode(src: string, name: string, paced: boolean, opts: LiveEncodeOptions = {}) {
  const input = metadata(src);
  const plan = planLiveLadder(input);
  const video = plan.video.map((r) => join(work, `${name}-${r.id}.mp4`));
  const audio = [join(work, `${name}-a0.mp4`)];
  const result = await live(buildLiveEncodeArgs(plan, { video, audio }, opts), src, [...video, ...audio], paced);
  const grid = liveGrid(plan.outputFrameRate, plan.segmentDuration);
  const timeline = checkRungs(result.outputs.slice(0, -1), plan.outputFrameRate, grid);
  checkAudio(result.outputs.at(-1)!, timeline, grid);
  await decodesCleanly([...video, ...audio]);
  return { plan, grid, result };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

describe('live ladder: pure parts', () => {
  it('cuts parts of whole frames that divide the 2 s segment, nearest 1/3 s and at most 0.5 s', () => {
    // rate → frames per part
    const cases =
      '30:10 30000/1001:10 25:10 24:8 24000/1001:8 50:20 60:20 60000/1001:20 15:5 20:8 10:4 12.5:5 29.97:10';
    for (const c of cases.split(' ')) {
      const [rate, frames] = c.split(':') as [string, string];
      const [num, den] = rate.split('/').map(Number);
      assert.equal(livePartFrames(den ? { num: num!, den } : num!), Number(frames), rate);
    }
    assert.deepEqual(liveGrid(25), {
      gopFrames: 50,
      partFrames: 10,
      segmentDuration: { num: 2, den: 1 },
      partDuration: { num: 2, den: 5 },
      audioPartFrames: 18,
    });
    const ntsc = liveGrid({ num: 30000, den: 1001 });
    assert.deepEqual([ntsc.gopFrames, ntsc.segmentDuration, ntsc.audioPartFrames], [60, { num: 1001, den: 500 }, 15]);
    assert.throws(() => livePartFrames(0), RangeError);
  });

  it('reads onMetaData as OBS sends it and plans the VOD ladder below the input', () => {
    const obs = { width: 1280, height: 720, framerate: 30, videodatarate: 2500, audiocodecid: 10, audiodatarate: 160 };
    const input = liveInputFromMetadata(obs);
    assert.deepEqual(input, { width: 1280, height: 720, frameRate: 30, audio: true, videoBitrate: 2_500_000 });
    assert.equal(liveInputFromMetadata({ width: 1280, framerate: 30 }), null);
    const plan = planLiveLadder({ width: 1280, height: 720, frameRate: 30, audio: true });
    assert.deepEqual(
      plan.video.map((r) => r.height),
      [720, 540, 432, 360, 234],
    );
    assert.deepEqual([plan.segmentDuration, plan.firstSegmentDuration, plan.audio.length], [2, 2, 1]);
    assert.equal(planLiveLadder({ width: 640, height: 360, frameRate: 29.97, audio: false }).segmentDuration, 2.002);
  });

  it('builds one ffmpeg: FLV from stdin, low-latency x264 per rung, CMAF parts flushed; or a copy', () => {
    const plan = planLiveLadder({ width: 1280, height: 720, frameRate: 30, audio: true });
    const outputs = { video: plan.video.map((r) => `/o/${r.id}.mp4`), audio: ['/o/a.mp4'] };
    const args = buildLiveEncodeArgs(plan, outputs);
    const joined = args.join(' ');
    assert.match(
      joined,
      /-fpsprobesize 0 -threads 1 .*-f flv -i pipe:0 -filter_complex \[0:v:0\]fps=30\/1:start_time=0/,
    );
    assert.ok(!args.includes('-re') && !args.includes('-y') && args.includes('-n'));
    const count = (s: string) => args.filter((a) => a === s).length;
    assert.equal(count('zerolatency'), 5);
    assert.equal(count('expr:gte(n,n_forced*60)'), 5);
    assert.equal(count('-flush_packets'), 6);
    assert.equal(count('316667'), 5, 'video: 9.5 frames, so the 10th frame opens the next part');
    assert.equal(count('309333'), 1, 'audio: 14.5 AAC frames');
    assert.equal(count('+frag_keyframe+empty_moov+default_base_moof+cmaf'), 5);
    assert.throws(() => buildLiveEncodeArgs(plan, { video: outputs.video.slice(1), audio: ['/o/a.mp4'] }), RangeError);
    const copy = buildLiveEncodeArgs(plan, { video: ['/o/v.mp4'], audio: ['/o/a.mp4'] }, { transcode: false });
    assert.match(copy.join(' '), /-map 0:v:0 -c:v copy .*\+frag_keyframe\+frag_discont\+empty_moov/);
    assert.ok(!copy.includes('-filter_complex') && copy.includes('aac'));
    const both = buildLiveEncodeArgs(plan, { video: ['/v'], audio: ['/a'] }, { transcode: false, copyAudio: true });
    assert.equal(both.filter((a) => a === 'copy').length, 2);
  });
});

describe('live ladder: ffmpeg 5.1 reading FLV from stdin', () => {
  it('720p30 at 1×: five aligned rungs and audio, each part on disk a frame or so after its end', async (t) => {
    const src = await fixture('30', '1280x720', 8);
    const { plan, grid, result } = await transcode(src, 'p30', true);
    assert.deepEqual(
      plan.video.map((r) => `${r.width}x${r.height}`),
      ['1280x720', '960x540', '768x432', '640x360', '416x234'],
    );
    const part = seconds(grid.partDuration);
    const lowest = result.landed[plan.video.length - 1]!;
    // Behaviour, not speed (bench figures are in docs/live.md): the first part is on disk while ffmpeg still runs.
    assert.ok(lowest[0]! > 0, `first part of the lowest rung on disk at ${lowest[0]} s`);
    const afterEnd: number[] = [];
    result.outputs.forEach((o, k) => {
      const ts = o.track.timescale;
      // Fragments ending at the end of the input (8 s) are cut by EOF, not by a following frame — ffmpeg 5.1's fps
      // filter also repeats the last frame there — so they land when ffmpeg exits: not a live figure.
      o.segments
        .filter((s) => (s.start + s.duration) / ts < 8 - 1e-6)
        .forEach((s, i) => {
          const at = result.landed[k]![i]!;
          // Flushed as written, not held to the end: every part cut by a following frame was on disk while ffmpeg
          // ran (-1 = only seen after it exited). How soon is a figure (the diagnostic), not a pass/fail.
          assert.ok(at >= 0, `output ${k} part ${i} (${s.start / ts} s, ${part} s long) only on disk after exit`);
          afterEnd.push(at - (s.start + s.duration) / ts);
        });
    });
    t.diagnostic(
      `first part of ${plan.video.at(-1)!.height}p on disk ${lowest[0]!.toFixed(3)} s after spawn; parts land ` +
        `${median(afterEnd).toFixed(3)} s (median), ${Math.max(...afterEnd).toFixed(3)} s (max) after their last ` +
        `frame was written; ffmpeg CPU ${result.cpuSeconds.toFixed(2)} s for 8 s of 720p30 into 5 rungs + AAC`,
    );
  });

  for (const [rate, frames] of [
    ['25', 10],
    ['30000/1001', 10],
  ] as const) {
    it(`${rate} fps: parts of ${frames} frames, ${rate === '25' ? '2 s' : '2.002 s'} segments`, async () => {
      const { grid } = await transcode(await fixture(rate, '640x360', 6), `r${rate.replace('/', '_')}`, false);
      assert.equal(grid.partFrames, frames);
    });
  }

  it('transcode: false copies the video, parts cut at its keyframes and by duration, and the AAC', async (t) => {
    // A 1.5 s GOP (45 frames): parts of 10, 10, 10, 10 and 5 frames, the last cut by the next keyframe.
    const src = await fixture('30', '640x360', 8, ['-preset', 'veryfast', '-bf', '2'], 45);
    const plan = planLiveLadder(metadata(src));
    const files = [join(work, 'copy-v.mp4'), join(work, 'copy-a.mp4')];
    const opts = { transcode: false, copyAudio: true };
    const args = buildLiveEncodeArgs(plan, { video: [files[0]!], audio: [files[1]!] }, opts);
    const { outputs, cpuSeconds } = await live(args, src, files, false);
    const [v, a] = outputs as [Indexed, Indexed];
    const ts = v.track.timescale;
    assert.equal(v.track.width, 640);
    // FLV timestamps are whole milliseconds: frame k starts within a millisecond of k / 30 s.
    const frame = (tick: number) => Math.round((tick / ts) * 30);
    const starts = v.segments.map((s) => frame(s.start - v.segments[0]!.start));
    v.segments.forEach((s, i) => {
      assert.equal(s.startsWithKeyframe, starts[i]! % 45 === 0, `fragment ${i} at frame ${starts[i]}`);
      const next = starts[i + 1];
      if (next !== undefined) assert.equal(s.samples, next % 45 === 0 && next - starts[i]! < 10 ? 5 : 10);
      assert.ok(s.samples <= 10 && s.duration <= ts / 2);
    });
    assert.deepEqual(
      starts.filter((_, i) => v.segments[i]!.startsWithKeyframe),
      [0, 45, 90, 135, 180, 225],
    );
    const timeline = new LiveTimeline({ timescale: ts });
    timeline.append(v.segments);
    timeline.end();
    for (const s of timeline.segments.slice(0, -1)) assert.ok(Math.abs(s.duration / ts - 1.5) <= 0.001);
    checkAudio(a, timeline, { ...liveGrid(30), segmentDuration: { num: 3, den: 2 } }, 0.001);
    await decodesCleanly(files);
    t.diagnostic(`ffmpeg CPU ${cpuSeconds.toFixed(2)} s for 8 s copied`);
  });

  it('keeps audio and video in sync: a flash and a beep at 1 s stay together', async () => {
    const flash = "drawbox=w=iw:h=ih:c=white:t=fill:enable='between(t,1,1.09)'";
    const beep = "aevalsrc='if(between(t,1,1.1),0.8*sin(2*PI*1000*t),0)':s=48000:d=2";
    const src = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', `color=c=black:s=320x180:r=30:d=2,${flash}`, '-f', 'lavfi', '-i', beep],
        ...['-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-f', 'flv'],
      ],
      'flv',
    );
    const plan = planLiveLadder(metadata(src));
    for (const [name, opts, tolerance] of [
      ['transcoded', {}, 1 / 60 + 0.001],
      ['copied', { transcode: false }, 0.002],
      ['copied with AAC', { transcode: false, copyAudio: true }, 0.002],
    ] as const) {
      const files = [join(work, `sync-${name}-v.mp4`), join(work, `sync-${name}-a.mp4`)];
      const args = buildLiveEncodeArgs(plan, { video: [files[0]!], audio: [files[1]!] }, opts);
      const [v, a] = (await live(args, src, files, false)).outputs as [Indexed, Indexed];
      // Frames scaled to 8x8 gray: the first white one; samples as 16-bit mono: the first loud one.
      const gray = await decode(files[0]!, ['-vf', 'scale=8:8,format=gray', '-f', 'rawvideo']);
      const white = Array.from({ length: gray.length / 64 }, (_, k) => gray.subarray(k * 64, k * 64 + 64)).findIndex(
        (f) => f.reduce((n, b) => n + b, 0) / 64 > 128,
      );
      const pcm = await decode(files[1]!, ['-ac', '1', '-f', 's16le']);
      const samples = new Int16Array(pcm.buffer, pcm.byteOffset, pcm.length >> 1);
      const loud = samples.findIndex((x) => Math.abs(x) > 8000);
      // Without an edit list a player presents the first sample of each file at its tfdt (+ composition offset).
      const videoAt = v.segments[0]!.presentationStart / v.track.timescale + white / 30;
      const audioAt = a.segments[0]!.start / a.track.timescale + loud / 48000;
      assert.ok(Math.abs(videoAt - 1) < 0.1 && white > 0 && loud > 0);
      assert.ok(Math.abs(audioAt - videoAt) <= tolerance, `${name}: audio at ${audioAt} s, video at ${videoAt} s`);
    }
  });
});
