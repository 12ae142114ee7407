// End to end: files of every shape imported through the CLI into a running server, encoded, then played back
// from the server's URLs by ffmpeg/ffprobe (HLS and DASH clients we did not write).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { cli, settled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { badSources, type GoodSource, goodSources } from '../helpers/sources.ts';
import {
  decodeDash,
  decodeUrl,
  downloadRendition,
  fetchText,
  framePsnr,
  packets,
  parseMediaPlaylist,
  parseMultivariant,
  segmentPackets,
  span,
} from '../helpers/verify.ts';

describe('VOD: import → encode → HLS and DASH from one CMAF file per rendition', () => {
  let p: TestPlatform;
  const ready = new Map<string, { src: GoodSource; asset: AssetJson }>();
  let bad: Awaited<ReturnType<typeof badSources>> = [];
  const badAssets = new Map<string, AssetJson>();

  before(async () => {
    p = await startTestPlatform();
    const good = await goodSources();
    bad = await badSources(mkdtempSync(join(tmpdir(), 'sc-bad-')));
    const files = [...good.map((g) => g.file), ...bad.map((b) => b.file)];
    const r = await cli(['import', '--data', p.dataDir, '--json', '--no-wait', ...files]);
    assert.equal(r.code, 0, r.stderr);
    const queued = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AssetJson);
    assert.equal(queued.length, files.length);
    for (const [i, q] of queued.entries()) {
      assert.equal(q.status, 'queued');
      const a = await settled(p, q.id);
      const g = good[i];
      if (g) ready.set(g.name, { src: g, asset: a });
      else badAssets.set(bad[i - good.length]!.name, a);
    }
  });

  after(async () => {
    await p?.stop();
  });

  it('ends every good source ready, with an aligned ladder', () => {
    for (const [name, { asset }] of ready) {
      assert.equal(asset.status, 'ready', `${name}: ${JSON.stringify(asset.error)}`);
      assert.equal(asset.playable, true, name);
      assert.ok(asset.playback.hls && asset.playback.dash && asset.playback.poster, name);
      const video = asset.renditions.filter((r) => r.type === 'video');
      assert.ok(video.length >= 1, name);
      for (const v of video) {
        assert.equal((v.width ?? 1) % 2, 0, `${name}: even width`);
        assert.equal((v.height ?? 1) % 2, 0, `${name}: even height`);
        assert.match(v.codecs ?? '', /^avc1\.[0-9A-F]{6}$/, name);
      }
      const audio = asset.renditions.filter((r) => r.type === 'audio');
      assert.equal(audio.length, ready.get(name)!.src.audio ? 1 : 0, `${name}: audio renditions`);
      for (const a of audio) assert.equal(a.codecs, 'mp4a.40.2', name);
    }
  });

  it('serves HLS that ffmpeg decodes without error, every rendition, within one frame of the source', async () => {
    for (const [name, { src, asset }] of ready) {
      const masterUrl = new URL(asset.playback.hls!, p.url).href;
      const master = await fetchText(masterUrl);
      const { video, audio } = parseMultivariant(master, masterUrl);
      assert.equal(video.length, asset.renditions.filter((r) => r.type === 'video').length, name);
      assert.equal(audio.length, src.audio ? 1 : 0, name);
      const srcVideo = await packets(src.file);
      const frame = srcVideo.length > 1 ? span(srcVideo) / srcVideo.length : 0.04;
      for (const v of video) {
        assert.match(v.attrs, /BANDWIDTH=\d+/);
        assert.match(v.attrs, /AVERAGE-BANDWIDTH=\d+/);
        assert.match(v.attrs, /CODECS="avc1\.[0-9A-F]{6}/);
        assert.match(v.attrs, /RESOLUTION=\d+x\d+/);
        assert.match(v.attrs, /FRAME-RATE=[0-9.]+/);
        await decodeUrl(v.uri);
        const served = await packets(v.uri);
        assert.ok(
          Math.abs(span(served) - span(srcVideo)) <= frame + 1e-3,
          `${name}: served ${span(served)} s vs source ${span(srcVideo)} s (one frame = ${frame})`,
        );
      }
      for (const a of audio) await decodeUrl(a);
      // The whole multivariant playlist as a player sees it (ffmpeg picks streams from every variant).
      await decodeUrl(masterUrl, ['-map', '0:v:0']);
    }
  });

  it('serves a DASH MPD that ffmpeg decodes without error, every frame of every rendition', async () => {
    for (const [name, { src, asset }] of ready) {
      const url = new URL(asset.playback.dash!, p.url).href;
      const mpd = await fetchText(url);
      assert.match(mpd, /type="static"/, name);
      assert.match(mpd, /<SegmentTimeline>/, name);
      const streams = await decodeDash(url).catch((err: Error) => {
        throw new Error(`${name}: ${err.message}`);
      });
      assert.equal(streams.length, asset.renditions.length, name);
      const sourceFrames = (await packets(src.file)).length;
      for (const v of streams.filter((x) => x.type === 'video')) {
        // Every source frame comes out once (none of these exceeds 60 fps), give or take the one frame the
        // constant-rate conversion may repeat at the start; a variable-rate source comes out at its nominal rate.
        assert.ok(v.frames > 0, name);
        if (!/variable/.test(name)) {
          assert.ok(
            Math.abs(v.frames - sourceFrames) <= 1,
            `${name}: ${v.frames} frames through DASH, ${sourceFrames} in`,
          );
        }
      }
    }
  });

  it('has identical segment boundaries across renditions, each segment starting with a keyframe', async () => {
    for (const [name, { asset }] of ready) {
      const masterUrl = new URL(asset.playback.hls!, p.url).href;
      const { video } = parseMultivariant(await fetchText(masterUrl), masterUrl);
      const lists = await Promise.all(
        video.map(async (v) => ({ url: v.uri, pl: parseMediaPlaylist(await fetchText(v.uri)) })),
      );
      const [first] = lists;
      assert.ok(first, name);
      for (const { pl } of lists) {
        assert.ok(pl.version >= 7, name);
        assert.equal(pl.playlistType, 'VOD', name);
        assert.equal(pl.endList, true, name);
        assert.deepEqual(
          pl.segments.map((s) => s.duration),
          first.pl.segments.map((s) => s.duration),
          `${name}: EXTINF lists differ between renditions`,
        );
        for (const s of pl.segments)
          assert.ok(Math.round(s.duration) <= pl.targetDuration, `${name}: RFC 8216 §4.3.3.1`);
      }
      for (const { url, pl } of lists) {
        let expectedStart: number | null = null;
        for (const s of pl.segments) {
          const ps = await segmentPackets(new URL(pl.map, url).href, new URL(s.uri, url).href);
          assert.ok(ps[0]?.key, `${name}: ${s.uri} of ${url} does not start with a keyframe`);
          // Decode times: ffmpeg shifts presentation times of each standalone file by its own largest negative
          // composition offset (CMAF trun v1), so pts are not comparable across separately probed segments.
          const start = ps[0]!.dts;
          if (expectedStart !== null) assert.ok(Math.abs(start - expectedStart) < 1e-3, `${name}: gap before ${s.uri}`);
          expectedStart = start + s.duration;
        }
      }
    }
  });

  it('shows the picture the right way up and with the right aspect ratio', async () => {
    for (const [name, { src, asset }] of ready) {
      const top = asset.renditions.find((r) => r.id === 'v0')!;
      assert.equal(top.height! > top.width!, src.portrait, `${name}: ${top.width}x${top.height}`);
      const masterUrl = new URL(asset.playback.hls!, p.url).href;
      const [v0] = parseMultivariant(await fetchText(masterUrl), masterUrl).video;
      const local = join(mkdtempSync(join(tmpdir(), 'sc-v0-')), 'v0.mp4');
      await downloadRendition(v0!.uri, local);
      // The source decoded by ffmpeg (which applies the display matrix) against what we serve.
      const psnr = await framePsnr(src.file, local, 1, top.width!, top.height!);
      assert.ok(psnr > 25, `${name}: PSNR ${psnr} dB against the source`);
    }
  });

  it('ends bad input failed with a clear reason and keeps serving', async () => {
    for (const b of bad) {
      const a = badAssets.get(b.name)!;
      assert.equal(a.status, 'failed', `${b.name} should fail`);
      assert.ok(a.error && b.codes.includes(a.error.code), `${b.name}: ${JSON.stringify(a.error)}`);
      assert.ok(a.error.message.length > 10, b.name);
      assert.equal(a.playable, false);
    }
    const health = await p.get<{ ok: boolean }>('/healthz');
    assert.equal(health.ok, true);
    const { assets } = await p.get<{ assets: AssetJson[] }>('/api/assets');
    assert.equal(assets.length, ready.size + bad.length);
  });
});
