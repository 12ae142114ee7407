// Progressive downloads: plain MP4s (audio muxed in, moov first) remuxed from the CMAF files at the end of the
// encode, served with Range support and, when configured, IIS-style bit-rate throttling: a burst, then k × the
// file's media bitrate, held within 5 % over 30 s.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { ffprobeJson } from '../helpers/media.ts';
import { importSettled, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';

const BURST_SECONDS = 2;
const RATE_FACTOR = 0.25;

function topLevelBoxes(buf: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at + 8 <= buf.length; ) {
    const size = buf.readUInt32BE(at);
    out.push(buf.subarray(at + 4, at + 8).toString('latin1'));
    if (size < 8) break;
    at += size;
  }
  return out;
}

describe('progressive downloads', () => {
  let p: TestPlatform;
  let asset: AssetJson;

  before(async () => {
    p = await startTestPlatform({
      encode: { preset: 'ultrafast' },
      progressive: { throttle: true, burstSeconds: BURST_SECONDS, rateFactor: RATE_FACTOR },
    });
    const source = await h264Clip({ seconds: 12, width: 640, height: 360 });
    asset = await importSettled(p, source);
    assert.equal(asset.status, 'ready', JSON.stringify(asset.error));
  });
  after(() => p?.stop());

  it('lists a top and a phone-sized MP4 with audio, moov first, that ffprobe reads whole', async () => {
    const d = asset.playback.downloads;
    assert.deepEqual(
      d.map((x) => x.height),
      [360, 234],
    );
    for (const x of d) {
      assert.ok(x.bitrate > 0 && x.width! > 0);
      const file = join(p.dataDir, 'media', new URL(x.url, p.url).pathname.replace(/^\/v\//, 'assets/'));
      const buf = readFileSync(file);
      const boxes = topLevelBoxes(buf);
      assert.ok(boxes.indexOf('moov') < boxes.indexOf('mdat'), `moov first: ${boxes}`);
      assert.ok(!boxes.includes('moof'), 'a plain MP4, not fragmented');
      const probe = (await ffprobeJson(new URL(x.url, p.url).href, ['-show_streams', '-show_format'])) as {
        streams: { codec_type: string; height?: number }[];
        format: { duration: string };
      };
      assert.deepEqual(probe.streams.map((s) => s.codec_type).sort(), ['audio', 'video']);
      assert.equal(probe.streams.find((s) => s.codec_type === 'video')?.height, x.height);
      assert.ok(Math.abs(Number(probe.format.duration) - (asset.duration ?? 0)) < 0.1, probe.format.duration);
    }
  });

  it('answers a Range request for a middle byte range with exactly those bytes', async () => {
    const x = asset.playback.downloads[0]!;
    const file = readFileSync(join(p.dataDir, 'media', new URL(x.url, p.url).pathname.replace(/^\/v\//, 'assets/')));
    const start = Math.floor(file.length / 3);
    const end = start + 9999;
    const res = await fetch(new URL(x.url, p.url), { headers: { range: `bytes=${start}-${end}` } });
    assert.equal(res.status, 206);
    assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${file.length}`);
    assert.ok(Buffer.from(await res.arrayBuffer()).equals(file.subarray(start, end + 1)));
  });

  it('throttles to the configured multiple of the media bitrate, within 5 % over 30 s after the burst', async () => {
    const x = asset.playback.downloads[0]!;
    const size = Number((await fetch(new URL(x.url, p.url), { method: 'HEAD' })).headers.get('content-length'));
    const mediaRate = size / asset.duration!;
    const burst = BURST_SECONDS * mediaRate;
    const rate = RATE_FACTOR * mediaRate;
    assert.ok(size - burst > 31 * rate, 'the file outlasts the measurement');
    const ac = new AbortController();
    const res = await fetch(new URL(x.url, p.url), { signal: ac.signal });
    const reader = res.body!.getReader();
    let got = 0;
    let t0 = 0;
    let atT0 = 0;
    let measured = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got += value.length;
      const now = performance.now();
      if (!t0 && got > burst + rate) {
        t0 = now;
        atT0 = got;
      } else if (t0 && now - t0 >= 30_000) {
        measured = ((got - atT0) / (now - t0)) * 1000;
        break;
      }
    }
    ac.abort();
    assert.ok(t0 > 0, 'got past the burst');
    assert.ok(
      Math.abs(measured - rate) / rate <= 0.05,
      `measured ${measured.toFixed(0)} B/s, configured ${rate.toFixed(0)} B/s`,
    );
  });

  it('makes a WebVTT thumbnail track whose cues tile the duration and point inside real sprite sheets', async () => {
    assert.ok(asset.playback.thumbnails);
    const trackUrl = new URL(asset.playback.thumbnails, p.url).href;
    const res = await fetch(trackUrl);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/vtt/);
    const vtt = await res.text();
    assert.match(vtt, /^WEBVTT\n/);
    const cues = [...vtt.matchAll(/([\d:.]+) --> ([\d:.]+)\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)/g)].map((m) => ({
      start: m[1]!.split(':').reduce((a, x) => a * 60 + Number(x), 0),
      end: m[2]!.split(':').reduce((a, x) => a * 60 + Number(x), 0),
      sheet: m[3]!,
      box: [Number(m[4]), Number(m[5]), Number(m[6]), Number(m[7])],
    }));
    const interval = cues[0]!.end - cues[0]!.start;
    assert.ok(interval >= 2 && interval <= 10, `one tile every ${interval} s`);
    assert.equal(cues.length, Math.ceil(asset.duration! / interval));
    cues.forEach((c, i) => {
      assert.ok(Math.abs(c.start - i * interval) < 1e-3, 'contiguous');
      assert.ok(c.end <= asset.duration! + 1e-3);
    });
    const sizes = new Map<string, { width: number; height: number }>();
    for (const c of cues) {
      if (!sizes.has(c.sheet)) {
        const probe = (await ffprobeJson(new URL(c.sheet, trackUrl).href, ['-show_streams'])) as {
          streams: { width: number; height: number; codec_name: string }[];
        };
        assert.equal(probe.streams[0]!.codec_name, 'mjpeg');
        sizes.set(c.sheet, probe.streams[0]!);
      }
      const [x, y, w, h] = c.box as [number, number, number, number];
      const sheet = sizes.get(c.sheet)!;
      assert.ok(
        x + w <= sheet.width && y + h <= sheet.height,
        `${c.sheet}#${c.box} inside ${sheet.width}x${sheet.height}`,
      );
      assert.equal(w, 160);
      assert.equal(h, 90, '16:9 tiles');
    }
  });
});
