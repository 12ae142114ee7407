// One RTMP socket: bytes in → RtmpSession → bytes out and events; events become a publish's FLV for its sink. The
// socket, the timers and the publish's life are here; the protocol is in RtmpSession. Every failure ends this
// connection only: nothing thrown here reaches the server or another socket.
import type { Socket } from 'node:net';
import type { Amf0Object } from '../../media/rtmp/amf0.ts';
import {
  type AudioCodec,
  audioCodec,
  FLV_TAG,
  flvHeader,
  flvTag,
  metadataBody,
  metadataCodecs,
  type VideoCodec,
  videoCodec,
} from '../../media/rtmp/flv.ts';
import type { RandomBytes } from '../../media/rtmp/handshake.ts';
import { type PublishRefusal, type RtmpEvent, type RtmpOutput, RtmpSession } from '../../media/rtmp/session.ts';
import type { IngestContext, LivePublishTarget, PublishMeta, PublishSink } from './rtmp-ingest.ts';

/** A peer that does not read what we send (ping answers, acknowledgements) cannot make us buffer more than this. */
const MAX_UNSENT_BYTES = 1 << 20;
/** After a refusal or protocol error, the peer has this long to hang up before we do. */
const LINGER_MS = 1000;
/** Without onMetaData, the sink is opened at the first coded video frame or after this many audio tags. */
const MAX_TAGS_BEFORE_OPEN = 64;

type Phase = 'authorizing' | 'metadata' | 'opening' | 'open' | 'ended';

interface Publication<T> {
  streamKey: string;
  app: string;
  query: string;
  phase: Phase;
  target?: T;
  metadata: Amf0Object | null;
  /** FLV tags waiting for the sink (before onMetaData, and while onPublish runs). */
  pending: Uint8Array[];
  pendingBytes: number;
  tagsSeen: number;
  sawAudio: boolean;
  sawVideo: boolean;
  videoCodec: VideoCodec | null;
  audioCodec: AudioCodec | null;
  /** The first media tag's timestamp: FLV for the sink starts at 0. */
  base: number | null;
  sink?: PublishSink;
}

export class RtmpConnection<T extends LivePublishTarget> {
  /** Resolves once the socket has closed and the publish (if any) has been ended. */
  readonly closed: Promise<void>;
  private readonly socket: Socket;
  private readonly ctx: IngestContext<T>;
  private readonly session: RtmpSession;
  private readonly remote: string | undefined;
  private pub: Publication<T> | null = null;
  private readonly pauses = new Set<'backpressure' | 'opening'>();
  private handshakeTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private gone = false;

  constructor(socket: Socket, ctx: IngestContext<T>, random: RandomBytes) {
    this.socket = socket;
    this.ctx = ctx;
    this.remote = socket.remoteAddress;
    this.session = new RtmpSession({ randomBytes: random });
    this.handshakeTimer = setTimeout(
      () => this.destroy('no handshake and connect in time'),
      ctx.options.limits.handshakeTimeoutMs,
    );
    this.armIdle();
    this.closed = new Promise<void>((resolve) => {
      socket.on('close', () => {
        this.gone = true;
        clearTimeout(this.handshakeTimer);
        this.stopIdle();
        clearTimeout(this.lingerTimer);
        this.safely(() => this.handle(this.session.end()));
        // Whatever happened above, a publish of this connection holds nothing any more.
        if (this.pub) this.endPublication(this.pub);
        resolve();
      });
    });
    socket.on('error', (err) => this.ctx.log('rtmp: socket error', { remote: this.remote, error: err.message }));
    socket.on('data', (chunk: Buffer) => {
      if (this.session.closing) return;
      this.idleTimer?.refresh();
      this.safely(() => this.handle(this.session.push(chunk, Date.now())));
    });
  }

  /** The stream this connection publishes (once its key was accepted). */
  get streamId(): string | undefined {
    return this.pub?.phase === 'ended' ? undefined : this.pub?.target?.streamId;
  }

  get paused(): boolean {
    return this.pauses.size > 0;
  }

  /** Closes the socket at once; the publish (if any) ends when it has closed. */
  destroy(reason: string): void {
    if (this.gone) return;
    if (!this.socket.destroyed) this.ctx.log('rtmp: connection closed', { remote: this.remote, reason });
    this.socket.destroy();
  }

  private safely(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.ctx.log('rtmp: connection failed', { remote: this.remote, error: String(err) });
      this.destroy('internal error');
    }
  }

  private handle(r: RtmpOutput): void {
    if (!this.socket.destroyed) {
      for (const b of r.out) this.socket.write(b);
      if (this.socket.writableLength > MAX_UNSENT_BYTES) this.destroy('the peer does not read');
    }
    for (const e of r.events) this.event(e);
    if (this.session.closing && !this.gone && !this.lingerTimer) {
      // Written, then closed (OBS needs the close to give up on a refusal); a peer that stays is dropped.
      this.socket.end();
      this.stopIdle();
      this.lingerTimer = setTimeout(() => this.destroy('closing'), LINGER_MS);
    }
  }

  private event(e: RtmpEvent): void {
    switch (e.type) {
      case 'connect':
        clearTimeout(this.handshakeTimer);
        this.handshakeTimer = undefined;
        return;
      case 'publish':
        this.publish(e.streamKey, e.app, e.query);
        return;
      case 'metadata':
        this.metadata(e.data);
        return;
      case 'audio':
      case 'video':
        this.media(e.type, e.timestamp, e.data);
        return;
      case 'unpublish':
        if (this.pub) this.endPublication(this.pub);
        return;
      case 'error':
        this.ctx.log('rtmp: protocol error', { remote: this.remote, error: e.error.message });
        return;
    }
  }

  private publish(streamKey: string, app: string, query: string): void {
    const pub: Publication<T> = {
      streamKey,
      app,
      query,
      phase: 'authorizing',
      metadata: null,
      pending: [],
      pendingBytes: 0,
      tagsSeen: 0,
      sawAudio: false,
      sawVideo: false,
      videoCodec: null,
      audioCodec: null,
      base: null,
    };
    this.pub = pub;
    const refuse = (reason: string, code?: PublishRefusal) => {
      this.ctx.log('rtmp: publish refused', { remote: this.remote, app, reason });
      this.handle(this.session.reject(reason, code));
    };
    // The session holds what arrives meanwhile (bounded by its limits) and replays it on accept.
    Promise.resolve()
      .then(() => this.ctx.options.authorize(streamKey, { app, query, remoteAddress: this.remote }))
      .then(
        (target) =>
          this.safely(() => {
            if (pub.phase !== 'authorizing') return; // withdrawn or the socket closed meanwhile
            if (!target) return refuse('unknown stream key');
            if (!this.ctx.claim(target.streamId, pub)) return refuse('the stream is already being published');
            pub.target = target;
            pub.phase = 'metadata';
            this.ctx.log('rtmp: publish accepted', { remote: this.remote, app, streamId: target.streamId });
            this.handle(this.session.accept());
          }),
        (err: unknown) =>
          this.safely(() => {
            this.ctx.log('rtmp: authorize failed', { remote: this.remote, error: String(err) });
            if (pub.phase === 'authorizing') refuse('authorization failed', 'NetStream.Publish.Failed');
          }),
      );
  }

  private metadata(data: Amf0Object): void {
    const pub = this.pub;
    if (!pub || pub.phase === 'ended' || pub.phase === 'authorizing') return;
    if (pub.phase === 'metadata') {
      pub.metadata = data;
      this.open(pub);
      return;
    }
    // A later onMetaData (OBS sends one again on some changes) goes to the sink like any tag.
    this.deliver(pub, flvTag(FLV_TAG.script, 0, metadataBody(data)));
  }

  private media(type: 'audio' | 'video', timestamp: number, data: Uint8Array): void {
    const pub = this.pub;
    if (!pub || pub.phase === 'ended' || pub.phase === 'authorizing') return;
    pub.base ??= timestamp;
    // A signed 32-bit difference survives the RTMP timestamp wrapping (§5.3.1.3); a tag a little before the first
    // (audio sent after video but stamped earlier) is clamped to 0.
    const ts = Math.max(0, (timestamp - pub.base) | 0);
    let coded = false;
    try {
      if (type === 'video') {
        const info = videoCodec(data);
        pub.sawVideo = true;
        pub.videoCodec ??= info.codec;
        coded = !info.sequenceHeader;
      } else {
        pub.sawAudio = true;
        pub.audioCodec ??= audioCodec(data).codec;
      }
    } catch {
      // A header this code cannot read is still the publisher's media: ffmpeg judges it.
    }
    this.deliver(pub, flvTag(type === 'video' ? FLV_TAG.video : FLV_TAG.audio, ts, data));
    pub.tagsSeen++;
    if (pub.phase === 'metadata' && (coded || pub.tagsSeen >= MAX_TAGS_BEFORE_OPEN)) this.open(pub);
  }

  private deliver(pub: Publication<T>, tag: Uint8Array): void {
    if (pub.phase === 'open') {
      this.write(pub, tag);
      return;
    }
    pub.pending.push(tag);
    pub.pendingBytes += tag.length;
    if (pub.pendingBytes > this.ctx.maxPendingBytes) this.destroy('too much media before the stream opened');
  }

  /** Hands the publish to onPublish; what arrives meanwhile is held (and the socket paused). */
  private open(pub: Publication<T>): void {
    const target = pub.target;
    if (!target) return;
    pub.phase = 'opening';
    const codecs = pub.metadata ? metadataCodecs(pub.metadata) : { video: null, audio: null };
    const flags = pub.metadata
      ? { audio: announcesAudio(pub.metadata), video: announcesVideo(pub.metadata) }
      : { audio: pub.sawAudio, video: pub.sawVideo };
    const head = [flvHeader(flags)];
    if (pub.metadata) head.push(flvTag(FLV_TAG.script, 0, metadataBody(pub.metadata)));
    pub.pending.unshift(...head);
    const meta: PublishMeta = {
      streamKey: pub.streamKey,
      app: pub.app,
      query: pub.query,
      remoteAddress: this.remote,
      metadata: pub.metadata,
      flags,
      videoCodec: pub.videoCodec ?? codecs.video,
      audioCodec: pub.audioCodec ?? codecs.audio,
    };
    this.pause('opening');
    const opened = Promise.resolve()
      .then(() => this.ctx.options.onPublish(target, meta))
      .then(
        (sink) => {
          if (pub.phase !== 'opening') return sink.end();
          pub.sink = sink;
          pub.phase = 'open';
          const pending = pub.pending;
          pub.pending = [];
          pub.pendingBytes = 0;
          this.safely(() => {
            for (const tag of pending) this.write(pub, tag);
            this.resume('opening');
          });
          sink.closed?.then(
            () => this.sinkGone(pub),
            () => this.sinkGone(pub),
          );
        },
        (err: unknown) => {
          this.ctx.log('rtmp: onPublish failed', {
            remote: this.remote,
            streamId: target.streamId,
            error: String(err),
          });
          this.destroy('the stream could not be opened');
        },
      );
    this.ctx.track(opened);
  }

  private sinkGone(pub: Publication<T>): void {
    if (pub.phase === 'open' && this.pub === pub) this.destroy('the stream sink closed');
  }

  private write(pub: Publication<T>, bytes: Uint8Array): void {
    const sink = pub.sink;
    if (!sink || sink.write(bytes) || this.pauses.has('backpressure')) return;
    this.pause('backpressure');
    sink.once('drain', () => this.safely(() => this.resume('backpressure')));
  }

  private pause(reason: 'backpressure' | 'opening'): void {
    this.pauses.add(reason);
    this.socket.pause();
    // The peer is not silent: we are not reading.
    this.stopIdle();
  }

  private resume(reason: 'backpressure' | 'opening'): void {
    if (!this.pauses.delete(reason) || this.pauses.size > 0 || this.gone) return;
    this.socket.resume();
    this.armIdle();
  }

  /** (Re)starts the idle timer, unless the connection is closing or paused. (A cleared Timeout cannot refresh.) */
  private armIdle(): void {
    this.stopIdle();
    if (this.gone || this.session.closing || this.pauses.size > 0) return;
    const ms = this.ctx.options.limits.idleTimeoutMs;
    this.idleTimer = setTimeout(() => this.destroy(`nothing received for ${ms} ms`), ms);
  }

  private stopIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private endPublication(pub: Publication<T>): void {
    if (pub.phase === 'ended') return;
    const was = pub.phase;
    pub.phase = 'ended';
    pub.pending = [];
    pub.pendingBytes = 0;
    if (pub.target) this.ctx.release(pub.target.streamId, pub);
    if (this.pub === pub) this.pub = null;
    this.pauses.clear();
    if (!this.gone && !this.socket.destroyed) {
      this.socket.resume();
      this.armIdle();
    }
    if (pub.sink) this.ctx.track(Promise.resolve().then(() => pub.sink?.end()));
    if (pub.target) this.ctx.log('rtmp: publish ended', { remote: this.remote, streamId: pub.target.streamId, was });
  }
}

/** As liveInputFromMetadata decides it, so that the FLV header and the ladder agree on audio. */
function announcesAudio(m: Amf0Object): boolean {
  return m.audiocodecid !== undefined || (typeof m.audiodatarate === 'number' && m.audiodatarate > 0);
}

function announcesVideo(m: Amf0Object): boolean {
  return m.videocodecid !== undefined || (typeof m.width === 'number' && m.width > 0);
}
