// Interop against a reader we did not write: live-style CMAF from ffmpeg (one moof+mdat per ~1/3 s part, a keyframe
// every 2 s), indexed by our FragmentIndexer, grouped into parts and segments, written as the final (ENDLIST) LL-HLS
// playlist and served over HTTP; ffmpeg's hls demuxer (which reads the segments and ignores the LL tags) must decode
// it whole, frame for frame like the file itself.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ffmpegFixture } from '../../../test/helpers/media.ts';
import { decodeUrl, packets } from '../../../test/helpers/verify.ts';
import { indexBuffer } from '../bmff/index.ts';
import { writeLivePlaylist } from '../manifest/llhls.ts';
import type { TrackInfo } from '../types.ts';
import { LiveTimeline } from './parts.ts';
import { parseLive } from './testing.ts';

const run = promisify(execFile);
const cmaf = ['-movflags', '+empty_moov+default_base_moof+cmaf+frag_keyframe', '-frag_duration', '333334'];

async function countFrames(input: string, stream: 'v:0' | 'a:0'): Promise<number> {
  const args = ['-v', 'error', '-count_frames', '-select_streams', stream, '-show_entries', 'stream=nb_read_frames'];
  const r = await run('ffprobe', [...args, '-of', 'csv=p=0', input], { timeout: 120_000 });
  if (r.stderr.trim()) throw new Error(`ffprobe ${input}: ${r.stderr}`);
  // ffprobe lists an HLS stream once more under its program: every line must agree.
  const counts = [
    ...new Set(
      r.stdout
        .split('\n')
        .map((l) => l.replace(/,+$/, '').trim())
        .filter(Boolean),
    ),
  ];
  if (counts.length !== 1) throw new Error(`ffprobe ${input}: frame counts ${JSON.stringify(r.stdout)}`);
  return Number(counts[0]);
}

/** A static file server with single byte ranges (RFC 9110 §14), plus extra routes. */
function serve(dir: string, routes: Map<string, Uint8Array>): Promise<Server> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    let body: Uint8Array;
    try {
      body = routes.get(path) ?? readFileSync(join(dir, path.replace(/^\/+/, '').replace(/\.\./g, '')));
    } catch {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (!m) {
      res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' }).end(body);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(m[2] ? Number(m[2]) : body.length - 1, body.length - 1);
    if (start > end) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    res
      .writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}`, 'content-length': end - start + 1 })
      .end(body.subarray(start, end + 1));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

describe('LL-HLS playlists of live CMAF, read by ffmpeg', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-llhls-'));
  const routes = new Map<string, Uint8Array>();
  let server: Server;
  let base: string;
  let video: { track: TrackInfo; timeline: LiveTimeline; file: Buffer };
  let audio: { track: TrackInfo; timeline: LiveTimeline; file: Buffer };

  before(async () => {
    const v = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30:duration=8', '-c:v', 'libx264', '-preset', 'ultrafast'],
        ...['-force_key_frames', 'expr:gte(t,n_forced*2)', '-sc_threshold', '0', ...cmaf, '-f', 'mp4'],
      ],
      'mp4',
    );
    const a = await ffmpegFixture(
      ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=8', '-c:a', 'aac', ...cmaf, '-f', 'mp4'],
      'mp4',
    );
    copyFileSync(v, join(dir, 'v.mp4'));
    copyFileSync(a, join(dir, 'a.mp4'));
    // Fed part by part as a live ingest would: the audio timeline follows the video's segment boundaries.
    const vi = indexBuffer(readFileSync(v));
    const ai = indexBuffer(readFileSync(a));
    const vt = new LiveTimeline({ timescale: vi.track.timescale });
    const at = new LiveTimeline({ timescale: ai.track.timescale, boundaries: vt });
    for (let i = 0; i < Math.max(vi.segments.length, ai.segments.length); i++) {
      at.append(ai.segments.slice(i, i + 1));
      vt.append(vi.segments.slice(i, i + 1));
    }
    vt.end();
    at.end();
    video = { track: vi.track, timeline: vt, file: readFileSync(v) };
    audio = { track: ai.track, timeline: at, file: readFileSync(a) };
    server = await serve(dir, routes);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server?.close());

  it('groups ffmpeg fragments into 2 s segments of 11-frame parts, audio aligned with video', () => {
    const segs = video.timeline.segments;
    assert.equal(segs.length, 4);
    for (const s of segs) {
      assert.deepEqual(
        s.parts.map((p) => p.independent),
        [true, false, false, false, false, false],
      );
      assert.equal(s.duration, 2 * video.track.timescale);
    }
    const aud = audio.timeline.segments;
    assert.deepEqual(
      aud.map((s) => s.msn),
      [0, 1, 2, 3],
    );
    aud.forEach((s, n) => {
      const drift = Math.abs(s.start / audio.track.timescale - segs[n]!.start / video.track.timescale);
      assert.ok(drift <= 0.25, `audio segment ${n} starts ${drift} s off its video segment`);
    });
  });

  for (const mode of ['byte-range', 'part and segment URIs'] as const) {
    it(`${mode}: ffmpeg decodes the ended playlist whole`, async () => {
      for (const [name, r] of [
        ['v', video],
        ['a', audio],
      ] as const) {
        const id = `${name}-${mode === 'byte-range' ? 'br' : 'uri'}`;
        const text = writeLivePlaylist(
          { id, track: r.track },
          r.timeline,
          {
            init: () => `${id}/init.mp4`,
            segment: (m) => `${id}/s${m}.m4s`,
            part: (m, i) => `${id}/p${m}.${i}.m4s`,
          },
          {
            dvrSeconds: 0,
            ingestStartWallClockMs: Date.UTC(2025, 0, 1),
            targetDuration: 2,
            ...(mode === 'byte-range' ? { byteRange: { uri: `${name}.mp4` } } : {}),
          },
        );
        writeFileSync(join(dir, `${id}.m3u8`), text);
        routes.set(`/${id}/init.mp4`, r.file.subarray(0, r.track.initSize));
        for (const s of r.timeline.segments) {
          routes.set(`/${id}/s${s.msn}.m4s`, r.file.subarray(s.offset, s.offset + s.size));
          for (const p of s.parts)
            routes.set(`/${id}/p${s.msn}.${p.index}.m4s`, r.file.subarray(p.offset, p.offset + p.size));
        }
        const parsed = parseLive(text);
        assert.ok(parsed.tags.has('#EXT-X-ENDLIST'));
        assert.ok(parsed.segments.at(-1)!.parts.length > 0, 'the last segments keep their parts');
        const url = `${base}/${id}.m3u8`;
        const stream = name === 'v' ? 'v:0' : 'a:0';
        await decodeUrl(url);
        assert.equal(await countFrames(url, stream), await countFrames(join(dir, `${name}.mp4`), stream));
        if (name === 'v') assert.equal(await countFrames(url, stream), 240);
        const [got, want] = [await packets(url, stream), await packets(join(dir, `${name}.mp4`), stream)];
        assert.deepEqual(
          got.map((p) => [p.dts.toFixed(4), p.key]),
          want.map((p) => [p.dts.toFixed(4), p.key]),
        );
      }
    });
  }
});
