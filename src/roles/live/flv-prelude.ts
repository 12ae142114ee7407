// Follows the FLV a publish produces (13-byte header, then tags, as RtmpIngest writes it to a sink) tag by tag, so
// that a restarted consumer — the ladder's ffmpeg after a crash, a push target reconnecting — can be given the
// stream's prelude (the header, the last onMetaData, the AVC and AAC sequence headers) and then the media from
// the next video keyframe on. Chunks may split tags anywhere; only the 11-byte tag headers and the first bytes of
// each body are looked at.

export interface FlvTagInfo {
  /** 8 audio, 9 video, 18 script. */
  type: number;
  /** The whole tag: header, body and the 4-byte PreviousTagSize after it. */
  bytes: Uint8Array;
  /** Video: a keyframe (frame type 1) that is not a sequence header. */
  keyframe: boolean;
  /** AVC or AAC sequence header (decoder configuration). */
  config: boolean;
}

const MAX_TAG = 16 << 20;

export class FlvFollower {
  #header: Uint8Array | undefined;
  #buf: Buffer = Buffer.alloc(0);
  #meta: Uint8Array | undefined;
  #videoConfig: Uint8Array | undefined;
  #audioConfig: Uint8Array | undefined;
  #broken = false;

  /** Feeds bytes; calls `onTag` for each complete tag. False once the stream is not FLV (then nothing more). */
  push(chunk: Uint8Array, onTag?: (t: FlvTagInfo) => void): boolean {
    if (this.#broken) return false;
    this.#buf = this.#buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk]);
    let at = 0;
    const b = this.#buf;
    if (!this.#header) {
      if (b.length < 13) return true;
      if (b.toString('latin1', 0, 3) !== 'FLV') {
        this.#broken = true;
        return false;
      }
      this.#header = Uint8Array.from(b.subarray(0, 13));
      at = 13;
    }
    while (b.length - at >= 11) {
      const size = b.readUIntBE(at + 1, 3);
      if (size > MAX_TAG) {
        this.#broken = true;
        return false;
      }
      const total = 11 + size + 4;
      if (b.length - at < total) break;
      const type = b[at]! & 0x1f;
      const bytes = Uint8Array.from(b.subarray(at, at + total));
      const first = size > 0 ? b[at + 11]! : 0;
      const second = size > 1 ? b[at + 12]! : 0;
      let keyframe = false;
      let config = false;
      if (type === 9) {
        // Legacy AVC: frame type in the high nibble, AVCPacketType 0 = sequence header. Enhanced RTMP sets bit 7
        // and carries the packet type in the low nibble (0 = sequence start).
        const enhanced = (first & 0x80) !== 0;
        config = enhanced ? (first & 0x0f) === 0 : second === 0;
        keyframe = ((first >> 4) & 0x07) === 1 && !config;
        if (config) this.#videoConfig = bytes;
      } else if (type === 8) {
        config = first >> 4 === 10 && second === 0;
        if (config) this.#audioConfig = bytes;
      } else if (type === 18) {
        this.#meta = bytes;
      }
      onTag?.({ type, bytes, keyframe, config });
      at += total;
    }
    this.#buf = at === 0 ? b : Buffer.from(b.subarray(at));
    return true;
  }

  /** Header + last onMetaData + sequence headers, with their timestamps set to 0; empty before the header. */
  prelude(): Uint8Array {
    if (!this.#header) return new Uint8Array(0);
    const parts = [this.#header, this.#meta, this.#videoConfig, this.#audioConfig]
      .filter((x): x is Uint8Array => x !== undefined)
      .map((x, i) => (i === 0 ? x : zeroTimestamp(x)));
    return Buffer.concat(parts);
  }
}

function zeroTimestamp(tag: Uint8Array): Uint8Array {
  const out = Uint8Array.from(tag);
  out.fill(0, 4, 8);
  return out;
}

/** The tag's timestamp (ms): 24 bits and the extended upper 8 (E.4.1). */
export function tagTimestamp(tag: Uint8Array): number {
  return ((tag[7]! << 24) | (tag[4]! << 16) | (tag[5]! << 8) | tag[6]!) >>> 0;
}

/** A copy of the tag with its timestamp moved back by `baseMs` (never below 0). */
export function rebaseTag(tag: Uint8Array, baseMs: number): Uint8Array {
  const ts = Math.max(0, tagTimestamp(tag) - baseMs);
  const out = Uint8Array.from(tag);
  out[4] = (ts >> 16) & 0xff;
  out[5] = (ts >> 8) & 0xff;
  out[6] = ts & 0xff;
  out[7] = (ts >>> 24) & 0xff;
  return out;
}
