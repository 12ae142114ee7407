// A bounded in-memory cache of rendition indexes. A finished rendition is indexed once (a few small reads per
// fragment) and from then on a segment request costs one map lookup and one positioned read. A rendition that is
// still being written is re-indexed incrementally from where the last scan stopped, at most once per `refreshMs`.

import type { MediaReader, StatResult } from '../../core/storage/storage.ts';
import { FragmentIndexer, summarizeIndex } from '../../media/bmff/index.ts';
import type { IndexSummary, Segment, TrackInfo } from '../../media/types.ts';

export interface RenditionIndex {
  readonly key: string;
  readonly track: TrackInfo | undefined;
  readonly segments: readonly Segment[];
  /** True once the encode has finished and the index has read the whole file: it never changes again. */
  readonly final: boolean;
  summary(): IndexSummary | undefined;
}

class Entry implements RenditionIndex {
  readonly key: string;
  readonly indexer = new FragmentIndexer();
  final = false;
  refreshedAt = Number.NEGATIVE_INFINITY;
  inflight: Promise<void> | null = null;
  private cachedSummary: { count: number; value: IndexSummary } | undefined;

  constructor(key: string) {
    this.key = key;
  }

  get track() {
    return this.indexer.track;
  }

  get segments() {
    return this.indexer.segments;
  }

  summary(): IndexSummary | undefined {
    const track = this.indexer.track;
    const segments = this.indexer.segments;
    if (!track || segments.length === 0) return undefined;
    if (this.cachedSummary?.count !== segments.length) {
      this.cachedSummary = { count: segments.length, value: summarizeIndex(track, segments) };
    }
    return this.cachedSummary.value;
  }
}

export class IndexCache {
  private readonly entries = new Map<string, Entry>();
  private readonly reader: MediaReader;
  private readonly maxEntries: number;
  private readonly refreshMs: number;
  private readonly now: () => number;

  private readonly onLookup: ((hit: boolean) => void) | undefined;

  constructor(
    reader: MediaReader,
    opts: { maxEntries: number; refreshMs?: number; now?: () => number; onLookup?: (hit: boolean) => void },
  ) {
    this.reader = reader;
    this.onLookup = opts.onLookup;
    this.maxEntries = opts.maxEntries;
    this.refreshMs = opts.refreshMs ?? 200;
    this.now = opts.now ?? (() => performance.now());
  }

  /** The cached index if present, without any I/O (the segment hot path). */
  peek(key: string): RenditionIndex | undefined {
    const e = this.entries.get(key);
    this.onLookup?.(e?.final === true);
    if (e) {
      // Refresh LRU position.
      this.entries.delete(key);
      this.entries.set(key, e);
    }
    return e;
  }

  /**
   * The index of the file at storage `key`, brought up to date. `complete` says the encode has finished, so one
   * last scan makes the index final.
   */
  async get(key: string, complete: boolean): Promise<RenditionIndex> {
    let e = this.entries.get(key);
    if (!e) {
      e = new Entry(key);
      this.entries.set(key, e);
      while (this.entries.size > this.maxEntries) {
        const oldest = this.entries.keys().next().value as string;
        this.entries.delete(oldest);
      }
    }
    if (e.final) return e;
    if (!complete && this.now() - e.refreshedAt < this.refreshMs) return e;
    // Coalesce concurrent refreshes of one entry into one scan.
    while (e.inflight) await e.inflight;
    if (e.final || (!complete && this.now() - e.refreshedAt < this.refreshMs)) return e;
    const entry = e;
    entry.inflight = this.scan(entry, complete).finally(() => {
      entry.inflight = null;
    });
    await entry.inflight;
    return entry;
  }

  /** Forget every index of an asset (deleted or re-encoded). */
  evictPrefix(prefix: string): void {
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  private async scan(e: Entry, complete: boolean): Promise<void> {
    const st = await advanceIndex(this.reader, e.key, e.indexer);
    e.refreshedAt = this.now();
    if (complete && st) e.final = true;
  }
}

/**
 * Feeds `indexer` what the file at `key` has gained since its last call: positioned reads of box headers and moofs,
 * never of media data. Stops early once `until()` holds. Returns the file's stat (null when it is not there).
 */
export async function advanceIndex(
  reader: MediaReader,
  key: string,
  indexer: FragmentIndexer,
  until?: () => boolean,
): Promise<StatResult | null> {
  const st = await reader.stat(key);
  if (!st) return null;
  for (let r = indexer.next(st.size); r && !until?.(); r = indexer.next(st.size)) {
    const bytes = await reader.read(key, r.offset, r.length);
    indexer.push(r.offset, bytes);
    if (bytes.length < r.length) break;
  }
  return st;
}
