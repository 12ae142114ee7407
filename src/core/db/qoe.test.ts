import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { forEachDatabase } from '../../../test/helpers/services/databases.ts';
import { newAssetId, SqliteAssetRepository } from './assets.ts';
import { openDatabase } from './database.ts';
import { type QoeDelta, SqliteQoeRepository } from './qoe.ts';

const delta = (assetId: string, sessionId: string, d: Partial<QoeDelta> = {}): QoeDelta => ({
  assetId,
  sessionId,
  firstAt: 1_000,
  lastAt: 2_000,
  startupMs: null,
  stalls: 0,
  videoMs: 0,
  bitrateMs: 0,
  topBitrate: 0,
  requests: 1,
  ...d,
});

forEachDatabase('QoE repository', (t) => {
  async function setup() {
    const db = await t.fresh();
    const assets = new SqliteAssetRepository(db);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const id = newAssetId();
      await assets.create({ id, title: `a${i}`, sourcePath: `sources/${id}`, sourceName: 'a.mp4' });
      ids.push(id);
    }
    return { db, assets, qoe: new SqliteQoeRepository(db), a: ids[0]!, b: ids[1]! };
  }

  test('no session: zeros and nulls', async () => {
    const s = await setup();
    assert.deepEqual(await s.qoe.summary(s.a), {
      sessions: 0,
      stalledSessions: 0,
      stalls: 0,
      stallRatio: 0,
      medianStartupMs: null,
      averageBitrate: null,
      watchedSeconds: 0,
    });
    await s.qoe.record([]);
  });

  test('additive upserts: sums add, first_at min, last_at max, startup keeps the first, top bitrate max', async () => {
    const s = await setup();
    // Two origins' flushes of one session, and a second flush of the first origin.
    await s.qoe.record([
      delta(s.a, 'sess-1', { firstAt: 5_000, lastAt: 6_000, startupMs: 800, videoMs: 4_000, bitrateMs: 4_000 * 3_000 }),
      delta(s.b, 'sess-1', { videoMs: 1_000, bitrateMs: 1_000 * 500, requests: 3 }),
    ]);
    await s.qoe.record([
      delta(s.a, 'sess-1', {
        firstAt: 4_000,
        lastAt: 5_500,
        startupMs: 1_200,
        stalls: 1,
        videoMs: 2_000,
        bitrateMs: 2_000 * 1_500,
        topBitrate: 6_000,
        requests: 4,
      }),
    ]);
    await s.qoe.record([delta(s.a, 'sess-1', { firstAt: 7_000, lastAt: 9_000, stalls: 2, requests: 2 })]);
    const row = await s.db.get(sql`SELECT * FROM qoe_sessions WHERE asset_id = ${s.a} AND session_id = ${'sess-1'}`);
    assert.deepEqual(
      { ...row },
      {
        asset_id: s.a,
        session_id: 'sess-1',
        first_at: 4_000,
        last_at: 9_000,
        startup_ms: 800,
        stalls: 3,
        video_ms: 6_000,
        bitrate_ms: 4_000 * 3_000 + 2_000 * 1_500,
        top_bitrate: 6_000,
        requests: 7,
      },
    );
    const sum = await s.qoe.summary(s.a);
    assert.deepEqual(sum, {
      sessions: 1,
      stalledSessions: 1,
      stalls: 3,
      stallRatio: 1,
      medianStartupMs: 800,
      // (12e6 + 3e6) kbps·ms / 6000 ms = 2500 kbps.
      averageBitrate: 2_500_000,
      watchedSeconds: 6,
    });
    assert.equal((await s.qoe.summary(s.b)).averageBitrate, 500_000);
  });

  test('a startup recorded later fills a null one; the same session twice in one batch is merged', async () => {
    const s = await setup();
    await s.qoe.record([delta(s.a, 'x')]);
    await s.qoe.record([delta(s.a, 'x', { startupMs: 300 }), delta(s.a, 'x', { startupMs: 900, stalls: 1 })]);
    const sum = await s.qoe.summary(s.a);
    assert.equal(sum.medianStartupMs, 300);
    assert.equal(sum.stalls, 1);
    assert.equal(sum.sessions, 1);
  });

  test('summary: median of odd and even counts, stall ratio, several sessions', async () => {
    const s = await setup();
    await s.qoe.record(
      [500, 100, 300, null, 900].map((startupMs, i) =>
        delta(s.a, `s${i}`, { startupMs, stalls: i % 2, videoMs: 1_000, bitrateMs: 1_000 * 1_000 }),
      ),
    );
    let sum = await s.qoe.summary(s.a);
    assert.equal(sum.sessions, 5);
    assert.equal(sum.stalledSessions, 2);
    assert.equal(sum.stallRatio, 0.4);
    assert.equal(sum.medianStartupMs, 400); // 100 300 | 500 900
    assert.equal(sum.averageBitrate, 1_000_000);
    assert.equal(sum.watchedSeconds, 5);
    await s.qoe.record([delta(s.a, 's9', { startupMs: 50 })]);
    sum = await s.qoe.summary(s.a);
    assert.equal(sum.medianStartupMs, 300); // 50 100 300 500 900
  });

  test('rows of a deleted asset are skipped, the rest of the batch recorded; deleting an asset drops its sessions', async () => {
    const s = await setup();
    await s.qoe.record([delta(s.a, 'k'), delta(newAssetId(), 'k'), delta(s.b, 'k')]);
    assert.equal((await s.qoe.summary(s.a)).sessions, 1);
    assert.equal((await s.qoe.summary(s.b)).sessions, 1);
    await s.assets.delete(s.a);
    const left = await s.db.all(sql`SELECT asset_id FROM qoe_sessions`);
    assert.deepEqual(
      left.map((r) => r.asset_id),
      [s.b],
    );
  });

  test('large batches (several statements) and sums capped, never overflowing', async () => {
    const s = await setup();
    await s.qoe.record(Array.from({ length: 450 }, (_, i) => delta(s.a, `bulk-${i}`, { videoMs: 10, bitrateMs: 10 })));
    assert.equal((await s.qoe.summary(s.a)).sessions, 450);
    const huge = Number.MAX_SAFE_INTEGER - 5;
    await s.qoe.record([delta(s.b, 'big', { bitrateMs: huge, videoMs: 1 })]);
    await s.qoe.record([delta(s.b, 'big', { bitrateMs: huge, videoMs: 1 })]);
    const row = await s.db.get(sql`SELECT bitrate_ms FROM qoe_sessions WHERE session_id = ${'big'}`);
    assert.equal(Number(row?.bitrate_ms), Number.MAX_SAFE_INTEGER);
  });

  test('two processes recording the same sessions at once: nothing lost', async () => {
    const target = await t.target();
    const [one, two] = [await openDatabase(target), await openDatabase(target)];
    try {
      const id = newAssetId();
      await new SqliteAssetRepository(one).create({ id, title: 'x', sourcePath: `sources/${id}`, sourceName: 'a' });
      const origins = [new SqliteQoeRepository(one), new SqliteQoeRepository(two)];
      const flush = (i: number) =>
        origins[i % 2]!.record([
          delta(id, 'shared', { videoMs: 1_000, bitrateMs: 1_000 * 2_000, stalls: 1 }),
          delta(id, `own-${i % 2}`, { videoMs: 1_000, bitrateMs: 1_000 * 2_000 }),
        ]);
      const rounds = Array.from({ length: 20 }, (_, i) => i);
      // PostgreSQL: truly at once (serialization failures are retried). SQLite: interleaved, since two connections
      // in one process would block each other (node:sqlite waits for the write lock synchronously); separate
      // processes queue on that lock.
      if (t.engine === 'postgres') await Promise.all(rounds.map(flush));
      else for (const i of rounds) await flush(i);
      const sum = await origins[0]!.summary(id);
      assert.equal(sum.sessions, 3);
      assert.equal(sum.stalls, 20);
      assert.equal(sum.watchedSeconds, 40);
      assert.equal(sum.averageBitrate, 2_000_000);
    } finally {
      await one.close();
      await two.close();
    }
  });

  test('prune: sessions last seen before the cut-off go', async () => {
    const s = await setup();
    await s.qoe.record([delta(s.a, 'old', { lastAt: 1_000 }), delta(s.a, 'new', { lastAt: 5_000 })]);
    assert.equal(await s.qoe.prune(2_000), 1);
    assert.equal((await s.qoe.summary(s.a)).sessions, 1);
    assert.equal(await s.qoe.prune(2_000), 0);
  });
});
