// What never changes once an encode revision is ready: its presentation and everything derived from it (single-file
// layouts, Smooth Streaming quality levels and fragment times, the sizes of its downloads and thumbnail files).
// Built once per revision, so the byte responses besides the per-segment ones — single-file ranges, Smooth
// fragments, progressive downloads, thumbnails — cost no catalog query, stat or scan after the first request.
import { SmoothcastError } from '../../core/errors.ts';
import type { MediaReader } from '../../core/storage/storage.ts';
import { type SingleFileLayout, singleFileLayout } from '../../media/bmff/single-file.ts';
import { smoothAudioNames, smoothBitrates } from '../../media/manifest/smooth.ts';
import type { ManifestRendition, Presentation } from '../../media/types.ts';

export class ReadyRevision {
  readonly p: Presentation;
  /** QualityLevels: the URL bitrate of each rendition (unique within its stream type). */
  readonly smoothBitrates = new Map<string, number>();
  private readonly layouts = new Map<string, SingleFileLayout>();
  private readonly fragmentTimes = new Map<string, Map<number, number>>();
  private readonly sizes = new Map<string, number>();

  constructor(p: Presentation) {
    this.p = p;
    for (const kind of ['video', 'audio'] as const) {
      const reps = p.renditions.filter((r) => r.track.kind === kind);
      for (const [id, bitrate] of smoothBitrates(reps)) this.smoothBitrates.set(id, bitrate);
    }
  }

  rendition(rid: string): ManifestRendition {
    const r = this.p.renditions.find((x) => x.id === rid);
    if (!r) throw new SmoothcastError('NOT_FOUND', `no rendition ${rid}`);
    return r;
  }

  layout(r: ManifestRendition): SingleFileLayout {
    let l = this.layouts.get(r.id);
    if (!l) {
      l = singleFileLayout(r.track, r.segments);
      this.layouts.set(r.id, l);
    }
    return l;
  }

  /** The rendition and segment number a Smooth fragment URL names: `QualityLevels(bitrate)/Fragments(name=time)`. */
  smoothFragment(name: string, bitrate: number, time: number): { r: ManifestRendition; n: number } {
    const kind = name === 'video' ? 'video' : 'audio';
    const names = smoothAudioNames(this.p.renditions.filter((x) => x.track.kind === 'audio'));
    const r = this.p.renditions.find(
      (x) =>
        x.track.kind === kind &&
        this.smoothBitrates.get(x.id) === bitrate &&
        (kind === 'video' || names.get(x.id) === name),
    );
    if (!r) throw new SmoothcastError('NOT_FOUND', `no ${kind} quality level ${bitrate}`);
    let times = this.fragmentTimes.get(r.id);
    if (!times) {
      times = new Map(r.segments.map((s, n) => [s.start, n]));
      this.fragmentTimes.set(r.id, times);
    }
    const n = times.get(time);
    if (n === undefined) throw new SmoothcastError('NOT_FOUND', `no ${kind} fragment at ${time}`);
    return { r, n };
  }

  /** Size of a file of this revision (a download, a thumbnail file), stat'ed once. */
  async size(reader: MediaReader, key: string): Promise<number> {
    let size = this.sizes.get(key);
    if (size === undefined) {
      const st = await reader.stat(key);
      if (!st) throw new SmoothcastError('NOT_FOUND', `no ${key.split('/').at(-1)}`);
      size = st.size;
      this.sizes.set(key, size);
    }
    return size;
  }
}
