// The server side of the simple RTMP handshake (RTMP 1.0 §5.2): C0+C1 in, S0+S1+S2 out, C2 in. The digest
// ("complex", Flash Player 9) handshake is not offered: S1's second field is zero, which tells ffmpeg, librtmp and
// OBS that the server does not use it, and all three then complete the simple one.
import { protocolError } from './amf0.ts';

export const RTMP_VERSION = 3;
/** C1, S1, C2 and S2 are each 1536 bytes (§5.2.3, §5.2.4). */
export const HANDSHAKE_SIZE = 1536;

export type RandomBytes = (n: number) => Uint8Array;

export interface HandshakeResult {
  /** Bytes to send (S0+S1+S2 once C0+C1 have arrived). */
  out: Uint8Array[];
  /** True once C2 has been consumed; `rest` then holds the first chunk-stream bytes. */
  done: boolean;
  rest: Uint8Array;
}

type Phase = 'c0c1' | 'c2' | 'done';

export class ServerHandshake {
  private readonly random: RandomBytes;
  private phase: Phase = 'c0c1';
  private buffer = new Uint8Array(1 + HANDSHAKE_SIZE);
  private filled = 0;

  constructor(random: RandomBytes) {
    this.random = random;
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  /**
   * Consumes handshake bytes in any split. `nowMs` fills S1's time field and S2's time2 ("the timestamp at which
   * the previous packet sent by the peer was read", §5.2.4); only their differences mean anything to the peer.
   */
  push(bytes: Uint8Array, nowMs: number): HandshakeResult {
    const out: Uint8Array[] = [];
    let at = 0;
    while (this.phase !== 'done' && at < bytes.length) {
      const want = (this.phase === 'c0c1' ? 1 + HANDSHAKE_SIZE : HANDSHAKE_SIZE) - this.filled;
      const n = Math.min(want, bytes.length - at);
      this.buffer.set(bytes.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
      if (this.phase === 'c0c1' && this.buffer[0] !== RTMP_VERSION) {
        // §5.2.2: 3 is the only version defined; 6 is RTMPE (encrypted), which needs the digest handshake.
        throw protocolError(`RTMP handshake: client version ${this.buffer[0]}, only ${RTMP_VERSION} is supported`);
      }
      if (n < want) break;
      if (this.phase === 'c0c1') {
        out.push(this.reply(this.buffer.subarray(1, 1 + HANDSHAKE_SIZE), nowMs));
        this.phase = 'c2';
        this.buffer = new Uint8Array(HANDSHAKE_SIZE);
      } else {
        // C2 should echo S1 (§5.2.4); it is not checked, as servers commonly don't: a mismatch proves nothing
        // about the client, and the chunk stream that follows is validated on its own.
        this.phase = 'done';
        this.buffer = new Uint8Array(0);
      }
      this.filled = 0;
    }
    return { out, done: this.phase === 'done', rest: bytes.subarray(at) };
  }

  private reply(c1: Uint8Array, nowMs: number): Uint8Array {
    const time = Math.max(0, Math.floor(nowMs)) >>> 0;
    const out = new Uint8Array(1 + 2 * HANDSHAKE_SIZE);
    const view = new DataView(out.buffer);
    out[0] = RTMP_VERSION;
    // S1: time(4), zero(4), random(1528).
    view.setUint32(1, time);
    view.setUint32(5, 0);
    const random = this.random(HANDSHAKE_SIZE - 8);
    if (random.length !== HANDSHAKE_SIZE - 8) throw new RangeError('randomBytes returned the wrong length');
    out.set(random, 9);
    // S2: the echo of C1, with time2 = when C1 was read.
    const s2 = 1 + HANDSHAKE_SIZE;
    out.set(c1, s2);
    view.setUint32(s2 + 4, time);
    return out;
  }
}
