// The live ladder as a process: ONE ffmpeg (buildLiveEncodeArgs) reads the publisher's FLV on stdin and writes one
// growing CMAF file per rung plus one for the audio, under `<dir>/<epoch>/` (`v0.mp4`, `v1.mp4`, …, `a0.mp4`). It is
// a PublishSink: the ingest writes FLV into it and calls end() when the publish is over; ffmpeg then sees EOF on
// stdin, finishes the last parts and exits 0. It gets `graceMs` to do so before SIGKILL, and a hard `maxDurationMs`
// bounds the whole run whatever happens (DESIGN.md: every spawned process has a timeout).
//
// Not handled here yet: restarting ffmpeg when it dies mid-publish (the next run would take `epoch + 1`, new paths,
// since `-n` never overwrites published media), the discontinuity that restart puts in the timeline, and indexing the
// outputs (the origin follows the files with FragmentIndexer). When ffmpeg exits early, `exited` settles, writes are
// dropped, and the ingest, which watches `closed`, drops the publisher's connection.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LadderOptions, LadderPlan } from '../../media/encode/ladder.ts';
import {
  buildLiveEncodeArgs,
  type LiveEncodeOptions,
  type LiveInput,
  planLiveLadder,
} from '../../media/encode/live-args.ts';
import type { PublishSink } from './rtmp-ingest.ts';

export interface LiveLadderOptions {
  /** The stream's output folder; this run writes into `<dir>/<epoch>/`, created if missing. */
  dir: string;
  /** What the publisher announced (liveInputFromMetadata); the FLV header written to stdin must agree on audio. */
  input: LiveInput;
  /** The run's number within the stream's folder: a new run never reuses an old one's paths. Default 0. */
  epoch?: number;
  ladder?: LadderOptions;
  encode?: LiveEncodeOptions;
  /** Hard limit on the whole run (SIGKILL when reached). */
  maxDurationMs: number;
  /** Time ffmpeg has to finish after stdin closes before SIGKILL. Default 10 s. */
  graceMs?: number;
  /** Bytes of stderr kept. Default 8 KiB. */
  stderrTail?: number;
  /** The executable. Default 'ffmpeg'. */
  ffmpeg?: string;
  /**
   * Write each output to a pipe (fd 3, 4, …: `streams`) instead of a file, for a CmafAppender to place on the event
   * timeline. `dir` and `epoch` are then unused.
   */
  pipes?: boolean;
}

export interface LiveLadderOutput {
  id: string;
  kind: 'video' | 'audio';
  path: string;
}

export interface LiveLadderExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderrTail: string;
  /** Killed by maxDurationMs. */
  timedOut: boolean;
  /** Killed because it had not exited graceMs after stdin closed. */
  killedAfterEnd: boolean;
  /** ffmpeg could not be started (e.g. ENOENT). */
  spawnError?: string;
  /** end() was called before ffmpeg exited: an exit now is expected, not a crash. */
  ended: boolean;
}

export class LiveLadder implements PublishSink {
  readonly plan: LadderPlan;
  /** Video rungs in plan order, then the audio (if the input has audio). */
  readonly outputs: readonly LiveLadderOutput[];
  readonly folder: string;
  readonly args: readonly string[];
  /** With `pipes`: the readable end of each output, in `outputs` order. */
  readonly streams: readonly NodeJS.ReadableStream[];
  /** Settles (never rejects) when ffmpeg has exited, for whatever reason. */
  readonly exited: Promise<LiveLadderExit>;
  /** PublishSink: the same moment as `exited`. */
  readonly closed: Promise<unknown>;
  private readonly child: ReturnType<typeof spawn>;
  private readonly graceMs: number;
  private drainWaiters: (() => void)[] = [];
  private done = false;
  private ended = false;
  private timedOut = false;
  private killedAfterEnd = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private stdinBroken = false;

  constructor(opts: LiveLadderOptions) {
    if (!(opts.maxDurationMs > 0)) throw new RangeError(`maxDurationMs ${opts.maxDurationMs}`);
    this.graceMs = opts.graceMs ?? 10_000;
    this.plan = planLiveLadder(opts.input, opts.ladder);
    this.folder = join(opts.dir, String(opts.epoch ?? 0));
    const transcode = opts.encode?.transcode !== false;
    let fd = 3;
    const where = (id: string) => (opts.pipes ? `pipe:${fd++}` : join(this.folder, `${id}.mp4`));
    const video = this.plan.video.slice(0, transcode ? undefined : 1).map((r) => ({
      id: r.id,
      kind: 'video' as const,
      path: where(r.id),
    }));
    const audio = this.plan.audio.slice(0, 1).map((a) => ({ id: a.id, kind: 'audio' as const, path: where(a.id) }));
    this.outputs = [...video, ...audio];
    const args = buildLiveEncodeArgs(
      this.plan,
      { video: video.map((o) => o.path), audio: audio.map((o) => o.path) },
      opts.encode,
    );
    // `-n` guards published files; on pipes it would make ffmpeg look for a file named "pipe:3" in its cwd.
    this.args = opts.pipes ? args.filter((a) => a !== '-n') : args;
    if (!opts.pipes) mkdirSync(this.folder, { recursive: true });

    const tailMax = opts.stderrTail ?? 8192;
    let stderr = '';
    let spawnError: string | undefined;
    const extra = opts.pipes ? this.outputs.map(() => 'pipe' as const) : [];
    this.child = spawn(opts.ffmpeg ?? 'ffmpeg', this.args, { stdio: ['pipe', 'ignore', 'pipe', ...extra] });
    this.streams = opts.pipes ? this.outputs.map((_, i) => this.child.stdio[3 + i] as NodeJS.ReadableStream) : [];
    const safety = setTimeout(() => {
      this.timedOut = true;
      this.kill();
    }, opts.maxDurationMs);
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.length > tailMax * 2) stderr = stderr.slice(-tailMax);
    });
    // EPIPE when ffmpeg has exited (or refused the input): the exit is what reports it.
    this.child.stdin?.on('error', () => {
      this.stdinBroken = true;
      this.releaseDrainWaiters();
    });
    this.child.stdin?.on('drain', () => this.releaseDrainWaiters());
    this.exited = new Promise<LiveLadderExit>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (this.done) return;
        this.done = true;
        clearTimeout(safety);
        clearTimeout(this.graceTimer);
        this.releaseDrainWaiters();
        const exit: LiveLadderExit = {
          code,
          signal,
          stderrTail: stderr.slice(-tailMax),
          timedOut: this.timedOut,
          killedAfterEnd: this.killedAfterEnd,
          ended: this.ended,
        };
        if (spawnError !== undefined) exit.spawnError = spawnError;
        resolve(exit);
      };
      this.child.on('error', (err) => {
        // Spawning failed ('close' may not follow), or a kill failed on a process that is gone anyway.
        if (this.child.pid === undefined) {
          spawnError = err.message;
          finish(null, null);
        }
      });
      this.child.on('close', finish);
    });
    this.closed = this.exited;
  }

  /** FLV bytes for ffmpeg's stdin. False: wait for 'drain'. After ffmpeg has gone, bytes are dropped. */
  write(chunk: Uint8Array): boolean {
    if (this.done || this.ended || this.stdinBroken || !this.child.stdin?.writable) return true;
    return this.child.stdin.write(chunk);
  }

  once(event: 'drain', listener: () => void): this {
    if (event !== 'drain') return this;
    if (this.done || this.stdinBroken) queueMicrotask(listener);
    else this.drainWaiters.push(listener);
    return this;
  }

  /** Closes stdin; ffmpeg finishes and exits, or is killed graceMs later. Resolves with the exit. */
  end(): Promise<LiveLadderExit> {
    if (!this.ended && !this.done) {
      this.ended = true;
      this.child.stdin?.end();
      this.graceTimer = setTimeout(() => {
        this.killedAfterEnd = true;
        this.kill();
      }, this.graceMs);
    }
    return this.exited;
  }

  /** Stops ffmpeg now (SIGKILL): the files keep what was flushed, every part before the last is whole. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      this.child.kill('SIGKILL');
    }
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private releaseDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }
}
