// The worker role: leases encode jobs from the database queue, at most `concurrency` at a time, heartbeats their
// leases, and turns every outcome into a job state and an asset state. A worker that dies leaves a lease that
// expires; another worker (or this one after a restart) takes the job again.
import { hostname } from 'node:os';
import type { Config } from '../../core/config.ts';
import type { AssetRepository } from '../../core/db/assets.ts';
import type { CaptionRepository } from '../../core/db/captions.ts';
import type { Job, JobQueue } from '../../core/db/queue.ts';
import { asSmoothcastError } from '../../core/errors.ts';
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
  private readonly log: (msg: string, extra?: Record<string, unknown>) => void;

  constructor(opts: WorkerOptions) {
    this.opts = opts;
    this.log = opts.log ?? (() => {});
  }

  start(): void {
    this.stopped = false;
    this.poll();
  }

  /** Looks for work now instead of at the next poll (after an import in this process). */
  wake(): void {
    if (!this.stopped) {
      if (this.timer) clearTimeout(this.timer);
      this.poll();
    }
  }

  /** Stops the encode of an asset at once (it was deleted); the queue row is cancelled by the caller. */
  cancelAsset(assetId: string): void {
    for (const r of this.running.values()) if (r.job.assetId === assetId) r.abort.abort();
  }

  /** Stops taking jobs and aborts running ones; their leases expire and another worker retakes them. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const r of this.running.values()) r.abort.abort();
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  get activeJobs(): number {
    return this.running.size;
  }

  private poll(): void {
    this.timer = null;
    if (this.stopped) return;
    const { config, queue } = this.opts;
    try {
      while (this.running.size < config.worker.concurrency) {
        const owner = `${this.ownerBase}:${++this.slotSeq}`;
        const job = queue.lease(owner, config.worker.leaseSeconds * 1000, ['encode']);
        if (!job) break;
        this.startJob(job, owner);
      }
    } catch (err) {
      this.log('lease failed', { error: String(err) });
    }
    this.timer = setTimeout(() => this.poll(), config.worker.pollMs);
  }

  private startJob(job: Job, owner: string): void {
    const { config, queue, assets, captions, storage } = this.opts;
    const abort = new AbortController();
    const leaseMs = config.worker.leaseSeconds * 1000;
    const heartbeat = setInterval(
      () => {
        try {
          if (!queue.heartbeat(job.id, owner, leaseMs)) abort.abort();
        } catch (err) {
          this.log('heartbeat failed', { job: job.id, error: String(err) });
        }
      },
      Math.max(1000, leaseMs / 3),
    );
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
        });
        queue.complete(job.id, owner);
      } catch (raw) {
        const err = asSmoothcastError(raw);
        if (err.code === 'JOB_CANCELLED') {
          // Deleted or cancelled: whoever cancelled owns the asset's fate; clean what this attempt wrote.
          if (!assets.get(job.assetId)) await storage.deletePrefix(`assets/${job.assetId}`).catch(() => {});
          return;
        }
        this.log('encode failed', { job: job.id, asset: job.assetId, code: err.code, message: err.message });
        if (err.detail) this.log('ffmpeg said', { job: job.id, stderr: err.detail.slice(-2000) });
        const after = queue.fail(job.id, owner, { code: err.code, message: err.message, permanent: err.permanent });
        if (assets.get(job.assetId)) {
          if (after?.state === 'failed') assets.setFailed(job.assetId, { code: err.code, message: err.message });
          else if (after?.state === 'queued') assets.setRetrying(job.assetId);
        }
      } finally {
        clearInterval(heartbeat);
        this.running.delete(job.id);
        this.opts.onAssetChanged?.(job.assetId);
        if (!this.stopped) setImmediate(() => this.wake());
      }
    })();
    this.running.set(job.id, { job, owner, abort, done });
  }
}
