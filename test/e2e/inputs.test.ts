// End to end: inputs as people have them — files written to a pipe (no duration in any header), a header that lies
// about the duration, several audio languages, audio-only music — imported into a running server, then played
// back by ffmpeg/ffprobe from the server's HLS, DASH and Smooth URLs.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { AssetJson } from '../../src/roles/api/present.ts';
import {
  audioOnlySources,
  lyingDurationMkv,
  multiAudioMkv,
  type PipedSource,
  pipedSources,
} from '../helpers/inputs.ts';
import { ffprobeJson } from '../helpers/media.ts';
import { importSettled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { badSources } from '../helpers/sources.ts';
import { decodeDash, decodeUrl, fetchBytes, fetchText, packets, parseMultivariant } from '../helpers/verify.ts';

const run = promisify(execFile);
const RATE = 48_000;

/** Decodes the first audio stream of a URL or file to mono 16-bit PCM at 48 kHz (ffmpeg as the reference). */
async function pcm(input: string): Promise<Int16Array> {
  const { stdout, stderr } = await run(
    'ffmpeg',
    ['-hide_banner', '-v', 'error', '-i', input, '-map', '0:a:0', '-ac', '1', '-ar', String(RATE), '-f', 's16le', '-'],
    { encoding: 'buffer', timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
  );
  if (stderr.toString().trim()) throw new Error(`ffmpeg reported errors decoding ${input}:\n${stderr.toString()}`);
  const copy = Buffer.from(stdout);
  return new Int16Array(copy.buffer, copy.byteOffset, copy.length / 2);
}

const seconds = (s: Int16Array) => s.length / RATE;

/**
 * The frequency of a pure tone: rising crossings (with hysteresis, so the codec's noise around silence does not
 * count) over the time between the first and the last of them.
 */
function toneFrequency(s: Int16Array, threshold = 1000): number {
  let first = -1;
  let last = -1;
  let n = 0;
  let low = false;
  for (let i = 0; i < s.length; i++) {
    const x = s[i]!;
    if (x < -threshold) low = true;
    else if (low && x > threshold) {
      low = false;
      if (first < 0) first = i;
      last = i;
      n++;
    }
  }
  assert.ok(n > 10, 'no tone in the decoded audio');
  return ((n - 1) * RATE) / (last - first);
}

/** Attribute `name` of an HLS tag line or XML element text. */
function attr(line: string, name: string): string | undefined {
  return new RegExp(`[\\s,]${name}="?([^",>]*)"?`).exec(line)?.[1];
}

function abs(p: TestPlatform, url: string | null): string {
  assert.ok(url, 'a playback URL');
  return new URL(url, p.url).href;
}

describe('inputs as people have them: piped files, lying headers, several languages, audio only', () => {
  let p: TestPlatform;
  let piped: PipedSource[];
  const pipedAssets = new Map<string, AssetJson>();
  let lying: Awaited<ReturnType<typeof lyingDurationMkv>>;
  let lyingAsset: AssetJson;
  let truncatedAsset: AssetJson;
  let truncatedCodes: readonly string[];
  let multi: Awaited<ReturnType<typeof multiAudioMkv>>;
  let multiAsset: AssetJson;
  let music: Awaited<ReturnType<typeof audioOnlySources>>;
  let mp3Asset: AssetJson;
  let flacAsset: AssetJson;

  before(async () => {
    p = await startTestPlatform({ encode: { preset: 'ultrafast' } });
    const truncated = (await badSources(mkdtempSync(join(tmpdir(), 'sc-bad-')))).find((b) => b.name === 'truncated');
    assert.ok(truncated, 'the truncated MP4 of badSources');
    truncatedCodes = truncated.codes;
    [piped, lying, multi, music] = await Promise.all([
      pipedSources(),
      lyingDurationMkv(),
      multiAudioMkv(),
      audioOnlySources(),
    ]);
    const assets = await Promise.all([
      ...piped.map((s) => importSettled(p, s.file)),
      importSettled(p, lying.file),
      importSettled(p, truncated.file),
      importSettled(p, multi.file),
      importSettled(p, music.mp3),
      importSettled(p, music.flac),
    ]);
    for (const [i, s] of piped.entries()) pipedAssets.set(s.name, assets[i]!);
    const rest = assets.slice(piped.length);
    const next = () => {
      const a = rest.shift();
      assert.ok(a);
      return a;
    };
    lyingAsset = next();
    truncatedAsset = next();
    multiAsset = next();
    mp3Asset = next();
    flacAsset = next();
  });

  after(async () => {
    await p?.stop();
  });

  describe('written to a pipe: no duration in any header', () => {
    it('really has no duration for ffprobe (the precondition)', async () => {
      for (const s of piped) {
        const info = (await ffprobeJson(s.file, ['-show_entries', 'format=duration:stream=duration:stream_tags'])) as {
          format: { duration?: string };
          streams: { duration?: string; tags?: Record<string, string> }[];
        };
        assert.equal(info.format.duration, undefined, `${s.name}: format duration`);
        assert.equal(info.streams.length, 2, s.name);
        for (const st of info.streams) {
          assert.equal(st.duration, undefined, `${s.name}: stream duration`);
          assert.equal(st.tags?.DURATION, undefined, `${s.name}: DURATION tag`);
        }
      }
    });

    it('ends ready with the true duration (within a frame), noting that it was found by reading', () => {
      for (const s of piped) {
        const a = pipedAssets.get(s.name)!;
        assert.equal(a.status, 'ready', `${s.name}: ${JSON.stringify(a.error)}`);
        assert.ok(a.duration !== null, s.name);
        assert.ok(Math.abs(a.duration - s.seconds) <= 1 / s.fps + 1e-6, `${s.name}: duration ${a.duration}`);
        assert.ok(
          a.notes.some((n) => /duration/i.test(n) && /read/i.test(n)),
          `${s.name}: notes ${JSON.stringify(a.notes)}`,
        );
      }
    });

    it('plays every frame through HLS and DASH', async () => {
      for (const s of piped) {
        const a = pipedAssets.get(s.name)!;
        const sourceFrames = (await packets(s.file)).length;
        assert.ok(Math.abs(sourceFrames - s.seconds * s.fps) <= 1, `${s.name}: ${sourceFrames} source frames`);
        const masterUrl = abs(p, a.playback.hls);
        const { video, audio } = parseMultivariant(await fetchText(masterUrl), masterUrl);
        assert.ok(video.length >= 1 && audio.length === 1, s.name);
        for (const v of video) {
          await decodeUrl(v.uri);
          const served = (await packets(v.uri)).length;
          assert.ok(
            Math.abs(served - sourceFrames) <= 1,
            `${s.name}: ${served} frames in ${v.uri}, ${sourceFrames} in`,
          );
        }
        await decodeUrl(audio[0]!);
        const dash = await decodeDash(abs(p, a.playback.dash));
        assert.equal(dash.length, a.renditions.length, s.name);
        for (const v of dash.filter((x) => x.type === 'video')) {
          assert.ok(Math.abs(v.frames - sourceFrames) <= 1, `${s.name}: ${v.frames} frames through DASH`);
        }
      }
    });
  });

  describe('a header that lies about the duration', () => {
    it('says one hour for ffprobe (the precondition)', async () => {
      const info = (await ffprobeJson(lying.file, ['-show_entries', 'format=duration'])) as {
        format: { duration?: string };
      };
      assert.ok(Math.abs(Number(info.format.duration) - lying.claimed) < 1, info.format.duration);
    });

    it('ends ready with the true duration, not MEDIA_TRUNCATED', async () => {
      assert.equal(lyingAsset.status, 'ready', JSON.stringify(lyingAsset.error));
      assert.ok(lyingAsset.duration !== null);
      assert.ok(
        Math.abs(lyingAsset.duration - lying.seconds) <= 1 / lying.fps + 1e-6,
        `duration ${lyingAsset.duration}, true ${lying.seconds}`,
      );
      const masterUrl = abs(p, lyingAsset.playback.hls);
      const [v] = parseMultivariant(await fetchText(masterUrl), masterUrl).video;
      const frames = (await packets(v!.uri)).length;
      assert.ok(Math.abs(frames - lying.seconds * lying.fps) <= 1, `${frames} frames served`);
    });

    it('still fails a file that is really cut short (moov says 10 s, 40% of the bytes)', () => {
      assert.equal(truncatedAsset.status, 'failed');
      assert.ok(
        truncatedAsset.error && truncatedCodes.includes(truncatedAsset.error.code),
        JSON.stringify(truncatedAsset.error),
      );
    });
  });

  describe('three audio languages', () => {
    it('has one audio rendition per track with its language, default and roles', () => {
      assert.equal(multiAsset.status, 'ready', JSON.stringify(multiAsset.error));
      const audio = multiAsset.renditions.filter((r) => r.type === 'audio');
      assert.deepEqual(
        audio.map((r) => r.id),
        ['a0', 'a1', 'a2'],
      );
      assert.deepEqual(
        audio.map((r) => r.language),
        multi.tracks.map((t) => t.language),
      );
      assert.deepEqual(
        audio.map((r) => r.default),
        multi.tracks.map((t) => t.isDefault),
      );
      for (const [i, t] of multi.tracks.entries()) {
        const r = audio[i]!;
        for (const role of t.roles) assert.ok(r.roles.includes(role), `${r.id}: roles ${JSON.stringify(r.roles)}`);
        if (t.isDefault) assert.deepEqual(r.roles, ['main']);
        assert.ok(r.label, `${r.id}: a label`);
      }
      assert.equal(audio[0]!.label, 'English');
      assert.equal(audio[1]!.label, 'French');
      assert.match(audio[2]!.label ?? '', /^Spanish/);
      assert.equal(new Set(audio.map((r) => r.label)).size, 3, 'distinct labels');
    });

    it('lists three AUDIO renditions in the HLS master, exactly one DEFAULT=YES (French)', async () => {
      const masterUrl = abs(p, multiAsset.playback.hls);
      const master = await fetchText(masterUrl);
      const media = master.split('\n').filter((l) => l.startsWith('#EXT-X-MEDIA:') && l.includes('TYPE=AUDIO'));
      assert.equal(media.length, 3, master);
      assert.deepEqual(
        media.map((l) => attr(l, 'LANGUAGE')),
        ['en', 'fr', 'es'],
      );
      const defaults = media.filter((l) => attr(l, 'DEFAULT') === 'YES');
      assert.equal(defaults.length, 1, master);
      assert.equal(attr(defaults[0]!, 'LANGUAGE'), 'fr');
      assert.equal(new Set(media.map((l) => attr(l, 'GROUP-ID'))).size, 1);
      for (const l of master.split('\n').filter((x) => x.startsWith('#EXT-X-STREAM-INF:'))) {
        assert.equal(attr(l, 'AUDIO'), attr(media[0]!, 'GROUP-ID'), l);
      }
    });

    it('has three audio AdaptationSets in the DASH MPD (lang en/fr/es, with Roles)', async () => {
      const mpd = await fetchText(abs(p, multiAsset.playback.dash));
      const sets = [...mpd.matchAll(/<AdaptationSet[^>]*contentType="audio"[^>]*>([\s\S]*?)<\/AdaptationSet>/g)];
      assert.equal(sets.length, 3, mpd);
      // One set per track, in whatever order (the default first is a fair choice); each track's Role by language.
      const byLang = new Map(
        sets.map((m) => [
          attr(m[0].split('>')[0]!, 'lang'),
          [...m[1]!.matchAll(/<Role [^>]*value="([^"]+)"/g)].map((r) => r[1]),
        ]),
      );
      assert.deepEqual([...byLang.keys()].sort(), ['en', 'es', 'fr']);
      assert.deepEqual(byLang.get('fr'), ['main'], JSON.stringify([...byLang]));
      assert.ok(byLang.get('en')?.includes('alternate'), JSON.stringify([...byLang]));
      assert.ok(byLang.get('es')?.includes('commentary'), JSON.stringify([...byLang]));
    });

    it('has three audio StreamIndex in the Smooth manifest, each with its Language', async () => {
      const manifest = await fetchText(abs(p, multiAsset.playback.smooth));
      const audio = [...manifest.matchAll(/<StreamIndex[^>]*Type="audio"[^>]*>/g)].map((m) => m[0]);
      assert.equal(audio.length, 3, manifest);
      assert.deepEqual(
        audio.map((s) => attr(s, 'Language')),
        ['en', 'fr', 'es'],
      );
      assert.deepEqual(
        audio.map((s) => attr(s, 'Name')),
        ['audio', 'audio_a1', 'audio_a2'],
      );
      // Every fragment of every audio stream answers (MS-SSTR §2.2.2.2 Url template, §2.2.2.5 chunk times).
      const url = abs(p, multiAsset.playback.smooth);
      const firsts: string[] = [];
      for (const m of manifest.matchAll(/<StreamIndex[^>]*Type="audio"[^>]*>[\s\S]*?<\/StreamIndex>/g)) {
        const template = attr(m[0], 'Url')!;
        const bitrate = /<QualityLevel [^>]*Bitrate="(\d+)"/.exec(m[0])![1]!;
        let t = 0;
        const chunks = [...m[0].matchAll(/<c( [^>]*)\/>/g)];
        assert.equal(chunks.length, Number(attr(m[0], 'Chunks')));
        for (const [i, c] of chunks.entries()) {
          t = attr(c[1]!, 't') !== undefined ? Number(attr(c[1]!, 't')) : t;
          const frag = template.replace('{bitrate}', bitrate).replace('{start time}', String(t));
          const bytes = await fetchBytes(new URL(frag, url).href);
          assert.equal(bytes.subarray(4, 8).toString('latin1'), 'moof', frag);
          if (i === 0) firsts.push(bytes.toString('hex'));
          t += Number(attr(c[1]!, 'd'));
        }
      }
      assert.equal(new Set(firsts).size, 3, 'each language its own fragments');
    });

    it('decodes each audio playlist to its own tone, the whole length', async () => {
      const masterUrl = abs(p, multiAsset.playback.hls);
      const { audio } = parseMultivariant(await fetchText(masterUrl), masterUrl);
      assert.equal(audio.length, 3);
      for (const [i, url] of audio.entries()) {
        const t = multi.tracks[i]!;
        await decodeUrl(url);
        const s = await pcm(url);
        const hz = toneFrequency(s);
        assert.ok(Math.abs(hz - t.frequency) < t.frequency * 0.01, `${t.language}: ${hz} Hz, want ${t.frequency}`);
        assert.ok(Math.abs(seconds(s) - multi.seconds) < 0.15, `${t.language}: ${seconds(s)} s decoded`);
      }
    });
  });

  describe('audio only (music)', () => {
    const cases = () => [
      { name: 'MP3 with cover art', file: music.mp3, asset: mp3Asset, posterWidth: 300 },
      { name: 'FLAC without a picture', file: music.flac, asset: flacAsset, posterWidth: 1280 },
    ];

    it('ends ready as audio media, with audio renditions only', () => {
      for (const { name, asset } of cases()) {
        assert.equal(asset.status, 'ready', `${name}: ${JSON.stringify(asset.error)}`);
        assert.equal(asset.playable, true, name);
        assert.equal(asset.mediaType, 'audio', name);
        assert.ok(asset.renditions.length >= 1, name);
        assert.deepEqual(
          asset.renditions.map((r) => r.type),
          asset.renditions.map(() => 'audio'),
          name,
        );
      }
    });

    it('plays from HLS and DASH for as long as the source (±50 ms)', async () => {
      for (const { name, file, asset } of cases()) {
        const want = seconds(await pcm(file));
        const masterUrl = abs(p, asset.playback.hls);
        const master = await fetchText(masterUrl);
        const { video } = parseMultivariant(master, masterUrl);
        assert.ok(video.length >= 1, `${name}: a variant stream`);
        for (const v of video) {
          assert.doesNotMatch(v.attrs, /RESOLUTION=|avc1/, `${name}: audio-only variant`);
          assert.match(v.attrs, /CODECS="mp4a\.40\.2"/, name);
        }
        await decodeUrl(masterUrl);
        const hls = seconds(await pcm(masterUrl));
        assert.ok(Math.abs(hls - want) <= 0.05, `${name}: ${hls} s through HLS, source ${want} s`);

        const mpdUrl = abs(p, asset.playback.dash);
        const mpd = await fetchText(mpdUrl);
        assert.doesNotMatch(mpd, /contentType="video"/, name);
        assert.match(mpd, /contentType="audio"/, name);
        const streams = await decodeDash(mpdUrl);
        assert.deepEqual(
          streams.map((s) => s.type),
          ['audio'],
          name,
        );
        const dash = seconds(await pcm(mpdUrl));
        assert.ok(Math.abs(dash - want) <= 0.05, `${name}: ${dash} s through DASH, source ${want} s`);
      }
    });

    it('offers one M4A download with one audio stream', async () => {
      for (const { name, asset } of cases()) {
        assert.equal(asset.playback.downloads.length, 1, name);
        const url = abs(p, asset.playback.downloads[0]!.url);
        assert.match(url, /\/download-a0\.m4a$/, name);
        const info = (await ffprobeJson(url, ['-show_entries', 'stream=codec_type,codec_name'])) as {
          streams: { codec_type: string; codec_name: string }[];
        };
        assert.deepEqual(info.streams, [{ codec_type: 'audio', codec_name: 'aac' }], name);
      }
    });

    it('has a JPEG poster: the cover art, else a waveform', async () => {
      for (const { name, asset, posterWidth } of cases()) {
        const url = abs(p, asset.playback.poster);
        const bytes = await fetchBytes(url);
        assert.equal(bytes.subarray(0, 3).toString('hex'), 'ffd8ff', `${name}: JPEG magic`);
        const info = (await ffprobeJson(url, ['-show_entries', 'stream=codec_name,width,height'])) as {
          streams: { codec_name: string; width: number; height: number }[];
        };
        assert.equal(info.streams[0]?.codec_name, 'mjpeg', name);
        assert.equal(info.streams[0]?.width, posterWidth, `${name}: poster ${JSON.stringify(info.streams[0])}`);
      }
    });
  });
});
