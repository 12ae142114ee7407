// Text tracks as the origin serves them: the stored WebVTT (cues on the source's timeline) read and parsed once,
// shifted onto the presentation timeline of an encode revision, kept in a bounded cache. A segment is then cut
// from memory; nothing is parsed per request. Entries are immutable (a caption id is never reused, and the rev
// fixes the shift), so a cached one is never stale — except for a deleted track, which evict() drops here and
// which other processes forget as their LRU turns over (as the segments of a deleted asset, it is only bytes).
import { SmoothcastError } from '../../core/errors.ts';
import type { MediaReader } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import {
  type CaptionDoc,
  parseCaptionFile,
  shiftCues,
  subtitleSegment,
  subtitleSegmentCount,
  writeWebVtt,
} from '../../media/captions/index.ts';

export interface ServedTrack {
  doc: CaptionDoc;
  /** The whole file on the presentation timeline. */
  whole: Buffer;
}

/** The largest stored caption file the origin will load (the API refuses larger ones at upload). */
const MAX_STORED_BYTES = 16 * 2 ** 20;

export class TextTracks {
  readonly #reader: MediaReader;
  readonly #max: number;
  readonly #tracks = new Map<string, Promise<ServedTrack>>();
  readonly #segments = new Map<string, Buffer>();

  constructor(reader: MediaReader, opts: { maxEntries: number }) {
    this.#reader = reader;
    this.#max = Math.max(8, opts.maxEntries);
  }

  evict(assetId: string): void {
    for (const k of this.#tracks.keys()) if (k.startsWith(`${assetId}/`)) this.#tracks.delete(k);
    for (const k of this.#segments.keys()) if (k.startsWith(`${assetId}/`)) this.#segments.delete(k);
  }

  /** The track as played with `rev` (cues + presentationOffset). */
  get(assetId: string, rev: string, captionId: string, offset: number): Promise<ServedTrack> {
    const k = `${assetId}/${rev}/${captionId}`;
    let t = this.#tracks.get(k);
    if (t) {
      this.#tracks.delete(k);
    } else {
      t = this.#load(assetId, captionId, offset);
      t.catch(() => this.#tracks.delete(k));
      if (this.#tracks.size >= this.#max) this.#tracks.delete(this.#tracks.keys().next().value!);
    }
    this.#tracks.set(k, t);
    return t;
  }

  /**
   * Segment n of a text track. `resolve` asks the catalog (is this track part of the asset's ready rev? its
   * duration, segment length and offset) only when the segment is not cached yet.
   */
  async segment(
    assetId: string,
    rev: string,
    captionId: string,
    n: number,
    resolve: () => Promise<{
      rev: string;
      ready: { p: { duration: number } };
      state: { segmentDuration: number; presentationOffset: number; text: readonly { id: string }[] };
    }>,
  ): Promise<Buffer> {
    const k = `${assetId}/${rev}/${captionId}/${n}`;
    const hit = this.#segments.get(k);
    if (hit) return hit;
    const { ready, state } = await resolve();
    if (!state.text.some((t) => t.id === captionId)) {
      throw new SmoothcastError('CAPTION_NOT_FOUND', `no text track ${captionId}`);
    }
    const duration = ready.p.duration;
    if (n >= subtitleSegmentCount(duration, state.segmentDuration)) {
      throw new SmoothcastError('NOT_FOUND', `text segment ${n} does not exist`);
    }
    const track = await this.get(assetId, rev, captionId, state.presentationOffset);
    const body = Buffer.from(subtitleSegment(track.doc, n, duration, state.segmentDuration));
    if (this.#segments.size >= this.#max * 16) this.#segments.delete(this.#segments.keys().next().value!);
    this.#segments.set(k, body);
    return body;
  }

  async #load(assetId: string, captionId: string, offset: number): Promise<ServedTrack> {
    const key = keys.caption(assetId, captionId);
    const st = await this.#reader.stat(key);
    if (!st) throw new SmoothcastError('CAPTION_NOT_FOUND', `no text track ${captionId}`);
    if (st.size > MAX_STORED_BYTES) throw new SmoothcastError('CAPTION_TOO_LARGE', 'stored caption file too large');
    const bytes = await this.#reader.read(key, 0, st.size);
    const doc = shiftCues(parseCaptionFile(bytes, 'vtt'), offset);
    return { doc, whole: Buffer.from(writeWebVtt(doc)) };
  }
}
