// The live view of an event's growing rendition files: each file is followed by a FragmentIndexer (positioned reads
// of the bytes appended since the last look) and its fragments are grouped into LL-HLS parts and segments by a
// LiveTimeline (video by its keyframes; audio on the first video rendition's segment boundaries, so every
// rendition's segment n covers the same time). One feed per event revision serves the live manifests, the parts
// and segments, and — once the event is over — the archive's VOD manifests with the same segment numbers.
//
// Freshness: the live role in the same process calls poke() the moment a fragment is on disk, so a blocked
// playlist request is answered within a few milliseconds of its part landing; without pokes (an origin in another
// process, or after a restart) a feed with waiters re-reads the files every `pollMs`.
import type { MediaReader } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { FragmentIndexer } from '../../media/bmff/indexer.ts';
import { gridBoundaries, LiveTimeline } from '../../media/live/parts.ts';
import type { TrackInfo } from '../../media/types.ts';
import { advanceIndex } from './index-cache.ts';

export interface LiveRenditionSpec {
  id: string;
  type: 'video' | 'audio';
}

interface Followed {
  id: string;
  type: 'video' | 'audio';
  key: string;
  indexer: FragmentIndexer;
  timeline: LiveTimeline | undefined;
}

interface Waiter {
  ready: () => boolean;
  resolve: (ok: boolean) => void;
  timer: NodeJS.Timeout;
}

export class LiveFeed {
  readonly assetId: string;
  readonly rev: string;
  readonly #reader: MediaReader;
  readonly #renditions = new Map<string, Followed>();
  readonly #pollMs: number;
  #inflight: Promise<void> | null = null;
  #again = false;
  #ended = false;
  #waiters = new Set<Waiter>();
  #poll: NodeJS.Timeout | undefined;
  /** performance.now() of the last refresh, for callers that throttle. */
  refreshedAt = Number.NEGATIVE_INFINITY;

  constructor(reader: MediaReader, assetId: string, rev: string, opts: { pollMs?: number } = {}) {
    this.#reader = reader;
    this.assetId = assetId;
    this.rev = rev;
    this.#pollMs = opts.pollMs ?? 50;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Follows these renditions too (an HTTP push announces tracks as they arrive). Video first keeps v0 the reference. */
  sync(renditions: readonly LiveRenditionSpec[]): void {
    for (const r of renditions) {
      if (this.#renditions.has(r.id)) continue;
      this.#renditions.set(r.id, {
        id: r.id,
        type: r.type,
        key: keys.rendition(this.assetId, this.rev, r.id),
        indexer: new FragmentIndexer(),
        timeline: undefined,
      });
    }
  }

  track(rid: string): TrackInfo | undefined {
    return this.#renditions.get(rid)?.indexer.track;
  }

  timeline(rid: string): LiveTimeline | undefined {
    return this.#renditions.get(rid)?.timeline;
  }

  /** The rendition whose keyframes cut every rendition's segments: the first video one (else the first). */
  reference(): LiveTimeline | undefined {
    const list = [...this.#renditions.values()];
    return (list.find((r) => r.type === 'video') ?? list[0])?.timeline;
  }

  ids(): string[] {
    return [...this.#renditions.keys()];
  }

  /** Reads what was appended since the last call (concurrent calls share one pass; a call during a pass runs again). */
  refresh(): Promise<void> {
    if (this.#inflight) {
      this.#again = true;
      return this.#inflight;
    }
    this.#inflight = (async () => {
      do {
        this.#again = false;
        await this.#scan();
      } while (this.#again);
    })().finally(() => {
      this.#inflight = null;
      this.refreshedAt = performance.now();
      this.#wake();
    });
    return this.#inflight;
  }

  /** The event is over: read to the end of every file and close every timeline (its last segment completes). */
  async end(): Promise<void> {
    if (this.#ended) return;
    await this.refresh();
    this.#ended = true;
    const list = [...this.#renditions.values()];
    // The reference first, so audio placed on its boundaries sees them all.
    list.sort((a, b) => (a.type === b.type ? 0 : a.type === 'video' ? -1 : 1));
    for (const r of list) if (r.timeline && !r.timeline.ended) r.timeline.end();
    this.#wake();
  }

  /** Something was appended (the live role in this process says so): read it now. */
  poke(): void {
    void this.refresh().catch(() => {});
  }

  /** Resolves true once `ready()` holds after a refresh, false after `timeoutMs` (or when the feed ends first). */
  waitUntil(ready: () => boolean, timeoutMs: number): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    if (this.#ended) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w: Waiter = {
        ready,
        resolve: (ok) => {
          clearTimeout(w.timer);
          this.#waiters.delete(w);
          if (this.#waiters.size === 0) this.#stopPolling();
          resolve(ok);
        },
        timer: setTimeout(() => w.resolve(ready()), timeoutMs),
      };
      this.#waiters.add(w);
      this.#startPolling();
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) {
      if (w.ready()) w.resolve(true);
      else if (this.#ended) w.resolve(false);
    }
  }

  #startPolling(): void {
    if (this.#poll || this.#ended) return;
    this.#poll = setInterval(() => this.poke(), this.#pollMs);
    this.#poll.unref();
  }

  #stopPolling(): void {
    clearInterval(this.#poll);
    this.#poll = undefined;
  }

  async #scan(): Promise<void> {
    const list = [...this.#renditions.values()];
    list.sort((a, b) => (a.type === b.type ? 0 : a.type === 'video' ? -1 : 1));
    for (const r of list) {
      if (!(await advanceIndex(this.#reader, r.key, r.indexer))) continue;
      const track = r.indexer.track;
      if (!track) continue;
      if (!r.timeline) {
        if (r.type === 'audio') {
          const hasVideo = list.some((x) => x.type === 'video');
          const ref = this.reference();
          // Audio waits for the video whose boundaries it follows; audio alone is cut on a 2 s grid.
          if (hasVideo && !ref) continue;
          r.timeline = new LiveTimeline({ timescale: track.timescale, boundaries: ref ?? gridBoundaries(2) });
        } else {
          r.timeline = new LiveTimeline({ timescale: track.timescale });
        }
      }
      if (r.timeline.ended) continue;
      const fresh = r.indexer.segments.slice(r.timeline.fragmentCount);
      if (fresh.length > 0) r.timeline.append(fresh);
    }
  }
}

/** Feeds by `${assetId}/${rev}`, bounded (least recently used go first; a live one is rebuilt from its files). */
export class LiveFeeds {
  readonly #feeds = new Map<string, LiveFeed>();
  readonly #reader: MediaReader;
  readonly #max: number;

  constructor(reader: MediaReader, opts: { maxFeeds?: number } = {}) {
    this.#reader = reader;
    this.#max = opts.maxFeeds ?? 64;
  }

  get(assetId: string, rev: string): LiveFeed {
    const key = `${assetId}/${rev}`;
    let f = this.#feeds.get(key);
    if (f) {
      this.#feeds.delete(key);
    } else {
      f = new LiveFeed(this.#reader, assetId, rev);
      while (this.#feeds.size >= this.#max) this.#feeds.delete(this.#feeds.keys().next().value!);
    }
    this.#feeds.set(key, f);
    return f;
  }

  peek(assetId: string, rev: string): LiveFeed | undefined {
    return this.#feeds.get(`${assetId}/${rev}`);
  }

  /** The live role wrote a fragment of this event. */
  poke(assetId: string, rev: string): void {
    this.#feeds.get(`${assetId}/${rev}`)?.poke();
  }

  evict(assetId: string): void {
    for (const k of [...this.#feeds.keys()]) if (k.startsWith(`${assetId}/`)) this.#feeds.delete(k);
  }
}
