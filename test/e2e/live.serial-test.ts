// Live end to end: ffmpeg publishes over RTMP (and HTTP push) to a real server; what it serves is checked with
// references we did not write (ffmpeg/ffprobe as HLS and DASH clients, our bmff indexer only for box facts).
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { indexBuffer } from '../../src/media/bmff/indexer.ts';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { createStream, liveAction, playableEvent, publish, segmentsListed, topBoxes } from '../helpers/live.ts';
import { startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { decodeDash, decodeUrl, fetchBytes, fetchText } from '../helpers/verify.ts';

let p: TestPlatform;
before(async () => {
  p = await startTestPlatform();
});
after(() => p?.stop());

const rtmp = (key: string) => `rtmp://127.0.0.1:${p.live!.rtmpPort}/live/${key}`;
const json = async <T>(path: string) => p.get<T>(path);

interface Part {
  duration: number;
  uri: string;
  independent: boolean;
}

function parts(playlist: string): Part[] {
  return playlist
    .split('\n')
    .filter((l) => l.startsWith('#EXT-X-PART:'))
    .map((l) => ({
      duration: Number(/DURATION=([\d.]+)/.exec(l)![1]),
      uri: /URI="([^"]+)"/.exec(l)![1]!,
      independent: l.includes('INDEPENDENT=YES'),
    }));
}

describe('live over RTMP: publishing point, LL-HLS, DASH, Smooth, reconnect, shutdown into the archive', () => {
  it('refuses a wrong key at publish and creates nothing', async () => {
    const before = (await json<{ total: number }>('/api/assets')).total;
    const bad = publish(rtmp('a'.repeat(32)), { seconds: 3, size: '320x240' });
    const r = await bad.exited;
    assert.notEqual(r.code, 0, 'ffmpeg should fail to publish with a wrong key');
    assert.equal((await json<{ total: number }>('/api/assets')).total, before);
  });

  it('plays within 6 s, aligned 2 s keyframes, LL-HLS parts, blocking reload, a second publisher refused', async (t) => {
    const s = await createStream(p, { reconnectWindowSeconds: 20 });
    assert.match(s.ingest.rtmp, /^rtmp:\/\/[^/]+\/live\/[a-z2-7]{32}$/);
    assert.equal(s.state, 'idle');
    const pub = publish(rtmp(s.streamKey), { seconds: 16 });
    const asset = await playableEvent(p, s.id);
    const playableAfter = (Date.now() - pub.startedAt) / 1000;
    t.diagnostic(`playable ${playableAfter.toFixed(2)} s after the publisher started`);
    assert.ok(playableAfter <= 6, `playable after ${playableAfter} s`);
    assert.equal(asset.status, 'live');
    assert.equal((await json<{ state: string }>(`/api/live/${s.id}`)).state, 'started');

    // A second publisher on the same key is refused while the first is live.
    const second = publish(rtmp(s.streamKey), { seconds: 3, size: '320x240' });
    assert.notEqual((await second.exited).code, 0);

    // Let a few segments build up.
    const v0Path = (await fetchText(`${p.url}/v/${asset.id}/master.m3u8`))
      .split('\n')
      .find((l) => l.endsWith('v0.m3u8'));
    await segmentsListed(`${p.url}/v/${asset.id}/${v0Path}`, 3);
    const master = await fetch(`${p.url}${s.playback.hls}`);
    assert.equal(master.status, 200);
    const masterUrl = master.url;
    const mtext = await master.text();
    const variants = mtext.split('\n').filter((l) => l.endsWith('.m3u8') && !l.startsWith('#'));
    const audio = /URI="([^"]+a0\.m3u8)"/.exec(mtext)?.[1];
    assert.equal(variants.length, 5, mtext);
    assert.ok(audio);
    const base = masterUrl.replace(/master\.m3u8$/, '');
    const starts = new Map<string, number[]>();
    for (const uri of [...variants, audio]) {
      const url = base + uri;
      const text = await fetchText(url);
      assert.match(text, /#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES/);
      const target = Number(/PART-TARGET=([\d.]+)/.exec(text)![1]);
      const dir = url.replace(/[^/]+$/, '');
      const init = await fetchBytes(dir + /#EXT-X-MAP:URI="([^"]+)"/.exec(text)![1]);
      const ps = parts(text);
      assert.ok(ps.length >= 6, `${uri}: ${ps.length} parts`);
      for (const part of ps) {
        assert.ok(part.duration <= target + 1e-6, `${uri}: part ${part.uri} of ${part.duration} s > PART-TARGET`);
        const bytes = await fetchBytes(dir + part.uri);
        const ix = indexBuffer(new Uint8Array(Buffer.concat([init, bytes])));
        // One fragment of whole samples; INDEPENDENT exactly when it starts with a keyframe.
        assert.equal(ix.segments.length, 1, part.uri);
        assert.equal(ix.segments[0]!.startsWithKeyframe, part.independent, `${uri} ${part.uri}`);
        if (part.independent && ix.track.kind === 'video') {
          starts.set(uri, [...(starts.get(uri) ?? []), ix.segments[0]!.start / ix.track.timescale]);
        }
      }
    }
    // Every video rendition's keyframes are on the same 2 s grid.
    for (const [uri, list] of starts) {
      for (const k of list) assert.ok(Math.abs(k / 2 - Math.round(k / 2)) < 1e-3, `${uri}: keyframe at ${k} s`);
    }

    // Blocking reload: ask for the next part; the answer comes within 150 ms of the part reaching the file.
    const v0 = base + variants[0]!;
    const file = join(p.dataDir, 'media', 'assets', asset.id, v0.split('/').at(-2)!, 'v0.mp4');
    const text = await fetchText(v0);
    const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[^"]*?(\d+)\.(\d+)\.m4s"/.exec(text)!;
    const sizeBefore = statSync(file).size;
    let landed = 0;
    const watch = setInterval(() => {
      if (!landed && statSync(file).size > sizeBefore) landed = performance.now();
    }, 2);
    const blocked = await fetch(`${v0}?_HLS_msn=${hint[1]}&_HLS_part=${hint[2]}`);
    const answered = performance.now();
    clearInterval(watch);
    assert.equal(blocked.status, 200);
    assert.ok(landed > 0, 'the part landed while the request was held');
    t.diagnostic(`blocking reload answered ${(answered - landed).toFixed(1)} ms after the part landed`);
    assert.ok(answered - landed <= 150, `${answered - landed} ms`);
    assert.match(await blocked.text(), new RegExp(`URI="v0/${hint[1]}\\.${hint[2]}\\.m4s"`));
    // More than two segments ahead is a bad request.
    assert.equal((await fetch(`${v0}?_HLS_msn=${Number(hint[1]) + 3}`)).status, 400);

    // DASH: dynamic; Smooth: live, one moof per 2 s fragment with tfxd and tfrf.
    const mpd = await fetchText(`${p.url}${s.playback.dash}`);
    assert.match(mpd, /type="dynamic"/);
    assert.match(mpd, /<UTCTiming/);
    const smooth = await fetch(`${p.url}${s.playback.smooth}`);
    const manifest = await smooth.text();
    assert.match(manifest, /IsLive="TRUE"/);
    const bitrate = /QualityLevel Index="0" Bitrate="(\d+)"/.exec(manifest)![1];
    const firstT = /<c t="(\d+)"/.exec(manifest)![1];
    const frag = await fetchBytes(
      smooth.url.replace(/Manifest$/, `QualityLevels(${bitrate})/Fragments(video=${firstT})`),
    );
    assert.deepEqual(topBoxes(frag), ['moof', 'mdat']);
    const info = await fetchBytes(
      smooth.url.replace(/Manifest$/, `QualityLevels(${bitrate})/FragmentInfo(video=${firstT})`),
    );
    assert.deepEqual(topBoxes(info), ['moof'], 'FragmentInfo is the moof alone');
    const hex = frag.toString('hex');
    assert.ok(hex.includes('6d1d9b0542d544e680e2141daff757b2'), 'tfxd');
    assert.ok(hex.includes('d4807ef2ca3946958e5426cb9e46a79f'), 'tfrf');

    // The publisher dies; it comes back within the window and the SAME event continues after a discontinuity.
    pub.child.kill('SIGKILL');
    await pub.exited;
    // The ladder finishes what it has (a loaded box takes a few seconds), then the stream waits for the publisher.
    const mid = await until(
      'the stream to wait for its publisher',
      async () => {
        const m = await json<{ state: string; reconnectDeadline: string | null }>(`/api/live/${s.id}`);
        return m.reconnectDeadline ? m : undefined;
      },
      15_000,
    );
    assert.equal(mid.state, 'started');
    const again = publish(rtmp(s.streamKey), { seconds: 6 });
    await until(
      'the continued event to have a discontinuity',
      async () => ((await fetchText(v0)).includes('#EXT-X-DISCONTINUITY\n') ? true : undefined),
      15_000,
    );
    assert.equal((await json<{ currentAssetId: string }>(`/api/live/${s.id}`)).currentAssetId, asset.id);
    await again.exited;

    // Shutdown: within 5 s the playlist ends, the MPD is static, the asset is ready, ffmpeg decodes it whole.
    const t0 = Date.now();
    const down = await liveAction(p, s.id, 'shutdown');
    assert.equal(down.status, 200, await down.clone().text());
    assert.equal(((await down.json()) as { state: string }).state, 'shutdown');
    const ready = await json<AssetJson>(`/api/assets/${asset.id}`);
    assert.equal(ready.status, 'ready');
    assert.ok((await fetchText(v0)).includes('#EXT-X-ENDLIST'));
    assert.match(await fetchText(`${p.url}${ready.playback.dash}`), /type="static"/);
    assert.ok(Date.now() - t0 <= 5000, `${Date.now() - t0} ms`);
    // Pushed: about 16 s less the kill (~11 s of media), then 6 s.
    t.diagnostic(`archive duration ${ready.duration} s`);
    assert.ok(ready.duration! > 12 && ready.duration! < 24, `duration ${ready.duration}`);
    await decodeUrl(`${p.url}${ready.playback.hls}`);
    const dash = await decodeDash(`${p.url}${ready.playback.dash!}`);
    assert.ok(dash.every((d) => d.frames > 0));
  });

  it('restarts a ladder ffmpeg that dies within a second; the event continues after a discontinuity', async (t) => {
    // A 4 s DVR window: the live manifests drop what is older (HLS keeps its 3-target-duration minimum).
    const s = await createStream(p, { dvrWindowSeconds: 4 });
    const pub = publish(rtmp(s.streamKey), { seconds: 14, size: '640x360' });
    const a = await playableEvent(p, s.id);
    const pid = p.live!.ladderPid(s.id)!;
    assert.ok(pid > 0);
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    const next = await until(
      'a new ladder ffmpeg',
      () => {
        const n = p.live!.ladderPid(s.id);
        return n !== undefined && n !== pid ? n : undefined;
      },
      10_000,
    );
    t.diagnostic(`a new ladder ffmpeg (pid ${next}) ${Date.now() - killedAt} ms after the kill`);
    assert.ok(Date.now() - killedAt <= 2000, 'restarted within about a second');
    const master = await fetch(`${p.url}/v/${a.id}/master.m3u8`);
    const v0 = `${master.url.replace(/master\.m3u8$/, '')}${(await master.text()).split('\n').find((l) => l.endsWith('v0.m3u8'))}`;
    await until(
      'the playlist to continue after a discontinuity',
      async () => ((await fetchText(v0)).includes('#EXT-X-DISCONTINUITY\n') ? true : undefined),
      15_000,
    );
    assert.equal((await json<{ state: string; reconnectDeadline: unknown }>(`/api/live/${s.id}`)).state, 'started');
    await until(
      'the DVR window to slide',
      async () => {
        const seq = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(await fetchText(v0))![1]);
        return seq > 0 ? seq : undefined;
      },
      15_000,
    );
    assert.match(await fetchText(`${p.url}/v/${a.id}/manifest.mpd`), /timeShiftBufferDepth="PT4S"/);
    await pub.exited;
    await liveAction(p, s.id, 'shutdown');
    // The archive is the whole event, from its first segment.
    const archive = await fetchText(v0);
    assert.match(archive, /#EXT-X-MEDIA-SEQUENCE:0\n/);
    assert.match(archive, /\nv0\/0\.m4s\n/);
    await decodeUrl(`${p.url}${(await json<AssetJson>(`/api/assets/${a.id}`)).playback.hls}`);
  });

  it('answers a 1080p publish with transcode: false (the input stored as is, near-zero CPU)', async () => {
    const s = await createStream(p, { transcode: false });
    const pub = publish(rtmp(s.streamKey), { seconds: 6, size: '1920x1080' });
    const a = await playableEvent(p, s.id);
    assert.deepEqual(
      a.renditions.map((r) => [r.id, r.width, r.height]),
      [
        ['v0', 1920, 1080],
        ['a0', null, null],
      ],
    );
    await pub.exited;
    await liveAction(p, s.id, 'shutdown');
    const ready = await json<AssetJson>(`/api/assets/${a.id}`);
    assert.equal(ready.status, 'ready');
    // What was pushed (6 s), within one segment.
    assert.ok(Math.abs(ready.duration! - 6) <= 2, `duration ${ready.duration}`);
    await decodeUrl(`${p.url}${ready.playback.hls}`);
  });
});

describe('live over HTTP push', () => {
  it('stores a Smooth push (ffmpeg -f ismv) track by track and plays it; a bad key is 403 with nothing created', async () => {
    const before = (await json<{ total: number }>('/api/assets')).total;
    const bad = await fetch(`${p.url}/ingest/${'b'.repeat(32)}.isml/Streams(x)`, { method: 'POST', body: 'x' });
    assert.equal(bad.status, 403);
    assert.equal((await json<{ total: number }>('/api/assets')).total, before);
    const s = await createStream(p);
    const pub = publish(`${s.ingest.http}.isml/Streams(cam)`, { seconds: 8, size: '640x360', format: 'ismv' });
    assert.equal((await pub.exited).code, 0);
    const cur = await json<{ currentAssetId: string }>(`/api/live/${s.id}`);
    const live = await json<AssetJson>(`/api/assets/${cur.currentAssetId}`);
    assert.deepEqual(
      live.renditions.map((r) => r.id),
      ['v0', 'a0'],
    );
    // Bitrates measured from the pushed fragments, not the nominal placeholder.
    assert.ok(
      live.renditions.every((r) => r.bitrate > 10_000 && r.bitrate !== 1_000_000),
      JSON.stringify(live.renditions),
    );
    await liveAction(p, s.id, 'shutdown');
    const ready = await json<AssetJson>(`/api/assets/${cur.currentAssetId}`);
    assert.equal(ready.status, 'ready');
    assert.ok(Math.abs(ready.duration! - 8) < 2, `duration ${ready.duration}`);
    await decodeUrl(`${p.url}${ready.playback.hls}`);
  });
});

describe('push targets', () => {
  it('forwards a live stream to a second smoothcast, which plays the same stream; a bad URL is refused', async () => {
    const other = await startTestPlatform();
    try {
      const theirs = await createStream(other);
      const ours = await createStream(p);
      const bad = await p.api(`/api/live/${ours.id}/targets`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: 'file:///etc/passwd' }),
      });
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'LIVE_TARGET_INVALID');
      const added = await p.api(`/api/live/${ours.id}/targets`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ url: theirs.ingest.rtmp }),
      });
      assert.equal(added.status, 201);
      const pub = publish(rtmp(ours.streamKey), { seconds: 10, size: '640x360' });
      const forwarded = await until(
        'the second server to play the forwarded stream',
        async () => {
          const s = await other.get<{ currentAssetId: string | null; state: string }>(`/api/live/${theirs.id}`);
          const a = s.currentAssetId ? await other.get<AssetJson>(`/api/assets/${s.currentAssetId}`) : undefined;
          return a?.playable ? { s, a } : undefined;
        },
        25_000,
      );
      assert.equal(forwarded.s.state, 'started');
      const mine = await json<{ targets: { state: string; url: string }[] }>(`/api/live/${ours.id}`);
      assert.equal(mine.targets[0]!.state, 'pushing');
      assert.ok(!mine.targets[0]!.url.includes(theirs.streamKey), 'the target key is masked');
      const m = await fetchText(`${other.url}/v/${forwarded.a.id}/master.m3u8`);
      assert.match(m, /#EXT-X-STREAM-INF/);
      await pub.exited;
    } finally {
      await other.stop();
    }
  });
});

describe('live over SRT', () => {
  it('takes MPEG-TS over SRT with the stream passphrase into the ladder; a wrong passphrase is refused', async () => {
    const s = await createStream(p);
    assert.ok(s.ingest.srt, 'the stream has an SRT URL');
    const wrong = s.ingest.srt!.replace(/passphrase=[^&]+/, 'passphrase=wrongwrongwrong');
    const bad = publish(`${wrong}&connect_timeout=2000`, { seconds: 3, size: '320x240', format: 'mpegts' });
    assert.notEqual((await bad.exited).code, 0, 'a wrong passphrase must be refused');
    assert.equal((await json<{ currentAssetId: string | null }>(`/api/live/${s.id}`)).currentAssetId, null);
    const pub = publish(s.ingest.srt!, { seconds: 8, size: '640x360', format: 'mpegts' });
    const a = await playableEvent(p, s.id);
    assert.equal(a.status, 'live');
    assert.ok((Date.now() - pub.startedAt) / 1000 <= 6, 'playable within 6 s');
    await pub.exited;
    await liveAction(p, s.id, 'shutdown');
    const ready = await json<AssetJson>(`/api/assets/${a.id}`);
    assert.equal(ready.status, 'ready');
    await decodeUrl(`${p.url}${ready.playback.hls}`);
  });
});

describe('live over DASH-IF CMAF ingest', () => {
  it('takes one POST per track (video and audio paths) into one event that plays and archives', async () => {
    const s = await createStream(p);
    const cmaf = ['-f', 'mp4', '-movflags', '+frag_keyframe+empty_moov+default_base_moof+cmaf'];
    // One encoder process per track, as a DASH-IF ingest source sends them (one ffmpeg with two HTTP outputs
    // stalls before its first byte in ffmpeg 5.1).
    const push = async (args: string[]) => {
      const { spawn } = await import('node:child_process');
      const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await new Promise((r) => child.on('close', r));
      clearTimeout(kill);
      assert.equal(code, 0, stderr);
    };
    await Promise.all([
      push([
        ...['-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30', '-t', '8'],
        ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-keyint_min', '60'],
        ...cmaf,
        `${s.ingest.http}/Streams(video).cmfv`,
      ]),
      push([
        // Audio alone has no keyframes to cut at: 2 s fragments, as an ingest encoder sends them.
        ...['-f', 'lavfi', '-i', 'sine=sample_rate=48000', '-t', '8', '-c:a', 'aac', '-frag_duration', '2000000'],
        ...cmaf,
        `${s.ingest.http}/Streams(audio).cmfa`,
      ]),
    ]);
    const cur = await json<{ currentAssetId: string }>(`/api/live/${s.id}`);
    const live = await json<AssetJson>(`/api/assets/${cur.currentAssetId}`);
    assert.deepEqual(
      live.renditions.map((r) => [r.id, r.codecs !== null]),
      [
        ['v0', true],
        ['a0', true],
      ],
    );
    await liveAction(p, s.id, 'shutdown');
    const ready = await json<AssetJson>(`/api/assets/${cur.currentAssetId}`);
    assert.equal(ready.status, 'ready');
    assert.ok(Math.abs(ready.duration! - 8) < 2, `duration ${ready.duration}`);
    await decodeUrl(`${p.url}${ready.playback.hls}`);
  });
});

describe('live stream deletion', () => {
  it('finalises the event a stopped stream still holds into its archive, then deletes the stream', async () => {
    const s = await createStream(p);
    const pub = publish(rtmp(s.streamKey), { seconds: 5, size: '320x240' });
    const a = await playableEvent(p, s.id);
    assert.equal((await liveAction(p, s.id, 'stop')).status, 200);
    await pub.exited;
    // A live event cannot be deleted as an asset while its stream holds it.
    assert.equal((await p.api(`/api/assets/${a.id}`, { method: 'DELETE' })).status, 409);
    assert.equal((await p.api(`/api/live/${s.id}`, { method: 'DELETE' })).status, 204);
    assert.equal((await p.api(`/api/live/${s.id}`)).status, 404);
    const archived = await json<AssetJson>(`/api/assets/${a.id}`);
    assert.equal(archived.status, 'ready');
  });
});
