// The worker role: leases encode jobs from the database queue, at most `concurrency` at a time, heartbeats their
// leases, and turns every outcome into a job state and an asset state. A worker that dies leaves a lease that
// expires; another worker (or this one after a restart) takes the job again.
import { hostname } from 'node:os';
import type { Config } from '../../core/config.ts';
import type { AssetRepository } from '../../core/db/assets.ts';
import type { CaptionRepository } from '../../core/db/captions.ts';
import type { Job, JobQueue } from '../../core/db/queue.ts';
import { asSmoothcastError } from '../../core/errors.ts';
import type { HeldFiles } from '../../core/storage/held.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { runEncodeJob } from './encode-job.ts';

export interface WorkerOptions {
  config: Config;
  assets: AssetRepository;
  captions: CaptionRepository;
  queue: JobQueue;
  storage: Storage;
  log?: (msg: string, extra?: Record<string, unknown>) => void;
  /** Told when an asset's encode starts/ends, so the origin can drop stale indexes. */
  onAssetChanged?: (assetId: string) => void;
  /**
   * Subscribes to "a job was queued" (Db.listen on JOBS_CHANNEL). When notifications reach every process
   * (`crossProcess`: PostgreSQL's LISTEN/NOTIFY), an idle worker sleeps until woken and polls only every
   * idlePollMs as a fallback (retry backoffs ending, leases expiring, a missed notification); on SQLite other
   * processes' jobs are found by polling every worker.pollMs.
   */
  jobsQueued?: { listen: (fn: () => void) => Promise<() => void>; crossProcess: boolean };
  idlePollMs?: number;
  /** S3 storage: where this process holds encodes in progress for other nodes' origins, and its advertised URL. */
  held?: HeldFiles | null;
  selfUrl?: string | null;
  scratchRoot: string;
  metrics?: { encodeFinished(mediaSeconds: number, wallSeconds: number): void; encodeFailed(): void };
}

interface Running {
  job: Job;
  owner: string;
  abort: AbortController;
  done: Promise<void>;
}

export class Worker {
  private readonly opts: WorkerOptions;
  private readonly running = new Map<number, Running>();
  private readonly ownerBase = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  private slotSeq = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private polling = false;
  private pollAgain = false;
  private unlisten: (() => void) | null = null;
  private readonly log: (msg: string, extra?: Record<string, unknown>) => void;

  constructor(opts: WorkerOptions) {
    this.opts = opts;
    this.log = opts.log ?? (() => {});
  }

  async start(): Promise<void> {
    this.stopped = false;
    if (this.opts.jobsQueued) this.unlisten = await this.opts.jobsQueued.listen(() => this.wake());
    this.wake();
  }

  /** Looks for work now instead of at the next poll (a job was queued). */
  wake(): void {
    if (this.stopped) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.poll();
  }

  /** Stops the encode of an asset at once (it was deleted); the queue row is cancelled by the caller. */
  cancelAsset(assetId: string): void {
    for (const r of this.running.values()) if (r.job.assetId === assetId) r.abort.abort();
  }

  /**
   * Stops taking jobs and aborts running ones, handing each back to the queue as a transient failure (a retry
   * without waiting for its lease to expire); another worker retakes them.
   */
  async close(): Promise<void> {
    this.stopped = true;
    this.unlisten?.();
    if (this.timer) clearTimeout(this.timer);
    for (const r of this.running.values()) {
      this.shuttingDown.add(r.job.id);
      r.abort.abort();
    }
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  private readonly shuttingDown = new Set<number>();

  get activeJobs(): number {
    return this.running.size;
  }

  private async poll(): Promise<void> {
    this.timer = null;
    if (this.stopped) return;
    const { config, queue } = this.opts;
    this.polling = true;
    try {
      do {
        this.pollAgain = false;
        while (this.running.size < config.worker.concurrency && !this.stopped) {
          const owner = `${this.ownerBase}:${++this.slotSeq}`;
          const job = await queue.lease(owner, config.worker.leaseSeconds * 1000, ['encode']);
          if (!job) break;
          this.startJob(job, owner);
        }
      } while (this.pollAgain && !this.stopped);
    } catch (err) {
      this.log('lease failed', { error: String(err) });
    } finally {
      this.polling = false;
    }
    if (this.stopped) return;
    const idle = this.opts.jobsQueued?.crossProcess ? (this.opts.idlePollMs ?? 5000) : config.worker.pollMs;
    this.timer = setTimeout(() => void this.poll(), Math.max(config.worker.pollMs, idle));
  }

  private startJob(job: Job, owner: string): void {
    const { config, queue, assets, captions, storage } = this.opts;
    const abort = new AbortController();
    const leaseMs = config.worker.leaseSeconds * 1000;
    // Three heartbeats per lease: a cancellation (heartbeat answers false) reaches the encode within one
    // interval, and two missed beats (a database blip) do not lose the lease.
    const heartbeat = setInterval(
      () => {
        queue.heartbeat(job, leaseMs).then(
          (held) => {
            if (held || abort.signal.aborted) return;
            // Cancelled, deleted, or the lease expired and the job is someone else's now (fencing): stop.
            this.log('lease lost: this attempt stops', { job: job.id, asset: job.assetId });
            abort.abort();
          },
          (err: unknown) => this.log('heartbeat failed', { job: job.id, error: String(err) }),
        );
      },
      Math.max(1000, leaseMs / 3),
    );
    const started = performance.now();
    const done = (async () => {
      try {
        this.opts.onAssetChanged?.(job.assetId);
        await runEncodeJob(job, {
          config,
          assets,
          captions,
          queue,
          storage,
          owner,
          signal: abort.signal,
          log: this.log,
          held: this.opts.held ?? null,
          selfUrl: this.opts.selfUrl ?? null,
          scratchRoot: this.opts.scratchRoot,
        });
        if (!(await queue.complete(job))) this.log('completion refused: the lease was lost', { job: job.id });
        const asset = await assets.get(job.assetId);
        if (asset?.duration) this.opts.metrics?.encodeFinished(asset.duration, (performance.now() - started) / 1000);
      } catch (raw) {
        let err = asSmoothcastError(raw);
        if (this.shuttingDown.has(job.id)) {
          // Stopped by a graceful shutdown: hand the job back now (a transient failure, retried by any worker)
          // rather than leaving it until its lease expires.
          err = asSmoothcastError(new Error('the worker shut down during the encode'));
        } else if (err.code === 'JOB_CANCELLED') {
          // Deleted or cancelled: whoever cancelled owns the asset's fate; clean what this attempt wrote.
          if (!(await assets.get(job.assetId))) await storage.deletePrefix(`assets/${job.assetId}`).catch(() => {});
          return;
        }
        if (err.code === 'JOB_LEASE_LOST') {
          // Another worker holds the job now: it owns the asset; this attempt writes nothing more.
          this.log('lease lost: this attempt stops', { job: job.id, asset: job.assetId });
          return;
        }
        this.opts.metrics?.encodeFailed();
        this.log('encode failed', { job: job.id, asset: job.assetId, code: err.code, message: err.message });
        if (err.detail) this.log('ffmpeg said', { job: job.id, stderr: err.detail.slice(-2000) });
        const permanent = this.shuttingDown.has(job.id) ? false : err.permanent;
        const after = await queue
          .whileLeased(job, async () => {
            const failed = await queue.fail(job, { code: err.code, message: err.message, permanent });
            if (await assets.get(job.assetId)) {
              if (failed?.state === 'failed')
                await assets.setFailed(job.assetId, { code: err.code, message: err.message });
              else if (failed?.state === 'queued') await assets.setRetrying(job.assetId);
            }
            return failed;
          })
          .catch((e: unknown) => {
            this.log('failure not recorded', { job: job.id, error: String(e) });
            return null;
          });
        if (after === null) this.log('the job was no longer this worker’s', { job: job.id });
      } finally {
        this.shuttingDown.delete(job.id);
        clearInterval(heartbeat);
        this.running.delete(job.id);
        this.opts.onAssetChanged?.(job.assetId);
        if (!this.stopped) setImmediate(() => this.wake());
      }
    })();
    this.running.set(job.id, { job, owner, abort, done });
  }
}
