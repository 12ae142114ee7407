import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, test } from 'node:test';
import { sql } from 'kysely';
import { type DbTarget, forEachDatabase } from '../../../test/helpers/services/databases.ts';
import { SmoothcastError } from '../errors.ts';
import { newAssetId, SqliteAssetRepository } from './assets.ts';
import { type Db, openDatabase } from './database.ts';
import { DEFAULT_BACKOFF, JOBS_CHANNEL, type Job, type QueueOptions, retryDelayMs, SqliteJobQueue } from './queue.ts';

async function setup(t: DbTarget, options: QueueOptions = {}) {
  const clock = { t: 1_000_000 };
  const target = await t.target();
  const db = await openDatabase(target);
  closers.push(db);
  const assets = new SqliteAssetRepository(db, { now: () => clock.t });
  const queue = new SqliteJobQueue(db, { now: () => clock.t, random: () => 0, ...options });
  const asset = async () =>
    (await assets.create({ id: newAssetId(), title: 't', sourcePath: 'p', sourceName: 'n' })).id;
  return { target, db, assets, queue, clock, asset };
}

const closers: Db[] = [];
after(() => Promise.all(closers.map((d) => d.close().catch(() => {}))));

const isCode = (code: string) => (err: unknown) => err instanceof SmoothcastError && err.code === code;

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
});

forEachDatabase('job queue', (t) => {
  test('enqueue, then lease the oldest runnable job first', async () => {
    const s = await setup(t);
    const ids = [await s.asset(), await s.asset(), await s.asset()];
    const jobs: Job[] = [];
    for (const [i, id] of ids.entries()) jobs.push(await s.queue.enqueue('encode', id, { n: i }));
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
        leaseToken: 0,
        lastError: null,
        createdAt: 1_000_000,
        updatedAt: 1_000_000,
      },
    );
    const first = await s.queue.lease('w1', 30_000);
    assert.equal(first?.id, jobs[0]!.id);
    assert.equal(first?.state, 'running');
    assert.equal(first?.attempts, 1);
    assert.equal(first?.leaseOwner, 'w1');
    assert.equal(first?.leaseExpiresAt, 1_030_000);
    assert.equal(first?.leaseToken, 1);
    assert.equal((await s.queue.lease('w2', 30_000))?.id, jobs[1]!.id);
    assert.equal((await s.queue.lease('w1', 30_000))?.id, jobs[2]!.id);
    assert.equal(await s.queue.lease('w3', 30_000), null);
    assert.equal(await s.queue.complete(first!), true);
    assert.equal((await s.queue.get(jobs[0]!.id))?.state, 'done');
    assert.equal(await s.queue.complete(first!), false, 'only a running job completes');
    assert.equal(await s.queue.lease('w3', 30_000, []), null, 'no types: nothing');
    assert.deepEqual(await s.queue.counts(), { queued: 0, running: 2, done: 1, failed: 0, cancelled: 0 });
  });

  test('one active job per asset; enqueue for a missing asset is refused', async () => {
    const s = await setup(t);
    const id = await s.asset();
    const job = await s.queue.enqueue('encode', id, {});
    assert.deepEqual(await s.queue.activeForAsset(id), job);
    await assert.rejects(s.queue.enqueue('encode', id, {}), isCode('JOB_ALREADY_ACTIVE'));
    await assert.rejects(s.queue.enqueue('encode', newAssetId(), {}), isCode('ASSET_NOT_FOUND'));
    await assert.rejects(s.queue.enqueue('thumbnail' as 'encode', id, {}), isCode('BAD_REQUEST'));
    const leased = await s.queue.lease('w', 1_000);
    await s.queue.complete(leased!);
    assert.equal(await s.queue.activeForAsset(id), null);
    const again = await s.queue.enqueue('encode', id, { reencode: true });
    assert.equal((await s.queue.activeForAsset(id))?.id, again.id);
  });

  test('a job whose runAfter is in the future waits for the clock', async () => {
    const s = await setup(t);
    const job = await s.queue.enqueue('encode', await s.asset(), {}, { runAfter: 1_000_500 });
    assert.equal(await s.queue.lease('w', 1_000), null);
    s.clock.t = 1_000_499;
    assert.equal(await s.queue.lease('w', 1_000), null);
    s.clock.t = 1_000_500;
    assert.equal((await s.queue.lease('w', 1_000))?.id, job.id);
  });

  test('fencing: an expired lease is retaken as a new attempt; the old lease is refused everything', async () => {
    const s = await setup(t);
    const job = await s.queue.enqueue('encode', await s.asset(), {});
    const dead = (await s.queue.lease('dead', 10_000))!;
    s.clock.t += 9_999;
    assert.equal(await s.queue.lease('other', 10_000), null, 'lease still held');
    assert.equal(await s.queue.heartbeat(dead, 10_000), true);
    assert.equal((await s.queue.get(job.id))?.leaseExpiresAt, s.clock.t + 10_000);
    s.clock.t += 10_000;
    // Expired but not yet retaken: the late worker is already refused (it cannot know whether someone else has
    // started, so it must not write).
    assert.equal(await s.queue.heartbeat(dead, 10_000), false);
    assert.equal(await s.queue.complete(dead), false);
    const retaken = (await s.queue.lease('other', 10_000))!;
    assert.equal(retaken.id, job.id);
    assert.equal(retaken.attempts, 2);
    assert.equal(retaken.leaseOwner, 'other');
    assert.equal(retaken.leaseToken, dead.leaseToken + 1);
    assert.deepEqual(retaken.lastError, { code: 'JOB_LEASE_LOST', message: 'worker lost its lease on attempt 1' });
    assert.equal(await s.queue.heartbeat(dead, 10_000), false);
    assert.equal(await s.queue.complete(dead), false);
    assert.equal(await s.queue.fail(dead, { code: 'ENCODE_FAILED', message: 'x' }), null);
    // The same owner name with the old token (a restarted worker reusing its name) is refused too.
    assert.equal(await s.queue.complete({ ...retaken, leaseToken: dead.leaseToken }), false);
    assert.equal(await s.queue.complete(retaken), true);
    assert.equal((await s.queue.get(job.id))?.state, 'done');
  });

  test('a job whose worker keeps dying fails after maxAttempts, and the caller hears of it', async () => {
    const exhausted: Job[] = [];
    const s = await setup(t, { onLeaseExhausted: (job) => exhausted.push(job) });
    const job = await s.queue.enqueue('encode', await s.asset(), {}, { maxAttempts: 2 });
    assert.equal((await s.queue.lease('w1', 1_000))?.attempts, 1);
    s.clock.t += 1_000;
    const second = (await s.queue.lease('w2', 1_000))!;
    assert.equal(second.attempts, 2);
    s.clock.t += 1_000;
    assert.equal(await s.queue.lease('w3', 1_000), null);
    const failed = (await s.queue.get(job.id))!;
    assert.equal(failed.state, 'failed');
    assert.equal(failed.attempts, 2);
    assert.equal(failed.lastError?.code, 'JOB_LEASE_LOST');
    assert.match(failed.lastError?.message ?? '', /lost its lease 2 times/);
    assert.deepEqual(exhausted, [failed]);
    assert.equal(await s.queue.heartbeat(second, 1_000), false);
  });

  test('transient failures retry with exponential backoff until attempts run out', async () => {
    const s = await setup(t);
    const job = await s.queue.enqueue('encode', await s.asset(), {});
    const t0 = s.clock.t;
    let lease = (await s.queue.lease('w', 60_000))!;
    let after = await s.queue.fail(lease, { code: 'ENCODE_FAILED', message: 'ffmpeg exited 1' });
    assert.equal(after?.state, 'queued');
    assert.equal(after?.runAfter, t0 + 5_000);
    assert.deepEqual(after?.lastError, { code: 'ENCODE_FAILED', message: 'ffmpeg exited 1' });
    s.clock.t = t0 + 4_999;
    assert.equal(await s.queue.lease('w', 60_000), null);
    s.clock.t = t0 + 5_000;
    lease = (await s.queue.lease('w', 60_000))!;
    assert.equal(lease.attempts, 2);
    after = await s.queue.fail(lease, { code: 'ENCODE_TIMEOUT', message: 'slow' });
    assert.equal(after?.runAfter, t0 + 5_000 + 20_000);
    s.clock.t = t0 + 25_000;
    lease = (await s.queue.lease('w', 60_000))!;
    assert.equal(lease.attempts, 3);
    after = await s.queue.fail(lease, { code: 'ENCODE_FAILED', message: 'again' });
    assert.equal(after?.state, 'failed');
    assert.equal(after?.id, job.id);
    s.clock.t += 3_600_000;
    assert.equal(await s.queue.lease('w', 60_000), null);
  });

  test('permanent failures are not retried (explicitly, or by the code’s registry flag)', async () => {
    const s = await setup(t);
    await s.queue.enqueue('encode', await s.asset(), {});
    await s.queue.enqueue('encode', await s.asset(), {});
    const a = (await s.queue.lease('w', 60_000))!;
    const b = (await s.queue.lease('w', 60_000))!;
    const fa = await s.queue.fail(a, { code: 'ENCODE_FAILED', message: 'no space', permanent: true });
    const fb = await s.queue.fail(b, { code: 'MEDIA_UNREADABLE', message: 'not media' });
    assert.equal(fa?.state, 'failed');
    assert.equal(fb?.state, 'failed');
    assert.equal(fb?.attempts, 1);
    s.clock.t += 3_600_000;
    assert.equal(await s.queue.lease('w', 60_000), null);
  });

  test('the retry delay is jittered by the random source', async () => {
    const s = await setup(t, { random: () => 0.5 });
    await s.queue.enqueue('encode', await s.asset(), {});
    const lease = (await s.queue.lease('w', 60_000))!;
    assert.equal((await s.queue.fail(lease, { code: 'INTERNAL', message: 'x' }))?.runAfter, s.clock.t + 5_625);
  });

  test('cancellation: queued jobs are never leased, running ones see it at their next heartbeat', async () => {
    const s = await setup(t);
    const id = await s.asset();
    const other = await s.asset();
    const running = await s.queue.enqueue('encode', id, {});
    const keep = await s.queue.enqueue('encode', other, {});
    const lease = (await s.queue.lease('w', 60_000))!;
    assert.equal(lease.id, running.id);
    assert.equal(await s.queue.cancelForAsset(id), 1);
    assert.equal(await s.queue.heartbeat(lease, 60_000), false);
    assert.equal(await s.queue.complete(lease), false);
    const cancelled = (await s.queue.get(running.id))!;
    assert.equal(cancelled.state, 'cancelled');
    assert.equal(cancelled.lastError?.code, 'JOB_CANCELLED');
    assert.equal(await s.queue.activeForAsset(id), null);
    s.clock.t += 3_600_000; // even with its lease long expired, a cancelled job is not retaken
    assert.equal((await s.queue.lease('w', 60_000))?.id, keep.id);
    assert.equal(await s.queue.lease('w', 60_000), null);
    const queued = await s.queue.enqueue('encode', id, {});
    assert.equal(await s.queue.cancelForAsset(id), 1);
    assert.equal((await s.queue.get(queued.id))?.state, 'cancelled');
    assert.equal(await s.queue.cancelForAsset(id), 0);
  });

  test('enqueue wakes listeners (no tight polling needed), only once it commits', async () => {
    const s = await setup(t);
    const other = await openDatabase(s.target);
    closers.push(other);
    const woken: string[] = [];
    const stop = await other.listen(JOBS_CHANNEL, (p) => woken.push(p));
    const id = await s.asset();
    await assert.rejects(
      s.db.write(async () => {
        await s.queue.enqueue('encode', id, {});
        throw new Error('rolled back');
      }),
    );
    await s.queue.enqueue('encode', id, {});
    const deadline = Date.now() + 10_000;
    while (woken.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    stop();
    // On SQLite the notification reaches listeners of this process only (other processes poll).
    if (t.engine === 'postgres') assert.deepEqual(woken, ['encode']);
  });

  test('many concurrent claimers on separate connections never hold the same job', async () => {
    const s = await setup(t);
    const conns = [s.db];
    // SQLite's node:sqlite connections are synchronous: two in one process would wait on each other's lock while
    // blocking the event loop, so there every claimer shares the one connection (other processes: the next test).
    for (let i = 0; i < (t.engine === 'postgres' ? 3 : 0); i++) {
      const c = await openDatabase(s.target);
      closers.push(c);
      conns.push(c);
    }
    const JOBS = 60;
    for (let i = 0; i < JOBS; i++) await s.queue.enqueue('encode', await s.asset(), { i });
    const queues = conns.map((c) => new SqliteJobQueue(c, { now: () => s.clock.t }));
    const held = new Map<number, string>();
    await Promise.all(
      queues.flatMap((q, qi) =>
        [0, 1, 2, 3, 4, 5].map(async (w) => {
          const owner = `c${qi}w${w}`;
          for (;;) {
            const job = await q.lease(owner, 60_000);
            if (job === null) return;
            assert.equal(held.has(job.id), false, `job ${job.id} leased twice`);
            held.set(job.id, owner);
            assert.equal(await q.complete(job), true);
          }
        }),
      ),
    );
    assert.equal(held.size, JOBS);
    assert.deepEqual(await s.queue.counts(), { queued: 0, running: 0, done: JOBS, failed: 0, cancelled: 0 });
  });

  test('several processes leasing at once never take the same job', async () => {
    const s = await setup(t);
    const JOBS = t.engine === 'sqlite' ? 300 : 150;
    const expected = new Set<number>();
    await s.db.write(async () => {
      for (let i = 0; i < JOBS; i++) expected.add((await s.queue.enqueue('encode', await s.asset(), { i })).id);
    });
    const child = new URL('./queue-race-child.ts', import.meta.url).pathname;
    const children = ['p1', 'p2', 'p3'].map((owner) => {
      const proc = spawn(process.execPath, [child, s.target, owner], { stdio: ['pipe', 'pipe', 'inherit'] });
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
    const states = await s.db.all(sql`SELECT state, attempts, count(*) AS n FROM jobs GROUP BY state, attempts`);
    assert.deepEqual(
      states.map((r) => ({ ...r })),
      [{ state: 'done', attempts: 1, n: JOBS }],
    );
  });
});
