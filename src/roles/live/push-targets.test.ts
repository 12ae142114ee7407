// REAL PARTS: PushTarget's ffmpeg 5.1 restreams a paced FLV (a lavfi H.264/AAC clip written tag by tag at its
// timestamps, in chunks that split tags anywhere) over RTMP to a second RtmpIngest whose sink writes the FLV it
// receives to a file; ffprobe and a full decode judge what arrived. A target with nothing listening retries with
// backoff beside a healthy one on the same feed, then connects from a keyframe once its receiver appears; stop()
// leaves no process. The FLV following, the forwarded bytes after a restart, the drop-to-keyframe on backpressure
// and the watchdog use small scripts in ffmpeg's place; the URL checks and masking are a table.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { prng } from '../../media/bmff/testing.ts';
import { FLV_TAG, readFlvTags, videoCodec } from '../../media/rtmp/flv.ts';
import { FlvFollower } from './flv-prelude.ts';
import { maskTargetUrl, PushTarget, type PushTargetState, pushTargetArgs, validateTargetUrl } from './push-targets.ts';
import { type PublishSink, RtmpIngest } from './rtmp-ingest.ts';
import { run, until } from './testing.ts';

const exec = promisify(execFile);
const KEY = 'pushk3ypushk3ypushk3ypushk3yabcd';
const SECONDS = 6;
const dir = mkdtempSync(join(tmpdir(), 'smoothcast-push-'));
const targets: PushTarget[] = [];
const closers: (() => Promise<unknown>)[] = [];
after(async () => {
  await Promise.allSettled(targets.map((t) => t.stop()));
  await Promise.allSettled(closers.map((c) => c()));
  rmSync(dir, { recursive: true, force: true });
});

function target(o: ConstructorParameters<typeof PushTarget>[0]): PushTarget {
  const t = new PushTarget(o);
  targets.push(t);
  return t;
}

/** A testsrc2 + sine clip as FLV (H.264 with a `gop`-frame GOP at 30 fps, AAC), as `ffmpeg -f flv rtmp://…` sends. */
async function clip(name: string, gop: number): Promise<Uint8Array> {
  const path = join(dir, name);
  const r = await run(
    'ffmpeg',
    [
      ...['-hide_banner', '-nostdin', '-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30'],
      ...['-f', 'lavfi', '-i', 'sine=f=440:r=48000', '-t', String(SECONDS), '-c:v', 'libx264', '-preset', 'ultrafast'],
      ...['-pix_fmt', 'yuv420p', '-g', String(gop), '-sc_threshold', '0', '-c:a', 'aac', '-b:a', '96k'],
      ...['-f', 'flv', path],
    ],
    30_000,
  ).done;
  assert.equal(r.code, 0, r.stderr);
  return new Uint8Array(readFileSync(path));
}

/**
 * Writes an FLV at 1×: the header at once, then each tag when its timestamp is due, every batch cut at random
 * points (chunks that split tags anywhere). `done` resolves after the last tag (publishEnded() is the caller's).
 */
function pace(flv: Uint8Array, sinks: readonly PushTarget[], seed: number) {
  const random = prng(seed);
  const tags = readFlvTags(flv, 13);
  const t0 = performance.now();
  const write = (bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length; ) {
      const n = Math.min(bytes.length - at, 1 + Math.floor(random() * 9000));
      for (const s of sinks) s.write(bytes.subarray(at, at + n));
      at += n;
    }
  };
  write(flv.subarray(0, 13));
  let at = 13;
  let i = 0;
  const done = new Promise<void>((resolve) => {
    const feed = () => {
      const now = performance.now() - t0;
      const from = at;
      while (i < tags.length && tags[i]!.timestamp <= now) at += 15 + tags[i++]!.body.length;
      if (at > from) write(flv.subarray(from, at));
      if (i < tags.length) setTimeout(feed, tags[i]!.timestamp - now);
      else resolve();
    };
    feed();
  });
  return { t0, done };
}

/** A PublishSink that writes the FLV it is given to a file. */
function fileSink(path: string): PublishSink & { ended: Promise<void> } {
  const ws = createWriteStream(path);
  let ended: () => void = () => {};
  const endedP = new Promise<void>((r) => {
    ended = r;
  });
  return {
    write: (c) => ws.write(c),
    once: (event, listener) => ws.once(event, listener),
    end: () => new Promise<void>((r) => ws.end(() => r())).then(() => ended()),
    ended: endedP,
  };
}

interface Received {
  path: string;
  at: number;
  sink: ReturnType<typeof fileSink>;
}

/** A second RtmpIngest, the receiving origin: every publish on it lands in `<dir>/<name>-<n>.flv`. */
async function receiver(name: string, port = 0) {
  const received: Received[] = [];
  const ingest = new RtmpIngest({
    host: '127.0.0.1',
    port,
    authorize: (key) => (key === KEY ? { streamId: name } : null),
    onPublish: async () => {
      const path = join(dir, `${name}-${received.length}.flv`);
      const sink = fileSink(path);
      received.push({ path, at: performance.now(), sink });
      return sink;
    },
    limits: { maxConnections: 8, handshakeTimeoutMs: 3000, idleTimeoutMs: 5000 },
  });
  const started = await ingest.start();
  closers.push(() => ingest.close());
  return { port: started.port, received, ingest };
}

/** A port that was free a moment ago: nothing listens on it (yet). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface Probe {
  duration: number;
  video: { width: number; height: number } | undefined;
  audio: boolean;
  firstVideoFlags: string;
  decodeErrors: string;
}

const FIRST_FLAGS = ['-show_entries', 'packet=flags', '-of', 'csv=p=0'];

async function probe(path: string): Promise<Probe> {
  const opts = { timeout: 30_000 };
  const [info, first, decode] = await Promise.all([
    exec(
      'ffprobe',
      ['-v', 'error', '-show_entries', 'stream=codec_type,width,height:format=duration', '-of', 'json', path],
      opts,
    ),
    exec(
      'ffprobe',
      ['-v', 'error', ...['-select_streams', 'v:0', '-read_intervals', '%+#1'], ...FIRST_FLAGS, path],
      opts,
    ),
    run('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-f', 'null', '-'], 30_000).done,
  ]);
  const json = JSON.parse(info.stdout) as {
    streams: { codec_type: string; width?: number; height?: number }[];
    format: { duration: string };
  };
  const v = json.streams.find((s) => s.codec_type === 'video');
  return {
    duration: Number(json.format.duration),
    video: v ? { width: v.width!, height: v.height! } : undefined,
    audio: json.streams.some((s) => s.codec_type === 'audio'),
    firstVideoFlags: first.stdout.trim(),
    decodeErrors: decode.code === 0 ? decode.stderr : `exit ${decode.code}: ${decode.stderr}`,
  };
}

/** The first coded (non-sequence-header) video tag of an FLV file is a keyframe. */
function firstPictureIsKey(path: string): boolean {
  const tags = readFlvTags(new Uint8Array(readFileSync(path)), 13);
  const first = tags.find((t) => t.type === FLV_TAG.video && !videoCodec(t.body).sequenceHeader);
  return !!first && videoCodec(first.body).keyframe;
}

/** ffmpeg processes whose parent is this test process. */
function childFfmpegs(): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && comm.startsWith('ffmpeg')) out.push(Number(pid));
    } catch {}
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Records a target's state changes with their times (from its log). */
function recorder() {
  const events: { at: number; state: PushTargetState; error: string | null }[] = [];
  const log = (msg: string, extra?: Record<string, unknown>) => {
    if (msg === 'push: state') {
      events.push({ at: performance.now(), state: extra?.state as PushTargetState, error: extra?.error as string });
    }
  };
  return { events, log };
}

describe('PushTarget: restreaming over RTMP with ffmpeg 5.1', () => {
  let gop2: Uint8Array;
  let gop1: Uint8Array;
  before(async () => {
    [gop2, gop1] = await Promise.all([clip('gop2.flv', 60), clip('gop1.flv', 30)]);
  });

  it('delivers a 6 s publish paced at 1× to another RtmpIngest: same duration and size, decodes whole', async (t) => {
    const rx = await receiver('one');
    const rec = recorder();
    const pt = target({ id: 'one', url: `rtmp://127.0.0.1:${rx.port}/live/${KEY}`, log: rec.log });
    assert.deepEqual(pt.status().state, 'idle');
    const feed = pace(gop2, [pt], 1);
    await until(() => rx.received.length === 1, 5_000, "the receiver's onPublish");
    const publishMs = rx.received[0]!.at - feed.t0;
    await until(() => pt.status().state === 'pushing', 2_000, 'pushing');
    await feed.done;
    const fedAt = performance.now();
    pt.publishEnded();
    await rx.received[0]!.sink.ended;
    const endMs = performance.now() - fedAt;
    await until(() => pt.status().state === 'idle', 5_000, 'idle after the publish ended');
    const s = pt.status();
    assert.deepEqual([s.reconnects, s.droppedTags, s.error], [0, 0, null]);
    assert.deepEqual(
      rec.events.map((e) => e.state),
      ['connecting', 'pushing', 'idle'],
    );
    const p = await probe(rx.received[0]!.path);
    assert.deepEqual(p.video, { width: 640, height: 360 });
    assert.ok(p.audio, 'the audio arrived');
    assert.ok(Math.abs(p.duration - SECONDS) <= 0.3, `received ${p.duration} s`);
    assert.equal(p.decodeErrors, '');
    assert.match(p.firstVideoFlags, /^K/);
    assert.ok(s.bytesSent > 0.9 * gop2.length, `bytesSent ${s.bytesSent} of ${gop2.length}`);
    assert.equal(rx.received.length, 1);
    t.diagnostic(
      `first write → receiver's onPublish ${publishMs.toFixed(0)} ms; 'pushing' ${(rec.events[1]!.at - feed.t0).toFixed(0)} ms; ` +
        `publishEnded → receiver's sink ended ${endMs.toFixed(0)} ms; received ${p.duration.toFixed(3)} s ` +
        `${p.video?.width}x${p.video?.height}, ${s.bytesSent} bytes sent for ${gop2.length} fed`,
    );
  });

  it('a refused target retries with backoff beside a healthy one, then connects from a keyframe', async (t) => {
    const healthy = await receiver('healthy');
    const latePort = await freePort();
    const recA = recorder();
    const recB = recorder();
    const recC = recorder();
    const a = target({ id: 'a', url: `rtmp://127.0.0.1:${healthy.port}/live/${KEY}`, log: recA.log });
    const backoff = { initialMs: 200, maxMs: 800 };
    const b = target({ id: 'b', url: `rtmp://127.0.0.1:${latePort}/live/${KEY}`, log: recB.log, backoff });
    // SRT to a port nothing listens on: its error must not show the passphrase.
    const passphrase = 'srtsecretpassphrase42';
    const c = target({
      id: 'c',
      url: `srt://127.0.0.1:${latePort}?passphrase=${passphrase}&connect_timeout=500`,
      log: recC.log,
      backoff,
    });
    const feed = pace(gop1, [a, b, c], 2);

    await until(() => b.status().state === 'retrying', 3_000, 'b retrying');
    const refused = b.status();
    assert.match(refused.error ?? '', /refused/i);
    assert.ok(!refused.error?.includes(KEY), `the key is masked in ${refused.error}`);
    assert.match(refused.error ?? '', new RegExp(`127\\.0\\.0\\.1:${latePort}/live/\\*{4}`));
    assert.ok(refused.retryAt !== null && refused.retryAt > Date.now() - 50);

    // The receiver appears 2.5 s into the publish, after b has retried a few times.
    await new Promise((r) => setTimeout(r, Math.max(0, feed.t0 + 2500 - performance.now())));
    const retriesBefore = b.status().reconnects;
    const late = await receiver('late', latePort);
    const lateAt = performance.now();
    await until(() => b.status().state === 'pushing', 4_000, 'b pushing once its receiver is up');
    const connectedMs = performance.now() - lateAt;
    await feed.done;
    for (const x of [a, b, c]) x.publishEnded();
    await Promise.all([healthy.received[0]!.sink.ended, late.received[0]!.sink.ended]);
    await until(() => [a, b, c].every((x) => x.status().state === 'idle'), 5_000, 'all idle');

    // b: retrying → (backoff) → connecting, each delay the backoff's, doubling to its maximum.
    assert.ok(retriesBefore >= 2, `${retriesBefore} reconnects before the receiver appeared`);
    const delays: number[] = [];
    recB.events.forEach((e, i) => {
      const next = recB.events[i + 1];
      if (e.state === 'retrying' && next?.state === 'connecting') delays.push(next.at - e.at);
    });
    const expected = delays.map((_, i) => Math.min(backoff.maxMs, backoff.initialMs * 2 ** i));
    delays.forEach((d, i) => {
      assert.ok(d >= expected[i]! - 5 && d < expected[i]! + 500, `reconnect ${i}: ${d} ms, backoff ${expected[i]}`);
    });
    assert.equal(recB.events.filter((e) => e.state === 'pushing').length, 1);
    const lastRetry = recB.events.findLast((e) => e.state === 'retrying');
    assert.match(lastRetry?.error ?? '', /refused/i);

    // c (SRT) kept retrying all along, its passphrase masked.
    const cs = c.status();
    assert.ok(cs.reconnects >= 2, `srt reconnects ${cs.reconnects}`);
    const srtErrors = recC.events.filter((e) => e.error).map((e) => e.error!);
    assert.ok(srtErrors.length > 0);
    for (const e of srtErrors) assert.ok(!e.includes(passphrase), `passphrase masked in ${e}`);
    assert.equal(cs.url, `srt://127.0.0.1:${latePort}?passphrase=****&connect_timeout=500`);

    // a was not disturbed: one run, the whole publish.
    assert.deepEqual(
      recA.events.map((e) => e.state),
      ['connecting', 'pushing', 'idle'],
    );
    assert.equal(healthy.received.length, 1);
    const pa = await probe(healthy.received[0]!.path);
    assert.ok(Math.abs(pa.duration - SECONDS) <= 0.3, `a received ${pa.duration} s`);
    assert.equal(pa.decodeErrors, '');

    // b's receiver got one publish, starting at a keyframe, decodable from its first frame.
    assert.equal(late.received.length, 1);
    const pb = await probe(late.received[0]!.path);
    assert.ok(firstPictureIsKey(late.received[0]!.path), "the late receiver's first picture is a keyframe");
    assert.match(pb.firstVideoFlags, /^K/);
    assert.equal(pb.decodeErrors, '');
    assert.deepEqual(pb.video, { width: 640, height: 360 });
    // Its receiver appeared 2.5 s in; b joined at one of the 1 s keyframes after that.
    assert.ok(pb.duration >= 0.9 && pb.duration <= 3.6, `b received ${pb.duration} s of ${SECONDS}`);
    t.diagnostic(
      `b: refused → 'retrying' ${(recB.events.find((e) => e.state === 'retrying')!.at - feed.t0).toFixed(0)} ms into the publish; ` +
        `reconnect delays ${delays.map((d) => d.toFixed(0)).join(', ')} ms (backoff 200…800); 'pushing' ` +
        `${connectedMs.toFixed(0)} ms after its receiver appeared; received ${pb.duration.toFixed(3)} s; ` +
        `error shown: ${JSON.stringify(lastRetry?.error)}; srt: ${cs.reconnects} reconnects, ${JSON.stringify(srtErrors.at(-1))}; ` +
        `a received ${pa.duration.toFixed(3)} s`,
    );
  });

  it('stop() kills the ffmpeg and reconnects no more, whatever the state', async () => {
    const rx = await receiver('stop');
    const pushing = target({ id: 's1', url: `rtmp://127.0.0.1:${rx.port}/live/${KEY}` });
    const refusedPort = await freePort();
    const retrying = target({
      id: 's2',
      url: `rtmp://127.0.0.1:${refusedPort}/live/${KEY}`,
      backoff: { initialMs: 300, maxMs: 300 },
    });
    // A TCP server that accepts and never answers: ffmpeg hangs in the RTMP handshake ('connecting').
    // (What ffmpeg sends is read and dropped: a socket that is not read never sees its peer go.)
    const accepted = new Set<Socket>();
    const silent: Server = createServer((s: Socket) => {
      accepted.add(s);
      s.on('error', () => {});
      s.resume();
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    closers.push(() => {
      for (const s of accepted) s.destroy();
      return new Promise<void>((r) => silent.close(() => r()));
    });
    const hanging = target({
      id: 's3',
      url: `rtmp://127.0.0.1:${(silent.address() as { port: number }).port}/live/${KEY}`,
    });
    // The first 1.5 s of the clip at once, and nothing more: the publish stays live.
    const tags = readFlvTags(gop2, 13);
    let end = 13;
    for (const tag of tags) {
      if (tag.timestamp > 1500) break;
      end += 15 + tag.body.length;
    }
    for (const x of [pushing, retrying, hanging]) x.write(gop2.subarray(0, end));
    // Stopped while 'retrying', before its 300 ms backoff has run out.
    await until(() => retrying.status().state === 'retrying', 5_000, 'retrying', 5);
    const stoppedRetrying = retrying.stop();
    await until(() => pushing.status().state === 'pushing', 5_000, 'pushing');
    const pids = [pushing.pid!, hanging.pid!];
    assert.ok(pids.every(alive));
    assert.equal(hanging.status().state, 'connecting');
    await Promise.all([pushing.stop(), stoppedRetrying, hanging.stop()]);
    for (const x of [pushing, retrying, hanging]) {
      assert.equal(x.status().state, 'stopped');
      assert.equal(x.pid, undefined);
    }
    assert.ok(!pids.some(alive), 'the ffmpegs are gone');
    // Nothing starts again: not on a timer, not on more data, not on a new publish.
    for (const x of [pushing, retrying, hanging]) x.write(gop2.subarray(0, end));
    retrying.publishEnded();
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(childFfmpegs(), []);
    assert.equal(retrying.status().reconnects, 0);
    await rx.received[0]!.sink.ended;
  });
});

describe('PushTarget with scripts in place of ffmpeg', () => {
  let flv: Uint8Array;
  before(async () => {
    flv = await clip('units.flv', 30);
  });

  /** A shell script standing in for ffmpeg (it ignores ffmpeg's arguments). */
  function script(name: string, body: string): string {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  }

  it('FlvFollower: the same tags and prelude whatever the chunking; a second header starts a new publish', () => {
    const whole: string[] = [];
    const f = new FlvFollower();
    const describeTag = (e: Parameters<Parameters<FlvFollower['push']>[1]>[0]) =>
      e.kind === 'header'
        ? `H${e.audio}${e.video}`
        : `${e.type}@${e.timestamp}:${e.bytes.length}${e.keyframe ? 'K' : ''}${e.sequenceHeader ? 'S' : ''}${e.metadata ? 'M' : ''}`;
    f.push(flv, (e) => whole.push(describeTag(e)));
    const tags = readFlvTags(flv, 13);
    assert.equal(whole.length, tags.length + 1);
    assert.equal(whole[0], 'Htruetrue');
    assert.equal(whole.filter((w) => w.endsWith('K')).length, SECONDS);
    assert.ok(whole[1]!.endsWith('M'), 'onMetaData first');
    const prelude = f.prelude()!;
    const pt = readFlvTags(prelude, 13);
    assert.deepEqual(
      pt.map((t) => [t.type, t.timestamp]),
      [
        [FLV_TAG.script, 0],
        [FLV_TAG.video, 0],
        [FLV_TAG.audio, 0],
      ],
    );
    const random = prng(7);
    for (let round = 0; round < 20; round++) {
      const split: string[] = [];
      const g = new FlvFollower();
      const twice = new Uint8Array(flv.length * 2);
      twice.set(flv);
      twice.set(flv, flv.length);
      const max = round < 10 ? 16 : 20_000;
      for (let at = 0; at < twice.length; ) {
        const n = Math.min(twice.length - at, 1 + Math.floor(random() * max));
        g.push(twice.slice(at, at + n), (e) => split.push(describeTag(e)));
        at += n;
      }
      assert.deepEqual(split, [...whole, ...whole], `round ${round}`);
      assert.deepEqual(g.prelude(), prelude);
      assert.equal(g.brokenReason, null);
    }
    const bad = new FlvFollower();
    bad.push(Uint8Array.of(1, 2, 3, ...new Uint8Array(20)), () => assert.fail('no event for garbage'));
    assert.match(bad.brokenReason ?? '', /signature/);
    const badTag = new FlvFollower();
    const events: string[] = [];
    badTag.push(concatBytes(flv.subarray(0, 13), Uint8Array.of(0x33, ...new Uint8Array(30))), (e) =>
      events.push(e.kind),
    );
    assert.deepEqual(events, ['header']);
    assert.match(badTag.brokenReason ?? '', /tag type/);
  });

  it('a restart mid-publish forwards the prelude, then from the next keyframe, rebased to 0', async () => {
    const out = join(dir, 'forwarded.flv');
    const marker = join(dir, 'failed-once');
    const fake = script(
      'fail-once.sh',
      `if [ -e '${marker}' ]; then exec cat > '${out}'; fi\n: > '${marker}'\necho "[rtmp @ 0x1] rtmp://h/live/${KEY}: Connection refused" >&2\nexit 1`,
    );
    const rec = recorder();
    const pt = target({
      id: 'r',
      url: `rtmp://h.example/live/${KEY}`,
      ffmpeg: fake,
      backoff: { initialMs: 50, maxMs: 50 },
      log: rec.log,
    });
    const tags = readFlvTags(flv, 13);
    const cut = 13 + tags.slice(0, 40).reduce((n, t) => n + 15 + t.body.length, 0);
    pt.write(flv.subarray(0, cut));
    await until(() => pt.status().state === 'retrying', 3_000, 'retrying');
    assert.equal(pt.status().error, '[rtmp @ 0x1] rtmp://h/live/****: Connection refused');
    await until(() => pt.status().state === 'connecting', 3_000, 'connecting again');
    pt.write(flv.subarray(cut));
    pt.publishEnded();
    await until(() => pt.status().state === 'idle', 3_000, 'idle');
    assert.equal(pt.status().reconnects, 1);

    const got = new Uint8Array(readFileSync(out));
    assert.deepEqual([...got.subarray(0, 13)], [...flv.subarray(0, 13)], 'the FLV header');
    const fwd = readFlvTags(got, 13);
    assert.deepEqual(
      fwd.slice(0, 3).map((t) => [t.type, t.timestamp]),
      [
        [FLV_TAG.script, 0],
        [FLV_TAG.video, 0],
        [FLV_TAG.audio, 0],
      ],
      'the prelude: onMetaData and the two sequence headers at 0',
    );
    const first = fwd[3]!;
    assert.equal(first.type, FLV_TAG.video);
    assert.ok(videoCodec(first.body).keyframe, 'media starts at a keyframe');
    assert.equal(first.timestamp, 0, 'rebased to 0');
    // The keyframe was the first after the 40th tag; everything after it was forwarded, shifted by its time.
    const keyAt = tags.findIndex((t, i) => i >= 40 && t.type === FLV_TAG.video && videoCodec(t.body).keyframe);
    const base = tags[keyAt]!.timestamp;
    assert.ok(base >= 1000);
    const expected = tags.slice(keyAt).filter((t) => t.timestamp >= base);
    assert.deepEqual(
      fwd.slice(3).map((t) => [t.type, t.timestamp, t.body.length]),
      expected.map((t) => [t.type, t.timestamp - base, t.body.length]),
    );
    assert.deepEqual(Buffer.from(fwd.at(-1)!.body), Buffer.from(tags.at(-1)!.body));
  });

  it('drops to the next keyframe when the target does not read, without ever blocking the writer', async () => {
    // `sleep` never reads its stdin: the pipe fills, then Node's queue, up to maxBufferBytes.
    const fake = script('stuck.sh', 'exec sleep 30');
    const maxBufferBytes = 256 << 10;
    const pt = target({ id: 'd', url: `rtmp://h.example/live/${KEY}`, ffmpeg: fake, maxBufferBytes });
    const t0 = performance.now();
    for (let at = 0; at < flv.length; at += 4096) pt.write(flv.subarray(at, at + 4096));
    const ms = performance.now() - t0;
    const s = pt.status();
    assert.ok(s.droppedTags > 0 && s.droppedBytes > flv.length - 2 * maxBufferBytes - (1 << 17), JSON.stringify(s));
    assert.ok(ms < 500, `writing ${flv.length} bytes took ${ms} ms`);
    const pid = pt.pid!;
    await pt.stop();
    assert.ok(!alive(pid));
  });

  it('a target that takes the data but makes no progress is killed by the watchdog and retried', async () => {
    const fake = script('silent.sh', 'exec cat > /dev/null');
    const rec = recorder();
    const pt = target({
      id: 'w',
      url: `rtmp://h.example/live/${KEY}`,
      ffmpeg: fake,
      stallMs: 300,
      backoff: { initialMs: 5000, maxMs: 5000 },
      log: rec.log,
    });
    pt.write(flv);
    await until(() => pt.status().state === 'retrying', 3_000, 'killed for no progress');
    assert.match(pt.status().error ?? '', /^no progress for \d+\.\d s$/);
    const pid = pt.pid;
    assert.equal(pid, undefined);
    await pt.stop();
  });

  it('a publisher that pauses longer than stallMs does not trip the watchdog', async () => {
    // Reports progress for whatever it reads, as ffmpeg does for the packets it copies.
    const fake = join(dir, 'reporting.js');
    writeFileSync(
      fake,
      `#!${process.execPath}\nlet n = 0;\nprocess.stdin.on('data', (d) => {\n  n += d.length;\n` +
        "process.stdout.write('total_size=' + n + '\\nprogress=continue\\n');\n});\n",
    );
    chmodSync(fake, 0o755);
    const rec = recorder();
    const pt = target({ id: 'p', url: `rtmp://h.example/live/${KEY}`, ffmpeg: fake, stallMs: 300, log: rec.log });
    pt.write(flv.subarray(0, flv.length >> 1));
    await until(() => pt.status().state === 'pushing', 3_000, 'pushing');
    await new Promise((r) => setTimeout(r, 700));
    pt.write(flv.subarray(flv.length >> 1));
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(
      rec.events.map((e) => e.state),
      ['connecting', 'pushing'],
    );
    assert.ok(pt.status().bytesSent > flv.length * 0.9, `${pt.status().bytesSent}`);
    await pt.stop();
  });

  it('a missing executable is a retrying target, not an exception', async () => {
    const pt = target({
      id: 'x',
      url: `rtmp://h.example/live/${KEY}`,
      ffmpeg: join(dir, 'no-such-ffmpeg'),
      backoff: { initialMs: 5000, maxMs: 5000 },
    });
    pt.write(flv.subarray(0, 4096));
    await until(() => pt.status().state === 'retrying', 3_000, 'retrying');
    assert.match(pt.status().error ?? '', /could not be started.*ENOENT/);
    await pt.stop();
  });
});

describe('push target URLs', () => {
  it('validateTargetUrl accepts and refuses', () => {
    const ok = [
      `rtmp://a.rtmp.youtube.com/live2/${KEY}`,
      'rtmp://127.0.0.1:1935/live/key',
      'rtmps://live-api-s.facebook.com:443/rtmp/FB-123-0-Ab?s_bl=1&s_sc=2',
      'rtmp://user:pw@host.example/app/inst/key',
      'rtmp://[::1]:1935/live/key',
      'srt://203.0.113.5:9000',
      'srt://ingest.example:9000?passphrase=0123456789abcdef&pbkeylen=16',
      'srt://ingest.example:9000?streamid=live/abc&latency=120000&mode=caller',
      'https://other.example/live/ingest/KEY123',
      'http://10.0.0.2:8080/ingest/k',
    ];
    for (const u of ok) assert.equal(validateTargetUrl(u), u, u);
    const bad = [
      '',
      'ftp://host/app/key',
      'file:///etc/passwd',
      'rtmp:/host/app/key',
      'rtmp://host/app',
      'rtmp://host/',
      'rtmp://host:0/app/key',
      'rtmp://host:99999/app/key',
      'rtmp://ho st/app/key',
      'rtmp://host/app/key with space',
      'rtmp://host/app/key\n',
      'rtmp://host/app/k\u0000y',
      'rtmp://hóst/app/key',
      'rtmp://host/app/key#frag',
      'rtmp://-host/app/key',
      'rtmp://host_name/app/key',
      `rtmp://host/app/${'k'.repeat(2048)}`,
      'srt://host',
      'srt://host:9000/path',
      'srt://host:9000?mode=listener',
      'srt://host:9000?passphrase=short',
      'srt://host:9000?localport=1935',
      'srt://host:9000?passphrase=0123456789&passphrase=0123456789',
      'srt://u:p@host:9000',
      'https://other.example',
      'https://other.example/',
      'https://other.example/ingest/',
      'https://other.example/ingest?key=1',
      ' rtmp://host/app/key',
      'concat:rtmp://host/app/key',
      'pipe:1',
      '-f',
    ];
    for (const u of bad) {
      assert.throws(
        () => validateTargetUrl(u),
        (e: unknown) => (e as { code?: string }).code === 'LIVE_TARGET_INVALID',
        JSON.stringify(u),
      );
    }
    assert.throws(() => new PushTarget({ id: 'x', url: 'ftp://h/a/b' }), /not a push target URL/);
  });

  it('masks secrets for display', () => {
    const table: [string, string][] = [
      [`rtmp://a.rtmp.youtube.com/live2/${KEY}`, 'rtmp://a.rtmp.youtube.com/live2/****'],
      ['rtmps://f.example:443/rtmp/FB-123?s_bl=1&s_sc=2', 'rtmps://f.example:443/rtmp/****?s_bl=****&s_sc=****'],
      ['rtmp://user:pw@host.example/app/inst/key', 'rtmp://user:****@host.example/app/inst/****'],
      [
        'srt://i.example:9000?passphrase=0123456789abcdef&pbkeylen=16',
        'srt://i.example:9000?passphrase=****&pbkeylen=16',
      ],
      ['srt://i.example:9000?streamid=live/abc&latency=120000', 'srt://i.example:9000?streamid=****&latency=120000'],
      ['srt://i.example:9000', 'srt://i.example:9000'],
      ['https://other.example/live/ingest/KEY123', 'https://other.example/live/ingest/****'],
    ];
    for (const [u, masked] of table) {
      assert.equal(maskTargetUrl(u), masked);
      assert.equal(new PushTarget({ id: 'm', url: u }).status().url, masked);
    }
    assert.equal(maskTargetUrl('ftp://x/y/z'), '****');
  });

  it('builds the ffmpeg command line for each kind of target', () => {
    const head = [
      ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-nostats', '-progress', 'pipe:1', '-stats_period', '0.5'],
      ...['-fpsprobesize', '0', '-f', 'flv', '-i', 'pipe:0', '-map', '0:v:0?', '-map', '0:a:0?', '-c', 'copy'],
    ];
    assert.deepEqual(pushTargetArgs('rtmp://h/live/k'), [
      ...head,
      ...['-flvflags', 'no_duration_filesize', '-f', 'flv', 'rtmp://h/live/k'],
    ]);
    assert.deepEqual(pushTargetArgs('srt://h:9000?passphrase=0123456789'), [
      ...head,
      ...['-f', 'mpegts', 'srt://h:9000?passphrase=0123456789'],
    ]);
    assert.deepEqual(pushTargetArgs('https://o.example/ingest/KEY'), [
      ...head,
      ...['-movflags', 'isml+frag_keyframe', '-f', 'ismv', 'https://o.example/ingest/KEY.isml/Streams(smoothcast)'],
    ]);
    const t = new PushTarget({ id: 'h', url: 'https://o.example/ingest/KEY123' });
    assert.equal(t.args.at(-1), 'https://o.example/ingest/KEY123.isml/Streams(smoothcast)');
    assert.equal(t.status().url, 'https://o.example/ingest/****');
  });
});

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}
