// An FLV stream read as it arrives (Adobe Flash Video File Format Specification 10.1, E.2–E.4): the header, then
// each tag once all of its bytes are in, in whatever pieces a pipe delivers them. readFlvTags (flv.ts) reads a
// whole buffer; this is for a byte stream such as ffmpeg's `-f flv pipe:1`. At most one tag (≤ 16 MiB, the 24-bit
// DataSize) is ever buffered. Every malformed input is a SmoothcastError RTMP_PROTOCOL, after which the reader
// stays failed: a stream that lost its framing cannot be resynchronised safely.
import { type Amf0Object, decodeAmf0All, propertiesOf, protocolError } from './amf0.ts';

/** What the 9-byte FLV header (E.2) says. */
export interface FlvFileHeader {
  version: number;
  flags: { audio: boolean; video: boolean };
}

export interface FlvStreamTag {
  /** TagType without the Filter and reserved bits (8 audio, 9 video, 18 script). */
  type: number;
  /** Timestamp + TimestampExtended, in milliseconds. */
  timestamp: number;
  /** A copy: it stays valid after later push() calls. */
  body: Uint8Array;
}

export type FlvItem = ({ kind: 'header' } & FlvFileHeader) | ({ kind: 'tag' } & FlvStreamTag);

const HEADER_SIZE = 9;
const TAG_HEADER_SIZE = 11;
/** A DataOffset beyond this is not a header any FLV writer produces. */
const MAX_DATA_OFFSET = 1024;

export class FlvReader {
  private buf = new Uint8Array(64 * 1024);
  private start = 0;
  private end = 0;
  private headerRead = false;
  private failed: Error | null = null;
  private total = 0;

  /** Bytes received so far. */
  get bytesRead(): number {
    return this.total;
  }

  /** Bytes held for an incomplete header or tag. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Takes the next piece of the stream; returns the header and the tags it completes, in order. */
  push(chunk: Uint8Array): FlvItem[] {
    if (this.failed) throw this.failed;
    this.total += chunk.length;
    this.append(chunk);
    const items: FlvItem[] = [];
    try {
      for (let item = this.next(); item; item = this.next()) items.push(item);
    } catch (err) {
      this.failed = err instanceof Error ? err : new Error(String(err));
      throw this.failed;
    }
    return items;
  }

  /** The stream has ended: throws when it stopped inside the header or a tag. */
  finish(): void {
    if (this.failed) throw this.failed;
    if (this.buffered > 0) throw protocolError(`FLV: stream ended inside a tag (${this.buffered} bytes left)`);
  }

  private append(chunk: Uint8Array): void {
    const need = this.end - this.start + chunk.length;
    if (this.end + chunk.length > this.buf.length) {
      if (need <= this.buf.length) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        let size = this.buf.length;
        while (size < need) size *= 2;
        const grown = new Uint8Array(size);
        grown.set(this.buf.subarray(this.start, this.end));
        this.buf = grown;
      }
      this.end -= this.start;
      this.start = 0;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }

  private next(): FlvItem | null {
    const avail = this.end - this.start;
    const b = this.buf;
    const at = this.start;
    const view = new DataView(b.buffer, b.byteOffset + at, avail);
    if (!this.headerRead) {
      if (avail < HEADER_SIZE) {
        // Fail early on a stream that is not FLV at all.
        const sig = [0x46, 0x4c, 0x56];
        for (let i = 0; i < Math.min(avail, 3); i++) {
          if (b[at + i] !== sig[i]) throw protocolError('FLV: no FLV signature');
        }
        return null;
      }
      if (b[at] !== 0x46 || b[at + 1] !== 0x4c || b[at + 2] !== 0x56) throw protocolError('FLV: no FLV signature');
      const dataOffset = view.getUint32(5);
      if (dataOffset < HEADER_SIZE || dataOffset > MAX_DATA_OFFSET) {
        throw protocolError(`FLV: DataOffset ${dataOffset} is not a header size`);
      }
      // The header, anything up to DataOffset, then PreviousTagSize0 (E.3).
      if (avail < dataOffset + 4) return null;
      const flagsByte = b[at + 4] as number;
      this.headerRead = true;
      this.start += dataOffset + 4;
      return {
        kind: 'header',
        version: b[at + 3] as number,
        flags: { audio: (flagsByte & 4) !== 0, video: (flagsByte & 1) !== 0 },
      };
    }
    if (avail < TAG_HEADER_SIZE) return null;
    const size = view.getUint32(0) & 0xffffff;
    if (avail < TAG_HEADER_SIZE + size + 4) return null;
    const prev = view.getUint32(TAG_HEADER_SIZE + size);
    if (prev !== TAG_HEADER_SIZE + size) {
      throw protocolError(`FLV: PreviousTagSize ${prev} after a tag of ${TAG_HEADER_SIZE + size} bytes`);
    }
    const type = (b[at] as number) & 0x1f;
    const timestamp = ((view.getUint32(4) >>> 8) | ((b[at + 7] as number) << 24)) >>> 0;
    const body = b.slice(at + TAG_HEADER_SIZE, at + TAG_HEADER_SIZE + size);
    this.start += TAG_HEADER_SIZE + size + 4;
    if (this.start === this.end) this.start = this.end = 0;
    return { kind: 'tag', type, timestamp, body };
  }
}

/**
 * The onMetaData object of a SCRIPTDATA tag body (E.4.4, E.5): `onMetaData` then an object or ECMA array, with or
 * without the `@setDataFrame` RTMP publishers put first. null for any other script tag or an unreadable one.
 */
export function scriptMetadata(body: Uint8Array): Amf0Object | null {
  let values: ReturnType<typeof decodeAmf0All>;
  try {
    values = decodeAmf0All(body);
  } catch {
    return null;
  }
  const args = values[0] === '@setDataFrame' ? values.slice(1) : values;
  if (args[0] !== 'onMetaData' || args[1] === undefined) return null;
  return propertiesOf(args[1]) ?? null;
}
