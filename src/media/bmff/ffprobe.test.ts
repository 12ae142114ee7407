// The index checked against ffprobe's reading of the same ffmpeg-made CMAF files (a reader we did not write).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { cmafFixture, ffmpegFixture, ffprobeJson, testSource } from '../../../test/helpers/media.ts';
import type { Segment, TrackInfo } from '../types.ts';
import { indexBuffer, summarizeIndex } from './index.ts';

const CMAF = ['-movflags', '+frag_keyframe+empty_moov+default_base_moof+cmaf', '-f', 'mp4'];
const KEYS_EVERY_2S = ['-force_key_frames', 'expr:gte(t,n_forced*2)', '-sc_threshold', '0', '-g', '1000'];

const hasX265 = promisify(execFile)('ffmpeg', ['-hide_banner', '-encoders']).then(
  ({ stdout }) => /\blibx265\b/.test(stdout),
  () => false,
);

interface Fixture {
  name: string;
  make: () => Promise<string | undefined>;
}

const fixtures: Fixture[] = [
  { name: 'H.264 High with B-frames (cmaf: trun v1, negative offsets)', make: () => cmafFixture('video') },
  { name: 'AAC-LC stereo 48 kHz', make: () => cmafFixture('audio') },
  {
    name: 'H.264 Main at 29.97 fps, no B-frames',
    make: () =>
      ffmpegFixture(
        [
          ...testSource({ seconds: 5, rate: '30000/1001', width: 256, height: 144, audio: false }),
          ...['-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'main', '-bf', '0', '-pix_fmt', 'yuv420p'],
          ...KEYS_EVERY_2S,
          ...CMAF,
        ],
        'mp4',
      ),
  },
  {
    name: 'H.264 with 3 B-frames, without +cmaf (trun v0, positive offsets)',
    make: () =>
      ffmpegFixture(
        [
          ...testSource({ seconds: 4, audio: false }),
          ...['-c:v', 'libx264', '-preset', 'veryfast', '-bf', '3', '-pix_fmt', 'yuv420p'],
          ...KEYS_EVERY_2S,
          ...['-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4'],
        ],
        'mp4',
      ),
  },
  {
    name: 'AAC-LC mono 44.1 kHz, one fragment per 1.5 s',
    make: () =>
      ffmpegFixture(
        [
          ...['-f', 'lavfi', '-i', 'sine=frequency=300:sample_rate=44100:duration=4'],
          ...['-c:a', 'aac', '-ac', '1', '-ar', '44100', '-frag_duration', '1500000'],
          ...CMAF,
        ],
        'mp4',
      ),
  },
  {
    name: 'HEVC (libx265) Main',
    make: async () => {
      if (!(await hasX265)) return undefined;
      return ffmpegFixture(
        [
          ...testSource({ seconds: 4, audio: false }),
          ...['-c:v', 'libx265', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-tag:v', 'hvc1'],
          ...['-x265-params', 'log-level=error:keyint=60:min-keyint=60:scenecut=0'],
          ...CMAF,
        ],
        'mp4',
      );
    },
  },
];

interface Stream {
  codec_type: string;
  profile?: string;
  level?: number;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
  time_base: string;
  duration_ts: number;
  duration: string;
  avg_frame_rate: string;
  nb_read_packets: string;
  extradata?: string;
}

interface Packet {
  pts: number;
  dts: number;
  pos: string;
  flags: string;
}

/** ffprobe -show_data hex dump ("00000000: 0164 000d …  .d..") → bytes. */
function hexdump(dump: string): number[] {
  const out: number[] = [];
  for (const line of dump.split('\n')) {
    const m = /^[0-9a-f]{8}: ((?:[0-9a-f]{2,4} ?)+)/.exec(line);
    if (m?.[1]) out.push(...Buffer.from(m[1].replaceAll(' ', ''), 'hex'));
  }
  return out;
}

function ratio(s: string): number {
  const [n, d] = s.split('/').map(Number);
  return (n ?? 0) / (d ?? 1);
}

const AVC_PROFILES: Record<string, number> = { Baseline: 0x42, 'Constrained Baseline': 0x42, Main: 0x4d, High: 0x64 };
const HEVC_PROFILES: Record<string, number> = { Main: 1, 'Main 10': 2 };

function checkCodec(track: TrackInfo, s: Stream): void {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(2, '0');
  if (track.sampleEntry === 'avc1') {
    const profile = AVC_PROFILES[s.profile ?? ''];
    assert.ok(profile, `unknown AVC profile ${s.profile}`);
    assert.match(track.codec, new RegExp(`^avc1\\.${hex(profile)}[0-9A-F]{2}${hex(s.level ?? -1)}$`));
  } else if (track.sampleEntry === 'hvc1') {
    assert.match(
      track.codec,
      new RegExp(`^hvc1\\.${HEVC_PROFILES[s.profile ?? '']}\\.[0-9A-F]+\\.L${s.level}(\\.[0-9A-F]{2})*$`),
    );
  } else {
    assert.equal(s.profile, 'LC');
    assert.equal(track.codec, 'mp4a.40.2');
  }
}

function checkSegments(file: Uint8Array, track: TrackInfo, segments: Segment[], s: Stream, packets: Packet[]): void {
  assert.equal(
    segments.reduce((n, g) => n + g.samples, 0),
    Number(s.nb_read_packets),
    'samples vs nb_read_packets',
  );
  assert.equal(
    segments.reduce((n, g) => n + g.duration, 0),
    s.duration_ts,
    'sum of durations vs duration_ts',
  );
  // Every packet lies in exactly one segment: group them by byte position.
  const groups = segments.map(() => [] as Packet[]);
  for (const p of packets) {
    const pos = Number(p.pos);
    const i = segments.findIndex((g) => pos >= g.offset && pos < g.offset + g.size);
    assert.ok(i >= 0, `packet at ${pos} in no segment`);
    groups[i]?.push(p);
  }
  const shift = (packets[0]?.pts ?? 0) - (segments[0]?.presentationStart ?? 0);
  assert.ok(shift >= 0);
  segments.forEach((g, i) => {
    const group = groups[i] ?? [];
    const first = group[0];
    assert.ok(first, `segment ${i} holds no packet`);
    assert.equal(group.length, g.samples, `segment ${i} samples`);
    assert.equal(first.dts, g.start, `segment ${i} start vs first packet dts`);
    // ffmpeg's demuxer shifts every pts by the largest negative composition offset (its dts_shift).
    assert.equal(first.pts - g.presentationStart, shift, `segment ${i} presentationStart vs first packet pts`);
    const nextStart = segments[i + 1]?.start ?? s.duration_ts;
    assert.equal(g.start + g.duration, nextStart, `segment ${i} duration`);
    assert.match(String.fromCharCode(...file.subarray(g.offset + 4, g.offset + 8)), /^(moof|styp)$/);
    if (track.kind === 'video') {
      assert.ok(g.startsWithKeyframe, `segment ${i} starts with a keyframe`);
      assert.match(first.flags, /K/);
    }
  });
  if (track.kind === 'video') {
    const keyDts = packets.filter((p) => p.flags.includes('K')).map((p) => p.dts);
    assert.deepEqual(
      segments.map((g) => g.start),
      keyDts,
      'segment starts vs keyframe packet dts',
    );
  }
}

describe('index vs ffprobe', () => {
  for (const f of fixtures) {
    it(f.name, async (t) => {
      const path = await f.make();
      if (!path) {
        t.skip('ffmpeg has no libx265 encoder: HEVC not checked');
        return;
      }
      const file = new Uint8Array(readFileSync(path));
      const { track, segments } = indexBuffer(file);
      const probe = await ffprobeJson(path, ['-show_streams', '-show_data', '-count_packets']);
      const streams = probe.streams as Stream[];
      assert.equal(streams.length, 1);
      const s = streams[0] as Stream;
      assert.equal(track.kind, s.codec_type);
      assert.equal(s.time_base, `1/${track.timescale}`);
      assert.deepEqual([...track.codecConfig], hexdump(s.extradata ?? ''), 'codecConfig vs extradata');
      if (track.kind === 'video') {
        assert.deepEqual([track.width, track.height], [s.width, s.height]);
      } else {
        assert.deepEqual([track.sampleRate, track.channels], [Number(s.sample_rate), s.channels]);
      }
      checkCodec(track, s);
      const packets = (await ffprobeJson(path, ['-show_entries', 'packet=pts,dts,pos,flags', '-select_streams', '0']))
        .packets as Packet[];
      checkSegments(file, track, segments, s, packets);
      const summary = summarizeIndex(track, segments);
      assert.ok(Math.abs(summary.duration - Number(s.duration)) < 1e-6, `${summary.duration} vs ${s.duration}`);
      assert.equal(summary.segmentCount, segments.length);
      if (track.kind === 'video') {
        assert.ok(Math.abs((summary.frameRate ?? 0) - ratio(s.avg_frame_rate)) < 1e-3, `${summary.frameRate}`);
      }
      const bytes = segments.reduce((n, g) => n + g.size, 0);
      assert.ok(summary.peakBitrate >= summary.averageBitrate * 0.999);
      assert.ok(Math.abs(summary.averageBitrate - (bytes * 8) / summary.duration) <= 1);
    });
  }
});
