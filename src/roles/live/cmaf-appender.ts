// One growing CMAF file per rendition of a live event, written by us from what an encoder sends (the live ladder's
// ffmpeg on a pipe, or an HTTP push): top-level boxes are cut out of the byte stream as they complete, the init
// (ftyp+moov) is written once, and every moof+mdat is written as one piece with its tfdt moved onto the event's
// timeline (a restarted encoder starts at 0 again; the event continues where the wall clock is). Nothing else is
// written: no mfra or sidx (more media follows), no styp. The file is append-only, so a crash (SIGKILL) loses at
// most the fragment being written, and open() of an existing file cuts such a torn tail off before appending.
//
// An encoder run that starts again (a reconnect, a restarted ffmpeg) sends its own init: it must be the same bytes
// as the file's (same ladder, same codec configuration), else LIVE_MEDIA_UNSUPPORTED — one file has one init.
import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { SmoothcastError } from '../../core/errors.ts';
import { FragmentIndexer } from '../../media/bmff/indexer.ts';
import { shiftTfdt } from '../../media/bmff/merge.ts';
import type { Segment, TrackInfo } from '../../media/types.ts';

export interface AppenderOptions {
  path: string;
  /** Seconds added to every fragment's tfdt (this encoder run's place on the event timeline). */
  offsetSeconds: number;
  /** Called after each fragment is on disk (the origin's live feeds re-index at once). */
  onFragment?: (s: Segment) => void;
  /** Largest top-level box accepted. Default 64 MiB. */
  maxBoxBytes?: number;
}

const unsupported = (m: string) => new SmoothcastError('LIVE_MEDIA_UNSUPPORTED', m);

export class CmafAppender {
  readonly path: string;
  #fd: number;
  #size: number;
  #offsetSeconds: number;
  readonly #indexer = new FragmentIndexer();
  readonly #maxBox: number;
  readonly #onFragment: ((s: Segment) => void) | undefined;
  /** The file's ftyp+moov (to compare with a later run's). */
  #init: Buffer | undefined;
  #pending: Buffer = Buffer.alloc(0);
  #ftyp: Buffer | undefined;
  #moof: Buffer | undefined;
  /** This run's init was checked against (or written as) the file's. */
  #initSeen = false;
  #closed = false;

  /** Opens (creating) the file; an existing one is indexed and cut back to its last complete fragment. */
  constructor(opts: AppenderOptions) {
    this.path = opts.path;
    this.#offsetSeconds = opts.offsetSeconds;
    this.#maxBox = opts.maxBoxBytes ?? 64 << 20;
    this.#onFragment = opts.onFragment;
    const existed = existsSync(opts.path);
    this.#fd = openSync(opts.path, existed ? 'r+' : 'w+');
    this.#size = 0;
    if (existed) {
      const size = fstatSync(this.#fd).size;
      this.#scan(size);
      const track = this.#indexer.track;
      const keep = track ? Math.max(this.#indexer.position, track.initSize) : 0;
      if (keep < size) ftruncateSync(this.#fd, keep);
      this.#size = keep;
      if (track) {
        this.#init = Buffer.alloc(track.initSize);
        readSync(this.#fd, this.#init, 0, track.initSize, 0);
      }
    }
  }

  get track(): TrackInfo | undefined {
    return this.#indexer.track;
  }

  get segments(): readonly Segment[] {
    return this.#indexer.segments;
  }

  /** Seconds of the event timeline at the end of the last fragment written (0 when none). */
  get endSeconds(): number {
    const t = this.track;
    const last = this.segments.at(-1);
    return t && last ? (last.start + last.duration) / t.timescale : 0;
  }

  get bytes(): number {
    return this.#size;
  }

  /** A new encoder run: its init must match the file's, its tfdt start at 0 and land at `offsetSeconds`. */
  restart(offsetSeconds: number): void {
    this.#offsetSeconds = offsetSeconds;
    this.#pending = Buffer.alloc(0);
    this.#ftyp = undefined;
    this.#moof = undefined;
    this.#initSeen = false;
  }

  /** Bytes of the encoder's output, split anywhere. Throws on what cannot be stored (the caller stops the run). */
  push(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.#pending = this.#pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#pending, chunk]);
    let at = 0;
    const buf = this.#pending;
    while (buf.length - at >= 8) {
      let size = buf.readUInt32BE(at);
      let header = 8;
      if (size === 1) {
        if (buf.length - at < 16) break;
        size = Number(buf.readBigUInt64BE(at + 8));
        header = 16;
      }
      if (size === 0) throw unsupported('a box that runs to the end of the stream cannot be appended live');
      if (size < header || size > this.#maxBox) throw unsupported(`box of ${size} bytes in the live stream`);
      if (buf.length - at < size) break;
      this.#box(buf.toString('latin1', at + 4, at + 8), buf.subarray(at, at + size));
      at += size;
    }
    this.#pending = at === 0 ? buf : Buffer.from(buf.subarray(at));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
  }

  #box(type: string, box: Buffer): void {
    switch (type) {
      case 'ftyp':
        this.#ftyp = Buffer.from(box);
        return;
      case 'moov': {
        const init = Buffer.concat([this.#ftyp ?? Buffer.alloc(0), box]);
        this.#ftyp = undefined;
        if (!this.#init) {
          this.#write(init);
          this.#init = init;
          this.#scan(this.#size);
          if (!this.track) throw unsupported('the encoder wrote an init this server cannot read');
        } else if (!init.equals(this.#init)) {
          throw unsupported('the encoder restarted with another codec configuration: one file holds one init');
        }
        this.#initSeen = true;
        return;
      }
      case 'moof':
        this.#moof = Buffer.from(box);
        return;
      case 'mdat': {
        if (!this.#moof) return; // an mdat without a moof is not media we can place
        if (!this.#initSeen || !this.track)
          throw new SmoothcastError('LIVE_INIT_MISSING', 'a fragment before its init');
        const fragment = Buffer.concat([this.#moof, box]);
        this.#moof = undefined;
        const delta = Math.round(this.#offsetSeconds * this.track.timescale);
        this.#write(delta === 0 ? fragment : Buffer.from(shiftTfdt(fragment, delta)));
        const before = this.#indexer.segments.length;
        this.#scan(this.#size);
        const added = this.#indexer.segments.slice(before);
        for (const s of added) this.#onFragment?.(s);
        return;
      }
      default:
        // styp, prft, emsg, sidx, mfra, free, uuid…: nothing a growing single file needs (mfra would end it).
        return;
    }
  }

  #write(bytes: Buffer): void {
    let done = 0;
    while (done < bytes.length) done += writeSync(this.#fd, bytes, done, bytes.length - done, this.#size + done);
    this.#size += bytes.length;
  }

  #scan(size: number): void {
    for (let r = this.#indexer.next(size); r; r = this.#indexer.next(size)) {
      const b = Buffer.alloc(r.length);
      const got = readSync(this.#fd, b, 0, r.length, r.offset);
      this.#indexer.push(r.offset, b.subarray(0, got));
      if (got < r.length) break;
    }
  }
}
