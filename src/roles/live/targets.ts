// Push targets of live streams (restreaming): the rows in live_targets, and one PushTarget (push-targets.ts) per
// row in this process, fed the FLV of the stream's current publish. A target added while the stream is live gets
// the publish's prelude first (FLV header, onMetaData, sequence headers), then media from the next keyframe.
import type { LiveRepository, LiveStream } from '../../core/db/live.ts';
import type { LiveTargetStatusJson } from '../api/live.ts';
import { PushTarget, validateTargetUrl } from './push-targets.ts';

/** publishEnded() in a stream's queue of FLV chunks. */
const ENDED = Symbol('publishEnded');

export class LiveTargets {
  readonly #live: LiveRepository;
  readonly #log: (m: string, e?: Record<string, unknown>) => void;
  readonly #targets = new Map<string, PushTarget>();
  /** Streams whose publish is on, with the prelude a late target needs. */
  readonly #prelude: (streamId: string) => Uint8Array | null;
  /**
   * Per stream, the tail of its serial work: every flush of queued chunks, add, list and remove runs after the one
   * before it, so the targets' rows are read and their PushTargets created or stopped one step at a time, and the
   * chunks reach every target in the order they were written.
   */
  readonly #chains = new Map<string, Promise<void>>();
  /** Per stream, chunks (and publishEnded marks) written but not yet handed to the targets (one flush queued). */
  readonly #queued = new Map<string, (Uint8Array | typeof ENDED)[]>();

  constructor(o: {
    live: LiveRepository;
    log: (m: string, e?: Record<string, unknown>) => void;
    prelude: (streamId: string) => Uint8Array | null;
  }) {
    this.#live = o.live;
    this.#log = o.log;
    this.#prelude = o.prelude;
  }

  /** Runs fn after the stream's earlier work has settled (whatever its outcome). */
  #serial<T>(streamId: string, fn: () => Promise<T>): Promise<T> {
    const job = (this.#chains.get(streamId) ?? Promise.resolve()).then(fn);
    const tail = job.then(
      () => {},
      () => {},
    );
    this.#chains.set(streamId, tail);
    void tail.then(() => {
      if (this.#chains.get(streamId) === tail) this.#chains.delete(streamId);
    });
    return job;
  }

  async #ensure(streamId: string): Promise<PushTarget[]> {
    return (await this.#live.targets(streamId)).map((t) => {
      let pt = this.#targets.get(t.id);
      if (!pt) {
        pt = new PushTarget({ id: t.id, url: t.url, log: this.#log });
        this.#targets.set(t.id, pt);
      }
      return pt;
    });
  }

  /** Queues a chunk or publishEnded for the stream's targets; the first one queued schedules the flush. */
  #enqueue(streamId: string, item: Uint8Array | typeof ENDED): void {
    const queued = this.#queued.get(streamId);
    if (queued) {
      queued.push(item);
      return;
    }
    this.#queued.set(streamId, [item]);
    this.#serial(streamId, () => this.#flush(streamId)).catch((err: unknown) =>
      this.#log('live: push targets not fed', { streamId, error: String(err) }),
    );
  }

  /** Hands what is queued (also what arrived while the rows were read) to the stream's targets, in order. */
  async #flush(streamId: string): Promise<void> {
    const read = await this.#ensure(streamId).then(
      (targets) => ({ targets }),
      (error: unknown) => ({ error }),
    );
    const items = this.#queued.get(streamId) ?? [];
    this.#queued.delete(streamId);
    // On failure these chunks are lost to the targets (they pick up at the next keyframe); later ones get a flush
    // of their own.
    if ('error' in read) throw read.error;
    for (const item of items) {
      for (const t of read.targets) {
        if (item === ENDED) t.publishEnded();
        else t.write(item);
      }
    }
  }

  /** FLV of the stream's publish (the same chunks the ladder gets). */
  write(streamId: string, chunk: Uint8Array): void {
    this.#enqueue(streamId, chunk);
  }

  publishEnded(streamId: string): void {
    this.#enqueue(streamId, ENDED);
  }

  async add(stream: LiveStream, url: string): Promise<LiveTargetStatusJson> {
    const valid = validateTargetUrl(url);
    return this.#serial(stream.id, async () => {
      const row = await this.#live.addTarget(stream.id, valid);
      const pt = new PushTarget({ id: row.id, url: row.url, log: this.#log });
      this.#targets.set(row.id, pt);
      const prelude = this.#prelude(stream.id);
      if (prelude && prelude.length > 0) pt.write(prelude);
      return present(pt);
    });
  }

  list(stream: LiveStream): Promise<LiveTargetStatusJson[]> {
    return this.#serial(stream.id, async () => (await this.#ensure(stream.id)).map(present));
  }

  remove(stream: LiveStream, targetId: string): Promise<boolean> {
    return this.#serial(stream.id, async () => {
      const gone = await this.#live.removeTarget(stream.id, targetId);
      const pt = this.#targets.get(targetId);
      if (pt) {
        this.#targets.delete(targetId);
        void pt.stop();
      }
      return gone;
    });
  }

  async close(): Promise<void> {
    while (this.#chains.size > 0) await Promise.allSettled([...this.#chains.values()]);
    await Promise.allSettled([...this.#targets.values()].map((t) => t.stop()));
    this.#targets.clear();
  }
}

function present(t: PushTarget): LiveTargetStatusJson {
  const s = t.status();
  return { id: s.id, url: s.url, state: s.state, error: s.error };
}
