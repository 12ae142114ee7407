// REAL PARTS: a Fastify server on port 0 with registerHttpIngest, ffmpeg 5.1 pushing to it over HTTP — Smooth push
// (`-f ismv`, one chunked POST with video+audio) and DASH-IF CMAF ingest (video POST and audio PUT on two paths) —
// and node:http clients for what ffmpeg cannot be made to send (a fragment before its init, a stall, a body that
// goes bad halfway, a second request re-sending the same fragments). What reached the sinks must decode whole.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import Fastify, { type FastifyInstance } from 'fastify';
import { pipedFixture, testSource } from '../../../test/helpers/media.ts';
import { asSmoothcastError, SmoothcastError } from '../../core/errors.ts';
import { type IngestTrack, parseIngestPath, registerHttpIngest, type TrackSink } from './http-ingest.ts';
import { run as runProcess, until } from './testing.ts';

const execFileP = promisify(execFile);
const KEY = 'abcdefghijklmnopqrstuvwxyz234567';
const OTHER_KEY = 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz';
const SECONDS = 3;
const CMAF_FLAGS = ['-movflags', '+frag_keyframe+empty_moov+default_base_moof+cmaf'];

interface Stored {
  track: IngestTrack;
  fragments: Map<number, Uint8Array>;
}

/** The sinks' side: what was stored per name and track, with the ends and duplicates seen. */
class Store {
  readonly tracks = new Map<string, Stored>();
  readonly log: string[] = [];
  /** When each fragment reached its sink, and the media time (s) at its end. */
  readonly arrivals: { id: string; at: number; end: number }[] = [];
  opened = 0;
  ended = 0;
  /** When set, every fragment() waits for it (a slow disk). */
  gate: Promise<void> | undefined;

  sink(track: IngestTrack): TrackSink {
    const id = `${track.name}#${track.trackId}`;
    const stored = this.tracks.get(id) ?? { track, fragments: new Map<number, Uint8Array>() };
    stored.track = track;
    this.tracks.set(id, stored);
    this.opened++;
    let ended = false;
    return {
      fragment: async (bytes, start, info) => {
        assert.ok(!ended, 'fragment after end');
        await this.gate;
        this.arrivals.push({ id, at: performance.now(), end: (start + info.duration) / track.track.timescale });
        this.log.push(`${id}@${start}`);
        if (stored.fragments.has(start)) return 'duplicate';
        stored.fragments.set(start, bytes);
        return 'stored';
      },
      end: () => {
        assert.ok(!ended, 'end twice');
        ended = true;
        this.ended++;
      },
    };
  }

  get(name: string, kind: 'video' | 'audio'): Stored {
    const s = [...this.tracks.values()].find((t) => t.track.name === name && t.track.kind === kind);
    assert.ok(s, `no ${kind} track stored for ${name}: ${[...this.tracks.keys()].join(', ')}`);
    return s;
  }
}

function push(args: readonly string[], url: string) {
  return runProcess(
    'ffmpeg',
    ['-hide_banner', '-nostdin', '-loglevel', 'error', ...args, url].filter((a) => a !== ''),
    30_000,
  ).done;
}

interface Answer {
  status: number;
  body: { error?: { code: string; message: string }; tracks?: { stored: number; duplicates: number }[] };
  ms: number;
}

/** A request whose body is written by `write` (which may stall); resolves with the answer as soon as it comes. */
function send(
  port: number,
  path: string,
  write: (req: ReturnType<typeof request>) => void | Promise<void>,
  method = 'POST',
): Promise<Answer> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { 'transfer-encoding': 'chunked' } });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void Promise.resolve(write(req)).catch(reject);
  });
}

const whole = (bytes: Uint8Array) => (req: ReturnType<typeof request>) => {
  req.end(bytes);
};

/** The offset one past the n-th top-level box. */
function boxEnd(bytes: Uint8Array, n: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  for (let i = 0; i <= n; i++) at += v.getUint32(at);
  return at;
}

async function decode(dir: string, s: Stored): Promise<{ frames: number; seconds: number }> {
  const file = join(dir, `${s.track.name.replace(/\W/g, '_')}-${s.track.trackId}.mp4`);
  const starts = [...s.fragments.keys()].sort((a, b) => a - b);
  writeFileSync(file, Buffer.concat([s.track.init, ...starts.map((t) => s.fragments.get(t)!)]));
  await execFileP('ffmpeg', ['-v', 'error', '-xerror', '-i', file, '-f', 'null', '-']);
  const { stdout } = await execFileP('ffprobe', [
    ...['-v', 'error', '-count_frames', '-of', 'json', '-show_entries', 'stream=nb_read_frames,duration'],
    file,
  ]);
  const st = (JSON.parse(stdout) as { streams: { nb_read_frames: string; duration: string }[] }).streams[0]!;
  return { frames: Number(st.nb_read_frames), seconds: Number(st.duration) };
}

describe('registerHttpIngest: ffmpeg 5.1 pushing over HTTP', () => {
  const dir = mkdtempSync(join(tmpdir(), 'smoothcast-http-ingest-'));
  const store = new Store();
  const authorized: string[] = [];
  let app: FastifyInstance;
  let port = 0;
  let base = '';
  let cmafVideo: Uint8Array;

  before(async () => {
    app = Fastify({ logger: false });
    // As src/roles/server.ts answers errors.
    app.setErrorHandler((raw, _req, reply) => {
      const err = raw instanceof SmoothcastError ? raw : asSmoothcastError(raw);
      return reply.code(err.status).send({ error: err.toJSON() });
    });
    const options = {
      authorize: (key: string) => {
        authorized.push(key);
        return key === KEY ? { streamId: 's1' } : null;
      },
      onTrack: async (_target: { streamId: string }, track: IngestTrack) => store.sink(track),
      idleTimeoutMs: 5000,
    };
    registerHttpIngest(app, options);
    registerHttpIngest(app, { ...options, prefix: '/small', maxRequestBytes: 20_000 });
    registerHttpIngest(app, { ...options, prefix: '/impatient', idleTimeoutMs: 400 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    port = (app.server.address() as { port: number }).port;
    base = `http://127.0.0.1:${port}`;
    cmafVideo = new Uint8Array(
      readFileSync(
        await pipedFixture(
          [...testSource({ seconds: 4, width: 160, height: 120, audio: false }), '-c:v', 'libx264'].concat([
            '-preset',
            'veryfast',
            '-g',
            '30',
            '-f',
            'mp4',
            ...CMAF_FLAGS,
          ]),
          'cmfv',
        ),
      ),
    );
  });
  after(async () => {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('parses the two path shapes', () => {
    assert.deepEqual(parseIngestPath(`${KEY}.isml/Streams(live1)`), { protocol: 'smooth', key: KEY, name: 'live1' });
    assert.deepEqual(parseIngestPath(`${KEY}/Streams(video).cmfv`), {
      protocol: 'cmaf',
      key: KEY,
      name: 'Streams(video).cmfv',
    });
    assert.deepEqual(parseIngestPath(`${KEY}/video/hd`), { protocol: 'cmaf', key: KEY, name: 'video/hd' });
    assert.deepEqual(parseIngestPath(`${KEY}.isml/Streams%28a%29`), { protocol: 'smooth', key: KEY, name: 'a' });
    for (const bad of [KEY, `${KEY}/`, `${KEY}.isml/foo`, `${KEY}.isml/Streams()`, `${KEY}/../x`, `${KEY}/a%2`, '']) {
      assert.equal(parseIngestPath(bad), null, bad);
    }
  });

  it('Smooth push (-f ismv, -re): one chunked POST, video and audio reach their sinks and decode', async (t) => {
    const src = testSource({ seconds: SECONDS, width: 320, height: 180 });
    const t0 = performance.now();
    const r = await push(
      ['-re', ...src, '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-c:a', 'aac', '-f', 'ismv'],
      `${base}/ingest/${KEY}.isml/Streams(live1)`,
    );
    assert.equal(r.code, 0, r.stderr);
    const video = await decode(dir, store.get('live1', 'video'));
    const audio = await decode(dir, store.get('live1', 'audio'));
    assert.equal(video.frames, 30 * SECONDS);
    assert.ok(Math.abs(video.seconds - SECONDS) < 0.05, `video ${video.seconds} s`);
    assert.ok(Math.abs(audio.seconds - SECONDS) < 0.1, `audio ${audio.seconds} s`);
    assert.equal(store.get('live1', 'video').track.protocol, 'smooth');
    assert.equal(store.opened, store.ended);
    assert.ok(performance.now() - t0 < SECONDS * 1000 + 3000);
    // With -re, a fragment can only be written once its last frame is: how long after that it reaches its sink.
    const lags = store.arrivals
      .filter((a) => a.id.startsWith('live1#') && a.at >= t0)
      .map((a) => `${a.id}:${Math.round(a.at - t0 - a.end * 1000)}`);
    t.diagnostic(`ffmpeg ran ${Math.round(r.ms)} ms; sink arrival minus media end (ms): ${lags.join(' ')}`);
  });

  it('CMAF ingest: video POST and audio PUT on two paths; both decode', async () => {
    const src = testSource({ seconds: SECONDS, width: 320, height: 180 });
    const r = await runProcess(
      'ffmpeg',
      [
        ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', ...src],
        ...['-map', '0:v', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '60', '-f', 'mp4', ...CMAF_FLAGS],
        `${base}/ingest/${KEY}/Streams(video).cmfv`,
        ...['-map', '1:a', '-c:a', 'aac', '-frag_duration', '1000000', '-f', 'mp4', ...CMAF_FLAGS, '-method', 'PUT'],
        `${base}/ingest/${KEY}/Streams(audio).cmfa`,
      ],
      30_000,
    ).done;
    assert.equal(r.code, 0, r.stderr);
    const video = store.get('Streams(video).cmfv', 'video');
    const audio = store.get('Streams(audio).cmfa', 'audio');
    assert.equal(video.track.protocol, 'cmaf');
    assert.equal((await decode(dir, video)).frames, 30 * SECONDS);
    assert.ok(audio.fragments.size >= SECONDS);
    assert.ok(Math.abs((await decode(dir, audio)).seconds - SECONDS) < 0.1);
  });

  it('an encoder killed mid-push: what was whole is kept and the sinks are ended', async () => {
    const ended = store.ended;
    const p = runProcess(
      'ffmpeg',
      [
        ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-re', ...testSource({ seconds: 10 })],
        ...['-c:v', 'libx264', '-preset', 'veryfast', '-g', '15', '-c:a', 'aac', '-f', 'ismv'],
        `${base}/ingest/${KEY}.isml/Streams(killed)`,
      ],
      30_000,
    );
    await until(() => store.tracks.get('killed#1')?.fragments.size === 2, 5000, 'two video fragments');
    p.child.kill('SIGKILL');
    await p.done;
    await until(() => store.ended === ended + 2, 2000, 'both sinks ended');
    assert.ok((await decode(dir, store.get('killed', 'video'))).frames >= 30);
  });

  it('a second request re-sending the same fragments: the sink says duplicate, nothing is stored twice', async () => {
    const path = `/ingest/${KEY}/again.cmfv`;
    const first = await send(port, path, whole(cmafVideo));
    assert.equal(first.status, 201);
    const n = first.body.tracks![0]!.stored;
    assert.ok(n >= 4);
    const second = await send(port, path, whole(cmafVideo));
    assert.equal(second.status, 200);
    assert.deepEqual(second.body.tracks![0], { trackId: 1, kind: 'video', fragments: n, stored: 0, duplicates: n });
    // Within one request the route itself drops a repeat: the sink never sees it.
    const frag = cmafVideo.subarray(boxEnd(cmafVideo, 1), boxEnd(cmafVideo, 3));
    const before = store.log.length;
    const third = await send(port, `/ingest/${KEY}/once.cmfv`, whole(Buffer.concat([cmafVideo, frag])));
    assert.equal(third.status, 201);
    assert.deepEqual(third.body.tracks![0], { trackId: 1, kind: 'video', fragments: n + 1, stored: n, duplicates: 1 });
    assert.equal(store.log.length - before, n);
    assert.equal((await decode(dir, store.get('again.cmfv', 'video'))).frames, 120);
  });

  it('DASH-IF one request per segment: the init, then each fragment on its own, on the same path', async () => {
    const path = `/ingest/${KEY}/segments.cmfv`;
    const initEnd = boxEnd(cmafVideo, 1);
    const initOnly = await send(port, path, whole(cmafVideo.subarray(0, initEnd)));
    assert.equal(initOnly.status, 200);
    let count = 0;
    // ftyp moov (moof mdat)… mfra: each moof+mdat in a PUT of its own.
    for (
      let i = 2;
      String.fromCharCode(...cmafVideo.subarray(boxEnd(cmafVideo, i - 1) + 4, boxEnd(cmafVideo, i - 1) + 8)) === 'moof';
      i += 2
    ) {
      const r = await send(
        port,
        path,
        whole(cmafVideo.subarray(boxEnd(cmafVideo, i - 1), boxEnd(cmafVideo, i + 1))),
        'PUT',
      );
      assert.equal(r.status, 201, JSON.stringify(r.body));
      count++;
    }
    assert.equal(count, 4);
    assert.equal((await decode(dir, store.get('segments.cmfv', 'video'))).frames, 120);
  });

  it('an empty POST (an encoder testing the URL and its key) is answered 200', async () => {
    const r = await send(port, `/ingest/${KEY}.isml/Streams(probe)`, (req) => {
      req.end();
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { protocol: 'smooth', name: 'probe', bytes: 0, tracks: [] });
    const res = await fetch(`${base}/ingest/${KEY}.isml/Streams(probe)`, {
      method: 'POST',
      headers: { 'content-length': '0' },
    });
    assert.equal(res.status, 200);
  });

  it('403 for a bad key before anything is read; 404 for a path that names no stream', async () => {
    const calls = authorized.length;
    const unknown = await send(port, `/ingest/${OTHER_KEY}/v.cmfv`, whole(cmafVideo));
    assert.equal(unknown.status, 403);
    assert.equal(unknown.body.error?.code, 'LIVE_KEY_INVALID');
    const malformed = await send(port, '/ingest/NOT-A-KEY.isml/Streams(x)', whole(cmafVideo));
    assert.equal(malformed.status, 403);
    assert.equal(authorized.length, calls + 1, 'a malformed key never reaches authorize()');
    for (const path of [`/ingest/${KEY}.isml/Manifest`, `/ingest/${KEY}`, `/ingest/${KEY}/a/../b`]) {
      const r = await send(port, path, whole(new Uint8Array(10)));
      assert.equal(r.status, 404, path);
      assert.equal(r.body.error?.code, 'LIVE_NOT_FOUND', path);
    }
    // ffmpeg with a wrong key gives up at once; nothing of it is stored.
    const tracks = store.tracks.size;
    const r = await push(
      ['-re', ...testSource({ seconds: 3, width: 160, height: 120 }), '-c:v', 'libx264', '-c:a', 'aac', '-f', 'ismv'],
      `${base}/ingest/${OTHER_KEY}.isml/Streams(x)`,
    );
    assert.notEqual(r.code, 0);
    assert.ok(r.ms < 2000, `ffmpeg took ${r.ms} ms`);
    assert.equal(store.tracks.size, tracks);
  });

  it('412 for a fragment before its init; 415 for media it does not take (ffmpeg pushing Opus, MP3, raw bytes)', async () => {
    const fragments = cmafVideo.subarray(boxEnd(cmafVideo, 1));
    const early = await send(port, `/ingest/${KEY}/early.cmfv`, whole(fragments));
    assert.equal(early.status, 412);
    assert.equal(early.body.error?.code, 'LIVE_INIT_MISSING');
    const raw = await send(port, `/ingest/${KEY}/raw.cmfv`, whole(Buffer.from('\x00\x01garbage'.repeat(1000))));
    assert.equal(raw.status, 415);
    const mp3 = new Uint8Array(
      readFileSync(
        await pipedFixture(
          [...testSource({ seconds: 2 }), '-map', '1:a', '-c:a', 'libmp3lame', '-f', 'mp4', ...CMAF_FLAGS],
          'mp4',
        ),
      ),
    );
    const refused = await send(port, `/ingest/${KEY}/mp3.cmfa`, whole(mp3));
    assert.equal(refused.status, 415);
    assert.match(refused.body.error!.message, /AAC/);
    // ffmpeg pushing Opus in real time is stopped at the moov, long before its 3 s are up.
    const tracks = store.tracks.size;
    const r = await push(
      ['-re', ...testSource({ seconds: 3 }), '-map', '1:a', '-c:a', 'libopus', '-f', 'mp4', ...CMAF_FLAGS],
      `${base}/ingest/${KEY}/Streams(opus).cmfa`,
    );
    assert.ok(r.ms < 2000, `ffmpeg took ${r.ms} ms`);
    assert.equal(store.tracks.size, tracks);
  });

  it('an error mid-body is answered at once (Connection: close), not at the end of a body that never ends', async () => {
    const initAndOne = cmafVideo.subarray(0, boxEnd(cmafVideo, 3));
    const ended = store.ended;
    const r = await send(port, `/ingest/${KEY}/midway.cmfv`, (req) => {
      req.write(initAndOne);
      // A box header that cannot be (size 3), and then the client keeps the request open and writing.
      req.write(Uint8Array.of(0, 0, 0, 3, 0x6d, 0x6f, 0x6f, 0x66));
      const timer = setInterval(() => req.write(new Uint8Array(1000)), 20);
      req.on('close', () => clearInterval(timer));
      setTimeout(() => clearInterval(timer), 5000);
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.error?.code, 'BAD_REQUEST');
    assert.ok(r.ms < 1000, `${r.ms} ms`);
    // What was whole before the damage is stored, and the sink was ended.
    assert.equal(store.get('midway.cmfv', 'video').fragments.size, 1);
    assert.equal(store.ended, ended + 1);
  });

  it('a stalled body ends after the idle timeout; the byte limit is 413', async () => {
    const r = await send(port, `/impatient/${KEY}/stall.cmfv`, (req) => {
      req.write(cmafVideo.subarray(0, boxEnd(cmafVideo, 3) + 10)); // and then nothing
    });
    assert.equal(r.status, 400);
    assert.match(r.body.error!.message, /no body byte for 400 ms/);
    assert.ok(r.ms >= 400 && r.ms < 1500, `${r.ms} ms`);
    assert.equal(store.get('stall.cmfv', 'video').fragments.size, 1);
    const big = await send(port, `/small/${KEY}/big.cmfv`, whole(cmafVideo));
    assert.equal(big.status, 413);
    assert.equal(big.body.error?.code, 'PAYLOAD_TOO_LARGE');
  });

  it('backpressure: while a sink is busy the body is not read on, and the client is held back', async (t) => {
    let release!: () => void;
    store.gate = new Promise((r) => {
      release = r;
    });
    const initAndOne = cmafVideo.subarray(0, boxEnd(cmafVideo, 3));
    const skipped = 64 * 1024 * 1024; // a 'free' box the demuxer streams past without holding it
    let written = 0;
    let blocked = false;
    const answer = send(port, `/ingest/${KEY}/slow.cmfv`, async (req) => {
      req.write(initAndOne);
      const header = new Uint8Array(8);
      new DataView(header.buffer).setUint32(0, skipped + 8);
      header.set([0x66, 0x72, 0x65, 0x65], 4);
      req.write(header);
      const chunk = new Uint8Array(64 * 1024);
      while (written < skipped) {
        written += chunk.length;
        if (!req.write(chunk)) {
          const drained = await Promise.race([
            new Promise((r) => req.once('drain', () => r(true))),
            new Promise((r) => setTimeout(() => r(false), 300)),
          ]);
          if (!drained && !blocked) {
            blocked = true;
            t.diagnostic(`held back after ${initAndOne.length + written} bytes written`);
            release();
            await new Promise((r) => req.once('drain', r));
          }
        }
      }
      req.end(cmafVideo.subarray(boxEnd(cmafVideo, 3)));
    });
    const r = await answer;
    store.gate = undefined;
    assert.ok(blocked, 'the client was never held back');
    assert.equal(r.status, 201);
    assert.equal(store.get('slow.cmfv', 'video').fragments.size, 4);
  });
});
