// RtmpIngest with scripted RTMP traffic (src/media/rtmp/testing.ts) over real sockets on port 0, and sinks that
// record what they get: timeouts, the connection limit, backpressure, the FLV handed over, and every way a publish
// can fail without disturbing another.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FLV_TAG, type FlvTagRecord, readFlvTags } from '../../media/rtmp/flv.ts';
import {
  type LivePublishTarget,
  type PublishMeta,
  type PublishSink,
  RtmpIngest,
  type RtmpIngestOptions,
} from './rtmp-ingest.ts';
import {
  AAC_SEQUENCE,
  AVC_SEQUENCE,
  avcFrame,
  Client,
  clientHandshake,
  concat,
  dial,
  onMetaData,
  publishPreamble,
  until,
} from './testing.ts';

class RecordingSink implements PublishSink {
  readonly chunks: Uint8Array[] = [];
  bytes = 0;
  ends = 0;
  blocked = false;
  private drains: (() => void)[] = [];
  closed?: Promise<unknown>;

  write(chunk: Uint8Array): boolean {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    return !this.blocked;
  }
  once(_event: 'drain', listener: () => void): this {
    this.drains.push(listener);
    return this;
  }
  end(): void {
    this.ends++;
  }
  unblock(): void {
    this.blocked = false;
    const d = this.drains;
    this.drains = [];
    for (const f of d) f();
  }
  /** The FLV received: its header's flags and its tags. */
  flv(): { flags: number; tags: FlvTagRecord[] } {
    const all = concat(this.chunks);
    if (all.length === 0) return { flags: -1, tags: [] };
    assert.equal(Buffer.from(all.subarray(0, 3)).toString(), 'FLV');
    return { flags: all[4]!, tags: readFlvTags(all, 13) };
  }
}

type Options = RtmpIngestOptions<LivePublishTarget>;

/** An ingest on port 0 accepting 'key1'…'key9' (stream = key) into RecordingSinks; `log` collects reasons. */
async function ingestWith(over: Partial<Options> = {}, limits: Partial<Options['limits']> = {}) {
  const sinks: { target: LivePublishTarget; meta: PublishMeta; sink: RecordingSink }[] = [];
  const logs: { msg: string; reason?: unknown }[] = [];
  const ingest = new RtmpIngest({
    host: '127.0.0.1',
    port: 0,
    authorize: (key) => (/^key\d$/.test(key) ? { streamId: key } : null),
    onPublish: async (target, meta) => {
      const sink = new RecordingSink();
      sinks.push({ target, meta, sink });
      return sink;
    },
    log: (msg, extra) => logs.push({ msg, reason: extra?.reason ?? extra?.error }),
    ...over,
    limits: { maxConnections: 8, handshakeTimeoutMs: 2000, idleTimeoutMs: 2000, ...limits },
  });
  const { port } = await ingest.start();
  return { ingest, port, sinks, logs };
}

const META = { width: 640, height: 360, framerate: 30, videocodecid: 7, audiocodecid: 10 };

/** A whole scripted publish: metadata (unless null), sequence headers, `frames` frames from `t0` ms, unpublish. */
function scriptedPublish(key: string, o: { frames?: number; t0?: number; meta?: object | null; size?: number } = {}) {
  const c = new Client();
  const t0 = o.t0 ?? 0;
  const parts = [publishPreamble(key, c)];
  if (o.meta !== null) parts.push(onMetaData(c, { ...META, ...o.meta }));
  parts.push(c.media(9, t0, AVC_SEQUENCE), c.media(8, t0, AAC_SEQUENCE));
  for (let i = 0; i < (o.frames ?? 10); i++) {
    parts.push(c.media(9, t0 + i * 33, avcFrame(o.size ?? 200, i % 60 === 0)));
    parts.push(c.media(8, t0 + i * 33, Uint8Array.of(0xaf, 1, 0x21, 0x10)));
  }
  return { client: c, bytes: concat(parts), end: c.unpublish(key) };
}

describe('RtmpIngest (scripted publishers)', () => {
  it('hands over FLV: header flags from onMetaData, the metadata, then the tags; ends the sink on unpublish', async () => {
    const { ingest, port, sinks } = await ingestWith();
    try {
      const p = scriptedPublish('key1', { t0: 5000, meta: { audiocodecid: undefined } });
      const { socket } = await dial(port);
      // A publisher waits for NetStream.Publish.Start; one that unpublishes before it withdraws the publish.
      socket.write(p.bytes);
      await until(() => sinks[0]?.sink.flv().tags.length === 23, 3000, 'the tags');
      socket.write(p.end);
      await until(() => sinks[0]?.sink.ends === 1, 3000, 'the sink to end');
      const { target, meta, sink } = sinks[0]!;
      assert.equal(target.streamId, 'key1');
      assert.deepEqual(meta.flags, { audio: false, video: true }, 'what onMetaData announced, audio included');
      const { flags, tags } = sink.flv();
      assert.equal(flags, 1);
      assert.equal(tags[0]?.type, FLV_TAG.script);
      assert.equal(tags.length, 1 + 2 + 20);
      // Rebased: the first media tag at 0, then the publisher's own spacing.
      assert.deepEqual(
        tags.filter((t) => t.type === FLV_TAG.video).map((t) => t.timestamp),
        [0, ...Array.from({ length: 10 }, (_, i) => i * 33)],
      );
      await until(() => ingest.stats().publishing === 0, 1000, 'release');
      socket.destroy();
    } finally {
      await ingest.close();
    }
  });

  it('without onMetaData opens at the first coded frame, flags from the tags seen', async () => {
    const { ingest, port, sinks } = await ingestWith();
    try {
      const p = scriptedPublish('key2', { meta: null, frames: 3 });
      const { socket } = await dial(port);
      socket.write(p.bytes);
      await until(() => sinks.length === 1 && sinks[0]!.sink.bytes > 0, 3000, 'the sink');
      const { meta, sink } = sinks[0]!;
      assert.deepEqual(
        [meta.metadata, meta.flags, meta.videoCodec, meta.audioCodec],
        [null, { audio: true, video: true }, 'avc', 'aac'],
      );
      await until(() => sink.flv().tags.length === 8, 3000, 'all tags');
      assert.equal(sink.flv().flags, 5);
      socket.destroy();
      await until(() => sink.ends === 1, 3000, 'end on socket close');
    } finally {
      await ingest.close();
    }
  });

  it('closes silent, half-handshaken, idle and garbage connections, each for its own reason, and serves others', async () => {
    const { ingest, port, sinks, logs } = await ingestWith({}, { handshakeTimeoutMs: 300, idleTimeoutMs: 500 });
    try {
      const silent = await dial(port);
      const half = await dial(port);
      half.socket.write(clientHandshake().c0c1);
      const idle = await dial(port);
      idle.socket.write(concat([clientHandshake().c0c1, clientHandshake().c2, new Client().connect()]));
      const garbage = await dial(port);
      garbage.socket.write(Buffer.alloc(4096, 0xff));
      const good = await dial(port);
      const p = scriptedPublish('key3', { frames: 30 });
      good.socket.write(p.bytes);
      const [silentMs, halfMs, idleMs, garbageMs] = await Promise.all(
        [silent, half, idle, garbage].map((c) => c.closed),
      );
      assert.ok(silentMs! >= 250 && silentMs! < 2000, `silent closed after ${silentMs} ms`);
      assert.ok(halfMs! >= 250 && halfMs! < 2000, `half handshake closed after ${halfMs} ms`);
      assert.ok(idleMs! >= 450 && idleMs! < 2500, `idle closed after ${idleMs} ms`);
      assert.ok(garbageMs! < 250, `garbage closed after ${garbageMs} ms`);
      const reasons = logs.map((l) => String(l.reason));
      assert.equal(reasons.filter((r) => r === 'no handshake and connect in time').length, 2);
      assert.ok(reasons.includes('nothing received for 500 ms'));
      assert.ok(logs.some((l) => l.msg === 'rtmp: protocol error' && /version 255/.test(String(l.reason))));
      // The good publisher kept its stream through all that; it ends when it unpublishes.
      assert.equal(sinks.length, 1);
      good.socket.write(p.end);
      await until(() => sinks[0]!.sink.ends === 1, 2000, 'unpublish');
      assert.equal(sinks[0]!.sink.flv().tags.length, 1 + 2 + 60);
      good.socket.destroy();
    } finally {
      await ingest.close();
    }
  });

  it('takes at most maxConnections sockets at once', async () => {
    const { ingest, port } = await ingestWith({}, { maxConnections: 2 });
    try {
      const a = await dial(port);
      const b = await dial(port);
      await until(() => ingest.stats().connections === 2, 1000, 'two connections');
      const c = await dial(port);
      assert.ok((await c.closed) < 1000);
      a.socket.destroy();
      await until(() => ingest.stats().connections === 1, 1000, 'one connection');
      const d = await dial(port);
      await until(() => ingest.stats().connections === 2, 1000, 'a new one accepted');
      b.socket.destroy();
      d.socket.destroy();
    } finally {
      await ingest.close();
    }
  });

  it('stops reading the socket while the sink refuses more, and resumes on drain', async () => {
    let first = true;
    const { ingest, port, sinks } = await ingestWith({
      onPublish: async (target, meta) => {
        const sink = new RecordingSink();
        sink.blocked = first;
        first = false;
        sinks.push({ target, meta, sink });
        return sink;
      },
    });
    try {
      // 40 MiB of video: far more than the kernel buffers between the two sockets hold.
      const frames = 700;
      const p = scriptedPublish('key4', { frames, size: 60_000 });
      const { socket } = await dial(port);
      socket.write(concat([p.bytes, p.end]));
      await until(() => ingest.stats().paused === 1, 3000, 'the socket to pause');
      const { sink } = sinks[0]!;
      const seen = sink.bytes;
      // The publisher stalls: what it wrote stays in its own buffer because the ingest is not reading.
      await until(() => socket.writableLength > 16 << 20, 5000, 'the publisher to stall');
      assert.equal(sink.bytes, seen, 'nothing reached the sink while it was full');
      assert.ok(seen < p.bytes.length / 4);
      // Another stream is not held up by the paused one.
      const other = scriptedPublish('key5');
      const o = await dial(port);
      o.socket.write(other.bytes);
      await until(() => sinks[1]?.sink.flv().tags.length === 23, 3000, 'the other publish to complete');
      o.socket.write(other.end);
      await until(() => sinks[1]?.sink.ends === 1, 3000, 'the other publish to end');
      sink.unblock();
      await until(() => sink.ends === 1, 10_000, 'the rest of the publish');
      assert.equal(sink.flv().tags.filter((t) => t.type === FLV_TAG.video).length, frames + 1);
      assert.equal(ingest.stats().paused, 0);
      socket.destroy();
      o.socket.destroy();
    } finally {
      await ingest.close();
    }
  });

  it('refuses when authorize throws; forgets a publish withdrawn while authorize runs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { ingest, port, sinks, logs } = await ingestWith({
      authorize: async (key) => {
        if (key === 'key6') throw new Error('database down');
        if (key === 'key7') await gate;
        return { streamId: 'same' };
      },
    });
    try {
      const failing = await dial(port);
      failing.socket.write(scriptedPublish('key6').bytes);
      assert.ok((await failing.closed) < 2000, 'closed after the refusal');
      assert.ok(logs.some((l) => l.msg === 'rtmp: authorize failed'));

      const withdrawn = await dial(port);
      withdrawn.socket.write(scriptedPublish('key7').bytes);
      await until(() => ingest.stats().connections === 1, 1000, 'the connection');
      withdrawn.socket.destroy();
      await until(() => ingest.stats().connections === 0, 1000, 'the close');
      release();
      // The stream it would have taken is free: another publish gets it.
      const next = await dial(port);
      const p = scriptedPublish('key8');
      next.socket.write(p.bytes);
      await until(() => sinks.length === 1 && sinks[0]!.sink.bytes > 0, 2000, 'the next publish');
      assert.equal(sinks[0]!.meta.streamKey, 'key8');
      next.socket.destroy();
    } finally {
      await ingest.close();
    }
  });

  it('drops the publisher when onPublish fails or the sink closes, and frees the stream', async () => {
    let closeSink!: () => void;
    let n = 0;
    const { ingest, port, sinks, logs } = await ingestWith({
      onPublish: async (target, meta) => {
        n++;
        if (n === 1) throw new Error('no disk');
        const sink = new RecordingSink();
        sink.closed = new Promise<void>((r) => {
          closeSink = r;
        });
        sinks.push({ target, meta, sink });
        return sink;
      },
    });
    try {
      const a = await dial(port);
      a.socket.write(scriptedPublish('key1').bytes);
      assert.ok((await a.closed) < 2000);
      assert.ok(logs.some((l) => l.msg === 'rtmp: onPublish failed'));
      const b = await dial(port);
      b.socket.write(scriptedPublish('key1').bytes);
      await until(() => sinks.length === 1, 2000, 'the second publish to open');
      closeSink();
      assert.ok((await b.closed) < 2000);
      await until(() => sinks[0]!.sink.ends === 1 && ingest.stats().publishing === 0, 1000, 'release');
    } finally {
      await ingest.close();
    }
  });

  it('close() drops live publishers and waits for their sinks to end', async () => {
    let ended = false;
    const { ingest, port } = await ingestWith({
      onPublish: async () => {
        const sink = new RecordingSink();
        sink.end = () =>
          new Promise<void>((r) =>
            setImmediate(() => {
              ended = true;
              r();
            }),
          );
        return sink;
      },
    });
    const a = await dial(port);
    a.socket.write(scriptedPublish('key1').bytes);
    await until(() => ingest.stats().publishing === 1, 2000, 'publishing');
    await ingest.close();
    assert.ok(ended, "close() waited for the sink's end()");
    await a.closed;
  });
});
