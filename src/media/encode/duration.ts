// Finding how long a file really is by reading its packets, for files whose headers do not say (a browser
// MediaRecorder WebM, Matroska written to a pipe: the muxer could not seek back to write Duration) or say
// something the packets contradict. Pure: the arguments for ffprobe and a streaming parser of its output.
//
// ffprobe only demuxes (no decoding), so this reads the file at disk speed: ~50 ms for a 10 s clip.
import { inputArgs } from './input.ts';

/**
 * `ffprobe` arguments that print one line per packet of every stream: `stream_index,pts,duration` in seconds (csv,
 * no section names). ffprobe's -select_streams takes one specifier, so the audio/video filter is PacketScan's.
 */
export function packetScanArgs(file: string, maxPixels: number): string[] {
  return [
    '-hide_banner',
    '-v',
    'error',
    '-show_entries',
    'packet=stream_index,pts_time,duration_time',
    '-of',
    'csv=p=0',
    ...inputArgs(file, maxPixels),
  ];
}

interface StreamSpan {
  first: number;
  end: number;
}

/** A line longer than this is not ffprobe's csv packet line. */
const MAX_LINE = 256;

/**
 * Streaming reader of packetScanArgs' stdout: per stream, the earliest pts and the latest pts + duration.
 * Memory is bounded by the number of streams, whatever the file's length.
 */
export class PacketScan {
  readonly #spans = new Map<number, StreamSpan>();
  readonly #only: ReadonlySet<number> | undefined;
  #partial = '';
  /** Packets counted (of the streams that count). */
  packets = 0;

  /** @param streams the stream indexes that count (audio and video; not subtitles, data, cover art); default all. */
  constructor(streams?: Iterable<number>) {
    this.#only = streams ? new Set(streams) : undefined;
  }

  push(chunk: string): void {
    const lines = (this.#partial + chunk).split('\n');
    this.#partial = lines.pop() ?? '';
    if (this.#partial.length > MAX_LINE) this.#partial = '';
    for (const line of lines) this.#line(line);
  }

  /** Call once stdout has ended (a last line without its newline). */
  end(): void {
    if (this.#partial) this.#line(this.#partial);
    this.#partial = '';
  }

  #line(raw: string): void {
    const [idx, pts, dur] = raw.trim().split(',');
    const stream = Number(idx);
    const t = Number(pts);
    if (!Number.isInteger(stream) || pts === undefined || pts === '' || !Number.isFinite(t)) return;
    if (this.#only && !this.#only.has(stream)) return;
    const d = Number(dur);
    const end = t + (Number.isFinite(d) && d > 0 ? d : 0);
    this.packets++;
    const span = this.#spans.get(stream);
    if (!span) this.#spans.set(stream, { first: t, end });
    else {
      if (t < span.first) span.first = t;
      if (end > span.end) span.end = end;
    }
  }

  /** Seconds from a stream's first packet to the end of its last one; undefined when it had no timed packet. */
  streamDuration(streamIndex: number): number | undefined {
    const s = this.#spans.get(streamIndex);
    return s ? Math.max(0, s.end - s.first) : undefined;
  }

  /** The furthest media time any stream reached, from the earliest start of any stream (seconds). */
  get seconds(): number {
    let first = Number.POSITIVE_INFINITY;
    let end = 0;
    for (const s of this.#spans.values()) {
      first = Math.min(first, s.first);
      end = Math.max(end, s.end);
    }
    return Number.isFinite(first) ? Math.max(0, end - first) : 0;
  }
}
