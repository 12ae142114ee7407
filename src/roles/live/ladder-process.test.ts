// LiveLadder's process handling with a stand-in for ffmpeg that ignores its input (a fixed script, spawned without
// a shell): the grace kill after end(), the hard safety timeout, a missing executable. The real ffmpeg run is in
// rtmp-ingest.test.ts.
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LiveLadder } from './ladder-process.ts';

const work = mkdtempSync(join(tmpdir(), 'smoothcast-live-ladder-'));
after(() => rmSync(work, { recursive: true, force: true }));
/** Reads nothing, never exits on its own. */
const stubborn = join(work, 'stubborn-ffmpeg');
writeFileSync(stubborn, '#!/bin/sh\nexec sleep 30\n');
chmodSync(stubborn, 0o755);

const input = { width: 640, height: 360, frameRate: 30, audio: true };

describe('LiveLadder', () => {
  it('plans the ladder and names one file per rung and the audio under <dir>/<epoch>/', async () => {
    const ladder = new LiveLadder({ dir: join(work, 's'), epoch: 3, input, maxDurationMs: 10_000, ffmpeg: stubborn });
    try {
      assert.deepEqual(
        ladder.outputs.map((o) => [o.id, o.kind, o.path]),
        [
          ...ladder.plan.video.map((r) => [r.id, 'video', join(work, 's', '3', `${r.id}.mp4`)]),
          ['a0', 'audio', join(work, 's', '3', 'a0.mp4')],
        ],
      );
      assert.ok(existsSync(join(work, 's', '3')));
      assert.equal(ladder.args.filter((a) => a === '-n').length, 1, 'never overwrites');
      assert.equal(ladder.args[ladder.args.indexOf('-i') + 1], 'pipe:0');
    } finally {
      ladder.kill();
      await ladder.exited;
    }
  });

  it('end() closes stdin and kills what has not exited graceMs later', async () => {
    const ladder = new LiveLadder({
      dir: work,
      epoch: 1,
      input,
      maxDurationMs: 20_000,
      graceMs: 200,
      ffmpeg: stubborn,
    });
    assert.equal(ladder.write(new Uint8Array(100)), true);
    const t0 = performance.now();
    const exit = await ladder.end();
    const ms = performance.now() - t0;
    assert.deepEqual([exit.signal, exit.killedAfterEnd, exit.timedOut, exit.ended], ['SIGKILL', true, false, true]);
    assert.ok(ms >= 150 && ms < 5000, `killed after ${ms} ms`);
    assert.equal(ladder.write(new Uint8Array(10)), true, 'writes after the exit are dropped');
    await new Promise<void>((resolve) => ladder.once('drain', resolve));
  });

  it('is killed by maxDurationMs whatever it is doing, and `closed` says so', async () => {
    const ladder = new LiveLadder({ dir: work, epoch: 2, input, maxDurationMs: 200, ffmpeg: stubborn });
    const exit = await ladder.exited;
    await ladder.closed;
    assert.deepEqual([exit.signal, exit.timedOut, exit.ended], ['SIGKILL', true, false]);
  });

  it('reports an executable that cannot be started', async () => {
    const ladder = new LiveLadder({ dir: work, epoch: 4, input, maxDurationMs: 5000, ffmpeg: join(work, 'missing') });
    const exit = await ladder.exited;
    assert.match(exit.spawnError ?? '', /ENOENT/);
    assert.equal(ladder.write(new Uint8Array(1)), true);
    await ladder.end();
  });
});
