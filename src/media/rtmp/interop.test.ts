// ffmpeg 5.1 publishing to RtmpSession over real TCP. The tiny server here is test glue only (roles/live will be the
// real one): each socket drives one session, the key 'goodkey' is accepted once at a time, and the audio/video
// events are written as FLV, which ffprobe and ffmpeg then judge. The first accepted connection's incoming bytes
// are kept in the fixture cache for fuzz.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ffprobeJson } from '../../../test/helpers/media.ts';
import { FLV_TAG, flvHeader, flvTag, metadataBody, type RtmpOutput, RtmpSession } from './index.ts';

const RECORDED_SESSION = join(
  process.env.SMOOTHCAST_FIXTURES ?? join(tmpdir(), 'smoothcast-fixtures'),
  'rtmp-ffmpeg-publish.bin',
);

interface Connection {
  key: string | null;
  accepted: boolean;
  rejected: boolean;
  flv: Uint8Array[];
  incoming: Uint8Array[];
  events: string[];
  errors: string[];
  closed: Promise<void>;
}

class TestServer {
  readonly server: Server;
  readonly live = new Set<string>();
  readonly connections: Connection[] = [];
  port = 0;

  constructor() {
    this.server = createServer((socket) => {
      const session = new RtmpSession({ randomBytes: (n) => new Uint8Array(randomBytes(n)) });
      let done!: () => void;
      const c: Connection = {
        key: null,
        accepted: false,
        rejected: false,
        flv: [],
        incoming: [],
        events: [],
        errors: [],
        closed: new Promise((resolve) => {
          done = resolve;
        }),
      };
      this.connections.push(c);
      const handle = (r: RtmpOutput): void => {
        for (const b of r.out) if (!socket.destroyed) socket.write(b);
        for (const e of r.events) {
          c.events.push(e.type);
          if (e.type === 'publish') {
            if (e.streamKey !== 'goodkey' || e.app !== 'live' || this.live.has(e.streamKey)) {
              c.rejected = true;
              handle(session.reject(`stream key refused: ${e.streamKey}`));
            } else {
              this.live.add(e.streamKey);
              c.key = e.streamKey;
              c.accepted = true;
              c.flv.push(flvHeader());
              handle(session.accept());
            }
          } else if (e.type === 'metadata') {
            c.flv.push(flvTag(FLV_TAG.script, 0, metadataBody(e.data)));
          } else if (e.type === 'video' || e.type === 'audio') {
            c.flv.push(flvTag(e.type === 'video' ? FLV_TAG.video : FLV_TAG.audio, e.timestamp, e.data));
          } else if (e.type === 'unpublish') {
            if (c.key) this.live.delete(c.key);
            c.key = null;
          } else if (e.type === 'error') {
            c.errors.push(e.error.message);
          }
        }
        if (session.closing && !socket.destroyed) socket.end();
      };
      socket.on('data', (chunk: Buffer) => {
        c.incoming.push(new Uint8Array(chunk));
        handle(session.push(chunk, Date.now()));
      });
      socket.on('error', () => {});
      socket.on('close', () => {
        handle(session.end());
        done();
      });
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    assert.ok(address && typeof address === 'object');
    this.port = address.port;
  }

  /** Resolves once `predicate` holds, polling every 20 ms until `ms` have passed. */
  async until(predicate: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  ms: number;
}

function run(command: string, args: readonly string[], timeoutMs: number): Promise<Run> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, ms: performance.now() - t0 });
    });
  });
}

function publish(port: number, key: string): Promise<Run> {
  const url = `rtmp://127.0.0.1:${port}/live/${key}`;
  return run(
    'ffmpeg',
    [
      ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-re'],
      ...['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30:duration=4', '-f', 'lavfi', '-i', 'sine=duration=4'],
      ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '60', '-c:a', 'aac', '-f', 'flv', url],
    ],
    30_000,
  );
}

const flvBytes = (c: Connection) => c.flv.reduce((n, b) => n + b.length, 0);

describe('interop: ffmpeg 5.1 publishes to RtmpSession', () => {
  const server = new TestServer();
  let dir = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smoothcast-rtmp-'));
    await server.listen();
  });
  after(() => {
    server.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("'goodkey' is accepted and the FLV written from the events is h264 320x180 + aac, 4 s, decodable", async (t) => {
    const first = publish(server.port, 'goodkey');
    await server.until(() => server.live.has('goodkey'), 15_000, 'the first publisher to go live');

    // A second publisher on a key that is live is refused at publish and exits on its own.
    const before = server.connections.length;
    const second = await publish(server.port, 'goodkey');
    assert.notEqual(second.code, 0, 'the second publisher must fail');
    assert.ok(second.ms < 10_000, `the second publisher took ${second.ms} ms to give up`);
    const refused = server.connections[before];
    assert.ok(refused?.rejected && !refused.accepted && flvBytes(refused) === 0);
    t.diagnostic(`second publisher refused in ${second.ms.toFixed(0)} ms: ${second.stderr.trim().split('\n').at(-1)}`);

    const r = await first;
    assert.equal(r.code, 0, `ffmpeg exited ${r.code ?? r.signal}: ${r.stderr}`);
    const c = server.connections.find((x) => x.accepted);
    assert.ok(c);
    await c.closed;
    assert.deepEqual(c.errors, []);
    assert.equal(c.events.at(-1), 'unpublish');
    assert.ok(!server.live.has('goodkey'), 'the key is free again after unpublish');

    const file = join(dir, 'good.flv');
    writeFileSync(file, Buffer.concat(c.flv));
    const probe = (await ffprobeJson(file, ['-show_streams', '-show_format'])) as {
      streams: { codec_type: string; codec_name: string; width?: number; height?: number }[];
      format: { duration: string };
    };
    const video = probe.streams.find((s) => s.codec_type === 'video');
    const audio = probe.streams.find((s) => s.codec_type === 'audio');
    assert.equal(video?.codec_name, 'h264');
    assert.equal(video?.width, 320);
    assert.equal(video?.height, 180);
    assert.equal(audio?.codec_name, 'aac');
    const duration = Number(probe.format.duration);
    assert.ok(Math.abs(duration - 4) <= 0.2, `duration ${duration}`);
    const decode = await run('ffmpeg', ['-nostdin', '-v', 'error', '-i', file, '-f', 'null', '-'], 60_000);
    assert.equal(decode.code, 0);
    assert.equal(decode.stderr, '', 'ffmpeg decodes the FLV without a complaint');
    t.diagnostic(`publish ${r.ms.toFixed(0)} ms, ${statSync(file).size} FLV bytes, duration ${duration} s`);

    // The real byte stream, for the fuzz test's seeds (written whole, then renamed, so a reader never sees half).
    mkdirSync(join(RECORDED_SESSION, '..'), { recursive: true });
    const partial = `${RECORDED_SESSION}.${process.pid}.tmp`;
    writeFileSync(partial, Buffer.concat(c.incoming));
    renameSync(partial, RECORDED_SESSION);
    assert.ok(readFileSync(RECORDED_SESSION).length > 10_000);
  });

  it("'badkey' is rejected: ffmpeg fails within 10 s and no FLV byte is written", async (t) => {
    const before = server.connections.length;
    const r = await publish(server.port, 'badkey');
    assert.notEqual(r.code, 0);
    assert.ok(r.ms < 10_000, `ffmpeg took ${r.ms} ms to give up`);
    const c = server.connections[before];
    assert.ok(c);
    await c.closed;
    assert.ok(c.rejected && !c.accepted);
    assert.equal(flvBytes(c), 0);
    assert.ok(!c.events.includes('video') && !c.events.includes('audio'));
    t.diagnostic(`refused in ${r.ms.toFixed(0)} ms; ffmpeg said: ${r.stderr.trim().split('\n').join(' | ')}`);
  });
});
