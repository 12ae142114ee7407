// Follows the FLV a publish produces (13-byte header, then tags, as RtmpIngest writes it to a sink) tag by tag, so
// that a restarted consumer — the ladder's ffmpeg after a crash, a push target (re)connecting — can be given the
// stream's prelude (the header, the last onMetaData, the AVC and AAC sequence headers) and then the media from the
// next video keyframe on, restamped. Chunks may split tags anywhere. Shared by the live ladder's restart
// (live-service.ts) and the push targets (push-targets.ts).
import { audioCodec, FLV_TAG, videoCodec } from '../../media/rtmp/flv.ts';

export type FlvEvent =
  | { kind: 'header'; bytes: Uint8Array; audio: boolean; video: boolean }
  | {
      kind: 'tag';
      /** The tag type (8 audio, 9 video, 18 script). */
      type: number;
      timestamp: number;
      /** The whole tag: 11-byte header, body, PreviousTagSize. A view valid during the callback only. */
      bytes: Uint8Array;
      /** A video keyframe picture (not a sequence header). */
      keyframe: boolean;
      /** An AVC/AAC (or E-RTMP) sequence header: decoder configuration, part of the prelude. */
      sequenceHeader: boolean;
      /** A script tag carrying onMetaData. */
      metadata: boolean;
    };

const ON_METADATA = Uint8Array.of(2, 0, 10, ...Array.from('onMetaData', (c) => c.charCodeAt(0)));
const FLV_SIGNATURE = [0x46, 0x4c, 0x56];

/** A copy of a whole tag with its timestamp (24 bits + TimestampExtended) replaced. */
export function restamp(tag: Uint8Array, timestamp: number): Uint8Array {
  const out = new Uint8Array(tag);
  const ts = timestamp >>> 0;
  out[4] = (ts >>> 16) & 0xff;
  out[5] = (ts >>> 8) & 0xff;
  out[6] = ts & 0xff;
  out[7] = ts >>> 24;
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Follows a publish's FLV incrementally, whatever the chunking: reports the header and every whole tag, and keeps
 * the prelude a forwarder started mid-publish needs. A new FLV header where a tag would start begins a new publish.
 * Bytes that are not FLV (no signature, an unknown tag type, a PreviousTagSize that does not match) set
 * brokenReason, and everything is ignored up to reset(): FLV cannot be resynchronised.
 */
export class FlvFollower {
  private phase: 'header' | 'tags' | 'broken' = 'header';
  private readonly head = new Uint8Array(13);
  private headFill = 0;
  /** A tag split across chunks: its bytes so far. */
  private partial: Uint8Array | null = null;
  private partialFill = 0;
  private header: Uint8Array | null = null;
  private metadataTag: Uint8Array | null = null;
  private videoConfig: Uint8Array | null = null;
  private audioConfig: Uint8Array | null = null;
  private flags = { audio: false, video: false };
  /** Why the stream is being ignored, when it is. */
  brokenReason: string | null = null;

  /** The next bytes start a new FLV (a new publish). */
  reset(): void {
    this.phase = 'header';
    this.headFill = 0;
    this.partial = null;
    this.partialFill = 0;
    this.header = null;
    this.metadataTag = null;
    this.videoConfig = null;
    this.audioConfig = null;
    this.brokenReason = null;
  }

  get hasVideo(): boolean {
    return this.flags.video;
  }

  /** The FLV header, the latest onMetaData and the sequence headers, all at timestamp 0; null before the header. */
  prelude(): Uint8Array | null {
    if (!this.header) return null;
    return concat(
      [this.header, this.metadataTag, this.videoConfig, this.audioConfig].filter((p): p is Uint8Array => !!p),
    );
  }

  push(chunk: Uint8Array, on: (e: FlvEvent) => void): void {
    let at = 0;
    while (at < chunk.length && this.phase !== 'broken') {
      if (this.phase === 'header') {
        const n = Math.min(13 - this.headFill, chunk.length - at);
        this.head.set(chunk.subarray(at, at + n), this.headFill);
        this.headFill += n;
        at += n;
        if (this.headFill === 13) this.onHeader(on);
        continue;
      }
      if (this.partial) {
        // Still reading the 11-byte tag header into `partial`, or the rest of the tag.
        const want = this.partial.length - this.partialFill;
        const n = Math.min(want, chunk.length - at);
        this.partial.set(chunk.subarray(at, at + n), this.partialFill);
        this.partialFill += n;
        at += n;
        if (this.partialFill < this.partial.length) continue;
        if (this.partial.length === 11) {
          const size = this.tagSize(this.partial, 0);
          if (size === null) continue;
          const whole = new Uint8Array(size + 15);
          whole.set(this.partial);
          this.partial = whole;
          this.partialFill = 11;
          continue;
        }
        const tag = this.partial;
        this.partial = null;
        this.partialFill = 0;
        this.onTag(tag, on);
        continue;
      }
      const left = chunk.length - at;
      if (left >= 3 && FLV_SIGNATURE.every((b, i) => chunk[at + i] === b)) {
        // 'F' (0x46) is no tag type: a new publish's header where a tag would start.
        this.reset();
        continue;
      }
      if (left < 11) {
        if (!this.validType(chunk[at] as number, true)) continue;
        this.partial = new Uint8Array(11);
        this.partial.set(chunk.subarray(at));
        this.partialFill = left;
        at = chunk.length;
        continue;
      }
      const size = this.tagSize(chunk, at);
      if (size === null) continue;
      if (left >= size + 15) {
        this.onTag(chunk.subarray(at, at + size + 15), on);
        at += size + 15;
      } else {
        this.partial = new Uint8Array(size + 15);
        this.partial.set(chunk.subarray(at));
        this.partialFill = left;
        at = chunk.length;
      }
    }
  }

  private break(why: string): void {
    this.phase = 'broken';
    this.partial = null;
    this.brokenReason = why;
  }

  /** A tag type this follower forwards; `orSignature`: or 'F', which may begin a new header (checked when whole). */
  private validType(b: number, orSignature = false): boolean {
    const type = b & 0x1f;
    if (type === FLV_TAG.audio || type === FLV_TAG.video || type === FLV_TAG.script) return true;
    if (orSignature && b === FLV_SIGNATURE[0]) return true;
    this.break(`FLV tag type ${type}`);
    return false;
  }

  /** The DataSize of the tag header at `at`, or null (and broken) when the header is not a tag's. */
  private tagSize(bytes: Uint8Array, at: number): number | null {
    const b0 = bytes[at] as number;
    if (b0 === FLV_SIGNATURE[0] && bytes[at + 1] === FLV_SIGNATURE[1] && bytes[at + 2] === FLV_SIGNATURE[2]) {
      // A new header split so that its signature ended up in `partial`: restart from those bytes.
      const rest = bytes.subarray(at, at + 11);
      this.reset();
      this.head.set(rest.subarray(0, 11));
      this.headFill = rest.length;
      return null;
    }
    if (!this.validType(b0)) return null;
    return ((bytes[at + 1] as number) << 16) | ((bytes[at + 2] as number) << 8) | (bytes[at + 3] as number);
  }

  private onHeader(on: (e: FlvEvent) => void): void {
    const h = this.head;
    if (!FLV_SIGNATURE.every((b, i) => h[i] === b)) {
      this.break('no FLV signature');
      return;
    }
    const offset = ((h[5] as number) << 24) | ((h[6] as number) << 16) | ((h[7] as number) << 8) | (h[8] as number);
    if (offset !== 9) {
      this.break(`FLV header of ${offset} bytes`);
      return;
    }
    this.header = new Uint8Array(h);
    this.flags = { audio: ((h[4] as number) & 4) !== 0, video: ((h[4] as number) & 1) !== 0 };
    this.phase = 'tags';
    on({ kind: 'header', bytes: this.header, ...this.flags });
  }

  private onTag(tag: Uint8Array, on: (e: FlvEvent) => void): void {
    const size = tag.length - 15;
    const view = new DataView(tag.buffer, tag.byteOffset, tag.byteLength);
    if (view.getUint32(size + 11) !== size + 11) {
      this.break('PreviousTagSize does not match');
      return;
    }
    const type = (tag[0] as number) & 0x1f;
    if ((tag[0] as number) & 0x20) return; // encrypted (filtered) tags: not ours to forward
    const timestamp = ((view.getUint32(4) >>> 8) | ((tag[7] as number) << 24)) >>> 0;
    const body = tag.subarray(11, 11 + size);
    let keyframe = false;
    let sequenceHeader = false;
    let metadata = false;
    try {
      if (type === FLV_TAG.video && size > 0) {
        const info = videoCodec(body);
        sequenceHeader = info.sequenceHeader;
        keyframe = info.keyframe && !info.sequenceHeader && !info.endOfSequence && info.frameType !== 5;
        if (sequenceHeader) this.videoConfig = restamp(tag, 0);
      } else if (type === FLV_TAG.audio && size > 0) {
        sequenceHeader = audioCodec(body).sequenceHeader;
        if (sequenceHeader) this.audioConfig = restamp(tag, 0);
      } else if (type === FLV_TAG.script) {
        metadata = size >= ON_METADATA.length && ON_METADATA.every((b, i) => body[i] === b);
        if (metadata) this.metadataTag = restamp(tag, 0);
      }
    } catch {
      // A body this code cannot read is forwarded as it is; ffmpeg judges it.
    }
    on({ kind: 'tag', type, timestamp, bytes: tag, keyframe, sequenceHeader, metadata });
  }
}
