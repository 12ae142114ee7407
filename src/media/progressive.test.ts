import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { cmafFixture, ffprobeJson } from '../../test/helpers/media.ts';
import { buildRemuxArgs, defaultAudio, downloadName, progressiveRungs, type RungInfo } from './progressive.ts';

const run = promisify(execFile);
const work = mkdtempSync(join(tmpdir(), 'smoothcast-progressive-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** Top-level box types of an MP4 file (32-bit sizes: the files here are small). */
function topBoxes(file: string): string[] {
  const b = readFileSync(file);
  const types: string[] = [];
  for (let off = 0; off + 8 <= b.length; ) {
    const size = b.readUInt32BE(off);
    types.push(b.toString('latin1', off + 4, off + 8));
    if (size < 8) break;
    off += size;
  }
  return types;
}

describe('progressive downloads', () => {
  const rung = (id: string, height: number) => ({ id, type: 'video' as const, height });
  it('offers the top rendition and the largest one a phone needs', () => {
    const ladder = [rung('v0', 1080), rung('v1', 720), rung('v2', 540), rung('v3', 432), rung('v4', 360)];
    assert.deepEqual(progressiveRungs([...ladder, { id: 'a0', type: 'audio', height: null }]), ['v0', 'v3']);
    assert.deepEqual(progressiveRungs([rung('v0', 360), rung('v1', 234)]), ['v0', 'v1']);
    assert.deepEqual(progressiveRungs([rung('v0', 1080), rung('v1', 720)]), ['v0']);
    assert.deepEqual(progressiveRungs([{ id: 'a0', type: 'audio', height: null }]), ['a0']);
  });
  it('copies the streams into one faststart MP4', () => {
    const a = buildRemuxArgs('/m/v0.mp4', '/m/a0.mp4', '/m/out.mp4');
    assert.deepEqual(a.slice(a.indexOf('-c')), [
      '-c',
      'copy',
      '-map_metadata',
      '-1',
      '-movflags',
      '+faststart',
      '-f',
      'mp4',
      'file:/m/out.mp4',
    ]);
    assert.ok(a.includes('1:a:0'));
    assert.ok(!buildRemuxArgs('/m/v0.mp4', null, '/o.mp4').includes('1:a:0'));
  });
});

describe('progressive downloads of audio-only media and of several audio tracks', () => {
  const audio = (id: string, isDefault?: boolean): RungInfo =>
    isDefault === undefined
      ? { id, type: 'audio', height: null }
      : { id, type: 'audio', height: null, default: isDefault };

  it('offers the default audio rendition of audio-only media (an M4A), else the first one', () => {
    assert.deepEqual(progressiveRungs([audio('a0', false), audio('a1', true), audio('a2', false)]), ['a1']);
    assert.deepEqual(progressiveRungs([audio('a0'), audio('a1')]), ['a0']);
    assert.deepEqual(progressiveRungs([]), []);
    // With video, the audio renditions get no download of their own.
    const film = [{ id: 'v0', type: 'video' as const, height: 720 }, audio('a0'), audio('a1', true)];
    assert.deepEqual(progressiveRungs(film), ['v0']);
    assert.equal(defaultAudio(film)?.id, 'a1');
    assert.equal(defaultAudio([audio('a0'), audio('a1')])?.id, 'a0');
    assert.equal(defaultAudio([{ id: 'v0', type: 'video', height: 720 }]), undefined);
  });

  it('names video downloads .mp4 and audio ones .m4a', () => {
    assert.equal(downloadName('v0'), 'download-v0.mp4');
    assert.equal(downloadName('v3'), 'download-v3.mp4');
    assert.equal(downloadName('a1'), 'download-a1.m4a');
  });

  it('builds an M4A (ipod muxer) from the audio alone', () => {
    const a = buildRemuxArgs(null, '/m/a0.mp4', '/m/out.m4a');
    assert.equal(a.filter((x) => x === '-i').length, 1);
    assert.equal(a[a.indexOf('-i') + 1], 'file:/m/a0.mp4');
    assert.equal(a[a.indexOf('-map') + 1], '0:a:0');
    assert.ok(!a.includes('0:v:0'));
    assert.deepEqual(a.slice(a.indexOf('-c')), [
      '-c',
      'copy',
      '-map_metadata',
      '-1',
      '-movflags',
      '+faststart',
      '-f',
      'ipod',
      'file:/m/out.m4a',
    ]);
    assert.throws(() => buildRemuxArgs(null, null, '/m/out.mp4'), RangeError);
  });

  it('ffmpeg remuxes a CMAF audio rendition into a faststart M4A with only the audio stream', async () => {
    const src = await cmafFixture('audio', 3);
    const out = join(work, 'download-a0.m4a');
    await run('ffmpeg', buildRemuxArgs(null, src, out));
    const j = await ffprobeJson(out, ['-show_streams', '-show_format']);
    const format = j.format as Record<string, unknown>;
    const streams = j.streams as Record<string, unknown>[];
    assert.equal(format.format_name, 'mov,mp4,m4a,3gp,3g2,mj2');
    assert.equal((format.tags as Record<string, unknown> | undefined)?.major_brand, 'M4A ');
    assert.deepEqual(
      streams.map((s) => [s.codec_type, s.codec_name]),
      [['audio', 'aac']],
    );
    assert.ok(Math.abs(Number(format.duration) - 3) < 0.1, `${format.duration} s`);
    const boxes = topBoxes(out);
    assert.ok(boxes.indexOf('moov') < boxes.indexOf('mdat'), `faststart: ${boxes.join(' ')}`);
    assert.ok(!boxes.includes('moof'), 'not fragmented');
  });

  it('ffmpeg remuxes video and audio renditions into one MP4', async () => {
    const out = join(work, 'download-v0.mp4');
    await run('ffmpeg', buildRemuxArgs(await cmafFixture('video', 2), await cmafFixture('audio', 2), out));
    const j = await ffprobeJson(out, ['-show_streams']);
    assert.deepEqual(
      (j.streams as Record<string, unknown>[]).map((s) => [s.codec_type, s.codec_name]),
      [
        ['video', 'h264'],
        ['audio', 'aac'],
      ],
    );
  });
});
