import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { SmoothcastError } from '../errors.ts';
import { newAssetId, SqliteAssetRepository } from './assets.ts';
import { openDatabase } from './database.ts';
import { DEFAULT_BACKOFF, type Job, type QueueOptions, retryDelayMs, SqliteJobQueue } from './queue.ts';

const dir = mkdtempSync(join(tmpdir(), 'smoothcast-queue-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function setup(options: QueueOptions = {}) {
  const clock = { t: 1_000_000 };
  const path = join(dir, `q${++n}.sqlite`);
  const db = openDatabase(path);
  const assets = new SqliteAssetRepository(db, { now: () => clock.t });
  const queue = new SqliteJobQueue(db, { now: () => clock.t, random: () => 0, ...options });
  const asset = () => assets.create({ id: newAssetId(), title: 't', sourcePath: 'p', sourceName: 'n' }).id;
  return { path, db, assets, queue, clock, asset, [Symbol.dispose]: () => db.close() };
}

const isCode = (code: string) => (err: unknown) => err instanceof SmoothcastError && err.code === code;

test('enqueue, then lease the oldest runnable job first', () => {
  using s = setup();
  const ids = [s.asset(), s.asset(), s.asset()];
  const jobs = ids.map((id, i) => s.queue.enqueue('encode', id, { n: i }));
  assert.deepEqual(
    { ...jobs[0]!, id: 0 },
    {
      id: 0,
      type: 'encode',
      assetId: ids[0],
      payload: { n: 0 },
      state: 'queued',
      attempts: 0,
      maxAttempts: 3,
      runAfter: 1_000_000,
      leaseOwner: null,
      leaseExpiresAt: null,
      lastError: null,
      createdAt: 1_000_000,
      updatedAt: 1_000_000,
    },
  );
  const first = s.queue.lease('w1', 30_000);
  assert.equal(first?.id, jobs[0]!.id);
  assert.equal(first?.state, 'running');
  assert.equal(first?.attempts, 1);
  assert.equal(first?.leaseOwner, 'w1');
  assert.equal(first?.leaseExpiresAt, 1_030_000);
  assert.equal(s.queue.lease('w2', 30_000)?.id, jobs[1]!.id);
  assert.equal(s.queue.lease('w1', 30_000)?.id, jobs[2]!.id);
  assert.equal(s.queue.lease('w3', 30_000), null);
  assert.equal(s.queue.complete(jobs[0]!.id, 'w1'), true);
  assert.equal(s.queue.get(jobs[0]!.id)?.state, 'done');
  assert.equal(s.queue.complete(jobs[0]!.id, 'w1'), false, 'only a running job completes');
  assert.equal(s.queue.lease('w3', 30_000, []), null, 'no types: nothing');
});

test('one active job per asset; enqueue for a missing asset is refused', () => {
  using s = setup();
  const id = s.asset();
  const job = s.queue.enqueue('encode', id, {});
  assert.deepEqual(s.queue.activeForAsset(id), job);
  assert.throws(() => s.queue.enqueue('encode', id, {}), isCode('JOB_ALREADY_ACTIVE'));
  assert.throws(() => s.queue.enqueue('encode', newAssetId(), {}), isCode('ASSET_NOT_FOUND'));
  assert.throws(() => s.queue.enqueue('thumbnail' as 'encode', id, {}), isCode('BAD_REQUEST'));
  s.queue.lease('w', 1_000);
  s.queue.complete(job.id, 'w');
  assert.equal(s.queue.activeForAsset(id), null);
  const again = s.queue.enqueue('encode', id, { reencode: true });
  assert.equal(s.queue.activeForAsset(id)?.id, again.id);
});

test('a job whose runAfter is in the future waits for the clock', () => {
  using s = setup();
  const job = s.queue.enqueue('encode', s.asset(), {}, { runAfter: 1_000_500 });
  assert.equal(s.queue.lease('w', 1_000), null);
  s.clock.t = 1_000_499;
  assert.equal(s.queue.lease('w', 1_000), null);
  s.clock.t = 1_000_500;
  assert.equal(s.queue.lease('w', 1_000)?.id, job.id);
});

test('an expired lease is retaken as a new attempt; the old owner loses heartbeat and complete', () => {
  using s = setup();
  const job = s.queue.enqueue('encode', s.asset(), {});
  s.queue.lease('dead', 10_000);
  s.clock.t += 9_999;
  assert.equal(s.queue.lease('other', 10_000), null, 'lease still held');
  assert.equal(s.queue.heartbeat(job.id, 'dead', 10_000), true);
  assert.equal(s.queue.get(job.id)?.leaseExpiresAt, s.clock.t + 10_000);
  s.clock.t += 10_000;
  const retaken = s.queue.lease('other', 10_000);
  assert.equal(retaken?.id, job.id);
  assert.equal(retaken?.attempts, 2);
  assert.equal(retaken?.leaseOwner, 'other');
  assert.deepEqual(retaken?.lastError, { code: 'JOB_LEASE_LOST', message: 'worker lost its lease on attempt 1' });
  assert.equal(s.queue.heartbeat(job.id, 'dead', 10_000), false);
  assert.equal(s.queue.complete(job.id, 'dead'), false);
  assert.equal(s.queue.fail(job.id, 'dead', { code: 'ENCODE_FAILED', message: 'x' }), null);
  assert.equal(s.queue.complete(job.id, 'other'), true);
});

test('a job whose worker keeps dying fails after maxAttempts, and the caller hears of it', () => {
  const exhausted: Job[] = [];
  using s = setup({ onLeaseExhausted: (job) => exhausted.push(job) });
  const job = s.queue.enqueue('encode', s.asset(), {}, { maxAttempts: 2 });
  assert.equal(s.queue.lease('w1', 1_000)?.attempts, 1);
  s.clock.t += 1_000;
  assert.equal(s.queue.lease('w2', 1_000)?.attempts, 2);
  s.clock.t += 1_000;
  assert.equal(s.queue.lease('w3', 1_000), null);
  const failed = s.queue.get(job.id)!;
  assert.equal(failed.state, 'failed');
  assert.equal(failed.attempts, 2);
  assert.equal(failed.lastError?.code, 'JOB_LEASE_LOST');
  assert.match(failed.lastError?.message ?? '', /lost its lease 2 times/);
  assert.deepEqual(exhausted, [failed]);
  assert.equal(s.queue.heartbeat(job.id, 'w2', 1_000), false);
});

test('transient failures retry with exponential backoff until attempts run out', () => {
  using s = setup();
  const job = s.queue.enqueue('encode', s.asset(), {});
  const t0 = s.clock.t;
  s.queue.lease('w', 60_000);
  let after = s.queue.fail(job.id, 'w', { code: 'ENCODE_FAILED', message: 'ffmpeg exited 1' });
  assert.equal(after?.state, 'queued');
  assert.equal(after?.runAfter, t0 + 5_000);
  assert.deepEqual(after?.lastError, { code: 'ENCODE_FAILED', message: 'ffmpeg exited 1' });
  s.clock.t = t0 + 4_999;
  assert.equal(s.queue.lease('w', 60_000), null);
  s.clock.t = t0 + 5_000;
  assert.equal(s.queue.lease('w', 60_000)?.attempts, 2);
  after = s.queue.fail(job.id, 'w', { code: 'ENCODE_TIMEOUT', message: 'slow' });
  assert.equal(after?.runAfter, t0 + 5_000 + 20_000);
  s.clock.t = t0 + 25_000;
  assert.equal(s.queue.lease('w', 60_000)?.attempts, 3);
  after = s.queue.fail(job.id, 'w', { code: 'ENCODE_FAILED', message: 'again' });
  assert.equal(after?.state, 'failed');
  s.clock.t += 3_600_000;
  assert.equal(s.queue.lease('w', 60_000), null);
});

test('permanent failures are not retried (explicitly, or by the code’s registry flag)', () => {
  using s = setup();
  const a = s.queue.enqueue('encode', s.asset(), {});
  const b = s.queue.enqueue('encode', s.asset(), {});
  s.queue.lease('w', 60_000);
  s.queue.lease('w', 60_000);
  const fa = s.queue.fail(a.id, 'w', { code: 'ENCODE_FAILED', message: 'no space', permanent: true });
  const fb = s.queue.fail(b.id, 'w', { code: 'MEDIA_UNREADABLE', message: 'not media' });
  assert.equal(fa?.state, 'failed');
  assert.equal(fb?.state, 'failed');
  assert.equal(fb?.attempts, 1);
  s.clock.t += 3_600_000;
  assert.equal(s.queue.lease('w', 60_000), null);
});

test('retryDelayMs: 5 s × 4^(attempt−1), capped, plus up to 25 % jitter', () => {
  const zero = () => 0;
  assert.deepEqual(
    [1, 2, 3, 4, 5, 9].map((a) => retryDelayMs(a, zero)),
    [5_000, 20_000, 80_000, 320_000, 600_000, 600_000],
  );
  assert.equal(
    retryDelayMs(1, () => 0.999_999),
    6_250,
  );
  assert.equal(
    retryDelayMs(2, () => 0.5, { ...DEFAULT_BACKOFF, jitter: 0.1 }),
    21_000,
  );
  using s = setup({ random: () => 0.5 });
  const job = s.queue.enqueue('encode', s.asset(), {});
  s.queue.lease('w', 60_000);
  assert.equal(s.queue.fail(job.id, 'w', { code: 'INTERNAL', message: 'x' })?.runAfter, s.clock.t + 5_625);
});

test('cancellation: queued jobs are never leased, running ones see it at their next heartbeat', () => {
  using s = setup();
  const id = s.asset();
  const other = s.asset();
  const running = s.queue.enqueue('encode', id, {});
  const keep = s.queue.enqueue('encode', other, {});
  s.queue.lease('w', 60_000);
  assert.equal(s.queue.cancelForAsset(id), 1);
  assert.equal(s.queue.heartbeat(running.id, 'w', 60_000), false);
  assert.equal(s.queue.complete(running.id, 'w'), false);
  const cancelled = s.queue.get(running.id)!;
  assert.equal(cancelled.state, 'cancelled');
  assert.equal(cancelled.lastError?.code, 'JOB_CANCELLED');
  assert.equal(s.queue.activeForAsset(id), null);
  s.clock.t += 3_600_000; // even with its lease long expired, a cancelled job is not retaken
  assert.equal(s.queue.lease('w', 60_000)?.id, keep.id);
  assert.equal(s.queue.lease('w', 60_000), null);
  const queued = s.queue.enqueue('encode', id, {});
  assert.equal(s.queue.cancelForAsset(id), 1);
  assert.equal(s.queue.get(queued.id)?.state, 'cancelled');
  assert.equal(s.queue.cancelForAsset(id), 0);
});

test('two connections interleaving on one file never hold the same job', () => {
  using s = setup();
  const other = openDatabase(s.path);
  try {
    const queues = [s.queue, new SqliteJobQueue(other, { now: () => s.clock.t })];
    for (let i = 0; i < 50; i++) s.queue.enqueue('encode', s.asset(), {});
    const held = new Map<number, string>();
    for (let i = 0; held.size < 50; i++) {
      const owner = `c${i % 2}`;
      const job = queues[i % 2]!.lease(owner, 60_000);
      assert.ok(job !== null);
      assert.equal(held.has(job.id), false, `job ${job.id} leased twice`);
      held.set(job.id, owner);
    }
    assert.equal(queues[1]!.lease('c1', 60_000), null);
  } finally {
    other.close();
  }
});

test('two processes leasing from the same file at once never take the same job', async () => {
  using s = setup();
  const JOBS = 300;
  const expected = new Set<number>();
  s.db.write(() => {
    for (let i = 0; i < JOBS; i++) expected.add(s.queue.enqueue('encode', s.asset(), { i }).id);
  });
  const child = new URL('./queue-race-child.ts', import.meta.url).pathname;
  const children = ['p1', 'p2', 'p3'].map((owner) => {
    const proc = spawn(process.execPath, [child, s.path, owner], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.setEncoding('utf8');
    const ready = new Promise<void>((resolve) => {
      proc.stdout.on('data', (chunk: string) => {
        out += chunk;
        if (out.startsWith('ready\n')) resolve();
      });
    });
    const done = new Promise<number[]>((resolve, reject) => {
      proc.on('error', reject);
      proc.on('close', (code) => {
        if (code !== 0) reject(new Error(`${owner} exited ${code}`));
        else resolve(JSON.parse(out.slice('ready\n'.length)) as number[]);
      });
    });
    return { proc, ready, done };
  });
  await Promise.all(children.map((c) => c.ready));
  for (const c of children) c.proc.stdin.write('go\n');
  const results = await Promise.all(children.map((c) => c.done));
  const all = results.flat();
  assert.equal(all.length, JOBS, `leases: ${results.map((r) => r.length).join(' + ')}`);
  assert.deepEqual(new Set(all), expected, 'each job leased exactly once');
  for (const r of results) assert.ok(r.length > 0, 'every process took part');
  const states = s.db.raw.prepare('SELECT state, attempts, count(*) AS n FROM jobs GROUP BY state, attempts').all();
  assert.deepEqual(
    states.map((r) => ({ ...r })),
    [{ state: 'done', attempts: 1, n: JOBS }],
  );
});
