// Mutated, truncated and random publisher byte streams: every run through RtmpSession ends in events or an error
// event carrying RTMP_PROTOCOL, never another exception, and holds no more than it was sent. Deterministic
// (seeded); a failure prints the case number and the mutations that made it.
// Seeds: publish sessions written by the test Client around an ffmpeg-made FLV's real tag bodies, an odd one using
// every header form, and — when interop.test.ts has run before — the bytes ffmpeg itself sent.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ffmpegFixture } from '../../../test/helpers/media.ts';
import { SmoothcastError } from '../../core/errors.ts';
import { ecmaArray, encodeAmf0 } from './amf0.ts';
import { ChunkReader, MSG } from './chunk.ts';
import { HANDSHAKE_SIZE } from './handshake.ts';
import { type RtmpOutput, RtmpSession } from './session.ts';
import { Client, clientHandshake, concat, flvTags, prng } from './testing.ts';

// SMOOTHCAST_FUZZ_CASES / SMOOTHCAST_FUZZ_SEED widen a run by hand; the defaults keep this file near 2 s.
const CASES = Number(process.env.SMOOTHCAST_FUZZ_CASES ?? 15_000);
const SEED = Number(process.env.SMOOTHCAST_FUZZ_SEED ?? 0x47_4d_50);
const CASE_LIMIT_MS = 200;
const RECORDED = join(
  process.env.SMOOTHCAST_FIXTURES ?? join(tmpdir(), 'smoothcast-fixtures'),
  'rtmp-ffmpeg-publish.bin',
);
/** The recorded session is cut to its first bytes so that each case stays cheap. */
const RECORDED_PREFIX = 64 * 1024;

interface Seed {
  name: string;
  bytes: Uint8Array;
  /** Offsets of C0 and of every chunk header byte: where mutations matter most. */
  structural: number[];
}

function seed(name: string, bytes: Uint8Array): Seed {
  // The reader itself says where headers are: feed the seed one byte at a time and note the header bytes.
  const reader = new ChunkReader();
  const structural = [0];
  const start = 1 + 2 * HANDSHAKE_SIZE;
  for (let i = start; i < bytes.length; i++) {
    if (reader.atHeader) structural.push(i);
    reader.push(bytes.subarray(i, i + 1));
  }
  return { name, bytes, structural };
}

function publishSession(tags: { type: number; timestamp: number; body: Uint8Array }[]): Uint8Array {
  const c = new Client();
  const { c0c1, c2 } = clientHandshake();
  return concat([
    c0c1,
    c2,
    c.connect(),
    c.setChunkSize(4096),
    c.publish('goodkey'),
    c.data(1, '@setDataFrame', 'onMetaData', ecmaArray({ width: 160, height: 90, videocodecid: 7, audiocodecid: 10 })),
    ...tags.filter((t) => t.type === 8 || t.type === 9).map((t) => c.media(t.type as 8 | 9, t.timestamp, t.body)),
    c.unpublish('goodkey'),
  ]);
}

/** Every header form and control message at least once: 2- and 3-byte basic headers, extended timestamps, … */
function oddSession(): Uint8Array {
  const c = new Client();
  const { c0c1, c2 } = clientHandshake();
  const big = Uint8Array.from({ length: 700 }, (_, i) => i & 0xff);
  big.set([0x17, 1, 0, 0, 0]);
  const sub = Uint8Array.of(8, 0, 0, 3, 0, 0, 10, 0, 0, 0, 0, 0xaf, 1, 7, 0, 0, 0, 14);
  return concat([
    c0c1,
    c2,
    c.writer.write({
      csid: 3,
      type: MSG.commandAmf3,
      streamId: 0,
      timestamp: 0,
      payload: concat([Uint8Array.of(0), encodeAmf0('connect', 1, { app: 'live', tcUrl: 'rtmp://h/live' })]),
    }),
    c.control(MSG.windowAckSize, Uint8Array.of(0, 0, 0x10, 0)),
    c.control(MSG.userControl, Uint8Array.of(0, 6, 1, 2, 3, 4)),
    c.command(3, 0, 'getStreamLength', 3, null, 'x'),
    c.publish('odd?x=1'),
    c.writer.write({ csid: 70, type: MSG.video, streamId: 1, timestamp: 0xfffff0, payload: big }),
    c.writer.write({ csid: 70, type: MSG.video, streamId: 1, timestamp: 0x1000100, payload: big }),
    c.writer.write({
      csid: 400,
      type: MSG.audio,
      streamId: 1,
      timestamp: 5,
      payload: Uint8Array.of(0xaf, 0, 0x12, 0x10),
    }),
    c.writer.write({ csid: 400, type: MSG.audio, streamId: 1, timestamp: 6, payload: new Uint8Array(0) }),
    c.writer.write({ csid: 9, type: MSG.aggregate, streamId: 1, timestamp: 20, payload: sub }),
    c.control(MSG.abort, Uint8Array.of(0, 0, 0, 70)),
    c.writer.write({
      csid: 5,
      type: MSG.dataAmf3,
      streamId: 1,
      timestamp: 0,
      payload: concat([Uint8Array.of(0), encodeAmf0('onMetaData', { a: [1, new Date(0), null] })]),
    }),
    c.command(3, 0, 'closeStream', 0, null),
  ]);
}

type Mutation = (f: Uint8Array, s: Seed, random: () => number, seeds: Seed[]) => [Uint8Array, string];

const pickOf = <T>(random: () => number, xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
const where = (s: Seed, random: () => number, size: number) =>
  random() < 0.75 ? pickOf(random, s.structural) : Math.floor(random() * size);

const mutations: Mutation[] = [
  (f, s, random) => {
    const at = where(s, random, f.length);
    const bit = Math.floor(random() * 8);
    f[at] = (f[at] ?? 0) ^ (1 << bit);
    return [f, `flip bit ${bit} at ${at}`];
  },
  (f, s, random) => {
    const at = where(s, random, f.length);
    const n = 1 + Math.floor(random() * 4);
    const v = pickOf(random, [0x00, 0xff, 0x7f, 0xc3, -1]);
    for (let i = at; i < Math.min(f.length, at + n); i++) f[i] = v < 0 ? Math.floor(random() * 256) : v;
    return [f, `overwrite ${n} bytes at ${at} with ${v}`];
  },
  (f, s, random) => {
    // A header field (timestamp, length) set to an edge: 0, 0xFFFFFF (extended), huge lengths.
    const at = where(s, random, f.length) + 1 + Math.floor(random() * 4);
    const v = pickOf(random, [0, 1, 0xffffff, 0x7fffff, 0x100000, Math.floor(random() * 0x1000000)]);
    if (at + 3 <= f.length) f.set([(v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff], at);
    return [f, `u24 at ${at} := ${v}`];
  },
  (f, s, random) => {
    const at = where(s, random, f.length);
    return [f.subarray(0, at), `truncate at ${at}`];
  },
  (f, s, random) => {
    const a = where(s, random, f.length);
    const b = Math.min(f.length, a + 1 + Math.floor(random() * 300));
    return [concat([f.subarray(0, b), f.subarray(a, b), f.subarray(b)]), `duplicate ${a}..${b}`];
  },
  (f, s, random) => {
    const a = where(s, random, f.length);
    const b = Math.min(f.length, a + 1 + Math.floor(random() * 300));
    return [concat([f.subarray(0, a), f.subarray(b)]), `delete ${a}..${b}`];
  },
  (f, s, random) => {
    const at = where(s, random, f.length);
    const junk = Uint8Array.from({ length: 1 + Math.floor(random() * 64) }, () => Math.floor(random() * 256));
    return [concat([f.subarray(0, at), junk, f.subarray(at)]), `insert ${junk.length} random bytes at ${at}`];
  },
  (f, s, random, seeds) => {
    const donor = pickOf(random, seeds);
    const d = where(donor, random, donor.bytes.length);
    const at = where(s, random, f.length);
    const n = 1 + Math.floor(random() * 2000);
    return [
      concat([f.subarray(0, at), donor.bytes.subarray(d, d + n), f.subarray(at)]),
      `splice ${donor.name}@${d}+${n} at ${at}`,
    ];
  },
];

interface Outcome {
  events: number;
  error: boolean;
}

/** Runs one byte stream through a session in random pieces, deciding publishes the way a server would. */
function drive(bytes: Uint8Array, random: () => number, context: string): Outcome {
  const session = new RtmpSession({
    randomBytes: (n) => new Uint8Array(n),
    limits: { maxMessageSize: 1 << 20, maxBufferedBytes: 2 << 20 },
  });
  let out = 0;
  let media = 0;
  let events = 0;
  let error = false;
  let publishing = false;
  const take = (r: RtmpOutput) => {
    for (const b of r.out) out += b.length;
    for (const e of r.events) {
      events++;
      if (e.type === 'publish' || e.type === 'unpublish') {
        assert.equal(e.type === 'publish', !publishing, `${context}: ${e.type} while publishing is ${publishing}`);
        publishing = e.type === 'publish';
      }
      if (e.type === 'publish') take(random() < 0.8 ? session.accept() : session.reject('no'));
      if (e.type === 'video' || e.type === 'audio') media += e.data.length;
      if (e.type === 'error') {
        const err: unknown = e.error;
        assert.ok(err instanceof SmoothcastError && err.code === 'RTMP_PROTOCOL', `${context}: error event ${err}`);
        assert.ok(session.closing, `${context}: an error leaves the session closing`);
        error = true;
      }
    }
  };
  for (let at = 0; at < bytes.length; ) {
    const n = 1 + Math.floor(random() * (random() < 0.2 ? 16 : 5000));
    take(session.push(bytes.subarray(at, at + n), at));
    assert.ok(session.bufferedBytes <= Math.min(at + n, 2 << 20), `${context}: holds ${session.bufferedBytes} bytes`);
    at += n;
  }
  take(session.end());
  assert.ok(!publishing, `${context}: a publish without its unpublish`);
  // Bounded: media handed out is part of what came in; replies are the handshake plus a little per command.
  assert.ok(media <= bytes.length, `${context}: ${media} media bytes out of ${bytes.length} in`);
  assert.ok(out <= 3073 + 4096 + 8 * bytes.length, `${context}: wrote ${out} bytes for ${bytes.length}`);
  return { events, error };
}

describe('fuzz', () => {
  const seeds: Seed[] = [];
  before(async () => {
    const flv = await ffmpegFixture(
      [
        ...['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=30:duration=1', '-f', 'lavfi', '-i', 'sine=duration=1'],
        ...['-c:v', 'libx264', '-preset', 'ultrafast', '-g', '15', '-c:a', 'aac', '-b:v', '100k', '-f', 'flv'],
      ],
      'flv',
    );
    seeds.push(seed('ffmpeg-tags', publishSession(flvTags(new Uint8Array(readFileSync(flv))))));
    seeds.push(seed('odd', oddSession()));
    if (existsSync(RECORDED))
      seeds.push(seed('recorded', new Uint8Array(readFileSync(RECORDED)).subarray(0, RECORDED_PREFIX)));
  });

  it('the seeds themselves run cleanly to their events', () => {
    for (const s of seeds) {
      const session = new RtmpSession({ randomBytes: (n) => new Uint8Array(n) });
      const types: string[] = [];
      const take = (r: { events: { type: string }[] }) => {
        for (const e of r.events) {
          types.push(e.type);
          if (e.type === 'publish') take(session.accept());
        }
      };
      // In pieces, as a socket delivers them: the publish is answered before the seed's own unpublish arrives.
      for (let at = 0; at < s.bytes.length; at += 512) take(session.push(s.bytes.subarray(at, at + 512), at));
      assert.ok(!types.includes('error'), `${s.name}: ${types.join(' ')}`);
      assert.ok(types.includes('publish') && types.includes('video') && types.includes('audio'), s.name);
      assert.ok(s.structural.length > 20, `${s.name}: ${s.structural.length} header bytes found`);
    }
  });

  it(`${CASES} mutated streams and random bytes end in events or RTMP_PROTOCOL, each within ${CASE_LIMIT_MS} ms`, (t) => {
    const random = prng(SEED);
    const outcomes = { clean: 0, error: 0, random: 0 };
    let slowest = 0;
    const { c0c1, c2 } = clientHandshake();
    for (let n = 0; n < CASES; n++) {
      let bytes: Uint8Array;
      let context: string;
      if (n % 10 === 9) {
        // Random bytes, half of them after a valid handshake so that the chunk reader sees them.
        const junk = Uint8Array.from({ length: Math.floor(random() * 4000) }, () => Math.floor(random() * 256));
        if (random() < 0.5) junk[0] = 3;
        bytes = random() < 0.5 ? concat([c0c1, c2, junk]) : junk;
        context = `case ${n}: ${bytes.length} random bytes`;
        outcomes.random++;
      } else {
        const s = pickOf(random, seeds);
        bytes = s.bytes.slice();
        const steps: string[] = [];
        for (let i = 0, count = 1 + Math.floor(random() * 3); i < count; i++) {
          const [next, what] = pickOf(random, mutations)(bytes, s, random, seeds);
          bytes = next;
          steps.push(what);
        }
        context = `case ${n} (${s.name}): ${steps.join('; ')}`;
      }
      const t0 = performance.now();
      try {
        const r = drive(bytes, random, context);
        outcomes[r.error ? 'error' : 'clean']++;
      } catch (err) {
        assert.fail(`${context}: threw ${err instanceof Error ? err.stack : String(err)}`);
      }
      const ms = performance.now() - t0;
      slowest = Math.max(slowest, ms);
      assert.ok(ms < CASE_LIMIT_MS, `${context}: took ${ms.toFixed(1)} ms`);
    }
    // Both outcomes must occur often, or the mutations are not reaching the parser.
    assert.ok(outcomes.clean > CASES / 20 && outcomes.error > CASES / 20, JSON.stringify(outcomes));
    t.diagnostic(
      `seed ${SEED}, seeds ${seeds.map((s) => `${s.name}:${s.bytes.length}`).join(' ')}: ${JSON.stringify(outcomes)}, slowest ${slowest.toFixed(1)} ms`,
    );
  });
});
