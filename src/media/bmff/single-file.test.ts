// The sidx and the single-file layout against ffmpeg's reading of the result: the same packets as the stored file,
// and a seek that ffmpeg resolves through the sidx lands on the same frame.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { cmafFixture } from '../../../test/helpers/media.ts';
import { packets } from '../../../test/helpers/verify.ts';
import { indexBuffer } from './index.ts';
import { buildSidx, mapRange, singleFileLayout } from './single-file.ts';

const run = promisify(execFile);

describe('single-file layout with a sidx', () => {
  it('indexes every segment: sizes, durations, SAPs, earliest presentation time (ISO/IEC 14496-12 §8.16.3)', async () => {
    const buf = readFileSync(await cmafFixture('video', 7, 2));
    const { track, segments } = indexBuffer(buf);
    const sidx = buildSidx(track, segments);
    const v = new DataView(sidx.buffer);
    assert.equal(v.getUint32(0), sidx.length);
    assert.equal(Buffer.from(sidx.subarray(4, 8)).toString('latin1'), 'sidx');
    assert.equal(sidx[8], 1, 'version 1');
    assert.equal(v.getUint32(12), track.trackId);
    assert.equal(v.getUint32(16), track.timescale);
    assert.equal(v.getBigUint64(20), BigInt(segments[0]!.presentationStart));
    assert.equal(v.getBigUint64(28), 0n);
    assert.equal(v.getUint16(38), segments.length);
    segments.forEach((s, i) => {
      const at = 40 + 12 * i;
      assert.equal(v.getUint32(at) >>> 31, 0, 'reference_type media');
      assert.equal(v.getUint32(at) & 0x7fffffff, (segments[i + 1]?.offset ?? s.offset + s.size) - s.offset);
      assert.equal(v.getUint32(at + 4), s.duration);
      assert.equal(v.getUint32(at + 8) >>> 28, 0b1001, 'starts_with_SAP, SAP type 1');
    });
    assert.throws(() => buildSidx(track, []), RangeError);
    assert.throws(() => buildSidx(track, segments.slice(1)), RangeError, 'must start right after the init segment');
  });

  it('makes a file ffmpeg reads packet for packet like the stored one, and seeks in through the sidx', async () => {
    const file = await cmafFixture('video', 9, 2);
    const buf = readFileSync(file);
    const { track, segments } = indexBuffer(buf);
    const l = singleFileLayout(track, segments);
    const single = join(mkdtempSync(join(tmpdir(), 'sc-single-')), 'single.mp4');
    writeFileSync(single, Buffer.concat([buf.subarray(0, l.initSize), l.sidx, buf.subarray(l.initSize, l.storedEnd)]));
    assert.equal(readFileSync(single).length, l.size);
    assert.deepEqual(await packets(single), await packets(file));
    // Our own reading of the result: the same fragments, each moved by the sidx's size.
    const again = indexBuffer(readFileSync(single));
    assert.deepEqual(
      again.segments.map((s) => s.offset),
      segments.map((_, n) => l.segment(n).offset),
    );
    // A seek: ffmpeg finds the fragment through the sidx; the first frame it returns is the last keyframe at or
    // before the target, as in the stored file.
    const keyAt = (list: { pts: number; key: boolean }[], t: number) =>
      list.filter((x) => x.key && x.pts <= t).at(-1)!.pts;
    const target = 4.1;
    const { stdout } = await run('ffprobe', [
      '-v',
      'error',
      '-read_intervals',
      `${target}%+#1`,
      '-select_streams',
      'v:0',
      '-show_entries',
      'frame=pts_time,key_frame',
      '-of',
      'csv=p=0',
      single,
    ]);
    const [key, pts] = (stdout.trim().split('\n')[0] ?? '').split(',');
    assert.equal(key, '1');
    assert.ok(Math.abs(Number(pts) - keyAt(await packets(file), target)) < 1e-3, `${pts}`);
  });

  it('maps byte ranges onto the stored file and the sidx', () => {
    const l = {
      initSize: 100,
      sidx: new Uint8Array(50),
      storedEnd: 1000,
      size: 1050,
      segment: () => ({ offset: 0, size: 0 }),
    };
    assert.deepEqual(mapRange(l, 0, 1050), [
      { from: 'stored', offset: 0, length: 100 },
      { from: 'sidx', start: 0, end: 50 },
      { from: 'stored', offset: 100, length: 900 },
    ]);
    assert.deepEqual(
      mapRange(l, 200, 300),
      [{ from: 'stored', offset: 150, length: 300 }],
      'one read inside fragments',
    );
    assert.deepEqual(mapRange(l, 120, 10), [{ from: 'sidx', start: 20, end: 30 }]);
    assert.deepEqual(mapRange(l, 1040, 100), [{ from: 'stored', offset: 990, length: 10 }], 'clipped at the end');
  });
});
