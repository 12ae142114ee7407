import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { forEachDatabase } from '../../../test/helpers/services/databases.ts';
import { SmoothcastError } from '../errors.ts';
import { type Db, openDatabase } from './database.ts';
import { LIVE_DEFAULTS, LIVE_ID, newStreamKey, SqliteLiveRepository } from './live.ts';

const isCode = (code: string) => (err: unknown) => err instanceof SmoothcastError && err.code === code;

/** An event asset row (what the asset repository's create writes), without depending on that repository. */
async function addAsset(db: Db, id: string): Promise<void> {
  await db.run(
    sql`INSERT INTO assets (id, title, status, source_path, source_name, created_at, updated_at)
        VALUES (${id}, 'a', 'queued', 'p', 'live', 1, 1)`,
  );
}

async function assetExists(db: Db, id: string): Promise<boolean> {
  return (await db.get(sql`SELECT id FROM assets WHERE id = ${id}`)) !== undefined;
}

forEachDatabase('live streams', (t) => {
  async function setup(start = 1_000) {
    const clock = { t: start };
    const db = await t.fresh();
    const live = new SqliteLiveRepository(db, { now: () => clock.t });
    return { db, live, clock };
  }

  test('create: defaults, a public id and a long random URL-safe key; bad settings refused', async () => {
    const s = await setup();
    const a = await s.live.create({ title: '  Match day  ' });
    assert.match(a.id, LIVE_ID);
    assert.match(a.streamKey, /^[a-z2-7]{32}$/);
    assert.equal(a.title, 'Match day');
    assert.deepEqual(
      {
        dvr: a.dvrWindowSeconds,
        archive: a.archive,
        latency: a.latency,
        reconnect: a.reconnectWindowSeconds,
      },
      {
        dvr: LIVE_DEFAULTS.dvrWindowSeconds,
        archive: true,
        latency: 'low',
        reconnect: 30,
      },
    );
    assert.deepEqual(a.state, { name: 'idle', since: 1_000, resume: false });
    assert.equal(a.currentAssetId, null);
    const keys = new Set(Array.from({ length: 1000 }, newStreamKey));
    assert.equal(keys.size, 1000);
    for (const bad of [
      { title: '' },
      { title: 'x'.repeat(201) },
      { title: 't', latency: 'ultra' },
      { title: 't', dvrWindowSeconds: -1 },
      { title: 't', dvrWindowSeconds: 1.5 },
      { title: 't', reconnectWindowSeconds: 99_999 },
      { title: 't', archive: 'yes' },
    ]) {
      await assert.rejects(s.live.create(bad as never), isCode('BAD_REQUEST'), JSON.stringify(bad));
    }
    assert.equal(await s.live.count(), 1);
  });

  test('the stream key finds its stream; a rotated key stops working at once', async () => {
    const s = await setup();
    const a = await s.live.create({ title: 'a', dvrWindowSeconds: 0, archive: false, latency: 'standard' });
    assert.equal((await s.live.byKey(a.streamKey))?.id, a.id);
    assert.equal(await s.live.byKey('not-a-key'), null);
    assert.equal(await s.live.byKey(newStreamKey()), null);
    const b = await s.live.rotateKey(a.id);
    assert.notEqual(b.streamKey, a.streamKey);
    assert.equal(await s.live.byKey(a.streamKey), null);
    assert.equal((await s.live.byKey(b.streamKey))?.id, a.id);
    assert.ok(b.updatedAt > a.updatedAt);
  });

  test('transitions follow the one table; illegal ones are 409 and change nothing', async () => {
    const s = await setup();
    const a = await s.live.create({ title: 'a', reconnectWindowSeconds: 10 });
    s.clock.t = 2_000;
    assert.equal((await s.live.transition(a.id, 'publish')).state.name, 'starting');
    await assert.rejects(s.live.transition(a.id, 'publish'), isCode('LIVE_STATE_CONFLICT'), 'a second publisher');
    assert.equal((await s.live.transition(a.id, 'firstMedia')).state.name, 'started');
    const lost = (await s.live.transition(a.id, 'publisherLost', 3_000)).state;
    assert.deepEqual(lost, { name: 'reconnecting', since: 3_000, deadline: 13_000 }, 'the stream’s own window');
    await assert.rejects(s.live.transition(a.id, 'reconnectTimeout', 12_999), isCode('LIVE_STATE_CONFLICT'));
    assert.equal((await s.live.transition(a.id, 'reconnectTimeout', 13_000)).state.name, 'stopped');
    const before = await s.live.get(a.id);
    await assert.rejects(s.live.transition(a.id, 'publish'), isCode('LIVE_STATE_CONFLICT'), 'ingest refused');
    assert.deepEqual(await s.live.get(a.id), before);
    assert.equal((await s.live.transition(a.id, 'shutdown')).state.name, 'shutdown');
    await assert.rejects(s.live.transition('lnotthereatall23', 'stop'), isCode('LIVE_NOT_FOUND'));
  });

  test('a stream with a publisher is not deleted; its event asset outlives it', async () => {
    const s = await setup();
    const a = await s.live.create({ title: 'a' });
    await addAsset(s.db, 'eventasset000001');
    await s.live.setCurrentAsset(a.id, 'eventasset000001');
    await s.live.transition(a.id, 'publish');
    await assert.rejects(s.live.delete(a.id), isCode('LIVE_STATE_CONFLICT'));
    await s.live.transition(a.id, 'shutdown');
    assert.equal(await s.live.delete(a.id), true);
    assert.equal(await s.live.delete(a.id), false);
    assert.ok(await assetExists(s.db, 'eventasset000001'), 'the archive stays');
  });

  test('deleting the event asset clears the stream’s pointer; list is newest first', async () => {
    const s = await setup();
    const a = await s.live.create({ title: 'first' });
    s.clock.t = 5_000;
    const b = await s.live.create({ title: 'second' });
    await addAsset(s.db, 'eventasset000002');
    await s.live.setCurrentAsset(b.id, 'eventasset000002');
    await s.db.run(sql`DELETE FROM assets WHERE id = ${'eventasset000002'}`);
    assert.equal((await s.live.get(b.id))?.currentAssetId, null);
    assert.deepEqual(
      (await s.live.list({ limit: 10 })).map((x) => x.id),
      [b.id, a.id],
    );
  });

  test('list: same-millisecond streams newest first by insertion; offset pages; count', async () => {
    const s = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await s.live.create({ title: `s${i}` })).id);
    assert.deepEqual(
      (await s.live.list({ limit: 10 })).map((x) => x.id),
      [...ids].reverse(),
    );
    assert.deepEqual(
      (await s.live.list({ limit: 2, offset: 1 })).map((x) => x.id),
      [ids[3], ids[2]],
    );
    assert.equal(await s.live.count(), 5);
  });

  test('updated_at strictly increases even when the clock stands still; settings are validated', async () => {
    const s = await setup();
    const a = await s.live.create({ title: 'a' });
    const b = await s.live.updateSettings(a.id, { title: ' b ', playbackPolicy: 'signed', maxViewers: 3 });
    assert.deepEqual([b.title, b.playbackPolicy, b.maxViewers], ['b', 'signed', 3]);
    assert.equal(b.updatedAt, a.updatedAt + 1);
    const c = await s.live.updateSettings(a.id, { maxViewers: null });
    assert.equal(c.maxViewers, null);
    assert.equal(c.updatedAt, a.updatedAt + 2);
    assert.equal((await s.live.updateSettings(a.id, {})).updatedAt, c.updatedAt, 'nothing to set: unchanged');
    s.clock.t = 50_000;
    assert.equal((await s.live.rotateKey(a.id)).updatedAt, 50_000);
    for (const bad of [{ title: '' }, { playbackPolicy: 'open' }, { maxViewers: 0 }, { maxViewers: 1.5 }]) {
      await assert.rejects(s.live.updateSettings(a.id, bad as never), isCode('BAD_REQUEST'), JSON.stringify(bad));
    }
    await assert.rejects(s.live.updateSettings('lnotthereatall23', { title: 'x' }), isCode('LIVE_NOT_FOUND'));
  });

  test('push targets: in insertion order, at most MAX_TARGETS, each change bumps updated_at', async () => {
    const s = await setup();
    const a = await s.live.create({ title: 'a' });
    const added = [];
    for (let i = 0; i < 8; i++) added.push(await s.live.addTarget(a.id, `rtmp://example.com/app/k${i}`));
    assert.deepEqual(
      (await s.live.targets(a.id)).map((x) => x.url),
      added.map((x) => x.url),
    );
    await assert.rejects(s.live.addTarget(a.id, 'rtmp://example.com/app/k9'), isCode('BAD_REQUEST'));
    assert.equal((await s.live.get(a.id))?.updatedAt, a.updatedAt + 8);
    assert.equal(await s.live.removeTarget(a.id, added[0]!.id), true);
    assert.equal(await s.live.removeTarget(a.id, added[0]!.id), false);
    assert.equal(await s.live.removeTarget(a.id, 'not-a-target'), false);
    assert.equal((await s.live.get(a.id))?.updatedAt, a.updatedAt + 9);
    assert.equal((await s.live.targets(a.id)).length, 7);
    await assert.rejects(s.live.addTarget('lnotthereatall23', 'rtmp://x/y'), isCode('LIVE_NOT_FOUND'));
  });

  test('SRT ports: the lowest free one of the range; null when the range is full; concurrent creates differ', async () => {
    const s = await setup();
    const range = [9000, 9003] as const;
    const first = await s.live.create({ title: 'a' }, { srtPorts: range });
    assert.equal(first.srtPort, 9000);
    assert.match(first.srtPassphrase, /^[a-z2-7]{24}$/);
    const more = await Promise.all([1, 2, 3].map((i) => s.live.create({ title: `p${i}` }, { srtPorts: range })));
    assert.deepEqual(more.map((x) => x.srtPort).sort(), [9001, 9002, 9003]);
    assert.equal((await s.live.create({ title: 'full' }, { srtPorts: range })).srtPort, null);
    assert.equal((await s.live.create({ title: 'none' })).srtPort, null);
  });

  test('two connections: a transition under one write lock is seen by the other (no lost update)', async () => {
    const target = await t.target();
    await using first = await connection(target);
    await using second = await connection(target);
    const mine = new SqliteLiveRepository(first.db);
    const other = new SqliteLiveRepository(second.db);
    const a = await mine.create({ title: 'a' });
    await mine.transition(a.id, 'publish');
    await assert.rejects(other.transition(a.id, 'publish'), isCode('LIVE_STATE_CONFLICT'));
    assert.equal((await other.transition(a.id, 'firstMedia')).state.name, 'started');
    assert.equal((await mine.get(a.id))?.state.name, 'started');
    // Racing at once: exactly one publisher gets the stream. On PostgreSQL from both connections; on SQLite from
    // one (a second handle in the same process would wait for the write lock synchronously, blocking the event
    // loop the holder needs to finish: processes race across connections, one process through its one handle).
    const b = await mine.create({ title: 'b' });
    const racers = t.engine === 'postgres' ? [mine, other, mine, other] : [mine, mine, mine, mine];
    const results = await Promise.allSettled(racers.map((r) => r.transition(b.id, 'publish')));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.ok(isCode('LIVE_STATE_CONFLICT')(r.reason));
    assert.equal((await other.get(b.id))?.state.name, 'starting');
  });
});

async function connection(target: string) {
  const db = await openDatabase(target);
  return {
    db,
    async [Symbol.asyncDispose]() {
      await db.close();
    },
  };
}
