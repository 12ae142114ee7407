// Test support (not shipped API): a scripted RTMP publisher that writes what ffmpeg writes, a reader for what the
// server sends back, and the tags of an ffmpeg-made FLV for turning it into publish traffic.
import { type Amf0Value, encodeAmf0 } from './amf0.ts';
import { ChunkReader, ChunkWriter, MSG, type RtmpMessage } from './chunk.ts';
import { type FlvTagRecord, readFlvTags } from './flv.ts';
import { HANDSHAKE_SIZE } from './handshake.ts';

export { prng } from '../bmff/testing.ts';

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

/** C0 + C1 (time 0, ffmpeg's Flash version bytes, a counting pattern) and a C2 the server does not check. */
export function clientHandshake(): { c0c1: Uint8Array; c2: Uint8Array } {
  const c0c1 = new Uint8Array(1 + HANDSHAKE_SIZE);
  c0c1[0] = 3;
  c0c1.set([9, 0, 124, 2], 5);
  for (let i = 9; i < c0c1.length; i++) c0c1[i] = i & 0xff;
  return { c0c1, c2: new Uint8Array(HANDSHAKE_SIZE).fill(0x5a) };
}

/** A publisher's side of the chunk stream: commands, data and media through a header-compressing ChunkWriter. */
export class Client {
  readonly writer = new ChunkWriter({ compress: true });

  setChunkSize(size: number): Uint8Array {
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, size);
    const b = this.writer.write({ csid: 2, type: MSG.setChunkSize, streamId: 0, timestamp: 0, payload: p });
    this.writer.chunkSize = size;
    return b;
  }

  control(type: number, payload: Uint8Array): Uint8Array {
    return this.writer.write({ csid: 2, type, streamId: 0, timestamp: 0, payload });
  }

  command(csid: number, streamId: number, ...values: Amf0Value[]): Uint8Array {
    return this.writer.write({ csid, type: MSG.commandAmf0, streamId, timestamp: 0, payload: encodeAmf0(...values) });
  }

  data(streamId: number, ...values: Amf0Value[]): Uint8Array {
    return this.writer.write({ csid: 4, type: MSG.dataAmf0, streamId, timestamp: 0, payload: encodeAmf0(...values) });
  }

  media(type: 8 | 9, timestamp: number, payload: Uint8Array, streamId = 1): Uint8Array {
    return this.writer.write({ csid: type === MSG.video ? 6 : 4, type, streamId, timestamp, payload });
  }

  connect(app = 'live', tcUrl = 'rtmp://127.0.0.1/live'): Uint8Array {
    return this.command(3, 0, 'connect', 1, { app, type: 'nonprivate', flashVer: 'FMLE/3.0', tcUrl });
  }

  /** releaseStream, FCPublish, createStream, publish: what ffmpeg sends after the connect _result. */
  publish(name: string): Uint8Array {
    return concat([
      this.command(3, 0, 'releaseStream', 2, null, name),
      this.command(3, 0, 'FCPublish', 3, null, name),
      this.command(3, 0, 'createStream', 4, null),
      this.command(8, 1, 'publish', 5, null, name, 'live'),
    ]);
  }

  unpublish(name: string): Uint8Array {
    return concat([this.command(3, 0, 'FCUnpublish', 6, null, name), this.command(3, 0, 'deleteStream', 7, null, 1)]);
  }
}

/** The messages in what a server sent, after its S0+S1+S2. */
export function serverMessages(out: readonly Uint8Array[], reader = new ChunkReader()): RtmpMessage[] {
  const all = concat(out);
  const skip = all[0] === 3 && all.length >= 1 + 2 * HANDSHAKE_SIZE ? 1 + 2 * HANDSHAKE_SIZE : 0;
  return reader.push(all.subarray(skip));
}

/** The tags of a well-formed FLV file (E.3: header, PreviousTagSize0, tags). */
export function flvTags(file: Uint8Array): FlvTagRecord[] {
  return readFlvTags(file, new DataView(file.buffer, file.byteOffset).getUint32(5) + 4);
}
