// One RTMP connection on the publish side of a server, as a pure state machine: bytes and the time in, bytes to
// send and events out. No sockets, timers or clock: the caller owns those (roles/live). The command flow is the one
// ffmpeg (libavformat/rtmpproto.c) and OBS (librtmp) send: connect, releaseStream, FCPublish, createStream,
// publish … FCUnpublish, deleteStream (RTMP 1.0 §7.2; the FC* calls are Flash Media Server conventions).
import { SmoothcastError } from '../../core/errors.ts';
import {
  type Amf0Limits,
  type Amf0Object,
  type Amf0Value,
  decodeAmf0All,
  encodeAmf0,
  propertiesOf,
  protocolError,
} from './amf0.ts';
import { ChunkReader, type ChunkReaderLimits, ChunkWriter, MSG, type RtmpMessage } from './chunk.ts';
import { readFlvTags } from './flv.ts';
import { type RandomBytes, ServerHandshake } from './handshake.ts';

export type RtmpEvent =
  | { type: 'connect'; app: string; tcUrl: string }
  /**
   * The session waits for accept() or reject(). `streamKey` is the publish name before any `?query`. Exactly one
   * `unpublish` follows, whatever ends the publish: the client, reject(), a protocol error or end().
   */
  | { type: 'publish'; streamKey: string; app: string; query: string }
  | { type: 'metadata'; data: Amf0Object }
  | { type: 'video'; timestamp: number; data: Uint8Array }
  | { type: 'audio'; timestamp: number; data: Uint8Array }
  | { type: 'unpublish' }
  | { type: 'error'; error: SmoothcastError };

/** BadName: wrong or busy stream key (what nginx-rtmp and SRS send); Failed/Denied: refused for another reason. */
export type PublishRefusal = 'NetStream.Publish.BadName' | 'NetStream.Publish.Failed' | 'NetStream.Publish.Denied';

export interface RtmpOutput {
  /** Bytes to write to the peer, in order. */
  out: Uint8Array[];
  events: RtmpEvent[];
}

export interface RtmpSessionOptions {
  randomBytes: RandomBytes;
  /** Our chunk size, announced right after connect. */
  chunkSize?: number;
  /** The Window Acknowledgement Size and Set Peer Bandwidth we announce. */
  windowAckSize?: number;
  limits?: Partial<ChunkReaderLimits>;
  amf0?: Partial<Amf0Limits>;
}

export type SessionState = 'handshake' | 'connecting' | 'connected' | 'pending' | 'publishing' | 'closing' | 'closed';

/** The legal transitions; anything else is a bug in this file, not the peer's fault. */
const NEXT: { readonly [S in SessionState]: readonly SessionState[] } = {
  handshake: ['connecting', 'closing', 'closed'],
  connecting: ['connected', 'closing', 'closed'],
  connected: ['pending', 'closing', 'closed'],
  pending: ['publishing', 'connected', 'closing', 'closed'],
  publishing: ['connected', 'closing', 'closed'],
  closing: ['closed'],
  closed: [],
};

/** Chunk stream ids for what we send: protocol control must use 2 (§5.4); the others are conventions. */
const CS_CONTROL = 2;
const CS_COMMAND = 3;
const CS_STREAM = 5;
/** The one message stream createStream hands out. */
const STREAM_ID = 1;
/** User Control event types (§7.1.7). */
const UC_STREAM_BEGIN = 0;
const UC_PING_REQUEST = 6;
const UC_PING_RESPONSE = 7;
/** What arrives between publish and the caller's decision is held, then replayed on accept (dropped on reject). */
const HELD: ReadonlySet<number> = new Set([MSG.audio, MSG.video, MSG.aggregate, MSG.dataAmf0, MSG.dataAmf3]);

export class RtmpSession {
  private stateNow: SessionState = 'handshake';
  private readonly handshake: ServerHandshake;
  private readonly reader: ChunkReader;
  private readonly writer = new ChunkWriter();
  private readonly chunkSize: number;
  private readonly windowAckSize: number;
  private readonly amf0: Partial<Amf0Limits> | undefined;
  private app = '';
  private publishName = '';
  private publishStreamId = 0;
  /** The peer's Window Acknowledgement Size: we acknowledge each time this many more bytes have arrived. */
  private peerWindow = 0;
  private received = 0;
  private acknowledged = 0;
  private held: RtmpMessage[] = [];
  private heldBytes = 0;
  private out: Uint8Array[] = [];
  private events: RtmpEvent[] = [];

  constructor(options: RtmpSessionOptions) {
    this.handshake = new ServerHandshake(options.randomBytes);
    this.reader = new ChunkReader(options.limits);
    this.chunkSize = options.chunkSize ?? 4096;
    this.windowAckSize = options.windowAckSize ?? 2_500_000;
    if (!(this.chunkSize >= 128 && this.chunkSize <= 0xffffff)) throw new RangeError(`chunk size ${this.chunkSize}`);
    this.amf0 = options.amf0;
  }

  get state(): SessionState {
    return this.stateNow;
  }

  /** Bytes held for incomplete incoming messages (bounded by the reader's limits). */
  get bufferedBytes(): number {
    return this.reader.bufferedBytes + this.heldBytes;
  }

  /** True once the connection should be closed after writing the last `out` (after reject, play or an error). */
  get closing(): boolean {
    return this.stateNow === 'closing' || this.stateNow === 'closed';
  }

  /** Bytes from the peer. A protocol error ends the session with an `error` event; it is not thrown. */
  push(bytes: Uint8Array, nowMs: number): RtmpOutput {
    if (this.closing) return this.flush();
    this.received += bytes.length;
    this.guard(() => {
      let rest = bytes;
      if (this.stateNow === 'handshake') {
        const r = this.handshake.push(bytes, nowMs);
        this.out.push(...r.out);
        if (!r.done) return;
        this.go('connecting');
        rest = r.rest;
      }
      this.reader.read(rest, (m) => {
        if (!this.closing) this.message(m);
      });
      if (this.peerWindow > 0 && this.received - this.acknowledged >= this.peerWindow && !this.closing) {
        this.acknowledged = this.received;
        this.send(CS_CONTROL, MSG.acknowledgement, 0, u32(this.received % 2 ** 32));
      }
    });
    return this.flush();
  }

  /** Runs `f`; a protocol error becomes the session's last event. */
  private guard(f: () => void): void {
    try {
      f();
    } catch (err) {
      if (!(err instanceof SmoothcastError && err.code === 'RTMP_PROTOCOL')) throw err;
      this.endPublish();
      this.events.push({ type: 'error', error: err });
      this.go('closed');
    }
  }

  /**
   * Answers a pending publish with NetStream.Publish.Start and replays what arrived meanwhile (ffmpeg and OBS wait
   * for the answer; an encoder that does not loses nothing). Does nothing if the publish was withdrawn meanwhile.
   */
  accept(): RtmpOutput {
    if (this.stateNow !== 'pending') return this.flush();
    this.send(CS_CONTROL, MSG.userControl, 0, Uint8Array.of(0, UC_STREAM_BEGIN, ...u32(this.publishStreamId)));
    this.onStatus('status', 'NetStream.Publish.Start', `${this.publishName} is now published.`);
    this.go('publishing');
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    this.guard(() => {
      for (const m of held) if (!this.closing) this.message(m);
    });
    return this.flush();
  }

  /**
   * Refuses a pending (or running) publish with an onStatus error and marks the session closing. ffmpeg fails on
   * the error level whatever the code; OBS's librtmp acts at once only on Denied/Rejected and otherwise fails when
   * the connection closes, so the caller must close it after writing `out`.
   */
  reject(reason: string, code: PublishRefusal = 'NetStream.Publish.BadName'): RtmpOutput {
    if (this.endPublish()) this.onStatus('error', code, reason);
    if (!this.closing) this.go('closing');
    return this.flush();
  }

  /** The transport closed. */
  end(): RtmpOutput {
    this.endPublish();
    if (this.stateNow !== 'closed') this.go('closed');
    return this.flush();
  }

  /** The one `unpublish` that follows every `publish` event, whatever ends it; true if a publish was on. */
  private endPublish(): boolean {
    if (this.stateNow !== 'pending' && this.stateNow !== 'publishing') return false;
    this.events.push({ type: 'unpublish' });
    return true;
  }

  private go(next: SessionState): void {
    if (!NEXT[this.stateNow].includes(next)) throw new Error(`RtmpSession: ${this.stateNow} → ${next} is not legal`);
    if (this.stateNow === 'pending' && next !== 'publishing') {
      this.held = [];
      this.heldBytes = 0;
    }
    this.stateNow = next;
  }

  private flush(): RtmpOutput {
    const r = { out: this.out, events: this.events };
    this.out = [];
    this.events = [];
    return r;
  }

  private send(csid: number, type: number, streamId: number, payload: Uint8Array): void {
    this.out.push(this.writer.write({ csid, type, streamId, timestamp: 0, payload }));
  }

  private command(csid: number, streamId: number, ...values: Amf0Value[]): void {
    this.send(csid, MSG.commandAmf0, streamId, encodeAmf0(...values));
  }

  private onStatus(level: 'status' | 'error', code: string, description: string): void {
    const info = { level, code, description, details: this.publishName };
    this.command(CS_STREAM, this.publishStreamId, 'onStatus', 0, null, info);
  }

  private message(m: RtmpMessage): void {
    if (this.stateNow === 'pending' && HELD.has(m.type)) {
      this.heldBytes += m.payload.length;
      if (this.heldBytes > this.reader.limits.maxBufferedBytes) {
        throw protocolError(
          `RTMP: more than ${this.reader.limits.maxBufferedBytes} bytes sent before publish was answered`,
        );
      }
      this.held.push(m);
      return;
    }
    switch (m.type) {
      case MSG.windowAckSize:
        this.peerWindow = readU32(m.payload, 'Window Acknowledgement Size');
        return;
      case MSG.userControl:
        if (m.payload.length >= 6 && m.payload[1] === UC_PING_REQUEST && m.payload[0] === 0) {
          this.send(CS_CONTROL, MSG.userControl, 0, Uint8Array.of(0, UC_PING_RESPONSE, ...m.payload.subarray(2, 6)));
        }
        return;
      case MSG.audio:
      case MSG.video:
        this.media(m.type, m.streamId, m.timestamp, m.payload);
        return;
      case MSG.aggregate:
        this.aggregate(m);
        return;
      case MSG.dataAmf0:
      case MSG.dataAmf3:
        this.data(this.values(m));
        return;
      case MSG.commandAmf0:
      case MSG.commandAmf3:
        this.invoke(m.streamId, this.values(m));
        return;
      default:
        // Set Chunk Size and Abort were applied by the reader; Acknowledgement, Set Peer Bandwidth and unknown
        // types need nothing from a publish server.
        return;
    }
  }

  private values(m: RtmpMessage): Amf0Value[] {
    // An AMF3 command/data message (types 17, 15) starts with a format byte 0; its values are AMF0 from ffmpeg and
    // librtmp (AMF0 §3.1 "avmplus-object-marker" would switch, and nobody publishing sends that).
    const amf3 = m.type === MSG.commandAmf3 || m.type === MSG.dataAmf3;
    return decodeAmf0All(m.payload, amf3 && m.payload[0] === 0 ? 1 : 0, this.amf0);
  }

  private media(type: number, streamId: number, timestamp: number, data: Uint8Array): void {
    // Media outside a publish, on another stream or empty (some encoders send 0-byte audio) is dropped.
    if (this.stateNow !== 'publishing' || streamId !== this.publishStreamId || data.length === 0) return;
    this.events.push({ type: type === MSG.video ? 'video' : 'audio', timestamp, data });
  }

  /** Aggregate message (§7.1.6): FLV tags back to back, their timestamps rebased on the message's own. */
  private aggregate(m: RtmpMessage): void {
    const tags = readFlvTags(m.payload, 0, 'RTMP aggregate message');
    const first = tags[0]?.timestamp ?? 0;
    for (const t of tags) {
      if (t.type === MSG.audio || t.type === MSG.video) {
        this.media(t.type, m.streamId, (m.timestamp + t.timestamp - first) >>> 0, t.body);
      }
    }
  }

  private data(values: Amf0Value[]): void {
    // ffmpeg and OBS send ['@setDataFrame', 'onMetaData', {…}]; older encoders send ['onMetaData', {…}].
    const args = values[0] === '@setDataFrame' ? values.slice(1) : values;
    const data = propertiesOf(args[1]);
    if (args[0] === 'onMetaData' && data && this.stateNow === 'publishing')
      this.events.push({ type: 'metadata', data });
  }

  private invoke(streamId: number, values: Amf0Value[]): void {
    const [name, txid] = values;
    if (typeof name !== 'string') throw protocolError('RTMP command message does not start with a name');
    const tx = typeof txid === 'number' && Number.isFinite(txid) ? txid : 0;
    if (this.stateNow === 'connecting') {
      if (name !== 'connect') throw protocolError(`RTMP: '${name}' before connect`);
      this.connect(tx, propertiesOf(values[2]) ?? {});
      return;
    }
    const arg = typeof values[3] === 'string' ? values[3] : '';
    switch (name) {
      case 'connect':
        throw protocolError('RTMP: a second connect on one connection');
      case 'releaseStream':
        if (tx) this.command(CS_COMMAND, 0, '_result', tx, null, undefined);
        return;
      case 'FCPublish':
        this.command(CS_COMMAND, 0, 'onFCPublish', 0, null, { code: 'NetStream.Publish.Start', description: arg });
        if (tx) this.command(CS_COMMAND, 0, '_result', tx, null, undefined);
        return;
      case 'createStream':
        this.command(CS_COMMAND, 0, '_result', tx, null, STREAM_ID);
        return;
      case 'publish':
        this.publish(streamId, arg);
        return;
      case 'FCUnpublish':
      case 'deleteStream':
      case 'closeStream':
        if (this.endPublish()) this.go('connected');
        return;
      case 'play':
        // This server only takes publishers; say so (NetStream.Play.Failed) rather than leave a player waiting.
        this.publishStreamId = streamId;
        this.onStatus('error', 'NetStream.Play.Failed', 'this server does not play streams');
        this.go('closing');
        return;
      default:
        // Unknown calls (getStreamLength, _checkbw, …): an _error answers any that expects a result.
        if (tx) {
          const info = { level: 'error', code: 'NetConnection.Call.Failed', description: `unknown command ${name}` };
          this.command(CS_COMMAND, 0, '_error', tx, null, info);
        }
        return;
    }
  }

  private connect(tx: number, cmd: Amf0Object): void {
    this.app = typeof cmd.app === 'string' ? cmd.app : '';
    const tcUrl = typeof cmd.tcUrl === 'string' ? cmd.tcUrl : '';
    this.send(CS_CONTROL, MSG.windowAckSize, 0, u32(this.windowAckSize));
    // Limit type 2 = dynamic (§5.4.5).
    this.send(CS_CONTROL, MSG.setPeerBandwidth, 0, Uint8Array.of(...u32(this.windowAckSize), 2));
    this.send(CS_CONTROL, MSG.setChunkSize, 0, u32(this.chunkSize));
    this.writer.chunkSize = this.chunkSize;
    this.command(
      CS_COMMAND,
      0,
      '_result',
      tx,
      { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
      {
        level: 'status',
        code: 'NetConnection.Connect.Success',
        description: 'Connection succeeded.',
        objectEncoding: 0,
      },
    );
    this.go('connected');
    this.events.push({ type: 'connect', app: this.app, tcUrl });
  }

  private publish(streamId: number, name: string): void {
    if (this.stateNow !== 'connected') throw protocolError(`RTMP: publish while ${this.stateNow}`);
    this.publishName = name;
    this.publishStreamId = streamId;
    const q = name.indexOf('?');
    const streamKey = q < 0 ? name : name.slice(0, q);
    const query = q < 0 ? '' : name.slice(q + 1);
    this.go('pending');
    this.events.push({ type: 'publish', streamKey, app: this.app, query });
  }
}

function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0);
  return b;
}

function readU32(p: Uint8Array, what: string): number {
  if (p.length < 4) throw protocolError(`RTMP ${what}: payload shorter than 4 bytes`);
  return new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(0);
}
