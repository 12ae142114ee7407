// Follows the CMAF files ffmpeg is writing: indexes each rendition incrementally as fragments land, tells when the
// asset becomes playable (a first complete segment in every rendition), and verifies the finished outputs.
import { SmoothcastError } from '../../core/errors.ts';
import type { MediaReader } from '../../core/storage/storage.ts';
import { FragmentIndexer, summarizeIndex } from '../../media/bmff/index.ts';
import type { IndexSummary, Segment, TrackInfo } from '../../media/types.ts';

export interface OutputRendition {
  id: string;
  key: string;
}

export interface FinishedRendition {
  id: string;
  track: TrackInfo;
  segments: readonly Segment[];
  summary: IndexSummary;
}

export class OutputWatcher {
  private readonly reader: MediaReader;
  private readonly outputs: { r: OutputRendition; ix: FragmentIndexer }[];

  constructor(reader: MediaReader, renditions: readonly OutputRendition[]) {
    this.reader = reader;
    this.outputs = renditions.map((r) => ({ r, ix: new FragmentIndexer() }));
  }

  /** Indexes whatever complete fragments have been written since the last call. */
  async scan(): Promise<void> {
    for (const { r, ix } of this.outputs) {
      const st = await this.reader.stat(r.key);
      if (!st) continue;
      for (let req = ix.next(st.size); req; req = ix.next(st.size)) {
        const bytes = await this.reader.read(r.key, req.offset, req.length);
        ix.push(req.offset, bytes);
        if (bytes.length < req.length) break;
      }
    }
  }

  /** True when every rendition has its init segment and at least one complete media segment. */
  get playable(): boolean {
    return this.outputs.every(({ ix }) => ix.track !== undefined && ix.segments.length > 0);
  }

  /** RFC 6381 codec string per rendition id, for those already known. */
  codecs(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const { r, ix } of this.outputs) if (ix.track) out[r.id] = ix.track.codec;
    return out;
  }

  /** Seconds of media written so far (the least advanced rendition). */
  get publishedSeconds(): number {
    let min = Number.POSITIVE_INFINITY;
    for (const { ix } of this.outputs) {
      const t = ix.track;
      const last = ix.segments.at(-1);
      min = Math.min(min, t && last ? (last.start + last.duration) / t.timescale : 0);
    }
    return Number.isFinite(min) ? min : 0;
  }

  /**
   * After ffmpeg exits: the final index of every rendition, checked. Video renditions must have identical segment
   * boundaries and start every segment with a keyframe — the property that lets a player switch at any boundary.
   */
  finish(): FinishedRendition[] {
    const done: FinishedRendition[] = [];
    for (const { r, ix } of this.outputs) {
      const track = ix.track;
      if (!track || ix.segments.length === 0) {
        throw new SmoothcastError('ENCODE_OUTPUT_INVALID', `rendition ${r.id} has no complete segment`);
      }
      done.push({ id: r.id, track, segments: ix.segments, summary: summarizeIndex(track, ix.segments) });
    }
    const video = done.filter((d) => d.track.kind === 'video');
    const [ref] = video;
    for (const v of video) {
      v.segments.forEach((s, n) => {
        if (!s.startsWithKeyframe) {
          throw new SmoothcastError(
            'ENCODE_OUTPUT_INVALID',
            `rendition ${v.id} segment ${n} does not start with a keyframe`,
          );
        }
      });
      if (!ref || v === ref) continue;
      if (v.segments.length !== ref.segments.length) {
        throw new SmoothcastError(
          'ENCODE_OUTPUT_INVALID',
          `renditions ${ref.id} and ${v.id} have ${ref.segments.length} and ${v.segments.length} segments`,
        );
      }
      v.segments.forEach((s, n) => {
        const a = ref.segments[n]!;
        // Compare as exact rationals: start/timescale of both tracks.
        if (s.start * ref.track.timescale !== a.start * v.track.timescale) {
          throw new SmoothcastError(
            'ENCODE_OUTPUT_INVALID',
            `segment ${n} of ${v.id} starts at another time than ${ref.id}`,
          );
        }
      });
    }
    return done;
  }
}
