// PacketScan on hand-written ffprobe csv (chunk boundaries, N/A fields, runaway lines), then packetScanArgs run by
// the real ffprobe on a Matroska written to a pipe (no Duration in any header).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { pipedMatroska } from '../../../test/helpers/media.ts';
import { PacketScan, packetScanArgs } from './duration.ts';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'smoothcast-duration-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** What a scan found, comparable with deepEqual. */
function result(scan: PacketScan, streams: readonly number[] = [0, 1, 2]) {
  return {
    packets: scan.packets,
    seconds: scan.seconds,
    streams: streams.map((i) => scan.streamDuration(i)),
  };
}

function scanAll(chunks: readonly string[]): PacketScan {
  const scan = new PacketScan();
  for (const c of chunks) scan.push(c);
  scan.end();
  return scan;
}

// Video (0) from 0.1 to 0.2 + 0.1 = 0.3, audio (1) from 0 to 0.3 + 0.05 = 0.35 (out of order), and lines ffprobe
// prints for packets without a timestamp; the last line has no newline.
const SAMPLE =
  '0,0.100000,0.100000\n' +
  '1,0.000000,0.050000\n' +
  '1,0.300000,0.050000\n' +
  '0,N/A,0.100000\n' +
  '1,0.050000,N/A\n' +
  '0,0.200000,0.100000\r\n' +
  '\n' +
  '1,0.100000,0.050000';

describe('PacketScan', () => {
  it('keeps the earliest pts and the latest pts + duration per stream', () => {
    const scan = scanAll([SAMPLE]);
    assert.equal(scan.packets, 6);
    assert.ok(Math.abs(scan.streamDuration(0)! - 0.2) < 1e-9);
    assert.ok(Math.abs(scan.streamDuration(1)! - 0.35) < 1e-9);
    assert.equal(scan.streamDuration(2), undefined);
    assert.ok(Math.abs(scan.seconds - 0.35) < 1e-9);
  });

  it('gives the same result wherever the chunks are split', () => {
    const whole = result(scanAll([SAMPLE]));
    for (let i = 0; i <= SAMPLE.length; i++) {
      assert.deepEqual(result(scanAll([SAMPLE.slice(0, i), SAMPLE.slice(i)])), whole, `split at ${i}`);
    }
    // Two split points (every pair), and one character at a time.
    for (let i = 0; i <= SAMPLE.length; i++) {
      for (let j = i; j <= SAMPLE.length; j++) {
        const parts = [SAMPLE.slice(0, i), SAMPLE.slice(i, j), SAMPLE.slice(j)];
        assert.deepEqual(result(scanAll(parts)), whole, `split at ${i} and ${j}`);
      }
    }
    assert.deepEqual(result(scanAll([...SAMPLE])), whole);
  });

  it('ignores N/A and malformed fields', () => {
    const scan = scanAll([
      'N/A,1.0,0.5\n', // no stream index
      '0,N/A,0.5\n', // no timestamp
      '0,,0.5\n',
      '0\n',
      'x,y,z\n',
      '1.5,1.0,0.5\n', // not an integer index
      '0,abc,0.5\n',
      '0,Infinity,0.5\n',
      '\n',
      '0,2.000000,N/A\n', // a timestamp without a duration counts as a point
      '0,1.000000,-1\n', // a negative duration is none
    ]);
    assert.equal(scan.packets, 2);
    assert.equal(scan.streamDuration(0), 1);
    assert.equal(scan.seconds, 1);
    const empty = scanAll(['N/A,N/A,N/A\n', '']);
    assert.deepEqual(result(empty), { packets: 0, seconds: 0, streams: [undefined, undefined, undefined] });
  });

  it('counts only the streams it is given (audio and video, not subtitles or cover art)', () => {
    const lines = ['0,0.000000,1.000000\n', '1,0.000000,2.000000\n', '2,5.000000,3.000000\n'];
    const all = scanAll(lines);
    assert.deepEqual(result(all), { packets: 3, seconds: 8, streams: [1, 2, 3] });
    const av = new PacketScan([0, 1]);
    for (const l of lines) av.push(l);
    av.end();
    assert.deepEqual(result(av), { packets: 2, seconds: 2, streams: [1, 2, undefined] });
    const none = new PacketScan([]);
    none.push(lines.join(''));
    assert.deepEqual(result(none), { packets: 0, seconds: 0, streams: [undefined, undefined, undefined] });
  });

  it('does not hold on to a line that never ends (not csv from ffprobe)', () => {
    const scan = new PacketScan();
    scan.push('0,0.000000,1.000000\n');
    const mib = 'x'.repeat(1 << 20);
    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 64; i++) scan.push(mib);
    const grown = process.memoryUsage().heapUsed - heapBefore;
    // Kept, the partial line alone would be a flat 64 MiB string.
    assert.ok(grown < 32 * (1 << 20), `heap grew by ${(grown / (1 << 20)).toFixed(1)} MiB`);
    // It recovers at the next newline.
    scan.push('\n0,4.000000,1.000000\n');
    scan.end();
    assert.equal(scan.packets, 2);
    assert.equal(scan.streamDuration(0), 5);
  });
});

async function scanWithFfprobe(args: string[], streams?: number[]): Promise<PacketScan> {
  const scan = new PacketScan(streams);
  await new Promise<void>((resolve, reject) => {
    const p = spawn('ffprobe', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    p.stdout.setEncoding('utf8');
    p.stdout.on('data', (chunk: string) => scan.push(chunk));
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffprobe exited ${code}: ${stderr}`))));
  });
  scan.end();
  return scan;
}

describe('packetScanArgs + PacketScan (real ffprobe)', () => {
  let mkv = '';
  before(async () => {
    mkv = await pipedMatroska();
  });

  it('the piped Matroska declares no duration (the case the scan is for)', async () => {
    const { stdout } = await run('ffprobe', ['-v', 'error', '-of', 'json', '-show_format', '-show_streams', mkv]);
    const j = JSON.parse(stdout) as { format: Record<string, unknown>; streams: Record<string, unknown>[] };
    assert.equal(j.format.duration, undefined);
    assert.deepEqual(
      j.streams.map((s) => [s.codec_type, s.duration]),
      [
        ['video', undefined],
        ['audio', undefined],
      ],
    );
  });

  it('finds 10 s by reading every packet', async () => {
    const scan = await scanWithFfprobe(packetScanArgs(mkv, 1 << 24));
    assert.ok(scan.packets > 300, `${scan.packets} packets`);
    assert.ok(Math.abs(scan.seconds - 10) <= 1 / 30, `${scan.seconds} s`);
    assert.ok(Math.abs(scan.streamDuration(0)! - 10) <= 1 / 30, `video ${scan.streamDuration(0)} s`);
    assert.ok(Math.abs(scan.streamDuration(1)! - 10) <= 1 / 30, `audio ${scan.streamDuration(1)} s`);
  });

  it('counts only the streams it is given: a subtitle cue past the end does not lengthen the media', async () => {
    const srt = join(work, 'late.srt');
    writeFileSync(srt, '1\n00:00:04,000 --> 00:00:06,000\nLong after the end\n');
    const piped = await pipedMatroska({
      seconds: 2,
      extra: ['-i', srt, '-map', '0', '-map', '1', '-map', '2', '-c:s', 'srt'],
    });
    const args = packetScanArgs(piped, 1 << 24);
    const all = await scanWithFfprobe(args);
    // The muxer shifts every input by the AAC priming (21 ms at Matroska's 1 ms timebase): the cue ends at 6.021.
    assert.ok(Math.abs(all.seconds - 6) < 0.05, `every stream: ${all.seconds} s`);
    assert.ok(Math.abs(all.streamDuration(2)! - 2) < 1e-3, `the cue: ${all.streamDuration(2)} s`);
    const av = await scanWithFfprobe(args, [0, 1]);
    assert.ok(Math.abs(av.seconds - 2) <= 1 / 30, `audio + video: ${av.seconds} s`);
    assert.equal(av.streamDuration(2), undefined);
    assert.equal(av.packets, all.packets - 1);
  });
});
