import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SmoothcastError } from '../errors.ts';
import {
  IllegalTransitionError,
  isValidAssetId,
  newAssetId,
  type PlannedRendition,
  SqliteAssetRepository,
} from './assets.ts';
import { openDatabase } from './database.ts';
import { SqliteJobQueue } from './queue.ts';

const dir = mkdtempSync(join(tmpdir(), 'smoothcast-assets-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function setup(start = 1_000) {
  const clock = { t: start };
  const db = openDatabase(join(dir, `a${++n}.sqlite`));
  const assets = new SqliteAssetRepository(db, { now: () => clock.t });
  return { db, assets, clock, [Symbol.dispose]: () => db.close() };
}

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

test('create → queued; get returns camelCase objects; bad and duplicate ids are refused', () => {
  using s = setup();
  const id = newAssetId();
  const a = s.assets.create({ id, title: 'Match', sourcePath: `sources/${id}`, sourceName: 'match.mov' });
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
  assert.deepEqual(s.assets.get(id), a);
  assert.equal(s.assets.get(newAssetId()), null);
  assert.equal(s.assets.get('NOT-VALID'), null);
  const input = { title: 't', sourcePath: 'p', sourceName: 'n' };
  assert.throws(() => s.assets.create({ id: 'Bad!', ...input }), isCode('INVALID_ID'));
  assert.throws(() => s.assets.create({ id, ...input }), isCode('INVALID_ID'));
});

test('full life cycle: processing, progress, playable, ready', () => {
  using s = setup();
  const id = newAssetId();
  s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n.mp4' });
  s.clock.t = 2_000;
  let a = s.assets.setProcessing(id, processing);
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
  a = s.assets.setProgress(id, { percent: 42.5, speed: 3.1, etaSeconds: 4 });
  assert.deepEqual(a.progress, { percent: 42.5, speed: 3.1, etaSeconds: 4 });
  a = s.assets.setPlayable(id, { v0: 'avc1.64001E', v1: 'avc1.64001F' });
  assert.equal(a.playable, false, 'a0 has no codecs yet');
  a = s.assets.setPlayable(id, { a0: 'mp4a.40.2' });
  assert.equal(a.playable, true);
  assert.throws(() => s.assets.setPlayable(id, { v9: 'avc1.64001F' }), isCode('BAD_REQUEST'));
  assert.throws(
    () => s.assets.setReady(id, { duration: 12.48, renditions: [] }),
    isCode('BAD_REQUEST'),
    'final figures must cover every rendition',
  );
  s.clock.t = 3_000;
  a = s.assets.setReady(id, {
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

test('illegal transitions are refused; requeue opens a re-encode with a new rev', () => {
  using s = setup();
  const id = newAssetId();
  s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' });
  const illegal = (err: unknown) => err instanceof IllegalTransitionError && err.code === 'ASSET_STATE_CONFLICT';
  assert.throws(() => s.assets.setReady(id, { duration: 1, renditions: [] }), illegal);
  assert.throws(() => s.assets.setProgress(id, { percent: 1, speed: null, etaSeconds: null }), illegal);
  s.assets.setProcessing(id, processing);
  // A retaken job starts over: processing → processing with a fresh rev and plan.
  let a = s.assets.setProcessing(id, { ...processing, rev: 'r2', renditions: [PLAN[2]!] });
  assert.deepEqual(
    a.renditions.map((r) => r.id),
    ['v0'],
  );
  a = s.assets.setReady(id, {
    duration: 1,
    renditions: [{ id: 'v0', codecs: 'avc1.64001E', averageBitrate: 1, peakBitrate: 2 }],
  });
  assert.throws(
    () => s.assets.setProcessing(id, processing),
    (err: unknown) => {
      assert.ok(err instanceof IllegalTransitionError);
      assert.equal(err.from, 'ready');
      assert.equal(err.action, 'setProcessing');
      assert.match(err.message, /is ready: setProcessing is not allowed/);
      return true;
    },
  );
  assert.throws(() => s.assets.setFailed(id, { code: 'ENCODE_FAILED', message: 'x' }), illegal);
  a = s.assets.requeue(id);
  assert.equal(a.status, 'queued');
  assert.equal(a.playable, true, 'the previous rev stays served until the re-encode starts');
  a = s.assets.setProcessing(id, { ...processing, rev: 'r3' });
  assert.equal(a.rev, 'r3');
  assert.equal(a.playable, false);
  assert.equal(a.readyAt, null);
  assert.ok(a.renditions.every((r) => r.codecs === null));
  assert.throws(
    () => s.assets.setProgress(newAssetId(), { percent: 1, speed: null, etaSeconds: null }),
    isCode('ASSET_NOT_FOUND'),
  );
});

test('failure records the error; requeue clears it; bad inputs are refused', () => {
  using s = setup();
  const id = newAssetId();
  s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' });
  s.assets.setProcessing(id, processing);
  let a = s.assets.setFailed(id, { code: 'MEDIA_DECODE_FAILED', message: 'frame 12 is corrupt' });
  assert.equal(a.status, 'failed');
  assert.equal(a.playable, false);
  assert.deepEqual(a.error, { code: 'MEDIA_DECODE_FAILED', message: 'frame 12 is corrupt' });
  assert.throws(() => s.assets.setProcessing(id, processing), IllegalTransitionError);
  a = s.assets.requeue(id);
  assert.equal(a.error, null);
  const bad: { input: Parameters<typeof s.assets.setProcessing>[1]; why: string }[] = [
    { input: { ...processing, rev: '../x' }, why: 'rev must be a plain folder name' },
    { input: { ...processing, renditions: [] }, why: 'empty plan' },
    { input: { ...processing, renditions: [{ id: 'a0', type: 'video', bitrate: 1 }] }, why: 'letter/type' },
    { input: { ...processing, renditions: [PLAN[0]!, PLAN[0]!] }, why: 'duplicate' },
    { input: { ...processing, renditions: [{ id: 'v0', type: 'video', bitrate: 0 }] }, why: 'bitrate' },
    { input: { ...processing, duration: Number.NaN }, why: 'duration' },
  ];
  for (const { input, why } of bad) assert.throws(() => s.assets.setProcessing(id, input), isCode('BAD_REQUEST'), why);
  assert.equal(s.assets.get(id)?.status, 'queued', 'refused inputs change nothing');
});

test('list: newest first (ties by insertion), with limit, offset and renditions; count', () => {
  using s = setup();
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) {
    if (i !== 2) s.clock.t += 10; // assets 1 and 2 share a created_at
    const id = newAssetId();
    ids.push(id);
    s.assets.create({ id, title: `t${i}`, sourcePath: 'p', sourceName: 'n' });
  }
  s.assets.setProcessing(ids[3]!, processing);
  const all = s.assets.list({ limit: 10 });
  assert.deepEqual(
    all.map((a) => a.id),
    [...ids].reverse(),
  );
  assert.equal(all[1]?.renditions.length, 3);
  assert.equal(all[0]?.renditions.length, 0);
  assert.deepEqual(
    s.assets.list({ limit: 2, offset: 2 }).map((a) => a.id),
    [ids[2], ids[1]],
  );
  assert.deepEqual(s.assets.list({ limit: 2, offset: 10 }), []);
  assert.equal(s.assets.count(), 5);
  assert.throws(() => s.assets.list({ limit: -1 }), isCode('BAD_REQUEST'));
});

test('updated_at strictly increases with every change, even when the clock stands still or steps back', () => {
  using s = setup(5_000);
  const id = newAssetId();
  let last = s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n' }).updatedAt;
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
    const now = change().updatedAt;
    assert.ok(now > last, `${now} > ${last}`);
    last = now;
  }
  s.clock.t = 9_000;
  assert.equal(s.assets.setProcessing(id, processing).updatedAt, 9_000, 'follows the clock again once it is ahead');
});

test('delete removes the asset with its renditions and jobs', () => {
  using s = setup();
  const id = newAssetId();
  const other = newAssetId();
  for (const x of [id, other]) {
    s.assets.create({ id: x, title: 't', sourcePath: 'p', sourceName: 'n' });
    s.assets.setProcessing(x, processing);
  }
  const queue = new SqliteJobQueue(s.db, { now: () => s.clock.t });
  const job = queue.enqueue('encode', id, {});
  queue.enqueue('encode', other, {});
  assert.equal(s.assets.delete(id), true);
  assert.equal(s.assets.delete(id), false);
  assert.equal(s.assets.delete('not valid'), false);
  assert.equal(s.assets.get(id), null);
  assert.equal(queue.get(job.id), null);
  const count = (sql: string) => s.db.raw.prepare(sql).get()?.n;
  assert.equal(count(`SELECT count(*) AS n FROM renditions WHERE asset_id = '${id}'`), 0);
  assert.equal(count('SELECT count(*) AS n FROM renditions'), 3);
  assert.equal(count('SELECT count(*) AS n FROM jobs'), 1);
});

test('setRetrying: processing → queued and not playable (the failed attempt’s files are gone)', () => {
  using s = setup();
  const id = newAssetId();
  s.assets.create({ id, title: 't', sourcePath: `sources/${id}`, sourceName: 't.mp4' });
  s.assets.setProcessing(id, processing);
  s.assets.setPlayable(id, { v0: 'avc1.64001F', v1: 'avc1.64001F', a0: 'mp4a.40.2' });
  assert.equal(s.assets.get(id)?.playable, true);
  const r = s.assets.setRetrying(id);
  assert.equal(r.status, 'queued');
  assert.equal(r.playable, false);
  assert.equal(r.progress, null);
  assert.throws(() => s.assets.setRetrying(id), isCode('ASSET_STATE_CONFLICT'));
  assert.equal(s.assets.setProcessing(id, { ...processing, rev: 'r2' }).status, 'processing');
});

test('audio renditions keep language, label, roles and default; notes and media type are stored', () => {
  using s = setup();
  const id = newAssetId();
  s.assets.create({ id, title: 't', sourcePath: 'p', sourceName: 'n.mkv' });
  const a = s.assets.setProcessing(id, {
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

test('access settings: updated in any status, validated; the content key is stored once', () => {
  using s = setup();
  const id = newAssetId();
  s.assets.create({ id, title: 'A', sourcePath: `sources/${id}`, sourceName: 'a.mov', playbackPolicy: 'signed' });
  assert.equal(s.assets.get(id)!.playbackPolicy, 'signed');
  const before = s.assets.get(id)!.updatedAt;
  const u = s.assets.updateSettings(id, { encryption: 'cenc', maxViewers: 3, title: ' Renamed ' });
  assert.equal(u.encryption, 'cenc');
  assert.equal(u.maxViewers, 3);
  assert.equal(u.title, 'Renamed');
  assert.ok(u.updatedAt > before, 'a change moves updatedAt (SSE followers see it)');
  assert.equal(s.assets.updateSettings(id, { maxViewers: null }).maxViewers, null);
  for (const bad of [
    { encryption: 'rot13' },
    { playbackPolicy: 'secret' },
    { maxViewers: 0 },
    { maxViewers: 1.5 },
    { title: '' },
  ]) {
    assert.throws(() => s.assets.updateSettings(id, bad as never), /BAD_REQUEST|must|is /, JSON.stringify(bad));
  }
  assert.equal(s.assets.setContentKeyOnce(id, 'v1.first'), 'v1.first');
  assert.equal(s.assets.setContentKeyOnce(id, 'v1.second'), 'v1.first', 'a second writer gets the stored key');
  assert.equal(s.assets.get(id)!.contentKey, 'v1.first');
});
