// `smoothcast live …` against a running test platform, as a user runs it: create (with every option), ls, show
// (JSON and the human form with the OBS settings and absolute playback URLs), rotate-key; then a real publish
// (ffmpeg over RTMP) seen by show with its stats, stop, start, shutdown (the event becomes a ready asset) and rm;
// and the errors: an unknown or malformed id, an action the state refuses, bad usage.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { LiveStreamJson } from '../../src/roles/api/live.ts';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { cli, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';

/** ffmpeg publishing a 720p30 test pattern with a tone over RTMP (H.264 + AAC in FLV, a keyframe every 2 s). */
function publish(url: string, seconds = 30): ChildProcess {
  return spawn(
    'ffmpeg',
    [
      ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-re'],
      ...['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30'],
      ...['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'],
      ...['-t', String(seconds), '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-c:a', 'aac', '-f', 'flv', url],
    ],
    { stdio: 'ignore' },
  );
}

describe('smoothcast live (CLI)', { timeout: 180_000 }, () => {
  let p: TestPlatform;
  const publishers: ChildProcess[] = [];

  // The input's own rendition, stored as is: the publish is all this file's CPU goes to.
  before(async () => {
    p = await startTestPlatform({ live: { transcode: false } });
  });
  after(async () => {
    for (const f of publishers) f.kill('SIGKILL');
    await p?.stop();
  });

  const live = (...args: string[]) =>
    cli(['live', ...args, '--server', p.url, '--token', p.token], { timeoutMs: 20_000 });
  const parsed = (r: { code: number; stdout: string; stderr: string }) => {
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as LiveStreamJson;
  };

  it('create with its options, ls, show (JSON and for people), rotate-key', async () => {
    const s = parsed(
      await live('create', 'CLI', 'show', '--dvr', '600', '--latency', 'standard', '--no-archive', '--json'),
    );
    assert.match(s.id, /^l[a-z2-7]{15}$/);
    assert.equal(s.title, 'CLI show');
    assert.equal(s.state, 'idle');
    assert.equal(s.dvrWindowSeconds, 600);
    assert.equal(s.latency, 'standard');
    assert.equal(s.archive, false);

    const ls = await live('ls', '--json');
    assert.equal(ls.code, 0, ls.stderr);
    const listed = ls.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as LiveStreamJson);
    assert.deepEqual(
      listed.map((x) => x.id),
      [s.id],
    );
    const lsText = await live('ls');
    assert.match(lsText.stdout, new RegExp(`^${s.id} +idle +CLI show$`, 'm'));

    const shown = parsed(await live('show', s.id, '--json'));
    assert.deepEqual(shown.obs, s.obs);
    assert.equal(shown.obs.server, `rtmp://127.0.0.1:${p.live!.rtmpPort}/live`);
    const text = await live('show', s.id);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^ {2}state +idle$/m);
    assert.match(text.stdout, /OBS \(Settings → Stream → Service: Custom\)/);
    assert.match(text.stdout, new RegExp(`^ {2}Server +${s.obs.server}$`, 'm'));
    assert.match(text.stdout, new RegExp(`^ {2}Stream Key +${s.obs.streamKey}$`, 'm'));
    assert.match(text.stdout, new RegExp(`^ {2}RTMP +${s.ingest.rtmp}$`, 'm'));
    // Playback URLs made absolute against the server.
    assert.match(text.stdout, new RegExp(`^ {2}HLS +${p.url}/v/live/${s.id}/master\\.m3u8$`, 'm'));
    assert.match(text.stdout, new RegExp(`^ {2}DASH +${p.url}/v/live/${s.id}/manifest\\.mpd$`, 'm'));
    assert.match(text.stdout, /^stats +none \(no publisher\)$/m);

    const rotated = parsed(await live('rotate-key', s.id, '--json'));
    assert.notEqual(rotated.streamKey, s.streamKey);
    assert.equal(rotated.obs.streamKey, rotated.streamKey);
    const rm = await live('rm', s.id, '--json');
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(JSON.parse(rm.stdout), { id: s.id, deleted: true });
  });

  it('a publish: show has its stats; stop, start, shutdown (a ready archive), rm', async () => {
    const s = parsed(await live('create', 'Evening news', '--json'));
    assert.equal(s.archive, true);
    publishers.push(publish(s.ingest.rtmp));
    const on = await until(
      'the stream to be started with stats',
      async () => {
        const x = await p.get<LiveStreamJson>(`/api/live/${s.id}`);
        return x.state === 'started' && x.stats && x.stats.inputBitrate > 0 ? x : undefined;
      },
      30_000,
    );
    assert.ok(on.currentAssetId);
    const text = await live('show', s.id);
    assert.match(text.stdout, /^ {2}state +started$/m);
    assert.match(
      text.stdout,
      new RegExp(`^ {2}event +${on.currentAssetId} +${p.url}/watch/${on.currentAssetId}$`, 'm'),
    );
    assert.match(text.stdout, /^stats +\d+\.\d Mb\/s · [\d.]+ fps · 1280x720 · \d+ viewers? · latency [\d.]+ s$/m);
    const shown = parsed(await live('show', s.id, '--json'));
    assert.equal(shown.stats?.inputWidth, 1280);
    assert.equal(shown.stats?.inputHeight, 720);

    const stopped = parsed(await live('stop', s.id, '--json'));
    assert.equal(stopped.state, 'stopped');
    const started = await live('start', s.id);
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, new RegExp(`^${s.id} +idle +Evening news +event ${on.currentAssetId}$`, 'm'));
    const down = parsed(await live('shutdown', s.id, '--json'));
    assert.equal(down.state, 'shutdown');
    const asset = await p.get<AssetJson>(`/api/assets/${on.currentAssetId}`);
    assert.equal(asset.status, 'ready');
    assert.equal(asset.liveStreamId, s.id);

    const rm = await live('rm', s.id);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(rm.stdout.trim(), `deleted ${s.id}`);
    const gone = await live('show', s.id);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /LIVE_NOT_FOUND/);
  });

  it('errors: the code printed and a non-zero exit', async () => {
    const unknown = `l${'a'.repeat(15)}`;
    const show = await live('show', unknown);
    assert.equal(show.code, 1);
    assert.match(show.stderr, new RegExp(`^smoothcast live: LIVE_NOT_FOUND: no live stream ${unknown}$`, 'm'));
    const stop = await live('stop', unknown, '--json');
    assert.equal(stop.code, 1);
    assert.equal((JSON.parse(stop.stdout) as { error: { code: string } }).error.code, 'LIVE_NOT_FOUND');
    const bad = await live('rm', 'nope');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /INVALID_ID/);
    // An idle stream with no event to continue cannot be stopped.
    const s = parsed(await live('create', 'Idle', '--json'));
    const refused = await live('stop', s.id);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /LIVE_STATE_CONFLICT/);
    // Usage: exit 2 with the usage text.
    for (const args of [['create'], ['create', 'X', '--latency', 'fast'], ['create', 'X', '--dvr', 'ten'], ['show']]) {
      const r = await live(...args);
      assert.equal(r.code, 2, `live ${args.join(' ')}`);
      assert.match(r.stderr, /usage: smoothcast live/);
    }
    const down = await cli(['live', 'ls', '--server', 'http://127.0.0.1:9', '--token', p.token]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
  });
});
