// A tus Locker shared by every upload process: a lease row per upload in the catalog (upload_locks), so a client
// may send its PATCHes to any `upload` process and two requests on one upload never write at once, wherever they
// land. Same idea as the job queue's leases: the row names its owner and an expiry; the holder renews it while
// its request runs; a process that dies (SIGKILL mid-PATCH) stops renewing and its lock is free again after
// LOCK_TTL_MS. A second request on a locked upload is refused at once with 423 Locked (tus clients retry 423),
// rather than queued: across processes it cannot ask the holder to let go, as @tus/server's in-memory locker does.
import { randomBytes } from 'node:crypto';
import type { Lock, Locker, RequestRelease } from '@tus/utils';
import { sql } from 'kysely';
import type { Db } from '../../core/db/database.ts';
import { greatest } from '../../core/db/dialect.ts';
import { tusError } from './store.ts';

/** A dead holder's lock is free after this long; a live one renews it every third of it. */
export const LOCK_TTL_MS = 10_000;

export class DbLocker implements Locker {
  readonly #db: Db;
  readonly #now: () => number;
  readonly #ttlMs: number;

  constructor(db: Db, opts: { now?: () => number; ttlMs?: number } = {}) {
    this.#db = db;
    this.#now = opts.now ?? Date.now;
    this.#ttlMs = opts.ttlMs ?? LOCK_TTL_MS;
  }

  newLock(id: string): Lock {
    return new DbLock(this.#db, id, this.#now, this.#ttlMs);
  }

  /** Whether someone holds the upload's lock now (tests, diagnostics). */
  async held(id: string): Promise<boolean> {
    const row = await this.#db.get(
      sql`SELECT 1 AS one FROM upload_locks WHERE id = ${id} AND expires_at > ${this.#now()}`,
    );
    return row !== undefined;
  }
}

class DbLock implements Lock {
  readonly #db: Db;
  readonly #id: string;
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #owner = randomBytes(12).toString('base64url');
  #timer: NodeJS.Timeout | null = null;

  constructor(db: Db, id: string, now: () => number, ttlMs: number) {
    this.#db = db;
    this.#id = id;
    this.#now = now;
    this.#ttlMs = ttlMs;
  }

  async lock(_signal: AbortSignal, _cancelReq: RequestRelease): Promise<void> {
    const now = this.#now();
    // Take the row if it is free or its holder's lease ran out; one statement, so two processes cannot both win.
    const won = await this.#db.get(sql`
      INSERT INTO upload_locks (id, owner, expires_at) VALUES (${this.#id}, ${this.#owner}, ${now + this.#ttlMs})
      ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
        WHERE upload_locks.expires_at <= ${now}
      RETURNING owner`);
    if (won?.owner !== this.#owner) {
      throw tusError(423, 'another request is writing to this upload: retry once it has finished');
    }
    this.#timer = setInterval(
      () => {
        const t = this.#now();
        this.#db
          .run(
            sql`UPDATE upload_locks SET expires_at = ${greatest(this.#db.dialect, t + this.#ttlMs, sql`expires_at`)}
              WHERE id = ${this.#id} AND owner = ${this.#owner}`,
          )
          .catch(() => {
            // The database is away: the lease lapses and another request may take the upload, as after a crash.
          });
      },
      Math.max(500, this.#ttlMs / 3),
    );
    this.#timer.unref();
  }

  async unlock(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#db.run(sql`DELETE FROM upload_locks WHERE id = ${this.#id} AND owner = ${this.#owner}`);
  }
}
