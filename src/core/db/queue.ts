// Leased jobs in the database. A worker leases a job for leaseMs and heartbeats to keep it; a worker that dies
// stops heartbeating, its lease expires, and the next lease() retakes the job as a new attempt. Every lease is
// taken under BEGIN IMMEDIATE (SQLite's single writer lock), so two processes never hold the same job at once.
import { ERRORS, type ErrorCode, isErrorCode, SmoothcastError } from '../errors.ts';
import { type Db, int, isConstraintError, jsonOrNull, numOrNull, type Row, text, textOrNull } from './database.ts';

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

export interface JobQueue {
  enqueue<T extends JobType>(
    type: T,
    assetId: string,
    payload: JobPayloads[T],
    options?: { maxAttempts?: number; runAfter?: number },
  ): Job;
  /**
   * Takes the oldest runnable job — queued with runAfter ≤ now, or running with an expired lease (its worker
   * died) — for `owner` until now + leaseMs, counting one more attempt. Null when none is runnable.
   * `owner` must be unique per worker slot (e.g. host:pid:random).
   */
  lease(owner: string, leaseMs: number, types?: readonly JobType[]): Job | null;
  /** Extends the lease; false when the job was cancelled, deleted, finished or retaken: stop working on it. */
  heartbeat(jobId: number, owner: string, leaseMs: number): boolean;
  /** running → done; false when the job is no longer leased by owner. */
  complete(jobId: number, owner: string): boolean;
  /** running → queued (transient, attempts left; with backoff) or failed; null when not leased by owner. */
  fail(jobId: number, owner: string, failure: JobFailure): Job | null;
  /** Cancels the queued/running jobs of an asset; returns how many. */
  cancelForAsset(assetId: string): number;
  get(jobId: number): Job | null;
  /** The queued or running job of an asset (at most one per type; the newest if several types). */
  activeForAsset(assetId: string): Job | null;
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

const TAKE = `
  UPDATE jobs SET
    state = 'running',
    attempts = attempts + 1,
    lease_owner = $owner,
    lease_expires_at = $expires,
    last_error_code = CASE WHEN state = 'running' THEN 'JOB_LEASE_LOST' ELSE last_error_code END,
    last_error_message = CASE WHEN state = 'running'
      THEN 'worker lost its lease on attempt ' || attempts ELSE last_error_message END,
    updated_at = max($now, updated_at + 1)
  WHERE id = (
    SELECT id FROM jobs
    WHERE type IN (SELECT value FROM json_each($types))
      AND ((state = 'queued' AND run_after <= $now) OR (state = 'running' AND lease_expires_at <= $now))
    ORDER BY id LIMIT 1)
  RETURNING *`;

const REAP = `
  UPDATE jobs SET
    state = 'failed',
    lease_expires_at = NULL,
    last_error_code = 'JOB_LEASE_LOST',
    last_error_message = 'worker lost its lease ' || attempts || ' times: giving up after ' || max_attempts
      || ' attempts',
    updated_at = max($now, updated_at + 1)
  WHERE state = 'running' AND lease_expires_at <= $now AND attempts >= max_attempts
    AND type IN (SELECT value FROM json_each($types))
  RETURNING *`;

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

  enqueue<T extends JobType>(
    type: T,
    assetId: string,
    payload: JobPayloads[T],
    options: { maxAttempts?: number; runAfter?: number } = {},
  ): Job {
    checkTypes([type]);
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
      throw new SmoothcastError('BAD_REQUEST', 'job payload must be a JSON object');
    }
    const maxAttempts = positiveInt(options.maxAttempts ?? this.#maxAttempts, 'maxAttempts');
    const now = this.#now();
    try {
      const row = this.#db.raw
        .prepare(
          `INSERT INTO jobs (type, asset_id, payload, state, attempts, max_attempts, run_after, created_at, updated_at)
           VALUES (?, ?, ?, 'queued', 0, ?, ?, ?, ?) RETURNING *`,
        )
        .get(type, assetId, JSON.stringify(payload), maxAttempts, options.runAfter ?? now, now, now);
      return toJob(row!);
    } catch (err) {
      if (!isConstraintError(err)) throw err;
      const active = this.activeForAsset(assetId);
      if (active !== null && active.type === type) {
        throw new SmoothcastError(
          'JOB_ALREADY_ACTIVE',
          `asset ${assetId} already has ${type} job ${active.id} ${active.state}`,
        );
      }
      throw new SmoothcastError('ASSET_NOT_FOUND', `asset ${assetId} not found`, { cause: err });
    }
  }

  lease(owner: string, leaseMs: number, types: readonly JobType[] = JOB_TYPES): Job | null {
    checkOwner(owner);
    positiveInt(leaseMs, 'leaseMs');
    checkTypes(types);
    const { reaped, taken } = this.#db.write(() => {
      const now = this.#now();
      const params = { now, types: JSON.stringify(types) };
      const reaped = this.#db.raw.prepare(REAP).all(params).map(toJob);
      const row = this.#db.raw.prepare(TAKE).get({ ...params, owner, expires: now + leaseMs });
      return { reaped, taken: row === undefined ? null : toJob(row) };
    });
    for (const job of reaped) this.#onLeaseExhausted?.(job);
    return taken;
  }

  heartbeat(jobId: number, owner: string, leaseMs: number): boolean {
    positiveInt(leaseMs, 'leaseMs');
    // An expired lease nobody has retaken yet is still this owner's: the worker was slow, not dead.
    const now = this.#now();
    const r = this.#db.raw
      .prepare(
        `UPDATE jobs SET lease_expires_at = $expires, updated_at = max($now, updated_at + 1)
         WHERE id = $id AND state = 'running' AND lease_owner = $owner`,
      )
      .run({ id: jobId, owner, now, expires: now + leaseMs });
    return r.changes === 1;
  }

  complete(jobId: number, owner: string): boolean {
    const r = this.#db.raw
      .prepare(
        `UPDATE jobs SET state = 'done', lease_expires_at = NULL, updated_at = max($now, updated_at + 1)
         WHERE id = $id AND state = 'running' AND lease_owner = $owner`,
      )
      .run({ id: jobId, owner, now: this.#now() });
    return r.changes === 1;
  }

  fail(jobId: number, owner: string, failure: JobFailure): Job | null {
    const code: ErrorCode = isErrorCode(failure.code) ? failure.code : 'INTERNAL';
    const permanent = failure.permanent ?? ERRORS[code].permanent;
    return this.#db.write(() => {
      const current = this.get(jobId);
      if (current === null || current.state !== 'running' || current.leaseOwner !== owner) return null;
      const now = this.#now();
      const retry = !permanent && current.attempts < current.maxAttempts;
      const runAfter = retry ? now + retryDelayMs(current.attempts, this.#random, this.#backoff) : current.runAfter;
      const row = this.#db.raw
        .prepare(
          `UPDATE jobs SET state = $state, run_after = $runAfter, lease_expires_at = NULL,
             last_error_code = $code, last_error_message = $message, updated_at = max($now, updated_at + 1)
           WHERE id = $id RETURNING *`,
        )
        .get({
          id: jobId,
          state: retry ? 'queued' : 'failed',
          runAfter,
          code,
          message: String(failure.message),
          now,
        });
      return toJob(row!);
    });
  }

  cancelForAsset(assetId: string): number {
    const r = this.#db.raw
      .prepare(
        `UPDATE jobs SET state = 'cancelled', lease_expires_at = NULL, last_error_code = 'JOB_CANCELLED',
           last_error_message = 'cancelled', updated_at = max($now, updated_at + 1)
         WHERE asset_id = $assetId AND state IN ('queued', 'running')`,
      )
      .run({ assetId, now: this.#now() });
    return Number(r.changes);
  }

  get(jobId: number): Job | null {
    if (!Number.isSafeInteger(jobId)) return null;
    const row = this.#db.raw.prepare('SELECT * FROM jobs WHERE id = ?').get(jobId);
    return row === undefined ? null : toJob(row);
  }

  activeForAsset(assetId: string): Job | null {
    const row = this.#db.raw
      .prepare(`SELECT * FROM jobs WHERE asset_id = ? AND state IN ('queued', 'running') ORDER BY id DESC LIMIT 1`)
      .get(assetId);
    return row === undefined ? null : toJob(row);
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
