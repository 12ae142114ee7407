import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { QoeDelta } from '../../core/db/qoe.ts';
import { parseCmcdRequest } from './cmcd.ts';
import { QoeRecorder } from './qoe.ts';

const A = 'fovasdslblx4vvg7';
const SID = 'b85b43e2-016b-4cde-acbd-1f0f84159bbc';

function fakeStore() {
  const batches: QoeDelta[][] = [];
  const prunes: number[] = [];
  let fail = false;
  return {
    batches,
    prunes,
    failNext() {
      fail = true;
    },
    async record(b: readonly QoeDelta[]) {
      if (fail) {
        fail = false;
        throw new Error('database down');
      }
      batches.push(b.map((d) => ({ ...d })));
    },
    async prune(before: number) {
      prunes.push(before);
      return 0;
    },
  };
}

/** A Shaka-shaped request's CMCD (object header, request header with or without su, bs). */
const req = (o: { ot: string; su?: boolean; bs?: boolean; br?: number; d?: number; tb?: number; sid?: string }) =>
  parseCmcdRequest(
    {
      'cmcd-object': [
        o.br !== undefined ? `br=${o.br}` : '',
        o.d !== undefined ? `d=${o.d}` : '',
        `ot=${o.ot}`,
        o.tb ? `tb=${o.tb}` : '',
      ]
        .filter(Boolean)
        .join(','),
      ...(o.su ? { 'cmcd-request': 'su' } : {}),
      ...(o.bs ? { 'cmcd-status': 'bs' } : {}),
      'cmcd-session': `cid="${A}",sid="${o.sid ?? SID}",st=v`,
    },
    '/v/x',
  )!;

test('startup, stalls, time-weighted video bitrate, top bitrate, requests — as one delta per flush', async () => {
  const store = fakeStore();
  const r = new QoeRecorder({ store });
  r.observe(A, req({ ot: 'm' }), 1_000);
  r.observe(A, req({ ot: 'i', su: true, br: 132, d: 0 }), 1_100);
  r.observe(A, req({ ot: 'a', su: true, br: 132, d: 1003, tb: 132 }), 1_110);
  r.observe(A, req({ ot: 'v', su: true, br: 164, d: 1000, tb: 2355 }), 1_120);
  r.observe(A, req({ ot: 'v', su: true, br: 2355, d: 2000, tb: 2355 }), 1_300);
  r.observe(A, req({ ot: 'a', br: 132, d: 1003 }), 1_450); // the first without su: startup 450 ms
  r.observe(A, req({ ot: 'v', su: true, br: 2355, d: 2000 }), 1_500); // su again later (a seek): no effect
  r.observe(A, req({ ot: 'v', bs: true, br: 738, d: 2000 }), 9_000);
  await r.flush();
  assert.deepEqual(store.batches, [
    [
      {
        assetId: A,
        sessionId: SID,
        firstAt: 1_000,
        lastAt: 9_000,
        startupMs: 450,
        stalls: 1,
        videoMs: 7_000,
        bitrateMs: 164 * 1000 + 2355 * 2000 + 2355 * 2000 + 738 * 2000,
        topBitrate: 2355,
        requests: 8,
      },
    ],
  ]);
  // Later requests are a new delta of the same session; the startup is not sent again.
  r.observe(A, req({ ot: 'v', br: 738, d: 2000 }), 10_000);
  await r.flush();
  assert.equal(store.batches[1]![0]!.startupMs, null);
  assert.equal(store.batches[1]![0]!.requests, 1);
  await r.flush();
  assert.equal(store.batches.length, 2, 'nothing new: no write');
  await r.close();
});

test('no startup figure when the first object request has no su, or startup never ended', async () => {
  const store = fakeStore();
  const r = new QoeRecorder({ store });
  r.observe(A, req({ ot: 'm', sid: 'mid-way' }), 1_000);
  r.observe(A, req({ ot: 'v', br: 100, d: 1000, sid: 'mid-way' }), 1_100);
  r.observe(A, req({ ot: 'v', su: true, br: 100, d: 1000, sid: 'mid-way' }), 1_200);
  r.observe(A, req({ ot: 'v', br: 100, d: 1000, sid: 'mid-way' }), 1_300);
  r.observe(A, req({ ot: 'v', su: true, sid: 'still-starting' }), 1_000);
  await r.close();
  assert.deepEqual(
    store.batches[0]!.map((d) => [d.sessionId, d.startupMs]),
    [
      ['mid-way', null],
      ['still-starting', null],
    ],
  );
});

test('invalid session ids and asset ids are not recorded; muxed objects count as video', async () => {
  const store = fakeStore();
  const r = new QoeRecorder({ store });
  for (const sid of ['', 'x'.repeat(65), 'a b', 'é', 'a/b']) r.observe(A, { sid, ot: 'v', br: 1, d: 1 });
  r.observe('../etc', { sid: 'ok', ot: 'v' });
  r.observe('ABCDEFGHIJKLMNOP', { sid: 'ok', ot: 'v' });
  r.observe(A, { ot: 'v', br: 1, d: 1 });
  assert.equal(r.size, 0);
  r.observe(A, { sid: 'mux:1', ot: 'av', br: 3000, d: 4000 });
  r.observe(A, { sid: 'mux:1', ot: 'v', br: 2_000_000, d: 4000 }); // beyond any real bitrate: not counted
  await r.close();
  assert.equal(store.batches[0]![0]!.videoMs, 4000);
  assert.equal(store.batches[0]![0]!.bitrateMs, 3000 * 4000);
  assert.equal(store.batches[0]![0]!.requests, 2);
});

test('bounded: over maxSessions the oldest is dropped and counted', async () => {
  const store = fakeStore();
  const r = new QoeRecorder({ store, maxSessions: 3 });
  for (let i = 0; i < 5; i++) r.observe(A, { sid: `s${i}`, ot: 'v' }, i);
  r.observe(A, { sid: 's4', ot: 'v' }, 10);
  assert.equal(r.size, 3);
  assert.equal(r.dropped, 2);
  await r.close();
  assert.deepEqual(
    store.batches[0]!.map((d) => d.sessionId),
    ['s2', 's3', 's4'],
  );
});

test('a failed flush keeps its figures for the next; idle sessions are forgotten; pruning at most hourly', async () => {
  const store = fakeStore();
  const clock = { t: 0 };
  const logs: string[] = [];
  const r = new QoeRecorder({ store, now: () => clock.t, idleMs: 60_000, log: (m) => logs.push(m) });
  r.observe(A, { sid: 'x', ot: 'v', br: 100, d: 1000 });
  store.failNext();
  await r.flush();
  assert.equal(r.failedFlushes, 1);
  assert.deepEqual(logs, ['qoe flush failed']);
  r.observe(A, { sid: 'x', ot: 'v', br: 100, d: 1000, bs: true });
  await r.flush();
  assert.equal(store.batches[0]![0]!.videoMs, 2000);
  assert.equal(store.batches[0]![0]!.stalls, 1);
  assert.equal(store.batches[0]![0]!.requests, 2);
  assert.equal(store.prunes.length, 1, 'the first flush prunes');
  assert.equal(store.prunes[0], -30 * 24 * 3600_000);
  clock.t = 61_000;
  await r.flush();
  assert.equal(r.size, 0, 'idle and written: forgotten');
  clock.t = 3600_000;
  await r.flush();
  assert.equal(store.prunes.length, 2);
  await r.close();
});

test('the timer flushes every flushMs; close writes the rest and stops recording', async () => {
  const store = fakeStore();
  const r = new QoeRecorder({ store, flushMs: 50 });
  r.start();
  r.observe(A, { sid: 't', ot: 'v', br: 1, d: 1 });
  const deadline = Date.now() + 5_000;
  while (store.batches.length === 0 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 10));
  assert.equal(store.batches.length, 1);
  r.observe(A, { sid: 't', ot: 'v', br: 1, d: 1 });
  await r.close();
  assert.equal(store.batches.length, 2);
  r.observe(A, { sid: 't', ot: 'v', br: 1, d: 1 });
  await r.flush();
  assert.equal(store.batches.length, 2);
});
