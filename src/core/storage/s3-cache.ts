// A bounded in-memory cache of S3 object bytes, least recently used first out, counted in bytes. Two kinds of
// entries: small reads (an indexer walking one file's box headers, a few bytes each) are served from aligned
// blocks fetched once; large reads (hot segments) are kept as the exact range asked for.
//
// Freshness rests on how smoothcast writes: an object is immutable once written (a re-encode writes under a new
// revision folder, keys.revPrefix), so bytes once read stay right. Writes through the same S3Storage instance
// (commit, putBytes, importFile, remove, deletePrefix) drop the key's entries, and a fetch that was in flight when
// its key was dropped does not store its (maybe old) bytes. A key replaced by another process is caught when this
// process sees its new ETag — on any GET or HEAD (stat) of it — and not before.

export const BLOCK_BYTES = 256 * 1024;
/** Reads up to this long go through blocks; a read this long spans at most two blocks. */
export const SMALL_READ_BYTES = 64 * 1024;

/** What one ranged GET brought: the bytes (fewer at the object's end, none past it) and the object's ETag. */
export interface Got {
  bytes: Buffer;
  etag: string | undefined;
}

export type GetRange = (offset: number, length: number) => Promise<Got>;

interface Entry {
  key: string;
  id: string;
  bytes: Buffer;
  etag: string | undefined;
}

interface Part {
  bytes: Buffer;
  etag: string | undefined;
}

// Map bookkeeping per entry, so that a cache of empty end-of-object blocks is still bounded.
const OVERHEAD = 128;

export class RangeCache {
  readonly maxBytes: number;
  /** Larger ranges are not kept: one read must not flush the whole cache. */
  readonly maxEntryBytes: number;
  #used = 0;
  /** `key\nid` → entry; Map order is insertion order, so the first entry is the least recently used. */
  #lru = new Map<string, Entry>();
  /** key → ids of its entries and the ETag they were read with. */
  #keys = new Map<string, { etag: string | undefined; ids: Set<string> }>();
  /** key → id → fetch in flight, so concurrent readers of one block share one GET. */
  #pending = new Map<string, Map<string, Promise<Part>>>();
  #clock = 0;
  #inflight = 0;
  /** When each key (or prefix) was last dropped; only kept while fetches that might predate it are in flight. */
  #dropped = new Map<string, number>();
  #droppedPrefixes: { prefix: string; at: number }[] = [];

  constructor(maxBytes: number) {
    this.maxBytes = Math.max(0, maxBytes);
    this.maxEntryBytes = Math.floor(this.maxBytes / 4);
  }

  get usedBytes(): number {
    return this.#used;
  }

  /**
   * Bytes [offset, offset + length) of `key` (fewer at its end) from the cache or through `get` — one GET at most.
   * The result may be the cache's own memory: copy it, never modify it.
   */
  async read(key: string, offset: number, length: number, get: GetRange): Promise<Buffer> {
    if (length <= SMALL_READ_BYTES) return this.#small(key, offset, length, get);
    return (await this.#part(key, `r${offset}+${length}`, () => get(offset, length))).bytes;
  }

  /** Drops the entries of `key` (it was written or removed). */
  invalidate(key: string): void {
    this.#dropped.set(key, ++this.#clock);
    this.#pending.delete(key);
    this.#forget(key);
  }

  /** Drops the entries of every key starting with `prefix`. */
  invalidatePrefix(prefix: string): void {
    this.#droppedPrefixes.push({ prefix, at: ++this.#clock });
    for (const key of [...this.#pending.keys()]) if (key.startsWith(prefix)) this.#pending.delete(key);
    for (const key of [...this.#keys.keys()]) if (key.startsWith(prefix)) this.#forget(key);
  }

  /** The object's current ETag as another request (HEAD) saw it: entries read under another one are dropped. */
  noteEtag(key: string, etag: string | undefined): void {
    const state = this.#keys.get(key);
    if (state && etag && state.etag && state.etag !== etag) this.invalidate(key);
  }

  async #small(key: string, offset: number, length: number, get: GetRange): Promise<Buffer> {
    const first = Math.floor(offset / BLOCK_BYTES);
    const last = Math.floor((offset + Math.max(length, 1) - 1) / BLOCK_BYTES);
    const parts: (Part | Promise<Part> | undefined)[] = [];
    const missing: number[] = [];
    for (let b = first; b <= last; b++) {
      const p = this.#hit(key, `b${b}`) ?? this.#pending.get(key)?.get(`b${b}`);
      parts.push(p);
      if (!p) missing.push(b);
    }
    if (missing.length > 0) {
      // The missing blocks are adjacent (a small read spans at most two): one GET brings them all.
      const from = missing[0] as number;
      const count = (missing.at(-1) as number) - from + 1;
      const all = this.#fetch(key, () => get(from * BLOCK_BYTES, count * BLOCK_BYTES));
      const pending = this.#pendingOf(key);
      for (const b of missing) {
        const id = `b${b}`;
        const at = (b - from) * BLOCK_BYTES;
        const p = all.then(({ got, fresh }) => {
          const part = { bytes: got.bytes.subarray(at, at + BLOCK_BYTES), etag: got.etag };
          if (fresh) this.#store(key, id, part);
          return part;
        });
        pending.set(id, p);
        const clear = () => {
          if (this.#pending.get(key)?.get(id) === p) this.#pending.get(key)?.delete(id);
        };
        p.then(clear, clear);
        parts[b - first] = p;
      }
    }
    const got = await Promise.all(parts as (Part | Promise<Part>)[]);
    const etags = new Set(got.map((p) => p.etag).filter((e) => e !== undefined));
    if (etags.size > 1) {
      // Blocks of two versions of the object (replaced by another process): read this range afresh.
      this.invalidate(key);
      return (await get(offset, length)).bytes;
    }
    const start = offset - first * BLOCK_BYTES;
    const head = (got[0] as Part).bytes;
    if (got.length === 1 || head.length < BLOCK_BYTES) return head.subarray(start, start + length);
    const tail = (got[1] as Part).bytes;
    return Buffer.concat([head.subarray(start), tail.subarray(0, start + length - BLOCK_BYTES)]);
  }

  /** A cached part, else the one in flight, else a new fetch of it (stored if fresh and small enough). */
  async #part(key: string, id: string, get: () => Promise<Got>): Promise<Part> {
    const cached = this.#hit(key, id);
    if (cached) return cached;
    const inFlight = this.#pending.get(key)?.get(id);
    if (inFlight) return inFlight;
    const p = this.#fetch(key, get).then(({ got, fresh }) => {
      if (fresh) this.#store(key, id, got);
      return got;
    });
    const pending = this.#pendingOf(key);
    pending.set(id, p);
    const clear = () => {
      if (this.#pending.get(key)?.get(id) === p) this.#pending.get(key)?.delete(id);
    };
    p.then(clear, clear);
    return p;
  }

  /** Runs a GET; `fresh` says no write or removal of the key happened while it ran (its bytes may be kept). */
  async #fetch(key: string, get: () => Promise<Got>): Promise<{ got: Got; fresh: boolean }> {
    const startedAt = this.#clock;
    this.#inflight++;
    try {
      const got = await get();
      return { got, fresh: !this.#droppedSince(key, startedAt) };
    } finally {
      if (--this.#inflight === 0) {
        this.#dropped.clear();
        this.#droppedPrefixes = [];
      }
    }
  }

  #droppedSince(key: string, t: number): boolean {
    if ((this.#dropped.get(key) ?? -1) > t) return true;
    return this.#droppedPrefixes.some((d) => d.at > t && key.startsWith(d.prefix));
  }

  #pendingOf(key: string): Map<string, Promise<Part>> {
    let m = this.#pending.get(key);
    if (!m) {
      m = new Map();
      this.#pending.set(key, m);
    }
    return m;
  }

  #hit(key: string, id: string): Part | undefined {
    const name = `${key}\n${id}`;
    const e = this.#lru.get(name);
    if (!e) return undefined;
    this.#lru.delete(name);
    this.#lru.set(name, e);
    return e;
  }

  #store(key: string, id: string, part: Part): void {
    if (part.bytes.length > this.maxEntryBytes) return;
    let state = this.#keys.get(key);
    if (state && part.etag && state.etag && state.etag !== part.etag) {
      this.#forget(key);
      state = undefined;
    }
    if (!state) {
      state = { etag: part.etag, ids: new Set() };
      this.#keys.set(key, state);
    }
    const name = `${key}\n${id}`;
    const old = this.#lru.get(name);
    if (old) this.#drop(name, old);
    // A copy: the part may be a view of a larger GET's buffer that would otherwise stay alive with it.
    const e = { key, id, bytes: Buffer.from(part.bytes), etag: part.etag };
    this.#lru.set(name, e);
    state.ids.add(id);
    this.#used += e.bytes.length + OVERHEAD;
    for (const [n, victim] of this.#lru) {
      if (this.#used <= this.maxBytes) break;
      this.#drop(n, victim);
    }
  }

  #drop(name: string, e: Entry): void {
    this.#lru.delete(name);
    this.#used -= e.bytes.length + OVERHEAD;
    const state = this.#keys.get(e.key);
    state?.ids.delete(e.id);
    if (state?.ids.size === 0) this.#keys.delete(e.key);
  }

  #forget(key: string): void {
    const state = this.#keys.get(key);
    if (!state) return;
    for (const id of [...state.ids]) {
      const name = `${key}\n${id}`;
      const e = this.#lru.get(name);
      if (e) this.#drop(name, e);
    }
    this.#keys.delete(key);
  }
}
