// The RTMP chunk stream (RTMP 1.0 §5.3): messages cut into chunks of at most the sender's chunk size, interleaved
// by chunk stream id, with headers compressed against the previous chunk of the same chunk stream.
// ChunkReader takes bytes in any split and returns whole messages; ChunkWriter cuts messages with our chunk size.
import { concatBytes, protocolError } from './amf0.ts';

/** Message type ids (§5.4, §6.2, §7.1). */
export const MSG = {
  setChunkSize: 1,
  abort: 2,
  acknowledgement: 3,
  userControl: 4,
  windowAckSize: 5,
  setPeerBandwidth: 6,
  audio: 8,
  video: 9,
  dataAmf3: 15,
  commandAmf3: 17,
  dataAmf0: 18,
  commandAmf0: 20,
  aggregate: 22,
} as const;

export const DEFAULT_CHUNK_SIZE = 128;
/** §5.4.1: sizes above 0xFFFFFF are equivalent, since no message is longer than its 24-bit length field. */
export const MAX_CHUNK_SIZE = 0xffffff;

export interface RtmpMessage {
  csid: number;
  type: number;
  streamId: number;
  /** Milliseconds, 32-bit and wrapping (§5.3.1.2.5 "timestamps … MUST be taken modulo 2^32"). */
  timestamp: number;
  payload: Uint8Array;
}

export interface ChunkReaderLimits {
  /** A message declaring a longer length is a protocol error. */
  maxMessageSize: number;
  /** Bytes of unfinished messages held across all chunk streams (counted as they arrive, not as declared). */
  maxBufferedBytes: number;
  /** Chunk stream ids remembered (each holds its last header). */
  maxChunkStreams: number;
}

export const CHUNK_READER_LIMITS: ChunkReaderLimits = {
  maxMessageSize: 16 << 20,
  maxBufferedBytes: 32 << 20,
  maxChunkStreams: 64,
};

/** What §5.3.1.2 lets the next header on the same chunk stream leave out. */
interface StreamState {
  csid: number;
  timestamp: number;
  /** The delta a type-3 header starting a new message repeats; after type 0 it is that absolute timestamp. */
  delta: number;
  length: number;
  type: number;
  streamId: number;
  /** The last type 0/1/2 header carried an extended timestamp, so type-3 headers repeat one (§5.3.1.3). */
  extended: boolean;
  pieces: Uint8Array[];
  received: number;
}

const HEADER_LENGTH = [11, 7, 3, 0] as const;

interface Sink {
  push(m: RtmpMessage): void;
}

export class ChunkReader {
  readonly limits: ChunkReaderLimits;
  /** The peer's chunk size, changed by its Set Chunk Size messages (applied before the next chunk is read). */
  chunkSize = DEFAULT_CHUNK_SIZE;
  private readonly streams = new Map<number, StreamState>();
  /** The chunk header being assembled (at most 3 + 11 + 4 bytes). */
  private readonly head = new Uint8Array(18);
  private headLength = 0;
  /** The chunk stream whose chunk payload is being read, and how much of this chunk is left. */
  private current: StreamState | undefined;
  private chunkLeft = 0;
  private buffered = 0;

  constructor(limits?: Partial<ChunkReaderLimits>) {
    this.limits = { ...CHUNK_READER_LIMITS, ...limits };
  }

  /** Bytes held for messages not yet complete. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** True between chunks, when the next byte starts a chunk header (for tests that aim at the headers). */
  get atHeader(): boolean {
    return this.current === undefined;
  }

  /** Complete messages found in `bytes` (copied: the caller may reuse its buffer). */
  push(bytes: Uint8Array): RtmpMessage[] {
    const out: RtmpMessage[] = [];
    this.read(bytes, (m) => out.push(m));
    return out;
  }

  /**
   * As push, handing each message to `sink` as soon as it is complete: a sink that throws, or a protocol error,
   * stops the read after the messages already delivered.
   */
  read(bytes: Uint8Array, sink: (m: RtmpMessage) => void): void {
    const out = { push: sink };
    let at = 0;
    while (at < bytes.length) {
      const s = this.current;
      if (s) {
        const n = Math.min(this.chunkLeft, bytes.length - at);
        if (this.buffered + n > this.limits.maxBufferedBytes) {
          throw protocolError(`RTMP: more than ${this.limits.maxBufferedBytes} bytes of unfinished messages`);
        }
        s.pieces.push(bytes.slice(at, at + n));
        s.received += n;
        this.buffered += n;
        this.chunkLeft -= n;
        at += n;
        if (this.chunkLeft === 0) {
          this.current = undefined;
          this.finish(s, out);
        }
        continue;
      }
      const need = this.headerNeed();
      if (need > this.headLength) {
        const n = Math.min(need - this.headLength, bytes.length - at);
        this.head.set(bytes.subarray(at, at + n), this.headLength);
        this.headLength += n;
        at += n;
        // The length can grow as more of the header is known (basic header form, then extended timestamp).
        if (this.headLength < this.headerNeed()) continue;
      }
      this.header(out);
    }
  }

  /** Header bytes needed, as far as the bytes so far tell. */
  private headerNeed(): number {
    if (this.headLength === 0) return 1;
    const b0 = this.head[0] as number;
    const fmt = b0 >> 6;
    const low = b0 & 0x3f;
    const basic = low === 0 ? 2 : low === 1 ? 3 : 1;
    const fixed = basic + HEADER_LENGTH[fmt as 0 | 1 | 2 | 3];
    if (this.headLength < basic) return basic;
    if (fmt === 3) return fixed + (this.streams.get(this.csid())?.extended ? 4 : 0);
    if (this.headLength < basic + 3) return fixed;
    const field =
      ((this.head[basic] as number) << 16) | ((this.head[basic + 1] as number) << 8) | this.head[basic + 2]!;
    return fixed + (field === 0xffffff ? 4 : 0);
  }

  private csid(): number {
    const low = (this.head[0] as number) & 0x3f;
    if (low === 0) return 64 + (this.head[1] as number);
    if (low === 1) return 64 + (this.head[1] as number) + ((this.head[2] as number) << 8);
    return low;
  }

  private header(out: Sink): void {
    const h = this.head;
    const fmt = (h[0] as number) >> 6;
    const csid = this.csid();
    const low = (h[0] as number) & 0x3f;
    let p = low === 0 ? 2 : low === 1 ? 3 : 1;
    const u24 = () => {
      const v = ((h[p] as number) << 16) | ((h[p + 1] as number) << 8) | (h[p + 2] as number);
      p += 3;
      return v;
    };
    this.headLength = 0;
    let reinject: Uint8Array | undefined;
    let s = this.streams.get(csid);
    if (!s) {
      if (fmt !== 0) throw protocolError(`RTMP chunk stream ${csid} starts with a type-${fmt} header`);
      if (this.streams.size >= this.limits.maxChunkStreams) {
        throw protocolError(`RTMP: more than ${this.limits.maxChunkStreams} chunk streams`);
      }
      s = { csid, timestamp: 0, delta: 0, length: 0, type: 0, streamId: 0, extended: false, pieces: [], received: 0 };
      this.streams.set(csid, s);
    }
    const midMessage = s.received > 0;
    if (fmt !== 3 && midMessage) {
      // §5.3.1: the chunks of one message are contiguous on their chunk stream; only type 3 continues one.
      throw protocolError(`RTMP chunk stream ${csid}: a type-${fmt} header in the middle of a message`);
    }
    if (fmt <= 2) {
      let field = u24();
      if (fmt <= 1) {
        s.length = u24();
        s.type = h[p++] as number;
      }
      if (fmt === 0) {
        // Message stream id is little-endian (§5.3.1.2.1), the one exception in the protocol.
        s.streamId =
          ((h[p] as number) | ((h[p + 1] as number) << 8) | ((h[p + 2] as number) << 16)) + h[p + 3]! * 2 ** 24;
        p += 4;
      }
      s.extended = field === 0xffffff;
      if (s.extended) field = new DataView(h.buffer).getUint32(p);
      s.delta = field;
      s.timestamp = fmt === 0 ? field : (s.timestamp + field) >>> 0;
    } else {
      // Type 3: a new message repeats the previous delta (§5.3.1.2.4). ffmpeg and librtmp repeat the extended field
      // too; some encoders do not (§5.3.1.3 only speaks of types 0–2). Four bytes that differ from the value are
      // taken as payload instead, as SRS does, so both kinds survive past 2^24 ms (4.66 h).
      if (s.extended && new DataView(h.buffer).getUint32(p) !== s.delta) reinject = h.slice(p, p + 4);
      if (!midMessage) s.timestamp = (s.timestamp + s.delta) >>> 0;
    }
    if (!midMessage && s.length > this.limits.maxMessageSize) {
      throw protocolError(`RTMP message of ${s.length} bytes is over the limit of ${this.limits.maxMessageSize}`);
    }
    this.chunkLeft = Math.min(this.chunkSize, s.length - s.received);
    if (this.chunkLeft > 0) this.current = s;
    else this.finish(s, out);
    if (reinject) this.read(reinject, (m) => out.push(m));
  }

  private finish(s: StreamState, out: Sink): void {
    if (s.received < s.length) return;
    const payload = concatBytes(s.pieces.length ? s.pieces : [new Uint8Array(0)]);
    this.buffered -= s.received;
    s.pieces = [];
    s.received = 0;
    const message = { csid: s.csid, type: s.type, streamId: s.streamId, timestamp: s.timestamp, payload };
    // Protocol control messages take effect before the next chunk is read (§5.4).
    if (s.type === MSG.setChunkSize) this.setChunkSize(payload);
    else if (s.type === MSG.abort) this.abort(payload);
    out.push(message);
  }

  private setChunkSize(payload: Uint8Array): void {
    if (payload.length < 4) throw protocolError('RTMP Set Chunk Size: payload shorter than 4 bytes');
    const size = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
    // §5.4.1: the top bit MUST be zero; sizes are 1 to 0x7FFFFFFF.
    if (size === 0 || size > 0x7fffffff) throw protocolError(`RTMP Set Chunk Size: invalid size ${size}`);
    this.chunkSize = Math.min(size, MAX_CHUNK_SIZE);
  }

  private abort(payload: Uint8Array): void {
    if (payload.length < 4) throw protocolError('RTMP Abort: payload shorter than 4 bytes');
    // §5.4.2: discard the partly received message on that chunk stream.
    const s = this.streams.get(new DataView(payload.buffer, payload.byteOffset).getUint32(0));
    if (s && s !== this.current) {
      this.buffered -= s.received;
      s.pieces = [];
      s.received = 0;
    }
  }
}

export interface OutgoingMessage {
  csid: number;
  type: number;
  streamId: number;
  timestamp: number;
  payload: Uint8Array;
}

export interface ChunkWriterOptions {
  /**
   * Compress headers against the previous message on the chunk stream (types 1–3, the way ffmpeg and librtmp
   * send). Off by default: a type-0 header on every message is always correct and costs 11 bytes.
   */
  compress?: boolean;
}

export class ChunkWriter {
  /** Our chunk size; change it only right after sending Set Chunk Size with the same value. */
  chunkSize = DEFAULT_CHUNK_SIZE;
  private readonly compress: boolean;
  private readonly last = new Map<
    number,
    { timestamp: number; delta: number; length: number; type: number; streamId: number }
  >();

  constructor(options: ChunkWriterOptions = {}) {
    this.compress = options.compress ?? false;
  }

  write(m: OutgoingMessage): Uint8Array {
    const { csid, type, streamId, payload } = m;
    if (!(csid >= 2 && csid <= 65599)) throw new RangeError(`chunk stream id ${csid} is outside 2..65599`);
    if (payload.length > 0xffffff) throw new RangeError(`a ${payload.length}-byte message does not fit RTMP`);
    const timestamp = m.timestamp >>> 0;
    const prev = this.last.get(csid);
    let fmt = 0;
    let field = timestamp;
    if (this.compress && prev && prev.streamId === streamId && timestamp >= prev.timestamp) {
      field = timestamp - prev.timestamp;
      fmt = prev.type === type && prev.length === payload.length ? (field === prev.delta ? 3 : 2) : 1;
    }
    this.last.set(csid, { timestamp, delta: field, length: payload.length, type, streamId });
    const extended = field >= 0xffffff;
    const chunks: Uint8Array[] = [];
    let offset = 0;
    do {
      const n = Math.min(this.chunkSize, payload.length - offset);
      const first = offset === 0;
      const f = first ? fmt : 3;
      const basic = basicHeader(f, csid);
      const size = first ? HEADER_LENGTH[f as 0 | 1 | 2 | 3] : 0;
      const header = new Uint8Array(basic.length + size + (extended ? 4 : 0));
      const view = new DataView(header.buffer);
      header.set(basic);
      let p = basic.length;
      if (size >= 3) {
        const t = extended ? 0xffffff : field;
        header.set([(t >>> 16) & 0xff, (t >>> 8) & 0xff, t & 0xff], p);
        p += 3;
      }
      if (size >= 7) {
        header.set([(payload.length >>> 16) & 0xff, (payload.length >>> 8) & 0xff, payload.length & 0xff, type], p);
        p += 4;
      }
      if (size === 11) {
        view.setUint32(p, streamId >>> 0, true);
        p += 4;
      }
      // Type-3 chunks repeat the extended timestamp, as ffmpeg and librtmp both write and read it (§5.3.1.3).
      if (extended) view.setUint32(p, field);
      chunks.push(header, payload.subarray(offset, offset + n));
      offset += n;
    } while (offset < payload.length);
    return concatBytes(chunks);
  }
}

function basicHeader(fmt: number, csid: number): Uint8Array {
  if (csid < 64) return Uint8Array.of((fmt << 6) | csid);
  if (csid < 320) return Uint8Array.of(fmt << 6, csid - 64);
  const v = csid - 64;
  return Uint8Array.of((fmt << 6) | 1, v & 0xff, v >>> 8);
}
