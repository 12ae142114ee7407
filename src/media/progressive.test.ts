import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRemuxArgs, progressiveRungs } from './progressive.ts';

describe('progressive downloads', () => {
  const rung = (id: string, height: number) => ({ id, type: 'video' as const, height });
  it('offers the top rendition and the largest one a phone needs', () => {
    const ladder = [rung('v0', 1080), rung('v1', 720), rung('v2', 540), rung('v3', 432), rung('v4', 360)];
    assert.deepEqual(progressiveRungs([...ladder, { id: 'a0', type: 'audio', height: null }]), ['v0', 'v3']);
    assert.deepEqual(progressiveRungs([rung('v0', 360), rung('v1', 234)]), ['v0', 'v1']);
    assert.deepEqual(progressiveRungs([rung('v0', 1080), rung('v1', 720)]), ['v0']);
    assert.deepEqual(progressiveRungs([{ id: 'a0', type: 'audio', height: null }]), []);
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
