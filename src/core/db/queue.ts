// Leased jobs in the database. A worker leases a job for leaseMs and heartbeats to keep it; a worker that dies
// stops heartbeating, its lease expires, and the next lease() retakes the job as a new attempt. Two processes never
// hold the same job at once: on SQLite the claim runs under BEGIN IMMEDIATE (its single writer lock); on PostgreSQL
// it is `SELECT … FOR UPDATE SKIP LOCKED` (concurrent claimers take different rows without waiting on each other).
//
// Fencing: every claim increments the job's lease_token, and heartbeat/complete/fail must present the token of the
// current, unexpired lease. A worker that stalled past its lease (paused VM, GC, lost network) and comes back late
// is refused — whether or not another worker has retaken the job yet — so it can never finish or fail a job that is
// no longer its own (the pattern of https://martin.kleppmann.com/2016/02/08/how-to-do-distributed-locking.html).
//
// Idle workers do not poll tightly: enqueue() notifies JOBS_CHANNEL (LISTEN/NOTIFY on PostgreSQL, in-process on
// SQLite) and workers wake on it, polling only slowly as a fallback.
import { sql } from 'kysely';
import { ERRORS, type ErrorCode, isErrorCode, SmoothcastError } from '../errors.ts';
import { type Db, int, isConstraintError, jsonOrNull, numOrNull, type Row, text, textOrNull } from './database.ts';
import { CLAIM_LOCK, greatest, ROW_LOCK } from './dialect.ts';

/** The channel enqueue() notifies; workers listen on it. */
export const JOBS_CHANNEL = 'smoothcast_jobs';

export const JOB_TYPES = ['encode'] as const;
export type JobType = (typeof JOB_TYPES)[number];

/** The payload each job type carries (a JSON object; its shape belongs to the job's handler). */
export interface JobPayloads {
  encode: Readonly<Record<string, unknown>>;
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

interface JobFields {
  id: number;
  assetId: string;
  state: JobState;
  /** Leases taken so far (the running attempt included). */
  attempts: number;
  maxAttempts: number;
  /** ms: not leased before this time (retry backoff). */
  runAfter: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  /** The fencing token of the current lease (incremented by every claim). */
  leaseToken: number;
  lastError: { code: ErrorCode; message: string } | null;
  createdAt: number;
  updatedAt: number;
}

export type Job = { [T in JobType]: JobFields & { type: T; payload: JobPayloads[T] } }[JobType];

export interface JobFailure {
  code: ErrorCode;
  message: string;
  /** Not retried. Defaults to the code's `permanent` flag in the error registry. */
  permanent?: boolean;
}

/** What proves a worker holds a lease: the job, its owner and the lease's fencing token (a leased Job is one). */
export interface LeaseRef {
  readonly id: number;
  readonly leaseOwner: string | null;
  readonly leaseToken: number;
}

export interface JobQueue {
  enqueue<T extends JobType>(
    type: T,
    assetId: string,
    payload: JobPayloads[T],
    options?: { maxAttempts?: number; runAfter?: number },
  ): Promise<Job>;
  /**
   * Takes the oldest runnable job — queued with runAfter ≤ now, or running with an expired lease (its worker
   * died) — for `owner` until now + leaseMs, counting one more attempt. Null when none is runnable.
   * `owner` must be unique per worker slot (e.g. host:pid:random).
   */
  lease(owner: string, leaseMs: number, types?: readonly JobType[]): Promise<Job | null>;
  /**
   * Extends the lease; false when the job was cancelled, deleted, finished, or the lease expired or was retaken:
   * stop working on it.
   */
  heartbeat(lease: LeaseRef, leaseMs: number): Promise<boolean>;
  /** running → done; false when `lease` is not the job's current, unexpired lease. */
  complete(lease: LeaseRef): Promise<boolean>;
  /** running → queued (transient, attempts left; with backoff) or failed; null when `lease` is not current. */
  fail(lease: LeaseRef, failure: JobFailure): Promise<Job | null>;
  /**
   * Runs fn in one transaction that first checks `lease` is the job's current, unexpired lease (else throws
   * JOB_LEASE_LOST, running nothing): a worker publishes its results through this, so a worker whose lease was
   * lost can never overwrite what the job's new holder wrote.
   */
  whileLeased<T>(lease: LeaseRef, fn: () => Promise<T>): Promise<T>;
  /** Cancels the queued/running jobs of an asset; returns how many. */
  cancelForAsset(assetId: string): Promise<number>;
  get(jobId: number): Promise<Job | null>;
  /** The queued or running job of an asset (at most one per type; the newest if several types). */
  activeForAsset(assetId: string): Promise<Job | null>;
  /** Counts by state, for metrics. */
  counts(): Promise<Record<JobState, number>>;
}

export interface BackoffOptions {
  /** Delay after the first failed attempt (ms). */
  baseMs: number;
  /** Each further attempt multiplies the delay by this. */
  factor: number;
  maxMs: number;
  /** Up to this fraction of the delay is added at random, so failed jobs do not retry in lockstep. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 5_000, factor: 4, maxMs: 10 * 60_000, jitter: 0.25 };

/** Delay before retrying after failed attempt number `attempt` (1-based): base × factor^(attempt−1), capped. */
export function retryDelayMs(attempt: number, random: () => number, o: BackoffOptions = DEFAULT_BACKOFF): number {
  const delay = Math.min(o.maxMs, o.baseMs * o.factor ** Math.max(0, attempt - 1));
  return Math.round(delay * (1 + o.jitter * Math.min(1, Math.max(0, random()))));
}

export interface QueueOptions {
  now?: () => number;
  /** In [0, 1); jitter source. */
  random?: () => number;
  backoff?: BackoffOptions;
  /** maxAttempts of jobs enqueued without one (config worker.maxAttempts). */
  maxAttempts?: number;
  /**
   * Called (after commit) for each job lease() fails because its worker lost the lease on the last attempt, so the
   * caller can fail the asset too.
   */
  onLeaseExhausted?: (job: Job) => void;
}

export class SqliteJobQueue implements JobQueue {
  readonly #db: Db;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #backoff: BackoffOptions;
  readonly #maxAttempts: number;
  readonly #onLeaseExhausted: ((job: Job) => void) | undefined;

  constructor(db: Db, options: QueueOptions = {}) {
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    this.#backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.#maxAttempts = positiveInt(options.maxAttempts ?? 3, 'maxAttempts');
    this.#onLeaseExhausted = options.onLeaseExhausted;
  }

  /** updated_at = max(now, previous + 1): strictly increasing, whatever the clocks of the processes writing. */
  #touch(now: number) {
    return greatest(this.#db.dialect, now, sql`updated_at + 1`);
  }

  async enqueue<T extends JobType>(
    type: T,
    assetId: string,
    payload: JobPayloads[T],
    options: { maxAttempts?: number; runAfter?: number } = {},
  ): Promise<Job> {
    checkTypes([type]);
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new SmoothcastError('BAD_REQUEST', 'job payload must be a JSON object');
    }
    const maxAttempts = positiveInt(options.maxAttempts ?? this.#maxAttempts, 'maxAttempts');
    const now = this.#now();
    try {
      const row = await this.#db.write(async () => {
        const inserted = await this.#db.get(
          sql`INSERT INTO jobs (type, asset_id, payload, state, attempts, max_attempts, run_after, created_at, updated_at)
              VALUES (${type}, ${assetId}, ${JSON.stringify(payload)}, 'queued', 0, ${maxAttempts},
                      ${options.runAfter ?? now}, ${now}, ${now})
              RETURNING *`,
        );
        await this.#db.notify(JOBS_CHANNEL, type);
        return inserted;
      });
      return toJob(row!);
    } catch (err) {
      if (!isConstraintError(err)) throw err;
      const active = await this.activeForAsset(assetId);
      if (active !== null && active.type === type) {
        throw new SmoothcastError(
          'JOB_ALREADY_ACTIVE',
          `asset ${assetId} already has ${type} job ${active.id} ${active.state}`,
        );
      }
      throw new SmoothcastError('ASSET_NOT_FOUND', `asset ${assetId} not found`, { cause: err });
    }
  }

  async lease(owner: string, leaseMs: number, types: readonly JobType[] = JOB_TYPES): Promise<Job | null> {
    checkOwner(owner);
    positiveInt(leaseMs, 'leaseMs');
    checkTypes(types);
    if (types.length === 0) return null;
    const typeList = sql.join(types);
    // READ COMMITTED on PostgreSQL: the claim takes its own row lock (SKIP LOCKED); SERIALIZABLE would turn two
    // workers claiming different rows into a serialization failure and a retry.
    const { reaped, taken } = await this.#db.write(
      async () => {
        const now = this.#now();
        const reaped = (
          await this.#db.all(sql`
            UPDATE jobs SET
              state = 'failed',
              lease_expires_at = NULL,
              last_error_code = 'JOB_LEASE_LOST',
              last_error_message = 'worker lost its lease ' || attempts || ' times: giving up after ' || max_attempts
                || ' attempts',
              updated_at = ${this.#touch(now)}
            WHERE state = 'running' AND lease_expires_at <= ${now} AND attempts >= max_attempts
              AND type IN (${typeList})
            RETURNING *`)
        ).map(toJob);
        const row = await this.#db.get(sql`
          UPDATE jobs SET
            state = 'running',
            attempts = attempts + 1,
            lease_owner = ${owner},
            lease_expires_at = ${now + leaseMs},
            lease_token = lease_token + 1,
            last_error_code = CASE WHEN state = 'running' THEN 'JOB_LEASE_LOST' ELSE last_error_code END,
            last_error_message = CASE WHEN state = 'running'
              THEN 'worker lost its lease on attempt ' || attempts ELSE last_error_message END,
            updated_at = ${this.#touch(now)}
          WHERE id = (
            SELECT id FROM jobs
            WHERE type IN (${typeList})
              AND ((state = 'queued' AND run_after <= ${now}) OR (state = 'running' AND lease_expires_at <= ${now}))
            ORDER BY id LIMIT 1 ${sql.raw(CLAIM_LOCK[this.#db.dialect])})
          RETURNING *`);
        return { reaped, taken: row === undefined ? null : toJob(row) };
      },
      { isolation: 'read committed' },
    );
    for (const job of reaped) this.#onLeaseExhausted?.(job);
    return taken;
  }

  /** The WHERE clause that says `lease` is the job's current, unexpired lease. */
  #current(lease: LeaseRef, now: number) {
    return sql`id = ${lease.id} AND state = 'running' AND lease_owner = ${lease.leaseOwner ?? ''}
               AND lease_token = ${lease.leaseToken} AND lease_expires_at > ${now}`;
  }

  async heartbeat(lease: LeaseRef, leaseMs: number): Promise<boolean> {
    positiveInt(leaseMs, 'leaseMs');
    const now = this.#now();
    const changed = await this.#db.run(
      sql`UPDATE jobs SET lease_expires_at = ${now + leaseMs}, updated_at = ${this.#touch(now)}
          WHERE ${this.#current(lease, now)}`,
    );
    return changed === 1;
  }

  async complete(lease: LeaseRef): Promise<boolean> {
    const now = this.#now();
    const changed = await this.#db.run(
      sql`UPDATE jobs SET state = 'done', lease_expires_at = NULL, updated_at = ${this.#touch(now)}
          WHERE ${this.#current(lease, now)}`,
    );
    return changed === 1;
  }

  async fail(lease: LeaseRef, failure: JobFailure): Promise<Job | null> {
    const code: ErrorCode = isErrorCode(failure.code) ? failure.code : 'INTERNAL';
    const permanent = failure.permanent ?? ERRORS[code].permanent;
    return this.#db.write(async () => {
      const now = this.#now();
      const row = await this.#db.get(sql`SELECT * FROM jobs WHERE ${this.#current(lease, now)}`);
      if (row === undefined) return null;
      const current = toJob(row);
      const retry = !permanent && current.attempts < current.maxAttempts;
      const runAfter = retry ? now + retryDelayMs(current.attempts, this.#random, this.#backoff) : current.runAfter;
      const updated = await this.#db.get(
        sql`UPDATE jobs SET state = ${retry ? 'queued' : 'failed'}, run_after = ${runAfter}, lease_expires_at = NULL,
              last_error_code = ${code}, last_error_message = ${String(failure.message)},
              updated_at = ${this.#touch(now)}
            WHERE id = ${lease.id} RETURNING *`,
      );
      if (retry) await this.#db.notify(JOBS_CHANNEL, current.type);
      return toJob(updated!);
    });
  }

  whileLeased<T>(lease: LeaseRef, fn: () => Promise<T>): Promise<T> {
    return this.#db.write(async () => {
      // The job row stays locked until fn's writes commit (SQLite: the IMMEDIATE write lock; PostgreSQL: FOR
      // UPDATE), so a retake cannot slip in between the check and the writes.
      const row = await this.#db.get(
        sql`SELECT id FROM jobs WHERE ${this.#current(lease, this.#now())} ${sql.raw(ROW_LOCK[this.#db.dialect])}`,
      );
      if (row === undefined) {
        throw new SmoothcastError('JOB_LEASE_LOST', `job ${lease.id}: this worker's lease is no longer current`);
      }
      return fn();
    });
  }

  async cancelForAsset(assetId: string): Promise<number> {
    return this.#db.run(
      sql`UPDATE jobs SET state = 'cancelled', lease_expires_at = NULL, last_error_code = 'JOB_CANCELLED',
            last_error_message = 'cancelled', updated_at = ${this.#touch(this.#now())}
          WHERE asset_id = ${assetId} AND state IN ('queued', 'running')`,
    );
  }

  async get(jobId: number): Promise<Job | null> {
    if (!Number.isSafeInteger(jobId)) return null;
    const row = await this.#db.get(sql`SELECT * FROM jobs WHERE id = ${jobId}`);
    return row === undefined ? null : toJob(row);
  }

  async activeForAsset(assetId: string): Promise<Job | null> {
    const row = await this.#db.get(
      sql`SELECT * FROM jobs WHERE asset_id = ${assetId} AND state IN ('queued', 'running') ORDER BY id DESC LIMIT 1`,
    );
    return row === undefined ? null : toJob(row);
  }

  async counts(): Promise<Record<JobState, number>> {
    const out: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0, cancelled: 0 };
    for (const r of await this.#db.all(sql`SELECT state, count(*) AS n FROM jobs GROUP BY state`)) {
      const state = text(r, 'state') as JobState;
      if (state in out) out[state] = int(r, 'n');
    }
    return out;
  }
}

function toJob(row: Row): Job {
  const type = text(row, 'type');
  if (!(JOB_TYPES as readonly string[]).includes(type)) {
    throw new SmoothcastError('INTERNAL', `job ${int(row, 'id')} has unknown type ${type}`);
  }
  const code = textOrNull(row, 'last_error_code');
  return {
    id: int(row, 'id'),
    type: type as JobType,
    assetId: text(row, 'asset_id'),
    payload: jsonOrNull(row, 'payload') as JobPayloads[JobType],
    state: text(row, 'state') as JobState,
    attempts: int(row, 'attempts'),
    maxAttempts: int(row, 'max_attempts'),
    runAfter: int(row, 'run_after'),
    leaseOwner: textOrNull(row, 'lease_owner'),
    leaseExpiresAt: numOrNull(row, 'lease_expires_at'),
    leaseToken: int(row, 'lease_token'),
    lastError:
      code === null
        ? null
        : { code: isErrorCode(code) ? code : 'INTERNAL', message: textOrNull(row, 'last_error_message') ?? '' },
    createdAt: int(row, 'created_at'),
    updatedAt: int(row, 'updated_at'),
  };
}

function checkTypes(types: readonly string[]): void {
  for (const t of types) {
    if (!(JOB_TYPES as readonly string[]).includes(t))
      throw new SmoothcastError('BAD_REQUEST', `unknown job type ${t}`);
  }
}

function checkOwner(owner: string): void {
  if (typeof owner !== 'string' || owner === '') throw new SmoothcastError('BAD_REQUEST', 'lease owner must be named');
}

function positiveInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new SmoothcastError('BAD_REQUEST', `${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}
