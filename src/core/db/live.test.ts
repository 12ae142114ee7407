import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SmoothcastError } from '../errors.ts';
import { SqliteAssetRepository } from './assets.ts';
import { openDatabase } from './database.ts';
import { LIVE_DEFAULTS, LIVE_ID, newStreamKey, SqliteLiveRepository } from './live.ts';

const dir = mkdtempSync(join(tmpdir(), 'smoothcast-live-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function setup(start = 1_000) {
  const clock = { t: start };
  const file = join(dir, `l${++n}.sqlite`);
  const db = openDatabase(file);
  const live = new SqliteLiveRepository(db, { now: () => clock.t });
  return { db, file, live, clock, [Symbol.dispose]: () => db.close() };
}

const isCode = (code: string) => (err: unknown) => err instanceof SmoothcastError && err.code === code;

test('create: defaults, a public id and a long random URL-safe key; bad settings refused', () => {
  using s = setup();
  const a = s.live.create({ title: '  Match day  ' });
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
    assert.throws(() => s.live.create(bad as never), isCode('BAD_REQUEST'), JSON.stringify(bad));
  }
  assert.equal(s.live.count(), 1);
});

test('the stream key finds its stream; a rotated key stops working at once', () => {
  using s = setup();
  const a = s.live.create({ title: 'a', dvrWindowSeconds: 0, archive: false, latency: 'standard' });
  assert.equal(s.live.byKey(a.streamKey)?.id, a.id);
  assert.equal(s.live.byKey('not-a-key'), null);
  assert.equal(s.live.byKey(newStreamKey()), null);
  const b = s.live.rotateKey(a.id);
  assert.notEqual(b.streamKey, a.streamKey);
  assert.equal(s.live.byKey(a.streamKey), null);
  assert.equal(s.live.byKey(b.streamKey)?.id, a.id);
  assert.ok(b.updatedAt > a.updatedAt);
});

test('transitions follow the one table; illegal ones are 409 and change nothing', () => {
  using s = setup();
  const a = s.live.create({ title: 'a', reconnectWindowSeconds: 10 });
  s.clock.t = 2_000;
  assert.equal(s.live.transition(a.id, 'publish').state.name, 'starting');
  assert.throws(() => s.live.transition(a.id, 'publish'), isCode('LIVE_STATE_CONFLICT'), 'a second publisher');
  assert.equal(s.live.transition(a.id, 'firstMedia').state.name, 'started');
  const lost = s.live.transition(a.id, 'publisherLost', 3_000).state;
  assert.deepEqual(lost, { name: 'reconnecting', since: 3_000, deadline: 13_000 }, 'the stream’s own window');
  assert.throws(() => s.live.transition(a.id, 'reconnectTimeout', 12_999), isCode('LIVE_STATE_CONFLICT'));
  assert.equal(s.live.transition(a.id, 'reconnectTimeout', 13_000).state.name, 'stopped');
  const before = s.live.get(a.id);
  assert.throws(() => s.live.transition(a.id, 'publish'), isCode('LIVE_STATE_CONFLICT'), 'ingest refused');
  assert.deepEqual(s.live.get(a.id), before);
  assert.equal(s.live.transition(a.id, 'shutdown').state.name, 'shutdown');
  assert.throws(() => s.live.transition('lnotthereatall23', 'stop'), isCode('LIVE_NOT_FOUND'));
});

test('a stream with a publisher is not deleted; its event asset outlives it', () => {
  using s = setup();
  const assets = new SqliteAssetRepository(s.db);
  const a = s.live.create({ title: 'a' });
  assets.create({ id: 'eventasset000001', title: 'a', sourcePath: 'p', sourceName: 'live' });
  s.live.setCurrentAsset(a.id, 'eventasset000001');
  s.live.transition(a.id, 'publish');
  assert.throws(() => s.live.delete(a.id), isCode('LIVE_STATE_CONFLICT'));
  s.live.transition(a.id, 'shutdown');
  assert.equal(s.live.delete(a.id), true);
  assert.equal(s.live.delete(a.id), false);
  assert.ok(assets.get('eventasset000001'), 'the archive stays');
});

test('deleting the event asset clears the stream’s pointer; list is newest first', () => {
  using s = setup();
  const assets = new SqliteAssetRepository(s.db);
  const a = s.live.create({ title: 'first' });
  s.clock.t = 5_000;
  const b = s.live.create({ title: 'second' });
  assets.create({ id: 'eventasset000002', title: 'b', sourcePath: 'p', sourceName: 'live' });
  s.live.setCurrentAsset(b.id, 'eventasset000002');
  assets.delete('eventasset000002');
  assert.equal(s.live.get(b.id)?.currentAssetId, null);
  assert.deepEqual(
    s.live.list({ limit: 10 }).map((x) => x.id),
    [b.id, a.id],
  );
});

test('two connections: a transition under one write lock is seen by the other (no lost update)', () => {
  using s = setup();
  using second = {
    db: openDatabase(s.file),
    [Symbol.dispose]() {
      this.db.close();
    },
  };
  const other = new SqliteLiveRepository(second.db);
  const a = s.live.create({ title: 'a' });
  s.live.transition(a.id, 'publish');
  assert.throws(() => other.transition(a.id, 'publish'), isCode('LIVE_STATE_CONFLICT'));
  assert.equal(other.transition(a.id, 'firstMedia').state.name, 'started');
  assert.equal(s.live.get(a.id)?.state.name, 'started');
});
