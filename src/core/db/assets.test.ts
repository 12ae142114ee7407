import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { forEachDatabase } from '../../../test/helpers/services/databases.ts';
import { SmoothcastError } from '../errors.ts';
import {
  type Asset,
  IllegalTransitionError,
  isValidAssetId,
  newAssetId,
  type PlannedRendition,
  SqliteAssetRepository,
} from './assets.ts';
import { int } from './database.ts';

const PLAN: PlannedRendition[] = [
  { id: 'a0', type: 'audio', bitrate: 128_000 },
  { id: 'v1', type: 'video', width: 1280, height: 720, bitrate: 3_000_000, frameRate: 30 },
  { id: 'v0', type: 'video', width: 640, height: 360, bitrate: 800_000, frameRate: 30 },
];
const processing = { source: { format: 'mov', streams: 2 }, duration: 12.5, rev: 'r1', renditions: PLAN };

const isCode = (code: string) => (err: unknown) => err instanceof SmoothcastError && err.code === code;

test('asset ids: 16 lowercase base32 characters, random; validation pattern', () => {
  const ids = new Set(Array.from({ length: 1000 }, newAssetId));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.match(id, /^[a-z2-7]{16}$/);
  for (const ok of ['abcdefgh', 'a1b2c3d4e5', 'x'.repeat(32)]) assert.equal(isValidAssetId(ok), true, ok);
  for (const bad of ['abcdefg', 'x'.repeat(33), 'ABCDEFGH', 'abcd-efgh', '../etc/pa', '', 12345678, null]) {
    assert.equal(isValidAssetId(bad), false, String(bad));
  }
});

forEachDatabase('asset repository', (t) => {
  async function setup(start = 1_000) {
    const clock = { t: start };
    const db = await t.fresh();
    const assets = new SqliteAssetRepository(db, { now: () => clock.t });
    return { db, assets, clock };
  }

  test('create → queued; get returns camelCase objects; bad and duplicate ids are refused', async () => {
    const s = await setup();
    const id = newAssetId();
    const a = await s.assets.create({ id, title: 'Match', sourcePath: `sources/${id}`, sourceName: 'match.mov' });
    assert.deepEqual(a, {
      id,
      title: 'Match',
      status: 'queued',
      playable: false,
      progress: null,
      error: null,
      duration: null,
      source: null,
      sourcePath: `sources/${id}`,
      sourceName: 'match.mov',
      rev: null,
      mediaType: null,
      notes: [],
      presentationOffset: null,
      liveStreamId: null,
      liveStartMs: null,
      // No node holds its files on its own disk (they are in storage).
      holder: null,
      // Access defaults (migration 6): public, clear, no viewer limit, no owner, no content key yet.
      playbackPolicy: 'public',
      encryption: 'none',
      maxViewers: null,
      ownerId: null,
      contentKey: null,
      renditions: [],
      createdAt: 1_000,
      updatedAt: 1_000,
      readyAt: null,
    });
    assert.deepEqual(await s.assets.get(id), a);
    assert.equal(await s.assets.get(newAssetId()), null);
    assert.equal(await s.assets.get('NOT-VALID'), null);
    const input = { title: 't', sourcePath: 'p', sourceName: 'n' };
    await assert.rejects(() => s.assets.create({ id: 'Bad!', ...input }), isCode('INVALID_ID'));
    await assert.rejects(() => s.assets.create({ id, ...input }), isCode('INVALID_ID'));
  });

  test('full life cycle: processing, progress, playable, ready', async () => {
    const s = await setup();
    const id = newAssetId();
    await s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n.mp4' });
    s.clock.t = 2_000;
    let a = await s.assets.setProcessing(id, processing);
    assert.equal(a.status, 'processing');
    assert.equal(a.rev, 'r1');
    assert.equal(a.duration, 12.5);
    assert.deepEqual(a.source, { format: 'mov', streams: 2 });
    assert.deepEqual(a.progress, { percent: 0, speed: null, etaSeconds: null });
    assert.deepEqual(
      a.renditions.map((r) => r.id),
      ['v0', 'v1', 'a0'],
    );
    assert.deepEqual(a.renditions[1], {
      id: 'v1',
      type: 'video',
      width: 1280,
      height: 720,
      bitrate: 3_000_000,
      codecs: null,
      frameRate: 30,
      averageBitrate: null,
      peakBitrate: null,
      language: null,
      label: null,
      roles: [],
      default: false,
    });
    a = await s.assets.setProgress(id, { percent: 42.5, speed: 3.1, etaSeconds: 4 });
    assert.deepEqual(a.progress, { percent: 42.5, speed: 3.1, etaSeconds: 4 });
    a = await s.assets.setPlayable(id, { v0: 'avc1.64001E', v1: 'avc1.64001F' });
    assert.equal(a.playable, false, 'a0 has no codecs yet');
    a = await s.assets.setPlayable(id, { a0: 'mp4a.40.2' });
    assert.equal(a.playable, true);
    await assert.rejects(() => s.assets.setPlayable(id, { v9: 'avc1.64001F' }), isCode('BAD_REQUEST'));
    await assert.rejects(
      () => s.assets.setReady(id, { duration: 12.48, renditions: [] }),
      isCode('BAD_REQUEST'),
      'final figures must cover every rendition',
    );
    s.clock.t = 3_000;
    a = await s.assets.setReady(id, {
      duration: 12.48,
      renditions: [
        { id: 'v0', codecs: 'avc1.64001E', averageBitrate: 790_000, peakBitrate: 1_100_000, frameRate: 29.97 },
        { id: 'v1', codecs: 'avc1.64001F', averageBitrate: 2_900_000.4, peakBitrate: 3_500_000 },
        { id: 'a0', codecs: 'mp4a.40.2', averageBitrate: 129_000, peakBitrate: 131_000 },
      ],
    });
    assert.equal(a.status, 'ready');
    assert.equal(a.playable, true);
    assert.equal(a.progress, null);
    assert.equal(a.duration, 12.48);
    assert.equal(a.readyAt, 3_000);
    assert.equal(a.updatedAt, 3_000);
    assert.deepEqual(a.renditions[0], {
      id: 'v0',
      type: 'video',
      width: 640,
      height: 360,
      bitrate: 800_000,
      codecs: 'avc1.64001E',
      frameRate: 29.97,
      averageBitrate: 790_000,
      peakBitrate: 1_100_000,
      language: null,
      label: null,
      roles: [],
      default: false,
    });
    assert.equal(a.renditions[1]?.averageBitrate, 2_900_000);
    assert.equal(a.renditions[1]?.frameRate, 30, 'planned figure kept when none measured');
  });

  test('illegal transitions are refused; requeue opens a re-encode with a new rev', async () => {
    const s = await setup();
    const id = newAssetId();
    await s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' });
    const illegal = (err: unknown) => err instanceof IllegalTransitionError && err.code === 'ASSET_STATE_CONFLICT';
    await assert.rejects(() => s.assets.setReady(id, { duration: 1, renditions: [] }), illegal);
    await assert.rejects(() => s.assets.setProgress(id, { percent: 1, speed: null, etaSeconds: null }), illegal);
    await s.assets.setProcessing(id, processing);
    // A retaken job starts over: processing → processing with a fresh rev and plan.
    let a = await s.assets.setProcessing(id, { ...processing, rev: 'r2', renditions: [PLAN[2]!] });
    assert.deepEqual(
      a.renditions.map((r) => r.id),
      ['v0'],
    );
    a = await s.assets.setReady(id, {
      duration: 1,
      renditions: [{ id: 'v0', codecs: 'avc1.64001E', averageBitrate: 1, peakBitrate: 2 }],
    });
    await assert.rejects(
      () => s.assets.setProcessing(id, processing),
      (err: unknown) => {
        assert.ok(err instanceof IllegalTransitionError);
        assert.equal(err.from, 'ready');
        assert.equal(err.action, 'setProcessing');
        assert.match(err.message, /is ready: setProcessing is not allowed/);
        return true;
      },
    );
    await assert.rejects(() => s.assets.setFailed(id, { code: 'ENCODE_FAILED', message: 'x' }), illegal);
    a = await s.assets.requeue(id);
    assert.equal(a.status, 'queued');
    assert.equal(a.playable, true, 'the previous rev stays served until the re-encode starts');
    a = await s.assets.setProcessing(id, { ...processing, rev: 'r3' });
    assert.equal(a.rev, 'r3');
    assert.equal(a.playable, false);
    assert.equal(a.readyAt, null);
    assert.ok(a.renditions.every((r) => r.codecs === null));
    await assert.rejects(
      () => s.assets.setProgress(newAssetId(), { percent: 1, speed: null, etaSeconds: null }),
      isCode('ASSET_NOT_FOUND'),
    );
  });

  test('failure records the error; requeue clears it; bad inputs are refused', async () => {
    const s = await setup();
    const id = newAssetId();
    await s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' });
    await s.assets.setProcessing(id, processing);
    let a = await s.assets.setFailed(id, { code: 'MEDIA_DECODE_FAILED', message: 'frame 12 is corrupt' });
    assert.equal(a.status, 'failed');
    assert.equal(a.playable, false);
    assert.deepEqual(a.error, { code: 'MEDIA_DECODE_FAILED', message: 'frame 12 is corrupt' });
    await assert.rejects(() => s.assets.setProcessing(id, processing), IllegalTransitionError);
    a = await s.assets.requeue(id);
    assert.equal(a.error, null);
    const bad: { input: Parameters<typeof s.assets.setProcessing>[1]; why: string }[] = [
      { input: { ...processing, rev: '../x' }, why: 'rev must be a plain folder name' },
      { input: { ...processing, renditions: [] }, why: 'empty plan' },
      { input: { ...processing, renditions: [{ id: 'a0', type: 'video', bitrate: 1 }] }, why: 'letter/type' },
      { input: { ...processing, renditions: [PLAN[0]!, PLAN[0]!] }, why: 'duplicate' },
      { input: { ...processing, renditions: [{ id: 'v0', type: 'video', bitrate: 0 }] }, why: 'bitrate' },
      { input: { ...processing, duration: Number.NaN }, why: 'duration' },
    ];
    for (const { input, why } of bad)
      await assert.rejects(() => s.assets.setProcessing(id, input), isCode('BAD_REQUEST'), why);
    assert.equal((await s.assets.get(id))?.status, 'queued', 'refused inputs change nothing');
  });

  test('list: newest first (ties by insertion), with limit, offset and renditions; count', async () => {
    const s = await setup();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      if (i !== 2) s.clock.t += 10; // assets 1 and 2 share a created_at
      const id = newAssetId();
      ids.push(id);
      await s.assets.create({ id, title: `t${i}`, sourcePath: 'p', sourceName: 'n' });
    }
    await s.assets.setProcessing(ids[3]!, processing);
    const all = await s.assets.list({ limit: 10 });
    assert.deepEqual(
      all.map((a) => a.id),
      [...ids].reverse(),
    );
    assert.equal(all[1]?.renditions.length, 3);
    assert.equal(all[0]?.renditions.length, 0);
    assert.deepEqual(
      (await s.assets.list({ limit: 2, offset: 2 })).map((a) => a.id),
      [ids[2], ids[1]],
    );
    assert.deepEqual(await s.assets.list({ limit: 2, offset: 10 }), []);
    assert.equal(await s.assets.count(), 5);
    await assert.rejects(() => s.assets.list({ limit: -1 }), isCode('BAD_REQUEST'));
  });

  test('updated_at strictly increases with every change, even when the clock stands still or steps back', async () => {
    const s = await setup(5_000);
    const id = newAssetId();
    let last = (await s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' })).updatedAt;
    const changes = [
      () => s.assets.setProcessing(id, processing),
      () => s.assets.setProgress(id, { percent: 10, speed: 1, etaSeconds: 9 }),
      () => s.assets.setProgress(id, { percent: 20, speed: 1, etaSeconds: 8 }),
      () => s.assets.setPlayable(id, { v0: 'avc1', v1: 'avc1', a0: 'mp4a.40.2' }),
      () => s.assets.setFailed(id, { code: 'ENCODE_FAILED', message: 'x' }),
      () => s.assets.requeue(id),
    ];
    for (const [i, change] of changes.entries()) {
      if (i === 3) s.clock.t = 4_000; // the wall clock stepped back
      const now = (await change()).updatedAt;
      assert.ok(now > last, `${now} > ${last}`);
      last = now;
    }
    s.clock.t = 9_000;
    assert.equal(
      (await s.assets.setProcessing(id, processing)).updatedAt,
      9_000,
      'follows the clock again once it is ahead',
    );
  });

  test('delete removes the asset with its renditions and jobs', async () => {
    const s = await setup();
    const id = newAssetId();
    const other = newAssetId();
    for (const x of [id, other]) {
      await s.assets.create({ id: x, title: 't', sourcePath: 'p', sourceName: 'n' });
      await s.assets.setProcessing(x, processing);
    }
    // Jobs are written directly (not through the job queue) so this case depends on the assets table alone.
    const enqueue = async (assetId: string) =>
      int(
        (await s.db.get(
          sql`INSERT INTO jobs (type, asset_id, payload, state, run_after, created_at, updated_at)
              VALUES ('encode', ${assetId}, '{}', 'queued', ${s.clock.t}, ${s.clock.t}, ${s.clock.t}) RETURNING id`,
        ))!,
        'id',
      );
    const job = await enqueue(id);
    await enqueue(other);
    assert.equal(await s.assets.delete(id), true);
    assert.equal(await s.assets.delete(id), false);
    assert.equal(await s.assets.delete('not valid'), false);
    assert.equal(await s.assets.get(id), null);
    assert.equal(await s.db.get(sql`SELECT id FROM jobs WHERE id = ${job}`), undefined);
    const count = async (q: ReturnType<typeof sql>) => (await s.db.get(q))?.n;
    assert.equal(await count(sql`SELECT count(*) AS n FROM renditions WHERE asset_id = ${id}`), 0);
    assert.equal(await count(sql`SELECT count(*) AS n FROM renditions`), 3);
    assert.equal(await count(sql`SELECT count(*) AS n FROM jobs`), 1);
  });

  test('setRetrying: processing → queued and not playable (the failed attempt’s files are gone)', async () => {
    const s = await setup();
    const id = newAssetId();
    await s.assets.create({ id, title: 't', sourcePath: `sources/${id}`, sourceName: 't.mp4' });
    await s.assets.setProcessing(id, processing);
    await s.assets.setPlayable(id, { v0: 'avc1.64001F', v1: 'avc1.64001F', a0: 'mp4a.40.2' });
    assert.equal((await s.assets.get(id))?.playable, true);
    const r = await s.assets.setRetrying(id);
    assert.equal(r.status, 'queued');
    assert.equal(r.playable, false);
    assert.equal(r.progress, null);
    await assert.rejects(() => s.assets.setRetrying(id), isCode('ASSET_STATE_CONFLICT'));
    assert.equal((await s.assets.setProcessing(id, { ...processing, rev: 'r2' })).status, 'processing');
  });

  test('audio renditions keep language, label, roles and default; notes and media type are stored', async () => {
    const s = await setup();
    const id = newAssetId();
    await s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n.mkv' });
    const a = await s.assets.setProcessing(id, {
      source: {},
      duration: 4,
      rev: 'r1',
      renditions: [
        { id: 'v0', type: 'video', width: 640, height: 360, bitrate: 800_000 },
        { id: 'a0', type: 'audio', bitrate: 128_000, language: 'en', label: 'English', roles: ['main'], default: true },
        { id: 'a1', type: 'audio', bitrate: 128_000, language: 'fr', label: 'Commentaire', roles: ['commentary'] },
      ],
      notes: ['subtitle track 3 (hdmv_pgs_subtitle) skipped'],
      presentationOffset: 0.08,
    });
    assert.equal(a.mediaType, 'video');
    assert.deepEqual(a.notes, ['subtitle track 3 (hdmv_pgs_subtitle) skipped']);
    assert.equal(a.presentationOffset, 0.08);
    const [a0, a1] = a.renditions.filter((r) => r.type === 'audio');
    assert.deepEqual([a0?.language, a0?.label, a0?.roles, a0?.default], ['en', 'English', ['main'], true]);
    assert.deepEqual([a1?.language, a1?.label, a1?.roles, a1?.default], ['fr', 'Commentaire', ['commentary'], false]);
  });

  test('access settings: updated in any status, validated; the content key is stored once', async () => {
    const s = await setup();
    const id = newAssetId();
    await s.assets.create({
      id,
      title: 'A',
      sourcePath: `sources/${id}`,
      sourceName: 'a.mov',
      playbackPolicy: 'signed',
    });
    assert.equal((await s.assets.get(id))!.playbackPolicy, 'signed');
    const before = (await s.assets.get(id))!.updatedAt;
    const u = await s.assets.updateSettings(id, { encryption: 'cenc', maxViewers: 3, title: ' Renamed ' });
    assert.equal(u.encryption, 'cenc');
    assert.equal(u.maxViewers, 3);
    assert.equal(u.title, 'Renamed');
    assert.ok(u.updatedAt > before, 'a change moves updatedAt (SSE followers see it)');
    assert.equal((await s.assets.updateSettings(id, { maxViewers: null })).maxViewers, null);
    for (const bad of [
      { encryption: 'rot13' },
      { playbackPolicy: 'secret' },
      { maxViewers: 0 },
      { maxViewers: 1.5 },
      { title: '' },
    ]) {
      await assert.rejects(
        () => s.assets.updateSettings(id, bad as never),
        /BAD_REQUEST|must|is /,
        JSON.stringify(bad),
      );
    }
    assert.equal(await s.assets.setContentKeyOnce(id, 'v1.first'), 'v1.first');
    assert.equal(await s.assets.setContentKeyOnce(id, 'v1.second'), 'v1.first', 'a second writer gets the stored key');
    assert.equal((await s.assets.get(id))!.contentKey, 'v1.first');
  });

  test('list ties: assets created in one millisecond come back newest first, in reverse insertion order', async () => {
    const s = await setup(7_000);
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) {
      const id = newAssetId();
      ids.push(id);
      await s.assets.create({ id, title: `t${i}`, sourcePath: 'p', sourceName: 'n' });
    }
    // Random ids: only the insertion order (rowid / seq) can put them in this order.
    const newestFirst = [...ids].reverse();
    assert.deepEqual(
      (await s.assets.list({ limit: 100 })).map((a) => a.id),
      newestFirst,
    );
    const pages: string[] = [];
    for (let offset = 0; offset < ids.length; offset += 5) {
      pages.push(...(await s.assets.list({ limit: 5, offset })).map((a) => a.id));
    }
    assert.deepEqual(pages, newestFirst, 'pages are stable across a tie');
    assert.deepEqual(await s.assets.list({ limit: 0 }), []);
  });

  test('updated_at strictly increases under a clock that never moves, across every kind of change', async () => {
    const s = await setup(42);
    const id = newAssetId();
    const seen = [(await s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' })).updatedAt];
    const changes: (() => Promise<Asset>)[] = [
      () => s.assets.setProcessing(id, processing),
      () => s.assets.setProgress(id, { percent: 1, speed: null, etaSeconds: null }),
      () => s.assets.updateSettings(id, { title: 'renamed' }),
      () => s.assets.setPlayable(id, { v0: 'avc1', v1: 'avc1', a0: 'mp4a.40.2' }),
      () =>
        s.assets.setReady(id, {
          duration: 1,
          renditions: PLAN.map((r) => ({ id: r.id, codecs: 'c', averageBitrate: 1, peakBitrate: 1 })),
        }),
      () => s.assets.requeue(id),
      () => s.assets.setProcessing(id, { ...processing, rev: 'r2' }),
      () => s.assets.setRetrying(id),
      () => s.assets.setFailed(id, { code: 'ENCODE_FAILED', message: 'x' }),
    ];
    for (const change of changes) seen.push((await change()).updatedAt);
    assert.deepEqual(
      seen,
      seen.map((_, i) => 42 + i),
      'each change is previous + 1 while the clock is behind',
    );
    assert.equal((await s.assets.get(id))!.updatedAt, 42 + changes.length);
    assert.equal(typeof (await s.assets.get(id))!.updatedAt, 'number', 'BIGINT comes back as a number');
  });

  test('concurrent transitions on one asset: every one succeeds, each sees a distinct updated_at', async () => {
    const s = await setup(1_000);
    const id = newAssetId();
    await s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' });
    await s.assets.setProcessing(id, processing);
    const before = (await s.assets.get(id))!.updatedAt;
    // On PostgreSQL these collide as SERIALIZABLE transactions and are retried; on SQLite they queue for the lock.
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => s.assets.setProgress(id, { percent: i * 10, speed: 1, etaSeconds: i })),
    );
    const stamps = results.map((a) => a.updatedAt);
    assert.equal(new Set(stamps).size, 10, `distinct updated_at: ${stamps.join(', ')}`);
    for (const u of stamps) assert.ok(u > before, `${u} > ${before}`);
    const final = (await s.assets.get(id))!;
    assert.equal(final.updatedAt, before + 10, 'ten increments of one on a clock that stood still');
    for (const u of stamps) assert.ok(final.updatedAt >= u);
    // The stored progress is the one of the transaction that committed last (the highest updated_at).
    const last = results.find((a) => a.updatedAt === final.updatedAt)!;
    assert.deepEqual(final.progress, last.progress);
    assert.equal(final.status, 'processing');
  });

  test('concurrent creates of one id: exactly one wins, the others get INVALID_ID', async () => {
    const s = await setup();
    const id = newAssetId();
    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => s.assets.create({ id, title: `t${i}`, sourcePath: 'p', sourceName: 'n' })),
    );
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
    for (const o of outcomes) if (o.status === 'rejected') assert.ok(isCode('INVALID_ID')(o.reason), String(o.reason));
    assert.equal(await s.assets.count(), 1);
  });

  test('a duplicate create inside a caller’s transaction leaves that transaction usable', async () => {
    const s = await setup();
    const id = newAssetId();
    const other = newAssetId();
    await s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' });
    await s.db.write(async () => {
      await assert.rejects(
        () => s.assets.create({ id, title: 'x', sourcePath: 'p', sourceName: 'n' }),
        isCode('INVALID_ID'),
      );
      await s.assets.create({ id: other, title: 'o', sourcePath: 'p', sourceName: 'n' });
    });
    assert.equal((await s.assets.get(id))!.title, 't');
    assert.equal((await s.assets.get(other))!.title, 'o');
  });

  test('live assets: created live, renditions added and re-rated, then ready', async () => {
    const s = await setup();
    const id = newAssetId();
    const live = {
      id,
      title: 'Event',
      liveStreamId: 'ls1',
      liveStartMs: 1_700_000_000_123.4,
      rev: 'rl-1',
      renditions: [],
      source: { live: true },
    };
    let a = await s.assets.createLive(live);
    assert.deepEqual(
      [a.status, a.liveStreamId, a.liveStartMs, a.rev, a.renditions, a.presentationOffset, a.mediaType],
      ['live', 'ls1', 1_700_000_000_123, 'rl-1', [], 0, 'audio'],
    );
    await assert.rejects(
      () => s.assets.createLive(live),
      (err: unknown) => err instanceof Error,
    );
    a = await s.assets.addLiveRenditions(id, [PLAN[2]!, PLAN[0]!]);
    assert.deepEqual(
      a.renditions.map((r) => r.id),
      ['v0', 'a0'],
    );
    a = await s.assets.addLiveRenditions(id, [{ ...PLAN[2]!, bitrate: 1 }, PLAN[1]!]);
    assert.deepEqual(
      a.renditions.map((r) => [r.id, r.bitrate]),
      [
        ['v0', 800_000],
        ['v1', 3_000_000],
        ['a0', 128_000],
      ],
      'existing ids are left as they are',
    );
    a = await s.assets.setLiveBitrates(id, { v0: 812_345.6, nope: 5 });
    assert.equal(a.renditions[0]?.bitrate, 812_346);
    a = await s.assets.setPlayable(id, { v0: 'avc1', v1: 'avc1', a0: 'mp4a.40.2' });
    assert.equal(a.status, 'live');
    assert.equal(a.playable, true);
    a = await s.assets.setReady(id, {
      duration: 30,
      renditions: a.renditions.map((r) => ({ id: r.id, codecs: r.codecs!, averageBitrate: 1, peakBitrate: 2 })),
    });
    assert.equal(a.status, 'ready');
    await assert.rejects(() => s.assets.addLiveRenditions(id, [PLAN[0]!]), IllegalTransitionError);
    await assert.rejects(() => s.assets.setLiveBitrates(id, { v0: 1 }), IllegalTransitionError);
  });

  test('onSettled hears ready and failed once each, after the commit; its failure is ignored', async () => {
    const s = await setup();
    const heard: string[] = [];
    s.assets.onSettled = async (a) => {
      // After the commit: a fresh read outside the transaction already sees the new status.
      heard.push(`${a.id}:${a.status}:${(await s.assets.get(a.id))!.status}`);
      throw new Error('listener failure');
    };
    const [x, y] = [newAssetId(), newAssetId()];
    for (const id of [x, y]) {
      await s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' });
      await s.assets.setProcessing(id, processing);
    }
    await s.assets.setReady(x, {
      duration: 1,
      renditions: PLAN.map((r) => ({ id: r.id, codecs: 'c', averageBitrate: 1, peakBitrate: 1 })),
    });
    await s.assets.setFailed(y, { code: 'ENCODE_FAILED', message: 'x' });
    await s.assets.requeue(y);
    assert.deepEqual(heard, [`${x}:ready:ready`, `${y}:failed:failed`]);
  });
});
