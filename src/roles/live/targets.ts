// Push targets of live streams (restreaming): the rows in live_targets, and one PushTarget (push-targets.ts) per
// row in this process, fed the FLV of the stream's current publish. A target added while the stream is live gets
// the publish's prelude first (FLV header, onMetaData, sequence headers), then media from the next keyframe.
import type { LiveRepository, LiveStream } from '../../core/db/live.ts';
import type { LiveTargetStatusJson } from '../api/live.ts';
import { PushTarget, validateTargetUrl } from './push-targets.ts';

export class LiveTargets {
  readonly #live: LiveRepository;
  readonly #log: (m: string, e?: Record<string, unknown>) => void;
  readonly #targets = new Map<string, PushTarget>();
  /** Streams whose publish is on, with the prelude a late target needs. */
  readonly #prelude: (streamId: string) => Uint8Array | null;

  constructor(o: {
    live: LiveRepository;
    log: (m: string, e?: Record<string, unknown>) => void;
    prelude: (streamId: string) => Uint8Array | null;
  }) {
    this.#live = o.live;
    this.#log = o.log;
    this.#prelude = o.prelude;
  }

  #ensure(streamId: string): PushTarget[] {
    return this.#live.targets(streamId).map((t) => {
      let pt = this.#targets.get(t.id);
      if (!pt) {
        pt = new PushTarget({ id: t.id, url: t.url, log: this.#log });
        this.#targets.set(t.id, pt);
      }
      return pt;
    });
  }

  /** FLV of the stream's publish (the same chunks the ladder gets). */
  write(streamId: string, chunk: Uint8Array): void {
    for (const t of this.#ensure(streamId)) t.write(chunk);
  }

  publishEnded(streamId: string): void {
    for (const t of this.#ensure(streamId)) t.publishEnded();
  }

  add(stream: LiveStream, url: string): LiveTargetStatusJson {
    const row = this.#live.addTarget(stream.id, validateTargetUrl(url));
    const pt = new PushTarget({ id: row.id, url: row.url, log: this.#log });
    this.#targets.set(row.id, pt);
    const prelude = this.#prelude(stream.id);
    if (prelude && prelude.length > 0) pt.write(prelude);
    return present(pt);
  }

  list(stream: LiveStream): LiveTargetStatusJson[] {
    return this.#ensure(stream.id).map(present);
  }

  remove(stream: LiveStream, targetId: string): boolean {
    const gone = this.#live.removeTarget(stream.id, targetId);
    const pt = this.#targets.get(targetId);
    if (pt) {
      this.#targets.delete(targetId);
      void pt.stop();
    }
    return gone;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#targets.values()].map((t) => t.stop()));
    this.#targets.clear();
  }
}

function present(t: PushTarget): LiveTargetStatusJson {
  const s = t.status();
  return { id: s.id, url: s.url, state: s.state, error: s.error };
}
