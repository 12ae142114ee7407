// Publish while encoding: a 60 s source becomes playable after its first segments; a viewer who starts then
// follows the growing (EVENT) playlist and decodes every segment in order until ENDLIST, with no gap.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { cli, settled, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';
import { fetchBytes, fetchText, parseMediaPlaylist, parseMultivariant } from '../helpers/verify.ts';

describe('publish while encoding', () => {
  let p: TestPlatform;
  let source: string;

  before(async () => {
    p = await startTestPlatform();
    source = await h264Clip({ seconds: 60, width: 1280, height: 720 });
  });

  after(async () => {
    await p?.stop();
  });

  it('plays a growing HLS playlist from the first segment through ENDLIST', async () => {
    const r = await cli(['import', '--data', p.dataDir, '--json', '--no-wait', source]);
    assert.equal(r.code, 0, r.stderr);
    const { id } = JSON.parse(r.stdout) as AssetJson;
    const early = await until(
      'playable',
      async () => {
        const a = await p.get<AssetJson>(`/api/assets/${id}`);
        assert.notEqual(a.status, 'failed', JSON.stringify(a.error));
        return a.playable ? a : undefined;
      },
      300_000,
    );
    assert.equal(early.status, 'processing', 'the asset must be playable before the encode ends');
    assert.equal(early.playback.dash, null, 'DASH waits for the end');

    const masterUrl = new URL(early.playback.hls!, p.url).href;
    // The lowest rung, as a player on a slow link would start.
    const variants = parseMultivariant(await fetchText(masterUrl), masterUrl).video;
    const url = variants.at(-1)!.uri;

    // A real decoder consumes init + segments in order as one fMP4 byte stream.
    const decoder = spawn('ffmpeg', ['-hide_banner', '-v', 'error', '-f', 'mp4', '-i', 'pipe:0', '-f', 'null', '-']);
    let decoderErr = '';
    decoder.stderr.on('data', (d) => {
      decoderErr += d;
    });
    const decoded = new Promise<number | null>((resolve) => decoder.on('close', resolve));

    let next = 0;
    let sawEvent = false;
    let initWritten = false;
    let reloads = 0;
    for (;;) {
      const pl = parseMediaPlaylist(await fetchText(url));
      reloads++;
      if (!pl.endList) {
        sawEvent = true;
        assert.equal(pl.playlistType, 'EVENT');
      }
      if (!initWritten) {
        decoder.stdin.write(await fetchBytes(new URL(pl.map, url).href));
        initWritten = true;
      }
      for (; next < pl.segments.length; next++) {
        const bytes = await fetchBytes(new URL(pl.segments[next]!.uri, url).href);
        if (!decoder.stdin.write(bytes)) await new Promise((r) => decoder.stdin.once('drain', r));
      }
      if (pl.endList) {
        assert.equal(pl.playlistType, 'VOD');
        break;
      }
      // Reload as a player does: after about one target duration (RFC 8216 §6.3.4), bounded by a deadline.
      await new Promise((r) => setTimeout(r, 500));
      assert.ok(reloads < 2000, 'the playlist never ended');
    }
    decoder.stdin.end();
    assert.equal(await decoded, 0, decoderErr);
    assert.equal(decoderErr.trim(), '', 'the decoder reported errors');
    assert.ok(sawEvent, 'the playlist was seen growing (EVENT, no ENDLIST) before it ended');
    assert.ok(next >= 29, `all ~30 segments of 60 s were decoded (got ${next})`);
    const done = await settled(p, id);
    assert.equal(done.status, 'ready');
    assert.ok(Math.abs((done.duration ?? 0) - 60) < 0.1, `duration ${done.duration}`);
  });
});
