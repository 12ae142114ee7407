// The RTMP ingest: a node:net server whose every socket drives one RtmpSession (src/media/rtmp, pure). At `publish`
// the stream key is authorized and the stream claimed (one publisher per stream at a time), then the publish is
// accepted and its media handed, as FLV, to the PublishSink that onPublish returns — the ingest knows nothing about
// ladders or storage. Everything that can go wrong with one connection (protocol errors, timeouts, a sink that
// fails, a bug) closes that connection and only that one.
//
// Refusals answer `NetStream.Publish.BadName` for an unknown or busy key (ffmpeg exits at once) and the socket is
// then closed, because OBS only hangs up at once on Failed/Rejected/Denied (docs/live.md "RTMP refusal").
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Amf0Object } from '../../media/rtmp/amf0.ts';
import type { AudioCodec, VideoCodec } from '../../media/rtmp/flv.ts';
import { RtmpConnection } from './rtmp-connection.ts';

export type Logger = (msg: string, extra?: Record<string, unknown>) => void;

/** What authorize() resolves a stream key to; more fields ride along for onPublish. */
export interface LivePublishTarget {
  /** One publisher at a time per streamId, whichever key reached it. */
  streamId: string;
}

/** What is known when the media starts: the publish request and the publisher's onMetaData. */
export interface PublishMeta {
  streamKey: string;
  app: string;
  /** The publish name's `?query`, without the '?'. */
  query: string;
  remoteAddress: string | undefined;
  /** onMetaData (E.5), or null when the publisher sent media without it. */
  metadata: Amf0Object | null;
  /** The FLV header's flags as given to the sink: from onMetaData, else from the tags seen before the first frame. */
  flags: { audio: boolean; video: boolean };
  videoCodec: VideoCodec | null;
  audioCodec: AudioCodec | null;
}

/**
 * Where a publish's FLV goes (a Node Writable fits): the 13-byte header first, then the script tag with onMetaData
 * (when sent), then audio and video tags with the publisher's timestamps rebased to its first media tag.
 */
export interface PublishSink {
  /** False asks the ingest to stop reading the publisher's socket until 'drain'. */
  write(chunk: Uint8Array): boolean;
  once(event: 'drain', listener: () => void): unknown;
  /** The publish is over. A returned promise is awaited by RtmpIngest.close(). */
  end(): unknown;
  /** Settles when the sink can take no more (its process died); the ingest then drops the publisher. */
  readonly closed?: Promise<unknown>;
}

export interface RtmpIngestLimits {
  /** Sockets open at once; more are closed as they arrive. */
  maxConnections: number;
  /** From accept to the end of the RTMP handshake and the `connect` command. */
  handshakeTimeoutMs: number;
  /** No byte from the peer for this long closes the connection (not counted while the ingest itself is paused). */
  idleTimeoutMs: number;
  /** FLV held while waiting for onMetaData and for onPublish; more drops the connection. Default 8 MiB. */
  maxPendingBytes?: number;
}

export interface RtmpIngestOptions<T extends LivePublishTarget = LivePublishTarget> {
  host: string;
  /** 0: any free port (start() tells which). */
  port: number;
  /** The target for a stream key, or null to refuse it. May throw: the publish is then refused (Failed). */
  authorize(
    streamKey: string,
    info: { app: string; query: string; remoteAddress: string | undefined },
  ): Promise<T | null> | T | null;
  /** Called once per accepted publish, when the media starts; a rejection drops the publisher. */
  onPublish(target: T, meta: PublishMeta): Promise<PublishSink>;
  log?: Logger;
  limits: RtmpIngestLimits;
}

/** What a connection needs from the ingest (RtmpConnection's narrow view of it). */
export interface IngestContext<T extends LivePublishTarget> {
  readonly options: RtmpIngestOptions<T>;
  readonly log: Logger;
  readonly maxPendingBytes: number;
  /** Claims a stream for `owner`; false when another publish holds it. */
  claim(streamId: string, owner: object): boolean;
  release(streamId: string, owner: object): void;
  /** Keeps a promise (an onPublish in flight, a sink's end()) for close() to wait on. */
  track(p: Promise<unknown>): void;
}

export interface RtmpIngestStats {
  connections: number;
  /** Streams claimed by an accepted publish. */
  publishing: number;
  /** Connections whose socket is paused (sink backpressure or onPublish in flight). */
  paused: number;
}

export class RtmpIngest<T extends LivePublishTarget = LivePublishTarget> {
  private readonly server: Server;
  private readonly connections = new Set<RtmpConnection<T>>();
  private readonly live = new Map<string, object>();
  private readonly tracked = new Set<Promise<unknown>>();
  private readonly context: IngestContext<T>;
  private readonly options: RtmpIngestOptions<T>;
  private readonly log: Logger;
  private closing = false;
  private listening = false;

  constructor(options: RtmpIngestOptions<T>) {
    const { maxConnections, handshakeTimeoutMs, idleTimeoutMs } = options.limits;
    for (const [name, v] of Object.entries({ maxConnections, handshakeTimeoutMs, idleTimeoutMs })) {
      if (!(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`RtmpIngest: limits.${name} must be > 0, not ${v}`);
    }
    this.options = options;
    this.log = options.log ?? (() => {});
    const ingest = this;
    this.context = {
      options,
      log: this.log,
      maxPendingBytes: options.limits.maxPendingBytes ?? 8 << 20,
      claim(streamId, owner) {
        const holder = ingest.live.get(streamId);
        if (holder && holder !== owner) return false;
        ingest.live.set(streamId, owner);
        return true;
      },
      release(streamId, owner) {
        if (ingest.live.get(streamId) === owner) ingest.live.delete(streamId);
      },
      track(p) {
        const settled = p.then(
          () => {},
          (err: unknown) => ingest.log('rtmp: sink failed to end', { error: String(err) }),
        );
        ingest.tracked.add(settled);
        void settled.finally(() => ingest.tracked.delete(settled));
      },
    };
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  async start(): Promise<{ port: number }> {
    if (this.listening || this.closing) throw new Error('RtmpIngest.start: already started or closed');
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port, this.options.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.listening = true;
    // Accept errors (EMFILE, …) concern one incoming socket; the server keeps listening.
    this.server.on('error', (err) => this.log('rtmp: server error', { error: err.message }));
    const address = this.server.address();
    if (!address || typeof address !== 'object') throw new Error('RtmpIngest: no TCP address');
    this.log('rtmp: listening', { host: this.options.host, port: address.port });
    return { port: address.port };
  }

  /** Stops listening, drops every connection (ending their sinks) and waits for the sinks' end(). */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const serverClosed = this.listening
      ? new Promise<void>((resolve) => this.server.close(() => resolve()))
      : Promise.resolve();
    const conns = [...this.connections];
    for (const c of conns) c.destroy('the ingest is closing');
    await Promise.allSettled(conns.map((c) => c.closed));
    await serverClosed;
    while (this.tracked.size > 0) await Promise.allSettled([...this.tracked]);
  }

  /** Disconnects the publisher of a stream (stopped or shut down by the API); false when none is connected here. */
  drop(streamId: string, reason = 'the stream was stopped'): boolean {
    let found = false;
    for (const c of this.connections) {
      if (c.streamId === streamId) {
        c.destroy(reason);
        found = true;
      }
    }
    return found;
  }

  stats(): RtmpIngestStats {
    let paused = 0;
    for (const c of this.connections) if (c.paused) paused++;
    return { connections: this.connections.size, publishing: this.live.size, paused };
  }

  private accept(socket: Socket): void {
    if (this.closing || this.connections.size >= this.options.limits.maxConnections) {
      this.log('rtmp: connection refused', {
        remote: socket.remoteAddress,
        reason: this.closing ? 'closing' : 'maxConnections',
      });
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    const conn = new RtmpConnection(socket, this.context, (n) => new Uint8Array(randomBytes(n)));
    this.connections.add(conn);
    void conn.closed.then(() => this.connections.delete(conn));
  }
}
