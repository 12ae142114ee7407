import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Amf0Value, decodeAmf0All, EcmaArray, ecmaArray, propertiesOf } from './amf0.ts';
import { ChunkReader, MSG, type RtmpMessage } from './chunk.ts';
import { type RtmpEvent, RtmpSession } from './session.ts';
import { Client, clientHandshake, concat, serverMessages } from './testing.ts';

const random = (n: number) => new Uint8Array(n).fill(7);
const AVC_SEQUENCE = Uint8Array.of(0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x0d);
const AAC_SEQUENCE = Uint8Array.of(0xaf, 0, 0x12, 0x10);

/** A session with a connected client: what the server said and did so far, and a reader for what comes next. */
function connected(options: Partial<ConstructorParameters<typeof RtmpSession>[0]> = {}) {
  const session = new RtmpSession({ randomBytes: random, ...options });
  const client = new Client();
  const reader = new ChunkReader();
  const { c0c1, c2 } = clientHandshake();
  const hello = session.push(c0c1, 100);
  assert.equal(concat(hello.out).length, 3073);
  const rest = concat([c2, client.setChunkSize(4096), client.connect()]);
  const r = session.push(rest, 110);
  const sent = c0c1.length + rest.length;
  return { session, client, reader, sent, first: { messages: serverMessages([...hello.out, ...r.out], reader), ...r } };
}

function commands(messages: RtmpMessage[]): Amf0Value[][] {
  return messages.filter((m) => m.type === MSG.commandAmf0).map((m) => decodeAmf0All(m.payload));
}

const info = (cmd: Amf0Value[] | undefined) => propertiesOf(cmd?.[3]) ?? {};

describe('RtmpSession', () => {
  it('answers connect as ffmpeg and OBS expect: window, bandwidth, chunk size 4096, Connect.Success', () => {
    const { session, first } = connected();
    assert.deepEqual(
      first.messages.map((m) => m.type),
      [MSG.windowAckSize, MSG.setPeerBandwidth, MSG.setChunkSize, MSG.commandAmf0],
    );
    const [win, bw, size] = first.messages.map((m) => Buffer.from(m.payload).toString('hex'));
    assert.equal(win, (2_500_000).toString(16).padStart(8, '0'));
    assert.equal(bw, `${(2_500_000).toString(16).padStart(8, '0')}02`);
    assert.equal(size, '00001000');
    const [result] = commands(first.messages);
    assert.equal(result?.[0], '_result');
    assert.equal(result?.[1], 1);
    assert.equal(info(result).code, 'NetConnection.Connect.Success');
    assert.deepEqual(first.events, [{ type: 'connect', app: 'live', tcUrl: 'rtmp://127.0.0.1/live' }]);
    assert.equal(session.state, 'connected');
  });

  it('runs a whole publish: waits at publish, then media and metadata become events, FCUnpublish ends it', () => {
    const { session, client, reader } = connected();
    const r = session.push(client.publish('goodkey?token=abc&x=1'), 200);
    const said = commands(serverMessages(r.out, reader));
    assert.deepEqual(
      said.map((c) => [c[0], c[1]]),
      [
        ['_result', 2],
        ['onFCPublish', 0],
        ['_result', 3],
        ['_result', 4],
      ],
    );
    assert.equal(said[3]?.[3], 1, 'createStream gives stream id 1');
    assert.deepEqual(r.events, [{ type: 'publish', streamKey: 'goodkey', app: 'live', query: 'token=abc&x=1' }]);
    assert.equal(session.state, 'pending');

    // Nothing is handed out before the caller decides; what came meanwhile follows the accept.
    const early = Uint8Array.of(0x17, 1, 0, 0, 0, 0xee);
    assert.deepEqual(session.push(client.media(MSG.video, 0, early), 210).events, []);
    assert.equal(session.bufferedBytes, early.length);

    const a = session.accept();
    assert.deepEqual(a.events, [{ type: 'video', timestamp: 0, data: early }]);
    assert.equal(session.bufferedBytes, 0);
    const accepted = serverMessages(a.out, reader);
    assert.deepEqual(
      accepted.map((m) => [m.type, m.streamId]),
      [
        [MSG.userControl, 0],
        [MSG.commandAmf0, 1],
      ],
    );
    assert.equal(Buffer.from(accepted[0]?.payload ?? []).toString('hex'), '000000000001', 'StreamBegin 1');
    const status = commands(accepted)[0];
    assert.equal(status?.[0], 'onStatus');
    assert.deepEqual([info(status).level, info(status).code], ['status', 'NetStream.Publish.Start']);
    assert.equal(session.state, 'publishing');

    const media = concat([
      client.data(1, '@setDataFrame', 'onMetaData', ecmaArray({ width: 320, videocodecid: 7 })),
      client.media(MSG.video, 0, AVC_SEQUENCE),
      client.media(MSG.audio, 0, AAC_SEQUENCE),
      client.media(MSG.video, 33, Uint8Array.of(0x27, 1, 0, 0, 0, 0xaa)),
      client.media(MSG.audio, 0x1000001, Uint8Array.of(0xaf, 1, 0xbb)),
      client.media(MSG.audio, 5, new Uint8Array(0)),
      client.media(MSG.video, 66, Uint8Array.of(0x27, 1), 2),
    ]);
    const m = session.push(media, 300).events;
    assert.deepEqual(m[0], { type: 'metadata', data: { width: 320, videocodecid: 7 } });
    assert.deepEqual(
      m.slice(1).map((e) => [e.type, 'timestamp' in e ? e.timestamp : -1, 'data' in e ? e.data.length : -1]),
      [
        ['video', 0, AVC_SEQUENCE.length],
        ['audio', 0, AAC_SEQUENCE.length],
        ['video', 33, 6],
        ['audio', 0x1000001, 3],
      ],
      'empty audio and media on another stream are dropped',
    );

    assert.deepEqual(session.push(client.unpublish('goodkey'), 400).events, [{ type: 'unpublish' }]);
    assert.equal(session.state, 'connected');
    assert.deepEqual(session.end().events, [], 'unpublish is said once');
    assert.equal(session.state, 'closed');
  });

  it('reject sends NetStream.Publish.BadName at level error and closes; later bytes are ignored', () => {
    const { session, client, reader } = connected();
    session.push(concat([client.publish('badkey'), client.media(MSG.video, 0, AVC_SEQUENCE)]), 200);
    assert.equal(session.bufferedBytes, AVC_SEQUENCE.length);
    const r = session.reject('unknown stream key');
    assert.deepEqual(r.events, [{ type: 'unpublish' }], 'every publish event has its unpublish');
    const status = commands(serverMessages(r.out, reader))[0];
    assert.deepEqual(
      [status?.[0], info(status).level, info(status).code, info(status).description],
      ['onStatus', 'error', 'NetStream.Publish.BadName', 'unknown stream key'],
    );
    assert.ok(session.closing);
    assert.equal(session.bufferedBytes, 0, 'nothing held after a reject');
    assert.deepEqual(session.push(client.media(MSG.video, 0, AVC_SEQUENCE), 300), { out: [], events: [] });
    assert.deepEqual(session.accept(), { out: [], events: [] }, 'too late to accept');
  });

  it('reject while publishing (an unsupported codec seen in the first frame) ends the publish', () => {
    const { session, client, reader } = connected();
    session.push(client.publish('k'), 200);
    session.accept();
    const r = session.reject('HEVC is not supported', 'NetStream.Publish.Failed');
    assert.deepEqual(r.events, [{ type: 'unpublish' }]);
    assert.equal(info(commands(serverMessages(r.out, reader))[0]).code, 'NetStream.Publish.Failed');
  });

  it('a publish withdrawn before the decision ends with unpublish; accept() then does nothing', () => {
    const { session, client } = connected();
    session.push(client.publish('k'), 200);
    const r = session.push(client.command(3, 0, 'deleteStream', 7, null, 1), 210);
    assert.deepEqual(r.events, [{ type: 'unpublish' }]);
    assert.deepEqual(session.accept(), { out: [], events: [] });
    assert.equal(session.state, 'connected');
  });

  it('the transport closing ends a running publish', () => {
    const { session, client } = connected();
    session.push(client.publish('k'), 200);
    session.accept();
    assert.deepEqual(session.end().events, [{ type: 'unpublish' }]);
    assert.deepEqual(session.push(Uint8Array.of(1, 2, 3), 300), { out: [], events: [] });
  });

  it('the same bytes one at a time give the same events', () => {
    const client = new Client();
    const { c0c1, c2 } = clientHandshake();
    const all = concat([c0c1, c2, client.connect(), client.publish('k'), client.media(MSG.audio, 10, AAC_SEQUENCE)]);
    const whole = new RtmpSession({ randomBytes: random });
    const split = new RtmpSession({ randomBytes: random });
    const a: RtmpEvent[] = whole.push(all, 0).events;
    const b: RtmpEvent[] = [];
    for (let i = 0; i < all.length; i++) b.push(...split.push(all.subarray(i, i + 1), 0).events);
    assert.deepEqual(b, a);
    assert.deepEqual(
      a.map((e) => e.type),
      ['connect', 'publish'],
    );
  });

  it('acknowledges per the peer’s window and answers pings', () => {
    const { session, client, reader, sent } = connected();
    const win = client.control(MSG.windowAckSize, Uint8Array.of(0, 0, 0x03, 0xe8)); // 1000 bytes
    const r1 = session.push(win, 200);
    // The window is set by this very message: everything so far is over 1000 bytes, so it is acknowledged at once.
    const ack1 = serverMessages(r1.out, reader);
    assert.deepEqual(
      ack1.map((m) => [m.type, Buffer.from(m.payload).readUInt32BE(0)]),
      [[MSG.acknowledgement, sent + win.length]],
    );
    const ping = client.control(MSG.userControl, Uint8Array.of(0, 6, 0, 0, 0x12, 0x34));
    const small = session.push(ping, 210);
    assert.deepEqual(
      serverMessages(small.out, reader).map((m) => [m.type, Buffer.from(m.payload).toString('hex')]),
      [[MSG.userControl, '000700001234']],
      'a ping response, and no acknowledgement before another 1000 bytes',
    );
    const big = client.command(3, 0, 'releaseStream', 0, null, 'x'.repeat(2000));
    const out = serverMessages(session.push(big, 220).out, reader);
    assert.deepEqual(
      out.map((m) => [m.type, Buffer.from(m.payload).readUInt32BE(0)]),
      [[MSG.acknowledgement, sent + win.length + ping.length + big.length]],
    );
  });

  it('answers unknown commands with _error when they carry a transaction id, and play with Play.Failed', () => {
    const { session, client, reader } = connected();
    const r = session.push(
      concat([client.command(3, 0, 'getStreamLength', 9, null, 'k'), client.command(3, 0, 'onBWDone', 0, null)]),
      200,
    );
    const said = commands(serverMessages(r.out, reader));
    assert.deepEqual(
      said.map((c) => [c[0], c[1], info(c).code]),
      [['_error', 9, 'NetConnection.Call.Failed']],
    );
    const p = session.push(client.command(8, 1, 'play', 0, null, 'k'), 210);
    assert.equal(info(commands(serverMessages(p.out, reader))[0]).code, 'NetStream.Play.Failed');
    assert.ok(session.closing);
  });

  it('splits aggregate messages (§7.1.6) into media events with rebased timestamps', () => {
    const { session, client } = connected();
    session.push(client.publish('k'), 200);
    session.accept();
    const sub = (type: number, ts: number, body: number[]) => [
      type,
      0,
      0,
      body.length,
      (ts >> 16) & 0xff,
      (ts >> 8) & 0xff,
      ts & 0xff,
      0,
      0,
      0,
      0,
      ...body,
      0,
      0,
      0,
      11 + body.length,
    ];
    const payload = Uint8Array.from([...sub(9, 1000, [0x17, 1, 0, 0, 0]), ...sub(8, 1020, [0xaf, 1, 9])]);
    const bytes = client.writer.write({ csid: 6, type: MSG.aggregate, streamId: 1, timestamp: 50, payload });
    const events = session.push(bytes, 300).events;
    assert.deepEqual(
      events.map((e) => ('timestamp' in e ? [e.type, e.timestamp] : [e.type])),
      [
        ['video', 50],
        ['audio', 70],
      ],
    );
  });

  it('protocol errors end the session with an error event, never a throw', () => {
    const cases: [string, (c: Client) => Uint8Array][] = [
      ['a command before connect', (c) => c.command(3, 0, 'createStream', 2, null)],
      ['a command without a name', (c) => c.command(3, 0, 42)],
      ['a second connect', (c) => concat([c.connect(), c.connect()])],
      ['a second publish while one is pending', (c) => concat([c.connect(), c.publish('a'), c.publish('b')])],
      [
        'a short Window Acknowledgement Size',
        (c) => concat([c.connect(), c.control(MSG.windowAckSize, Uint8Array.of(1))]),
      ],
      [
        'malformed AMF0',
        (c) => c.writer.write({ csid: 3, type: 20, streamId: 0, timestamp: 0, payload: Uint8Array.of(2, 0, 9) }),
      ],
    ];
    for (const [what, make] of cases) {
      const session = new RtmpSession({ randomBytes: random });
      const { c0c1, c2 } = clientHandshake();
      const r = session.push(concat([c0c1, c2, make(new Client())]), 0);
      const last = r.events.at(-1);
      assert.equal(last?.type, 'error', what);
      assert.equal(last?.type === 'error' && last.error.code, 'RTMP_PROTOCOL', what);
      assert.ok(session.closing, what);
      assert.equal(concat(r.out).length >= 3073, true, `${what}: the handshake reply still goes out`);
    }
    const wrongVersion = new RtmpSession({ randomBytes: random }).push(Uint8Array.of(6, 0, 0), 0);
    assert.equal(wrongVersion.events[0]?.type, 'error');
    assert.deepEqual(wrongVersion.out, []);
  });

  it('metadata sent as plain onMetaData with an object is read as well', () => {
    const { session, client } = connected();
    session.push(client.publish('k'), 200);
    session.accept();
    const events = session.push(client.data(1, 'onMetaData', { width: 640 }), 300).events;
    assert.deepEqual(events, [{ type: 'metadata', data: { width: 640 } }]);
    assert.ok(!(events[0]?.type === 'metadata' && events[0].data instanceof EcmaArray));
  });
});
