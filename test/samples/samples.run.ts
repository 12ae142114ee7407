// Real-world sample files (../shared/media, see its CATALOG.md) through the whole pipeline:
//   npm run test:samples -- ../shared/media
// Every video ends ready, playable and correctly oriented (its frame compared with ffmpeg's own decode of the
// source); audio-only files end ready as audio-only assets (HLS and DASH decode to the source's duration, an
// M4A download, a poster); a file with subtitle tracks carries each as a text track; a truncated file ends either
// ready with what could be decoded or failed with a clear reason — never a hang. Each file's outcome is printed.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { ffprobeJson } from '../helpers/media.ts';
import { cli, settled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import {
  decodeDash,
  decodeUrl,
  downloadRendition,
  fetchText,
  framePsnr,
  parseMultivariant,
} from '../helpers/verify.ts';

const dir = resolve(process.argv[2] ?? '../shared/media');
const MEDIA = /\.(mp4|mov|mkv|webm|flv|ts|m2ts|avi|mxf|mpg|mpeg|3gp|wmv|ogv|flac|mp3|wav|m4a|aac|ogg|opus)$/i;
const files = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => MEDIA.test(f))
      .sort()
  : [];

type Expect = 'ready' | 'audio' | 'ready-or-refused';
function expectation(name: string): Expect {
  if (/audio_only|\.(flac|mp3|wav|m4a|aac|ogg|opus)$/i.test(name)) return 'audio';
  if (/TRUNCATED|BROKEN/i.test(name)) return 'ready-or-refused';
  return 'ready';
}

describe(`real-world samples in ${dir}`, { skip: files.length === 0 ? `no media files in ${dir}` : false }, () => {
  let p: TestPlatform;
  const results = new Map<string, AssetJson>();

  before(async () => {
    p = await startTestPlatform();
    const r = await cli(['import', '--data', p.dataDir, '--json', '--no-wait', ...files.map((f) => join(dir, f))]);
    assert.equal(r.code, 0, r.stderr);
    const queued = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AssetJson);
    for (const [i, q] of queued.entries()) {
      const a = await settled(p, q.id, 600_000);
      results.set(files[i]!, a);
      const outcome =
        a.status === 'ready'
          ? `ready ${a.duration?.toFixed(2)} s, ${a.renditions.map((x) => (x.width ? `${x.width}x${x.height}` : x.id)).join(' ')}`
          : `failed ${a.error?.code}: ${a.error?.message}`;
      console.log(`# ${files[i]}: ${outcome}`);
    }
  });
  after(async () => {
    await p?.stop();
  });

  for (const f of files) {
    it(`${f} → ${expectation(f)}`, async () => {
      const a = results.get(f)!;
      const want = expectation(f);
      if (want === 'audio') {
        assert.equal(a.status, 'ready', JSON.stringify(a.error));
        assert.equal(a.mediaType, 'audio');
        assert.ok(a.renditions.every((r) => r.type === 'audio'));
        const probed = await ffprobeJson(join(dir, f), ['-show_format']);
        const declared = Number((probed.format as { duration?: string } | undefined)?.duration);
        // AAC priming and padding: at most a few frames of 1024 samples.
        assert.ok(Math.abs((a.duration ?? 0) - declared) < 0.1, `duration ${a.duration} vs the source's ${declared}`);
        await decodeUrl(new URL(a.playback.hls!, p.url).href);
        assert.equal((await decodeDash(new URL(a.playback.dash!, p.url).href)).length, a.renditions.length);
        assert.match(a.playback.downloads[0]?.url ?? '', /\.m4a$/);
        assert.equal((await fetch(new URL(a.playback.poster!, p.url))).status, 200);
        return;
      }
      if (want === 'ready-or-refused' && a.status === 'failed') {
        assert.ok(
          ['MEDIA_TRUNCATED', 'MEDIA_DECODE_FAILED', 'MEDIA_UNREADABLE'].includes(a.error!.code),
          a.error!.code,
        );
        return;
      }
      assert.equal(a.status, 'ready', JSON.stringify(a.error));
      // Text subtitle tracks of the source (the SYNTHETIC MKV: an SRT and an ASS track) become text tracks.
      const subs = ((await ffprobeJson(join(dir, f), ['-show_streams'])).streams as { codec_type?: string }[]).filter(
        (x) => x.codec_type === 'subtitle',
      );
      assert.equal(a.captions.length, subs.length, `captions ${JSON.stringify(a.captions)}`);
      for (const c of a.captions) {
        const vtt = await fetchText(new URL(c.url!, p.url).href);
        assert.match(vtt, /^WEBVTT/);
        assert.ok(c.cues > 0);
      }
      const masterUrl = new URL(a.playback.hls!, p.url).href;
      const { video, audio } = parseMultivariant(await fetchText(masterUrl), masterUrl);
      for (const v of video) await decodeUrl(v.uri);
      for (const x of audio) await decodeUrl(x);
      const dash = await decodeDash(new URL(a.playback.dash!, p.url).href);
      assert.equal(dash.filter((x) => x.type === 'video' || x.type === 'audio').length, a.renditions.length);
      // ffmpeg's DASH demuxer reads each text AdaptationSet as a subtitle stream.
      assert.equal(dash.filter((x) => x.type === 'subtitle').length, a.captions.length);
      if (want === 'ready') {
        const top = a.renditions.find((r) => r.id === 'v0')!;
        const t = Math.min(1, (a.duration ?? 1) / 2);
        const local = join(mkdtempSync(join(tmpdir(), 'sc-v0-')), 'v0.mp4');
        await downloadRendition(video[0]!.uri, local);
        const psnr = await framePsnr(join(dir, f), local, t, top.width!, top.height!);
        assert.ok(psnr > 22, `orientation/aspect: PSNR ${psnr.toFixed(1)} dB against ffmpeg's decode of the source`);
      }
    });
  }
});
