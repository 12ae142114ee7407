// REAL PARTS: ffmpeg 5.1 publishes over RTMP to RtmpIngest on a port-0 socket; onPublish starts a LiveLadder (our
// ONE ffmpeg) whose growing CMAF files are indexed while the publish runs. While the good publisher is live, a
// second publisher on the same key, one with a wrong key and a connection sending garbage must all be turned away
// without disturbing it; at the end every rung is aligned on the 2 s grid and decodes cleanly.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { indexBuffer } from '../../media/bmff/index.ts';
import { liveInputFromMetadata } from '../../media/encode/live-args.ts';
import { LiveLadder } from './ladder-process.ts';
import { type LivePublishTarget, type PublishMeta, RtmpIngest } from './rtmp-ingest.ts';
import { dial, GrowingFile, run, until } from './testing.ts';

const KEY = 'k3yk3yk3yk3yk3yk3yk3yk3yk3yk3yk3';
const SECONDS = 6;

function publish(port: number, key: string) {
  const url = `rtmp://127.0.0.1:${port}/live/${key}`;
  const d = `duration=${SECONDS}`;
  return run(
    'ffmpeg',
    [
      ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-re'],
      ...['-f', 'lavfi', '-i', `testsrc2=size=640x360:rate=30:${d}`, '-f', 'lavfi', '-i', `sine=${d}`],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-c:a', 'aac', '-f', 'flv', url],
    ],
    30_000,
  );
}

describe('RtmpIngest + LiveLadder: ffmpeg 5.1 publishing over RTMP', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smoothcast-live-ingest-'));
  const published: { target: LivePublishTarget; meta: PublishMeta; ladder: LiveLadder }[] = [];
  const logs: { msg: string; extra?: Record<string, unknown> }[] = [];
  const ingest = new RtmpIngest({
    host: '127.0.0.1',
    port: 0,
    authorize: async (key) => (key === KEY ? { streamId: 'stream1' } : null),
    onPublish: async (target, meta) => {
      const input = meta.metadata && liveInputFromMetadata(meta.metadata);
      if (!input) throw new Error('onMetaData does not describe the video');
      const ladder = new LiveLadder({ dir: join(dir, target.streamId), input, maxDurationMs: 60_000 });
      published.push({ target, meta, ladder });
      return ladder;
    },
    log: (msg, extra) => logs.push(extra ? { msg, extra } : { msg }),
    limits: { maxConnections: 16, handshakeTimeoutMs: 3000, idleTimeoutMs: 5000 },
  });
  let port = 0;
  before(async () => {
    port = (await ingest.start()).port;
  });
  after(async () => {
    await ingest.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('turns the publish into an aligned, decodable ladder; refuses a wrong key, a busy key and garbage', async (t) => {
    const good = publish(port, KEY);

    // Playable: the lowest rung's first fragment is on disk and indexed within 6 s of the publisher's start.
    await until(() => published.length === 1, 10_000, 'onPublish');
    const { ladder, meta } = published[0]!;
    const videos = ladder.outputs.filter((o) => o.kind === 'video');
    assert.ok(videos.length >= 2, `a ladder of ${videos.length} rungs`);
    const lowest = new GrowingFile(videos.at(-1)!.path);
    await until(() => lowest.scan().ix.segments.length > 0, 6_000, "the lowest rung's first fragment", 25);
    const playableMs = performance.now() - good.t0;
    assert.ok(playableMs <= 6_000);
    assert.deepEqual(meta.flags, { audio: true, video: true });
    assert.deepEqual([meta.videoCodec, meta.audioCodec, meta.app], ['avc', 'aac', 'live']);

    // While it is live: the same key again, a wrong key, and bytes that are not RTMP, all at once.
    const garbage = await dial(port);
    garbage.socket.write(Buffer.from('GET /live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(64)));
    const [second, wrong, garbageMs] = await Promise.all([
      publish(port, KEY).done,
      publish(port, 'not-a-key').done,
      garbage.closed,
    ]);
    assert.notEqual(second.code, 0, 'the second publisher on a live key is refused');
    assert.ok(second.ms < 10_000, `the second publisher gave up after ${second.ms} ms`);
    assert.notEqual(wrong.code, 0, 'a wrong key is refused');
    assert.ok(wrong.ms < 10_000, `the wrong-key publisher gave up after ${wrong.ms} ms`);
    assert.ok(garbageMs < 2_000, `the garbage connection was closed after ${garbageMs} ms`);
    assert.equal(good.child.exitCode, null, 'the first publisher is still running');
    const partsAtRefusal = lowest.scan().ix.segments.length;

    const r = await good.done;
    assert.equal(r.code, 0, `the publisher exited ${r.code ?? r.signal}: ${r.stderr}`);
    const exit = await ladder.exited;
    assert.deepEqual([exit.code, exit.stderrTail, exit.ended], [0, '', true], `our ffmpeg: ${exit.stderrTail}`);
    assert.ok(lowest.scan().ix.segments.length > partsAtRefusal, 'the ladder kept growing after the refusals');
    assert.equal(published.length, 1, 'onPublish ran for the good publish only');
    assert.deepEqual(readdirSync(dir), ['stream1']);
    assert.deepEqual(readdirSync(join(dir, 'stream1')), ['0'], 'nothing was created for the refused publishers');
    await until(() => ingest.stats().publishing === 0, 2_000, 'the stream to be released');

    // Every output: identical fragment times across rungs, keyframes exactly on the 2 s grid, 6 s long.
    const indexed = ladder.outputs.map((o) => ({ o, ...indexBuffer(new Uint8Array(readFileSync(o.path))) }));
    const rungs = indexed.filter((x) => x.o.kind === 'video');
    const ref = rungs[0]!;
    for (const v of rungs) {
      const ts = v.track.timescale;
      assert.deepEqual(
        v.segments.map((s) => s.start / ts),
        ref.segments.map((s) => s.start / ref.track.timescale),
        `${v.o.id}: fragment starts as in ${ref.o.id}`,
      );
      // Every 2 s instant before the end starts a keyframe fragment, and no other fragment has one. (ffmpeg's fps
      // filter repeats the last frame at 6 s, where the publisher's last 33 ms ended: a 1-frame tail fragment.)
      const end = (v.segments.at(-1)!.start + v.segments.at(-1)!.duration) / ts;
      const grid = Array.from({ length: Math.ceil(end / 2) }, (_, n) => 2 * n);
      const keys = v.segments.filter((s) => s.startsWithKeyframe).map((s) => s.start / ts);
      assert.deepEqual(keys, grid, `${v.o.id}: keyframe fragments`);
      assert.ok(v.segments.every((s) => s.startsWithKeyframe === (s.start % (2 * ts) === 0)));
    }
    const durations: string[] = [];
    for (const x of indexed) {
      const first = x.segments[0]!;
      const last = x.segments.at(-1)!;
      assert.equal(first.start, 0, `${x.o.id} starts at 0`);
      const seconds = (last.start + last.duration - first.start) / x.track.timescale;
      durations.push(`${x.o.id} ${seconds.toFixed(3)} s`);
      assert.ok(Math.abs(seconds - SECONDS) <= 0.5, `${x.o.id}: ${seconds} s`);
    }
    assert.equal(indexed.filter((x) => x.o.kind === 'audio').length, 1);
    const decodes = await Promise.all(
      ladder.outputs.map(
        (o) => run('ffmpeg', ['-nostdin', '-v', 'error', '-i', o.path, '-f', 'null', '-'], 60_000).done,
      ),
    );
    decodes.forEach((d, i) => {
      assert.deepEqual([d.code, d.stderr], [0, ''], `${ladder.outputs[i]!.path} decodes cleanly`);
    });
    const refusals = logs.filter((l) => l.msg === 'rtmp: publish refused').map((l) => l.extra?.reason);
    assert.deepEqual(refusals.sort(), ['the stream is already being published', 'unknown stream key']);
    t.diagnostic(
      `lowest rung playable ${playableMs.toFixed(0)} ms after the publisher started; ${rungs.length} rungs ` +
        `(${rungs.map((v) => `${v.track.height}p`).join(', ')}) + audio, ${ref.segments.length} fragments each; ${durations.join(', ')}; ` +
        `refused: busy key in ${second.ms.toFixed(0)} ms, wrong key in ${wrong.ms.toFixed(0)} ms, garbage in ` +
        `${garbageMs.toFixed(0)} ms; publish ${r.ms.toFixed(0)} ms`,
    );
  });
});
