import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../../core/errors.ts';
import { ChunkReader, ChunkWriter, MSG, type OutgoingMessage, type RtmpMessage } from './chunk.ts';
import { concat, prng } from './testing.ts';

const bytes = (h: string) => new Uint8Array(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
const isProtocolError = (err: unknown) => err instanceof SmoothcastError && err.code === 'RTMP_PROTOCOL';
const payload = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
const simple = (m: RtmpMessage) => ({ ...m, payload: Buffer.from(m.payload).toString('hex') });

/** Feeds `data` in random pieces. */
function readSplit(reader: ChunkReader, data: Uint8Array, random: () => number): RtmpMessage[] {
  const out: RtmpMessage[] = [];
  for (let at = 0; at < data.length; ) {
    const n = 1 + Math.floor(random() * (random() < 0.3 ? 8 : 600));
    out.push(...reader.push(data.subarray(at, at + n)));
    at += n;
  }
  return out;
}

describe('chunk stream', () => {
  it('reads the §5.3.2.1 example: type 0, then type 2, then type 3 headers repeating the delta', () => {
    // Four 32-byte audio messages on csid 3, stream 12345, timestamps 1000, 1020, 1040, 1060.
    const d = (n: number) => payload(32, n);
    const data = concat([
      bytes('03 0003e8 000020 08 39300000'),
      d(0),
      bytes('83 000014'),
      d(1),
      bytes('c3'),
      d(2),
      bytes('c3'),
      d(3),
    ]);
    const got = new ChunkReader().push(data);
    assert.deepEqual(
      got.map((m) => [m.csid, m.type, m.streamId, m.timestamp, m.payload.length]),
      [1000, 1020, 1040, 1060].map((ts) => [3, 8, 12345, ts, 32]),
    );
    assert.deepEqual(got[2]?.payload, d(2));
  });

  it('reads the §5.3.2.2 example: one 307-byte message in three chunks of 128', () => {
    const p = payload(307, 5);
    const data = concat([
      bytes('04 0003e8 000133 09 01000000'),
      p.subarray(0, 128),
      bytes('c4'),
      p.subarray(128, 256),
      bytes('c4'),
      p.subarray(256),
    ]);
    const [m, ...rest] = new ChunkReader().push(data);
    assert.deepEqual(rest, []);
    assert.deepEqual(
      { ...m, payload: m?.payload.length },
      { csid: 4, type: 9, streamId: 1, timestamp: 1000, payload: 307 },
    );
    assert.deepEqual(m?.payload, p);
  });

  it('round-trips writer → reader over random splits, chunk sizes, csid forms and extended timestamps', () => {
    const random = prng(42);
    for (const compress of [false, true]) {
      for (const chunkSize of [1, 128, 4096, 60_000]) {
        const writer = new ChunkWriter({ compress });
        writer.chunkSize = chunkSize;
        const reader = new ChunkReader();
        reader.chunkSize = chunkSize;
        const sent: OutgoingMessage[] = [];
        const ts = { 4: 0, 64: 0xfffff0, 319: 1000, 320: 0, 65599: 0x1000000 } as Record<number, number>;
        for (let i = 0; i < 120; i++) {
          const csid = [4, 64, 319, 320, 65599][i % 5] as number;
          // Repeated sizes and deltas let the compressing writer use types 2 and 3.
          const step = i % 3 === 0 ? 33 : i % 7 === 0 ? 0x1000000 : 33;
          ts[csid] = ((ts[csid] ?? 0) + step) >>> 0;
          const size = i % 4 === 0 ? 300 : Math.floor(random() * 5000);
          sent.push({
            csid,
            type: i % 2 ? 9 : 8,
            streamId: 1,
            timestamp: ts[csid] as number,
            payload: payload(size, i),
          });
        }
        const data = concat(sent.map((m) => writer.write(m)));
        const got = readSplit(reader, data, random);
        assert.deepEqual(got.map(simple), sent.map(simple), `compress ${compress}, chunk size ${chunkSize}`);
      }
    }
  });

  it('compressing writer emits type 1, 2 and 3 headers the way ffmpeg does', () => {
    const w = new ChunkWriter({ compress: true });
    const m = (timestamp: number, n: number, type = 8) => ({
      csid: 4,
      type,
      streamId: 1,
      timestamp,
      payload: payload(n, 0),
    });
    const fmt = (b: Uint8Array) => (b[0] as number) >> 6;
    assert.equal(fmt(w.write(m(0, 10))), 0);
    assert.equal(fmt(w.write(m(23, 10))), 2, 'same size and type: only the delta');
    assert.equal(fmt(w.write(m(46, 10))), 3, 'same delta too: nothing');
    assert.equal(fmt(w.write(m(69, 11))), 1, 'new size');
    assert.equal(fmt(w.write(m(10, 11))), 0, 'backwards: absolute again');
  });

  it('honours the peer’s Set Chunk Size from the next chunk on, within the same push', () => {
    const w = new ChunkWriter();
    const setSize = w.write({ csid: 2, type: MSG.setChunkSize, streamId: 0, timestamp: 0, payload: bytes('00001000') });
    w.chunkSize = 4096;
    const big = payload(10_000, 1);
    const data = concat([setSize, w.write({ csid: 6, type: 9, streamId: 1, timestamp: 5, payload: big })]);
    const reader = new ChunkReader();
    const got = reader.push(data);
    assert.equal(reader.chunkSize, 4096);
    assert.deepEqual(
      got.map((m) => m.type),
      [MSG.setChunkSize, 9],
    );
    assert.deepEqual(got[1]?.payload, big);
    // Top bit set or zero: protocol errors (§5.4.1).
    for (const v of ['80000000', '00000000', '0000']) {
      const bad = new ChunkWriter().write({ csid: 2, type: 1, streamId: 0, timestamp: 0, payload: bytes(v) });
      assert.throws(() => new ChunkReader().push(bad), isProtocolError, v);
    }
  });

  it('reads the extended timestamp that ffmpeg and librtmp repeat in type-3 chunks', () => {
    // 200 bytes at chunk size 128 with timestamp 0x01000000: type 0 + ext, then type 3 + the same ext.
    const p = payload(200, 3);
    const data = concat([
      bytes('06 ffffff 0000c8 09 01000000 01000000'),
      p.subarray(0, 128),
      bytes('c6 01000000'),
      p.subarray(128),
    ]);
    const [m] = new ChunkReader().push(data);
    assert.equal(m?.timestamp, 0x01000000);
    assert.deepEqual(m?.payload, p);
  });

  it('also reads type-3 chunks that leave the extended timestamp out, as some encoders write them', () => {
    const p = payload(300, 9);
    const data = concat([
      bytes('06 ffffff 00012c 09 01000000 01000000'),
      p.subarray(0, 128),
      bytes('c6'),
      p.subarray(128, 256),
      bytes('c6 01000000'),
      p.subarray(256),
    ]);
    const reader = new ChunkReader();
    const got = readSplit(reader, data, prng(3));
    assert.equal(got.length, 1);
    assert.equal(got[0]?.timestamp, 0x01000000);
    assert.deepEqual(got[0]?.payload, p);
  });

  it('timestamps wrap modulo 2^32 (§5.3.1.2.5)', () => {
    const data = concat([bytes('04 ffffff 000001 08 01000000 fffffff0 aa'), bytes('84 000020 bb')]);
    assert.deepEqual(
      new ChunkReader().push(data).map((m) => m.timestamp),
      [0xfffffff0, 0x10],
    );
  });

  it('abort (§5.4.2) drops a half-received message', () => {
    const first = bytes('06 000000 000100 09 01000000');
    const abort = bytes('02 000000 000004 02 00000000 00000006');
    const again = bytes('06 000010 000002 09 01000000 beef');
    const reader = new ChunkReader();
    const got = reader.push(concat([first, payload(128, 0), abort, again]));
    assert.deepEqual(
      got.map((m) => [m.type, m.payload.length]),
      [
        [2, 4],
        [9, 2],
      ],
    );
  });

  it('zero-length messages are delivered', () => {
    const got = new ChunkReader().push(bytes('04 000000 000000 08 01000000'));
    assert.equal(got.length, 1);
    assert.equal(got[0]?.payload.length, 0);
  });

  it('refuses what the spec does not allow, and what would cost unbounded memory', () => {
    const cases: [string, Uint8Array, ConstructorParameters<typeof ChunkReader>[0]?][] = [
      ['type 1 on a new chunk stream', bytes('44 000000 000010 08')],
      ['type 3 on a new chunk stream', bytes('c4')],
      [
        'type 0 in the middle of a message',
        concat([bytes('04 000000 000100 08 01000000'), payload(128, 0), bytes('04 000000 000001 08 01000000')]),
      ],
      ['message longer than allowed', bytes('04 000000 100001 09 01000000'), { maxMessageSize: 1 << 20 }],
    ];
    // Five chunk streams each send the first half of a 1 MiB message: refused once 2 MiB would be held.
    const w = new ChunkWriter();
    const parts = [w.write({ csid: 2, type: MSG.setChunkSize, streamId: 0, timestamp: 0, payload: bytes('00080000') })];
    w.chunkSize = 1 << 19;
    for (const csid of [3, 4, 5, 6, 7]) {
      const m = w.write({ csid, type: 9, streamId: 1, timestamp: 0, payload: new Uint8Array(1 << 20) });
      parts.push(m.subarray(0, 12 + (1 << 19)));
    }
    cases.push(['too much buffered', concat(parts), { maxBufferedBytes: 2 << 20 }]);
    const streams = Array.from({ length: 65 }, (_, i) =>
      new ChunkWriter().write({ csid: 2 + i * 997, type: 8, streamId: 1, timestamp: 0, payload: new Uint8Array(0) }),
    );
    cases.push(['too many chunk streams', concat(streams)]);
    for (const [what, data, limits] of cases) {
      assert.throws(() => new ChunkReader(limits).push(data), isProtocolError, what);
    }
    // A declared length costs nothing until its bytes arrive.
    const reader = new ChunkReader();
    assert.deepEqual(reader.push(bytes('04 000000 ffffff 09 01000000')), []);
  });
});
