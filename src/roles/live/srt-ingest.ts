// The SRT ingest: MPEG-TS over SRT (what OBS, vMix and ffmpeg send) for live streams, handed on as FLV through the
// same PublishMeta/PublishSink contract as the RTMP ingest (rtmp-ingest.ts), so the ladder behind it is the same.
//
// ffmpeg's libsrt listener accepts one caller per port and cannot read the caller's streamid, so each live stream
// gets its OWN port and its own supervised ffmpeg listener, keyed by the stream's passphrase (SRT AES-128: a caller
// with a wrong or missing passphrase is refused by the SRT handshake itself, before one media byte is read):
//
//   ffmpeg -hide_banner -nostdin -loglevel error -tsbpd 0 -timeout <idle µs> -passphrase <P> -scan_all_pmts 0
//          -f mpegts -i 'srt://HOST:PORT?mode=listener&pbkeylen=16'
//          -map 0:v:0 -map 0:a:0? -c copy -f flv -flvflags no_duration_filesize -flush_packets 1 pipe:1
//
// Options, measured with ffmpeg 5.1 / libsrt 1.5.1 callers on 127.0.0.1:
// - The passphrase is an option, not part of the URL, so ffmpeg's error messages (which quote the URL) never carry it.
// - `-scan_all_pmts 0`: the ffmpeg CLI sets scan_all_pmts=1 for MPEG-TS, so the demuxer keeps waiting for more
//   programs and probes for the whole analyzeduration (5 s): the first FLV byte came 4.1 s after the caller started,
//   1.0 s with this. Of that second about 0.45 s is ffmpeg's frame-rate probe (20 frames at 30 fps); it is kept,
//   because `-fpsprobesize 0` (0.5 s) leaves onMetaData's framerate — which the live ladder's GOP grid is built
//   on — to the SPS's VUI timing, which not every encoder writes.
// - `-tsbpd 0`: packets are delivered as soon as they are in order instead of being held for the SRT latency
//   (timestamp-based delivery is for players; the ladder paces itself): still ARQ, the latency leaves the path, and
//   less of a caller's last second is lost when it hangs up without lingering (ffmpeg's default in live mode): of
//   a 4 s push at 30 fps, 113 of 120 frames arrived with TSBPD at the default 120 ms, 87 at 1 s, 116–119 without.
//   (A caller with `&linger=2` loses nothing.) The caller's latency setting is then ignored by this side.
// - `-timeout` (libsrt's read timeout, µs) ends a run whose connected caller sends nothing for idleTimeoutMs; the
//   listen itself waits forever. Our own idle timer on ffmpeg's stdout does the same once output has started.
// - `-flush_packets 1`: every packet reaches the pipe as it is muxed.
//
// Each ffmpeg run serves at most one caller. Its FLV is read here (FlvReader), onMetaData and the codecs found at the
// first coded video frame, then `authorize(streamId)` (null refuses: a stopped stream) and `onPublish(target, meta)`
// ONCE (1–2 ms after the first FLV byte; 0.94–1.3 s after an ffmpeg caller starts), and the FLV (header, onMetaData,
// then the tags with timestamps rebased to the first media tag) goes to the returned sink with backpressure (ffmpeg's
// stdout is not read while the sink says false, until 'drain'). When the caller goes (stdout ends, ffmpeg exits) the
// sink is ended and a fresh listener starts on the same port at once, so the publisher can reconnect. A listener that
// exits without a caller (port in use, ffmpeg missing, an input it could not remux), a refused caller, or any run
// shorter than 1 s is restarted with backoff (100 ms doubling to 5 s), never in a hot loop. Not H.264 video → the
// caller is closed without onPublish: ffmpeg 5.1's FLV muxer itself rejects HEVC, MPEG-2 and MPEG-4 Part 2 before
// writing a byte, and anything else non-AVC is refused here; both are logged as 'srt: unsupported codec'.
//
// API:
//   new SrtIngest({ host, authorize, onPublish, log?, ffmpeg?, idleTimeoutMs?, maxSessionMs })
//   open(streamId, port, passphrase)  start the stream's listener (again with new settings: the old one is stopped)
//   closeStream(streamId)             stop it, ending a live publish; resolves once ffmpeg exited and the sink ended
//   close()                           every stream; open() throws afterwards
//   stats()                           { listeners: streams supervised, running: ffmpeg processes, publishing: sinks }
//   srtUrl(host, port, passphrase)    the caller URL to give the user: srt://HOST:PORT?passphrase=P&pbkeylen=16
//
// Limitations (ffmpeg 5.1 + libsrt 1.5): the streamid a caller sends cannot be read (libsrt's listener only sets one on
// its own socket and exposes nothing of the caller's), so the port + passphrase are the stream's identity and srtUrl()
// gives none; a second caller while one is connected gets no handshake answer and gives up after its connect timeout
// (3 s for ffmpeg) without disturbing the first; there is no remote address; audio that FLV cannot carry (Opus, AC-3,
// MP2) fails the whole run (logged), not just the audio; the passphrase is in our ffmpeg's argv, so local users who can
// list processes can read it; maxSessionMs cuts a publish that runs longer (the publisher must reconnect); a caller
// that hangs up without lingering (ffmpeg's SRT default) may leave its very last video or audio frame cut short (ffmpeg
// flushes the partial PES), which is passed on — holding each frame back until the next one proves it whole would cost
// a frame of latency on every stream; each stream costs one waiting ffmpeg while nobody publishes (measured: 9.5 MB
// private memory, 47 MB RSS with the shared libraries, 0.6 % of a core — libsrt polls every 100 ms).
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import type { Amf0Object } from '../../media/rtmp/amf0.ts';
import {
  type AudioCodec,
  audioCodec,
  FLV_TAG,
  type FlvTagType,
  flvHeader,
  flvTag,
  metadataCodecs,
  type VideoCodec,
  videoCodec,
} from '../../media/rtmp/flv.ts';
import { FlvReader, type FlvStreamTag, scriptMetadata } from '../../media/rtmp/flv-reader.ts';
import type { LivePublishTarget, Logger, PublishMeta, PublishSink } from './rtmp-ingest.ts';

export interface SrtIngestOptions<T extends LivePublishTarget = LivePublishTarget> {
  /** The address to listen on (an IP address or a host name; '0.0.0.0' for every IPv4 interface). */
  host: string;
  /** The target for a stream whose caller is about to publish, or null to refuse it (a stopped stream). */
  authorize(streamId: string): Promise<T | null> | T | null;
  /** Called once per accepted caller, when its media starts; a rejection drops the caller. */
  onPublish(target: T, meta: PublishMeta): Promise<PublishSink>;
  log?: Logger;
  /** The executable. Default 'ffmpeg'. */
  ffmpeg?: string;
  /** A connected caller that sends nothing for this long is dropped. Default 10 s. */
  idleTimeoutMs?: number;
  /** Hard limit on one listener process (waiting included); it is then stopped and a fresh one started. */
  maxSessionMs: number;
}

export interface SrtIngestStats {
  /** Streams with a supervised listener (running or waiting to restart). */
  listeners: number;
  /** ffmpeg listener processes alive. */
  running: number;
  /** Callers whose sink is open. */
  publishing: number;
}

/** SRT passphrases are 10–79 bytes; ours are restricted to letters and digits so they sit in URLs as they are. */
const PASSPHRASE = /^[A-Za-z0-9]{10,79}$/;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const BACKOFF_MIN_MS = 100;
/** A listener with no caller for this long exits and is started again (see srtListenerArgs). */
export const LISTEN_TIMEOUT_MS = 30_000;
const BACKOFF_MAX_MS = 5000;
/** A run shorter than this is restarted with backoff even when it ended cleanly. */
const MIN_CLEAN_RUN_MS = 1000;
/** After SIGTERM (ffmpeg closes the SRT socket, so the caller learns at once), SIGKILL this much later. */
const KILL_GRACE_MS = 2000;
/** FLV held while waiting for the first frame and for onPublish; more drops the caller. */
const MAX_PENDING_BYTES = 8 << 20;
/** Without a coded video frame, the sink is opened after this many tags anyway (and the codec judged). */
const MAX_TAGS_BEFORE_OPEN = 64;
const STDERR_TAIL = 8192;
/** What ffmpeg 5.1 says when the caller's streams cannot be remuxed to FLV (HEVC, MPEG-2, no video, …). */
const UNSUPPORTED_INPUT =
  /not compatible with flv|not supported in the official FLV|incompatible with output codec|matches no streams|Could not write header/i;

/** The caller URL for a stream: OBS, vMix and ffmpeg take it as it is (SRT caller mode is their default). */
export function srtUrl(host: string, port: number, passphrase: string): string {
  checkHost(host);
  checkPort(port);
  checkPassphrase(passphrase);
  return `srt://${hostInUrl(host)}:${port}?passphrase=${passphrase}&pbkeylen=16`;
}

/** The listener's argv (exported for the tests and the docs; nothing in it goes through a shell). */
export function srtListenerArgs(o: { host: string; port: number; passphrase: string; idleTimeoutMs: number }) {
  checkHost(o.host);
  checkPort(o.port);
  checkPassphrase(o.passphrase);
  return [
    ...['-hide_banner', '-nostdin', '-loglevel', 'error'],
    // libsrt options (µs): no timestamp-based delivery; a connected caller silent this long ends the run; a
    // listener nobody called ends itself after LISTEN_TIMEOUT_MS and is started again — so one whose server was
    // SIGKILLed does not hold the port for ever (a restarted server gets it back within that time).
    ...['-tsbpd', '0', '-timeout', String(Math.round(o.idleTimeoutMs * 1000)), '-passphrase', o.passphrase],
    ...['-listen_timeout', String(LISTEN_TIMEOUT_MS * 1000)],
    // The ffmpeg CLI sets scan_all_pmts=1 for MPEG-TS, which keeps the demuxer expecting more programs and so
    // probing for the whole analyzeduration (5 s): 0 ends probing once every stream of the PMT is known.
    ...['-scan_all_pmts', '0'],
    ...['-f', 'mpegts', '-i', `srt://${hostInUrl(o.host)}:${o.port}?mode=listener&pbkeylen=16`],
    ...['-map', '0:v:0', '-map', '0:a:0?', '-c', 'copy'],
    ...['-f', 'flv', '-flvflags', 'no_duration_filesize', '-flush_packets', '1', 'pipe:1'],
  ];
}

function checkHost(host: string): void {
  if (isIP(host) === 0 && !HOSTNAME.test(host)) throw new RangeError(`SrtIngest: not a host: ${JSON.stringify(host)}`);
}

function hostInUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function checkPort(port: number): void {
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new RangeError(`SrtIngest: port ${port}`);
}

function checkPassphrase(p: string): void {
  if (!PASSPHRASE.test(p)) throw new RangeError('SrtIngest: the passphrase must be 10–79 letters and digits');
}

type Phase = 'listening' | 'probing' | 'opening' | 'open' | 'ended';

/** How one ffmpeg run ended, for the supervisor's restart decision. */
interface RunEnd {
  /** A caller's media came out (so this was a session, not a failing listener). */
  produced: boolean;
  /** We stopped it: the reason. */
  stopped: string | null;
  /** The caller was turned away (codec, authorize, onPublish): restart with backoff. */
  refused: boolean;
  /** Nobody called within LISTEN_TIMEOUT_MS: the listener ends itself and is started again at once. */
  recycled: boolean;
}

interface Context<T extends LivePublishTarget> {
  readonly options: SrtIngestOptions<T>;
  readonly log: Logger;
  readonly idleTimeoutMs: number;
  /** Keeps a promise (an onPublish in flight, a sink's end()) for closeStream() and close() to wait on. */
  track(p: Promise<unknown>): void;
}

/** One ffmpeg listener process and the (at most one) caller it serves. */
class ListenerRun<T extends LivePublishTarget> {
  readonly ended: Promise<RunEnd>;
  readonly startedAt = performance.now();
  private readonly child: ChildProcessByStdio<null, Readable, Readable>;
  private readonly ctx: Context<T>;
  private readonly streamId: string;
  private readonly port: number;
  private readonly reader = new FlvReader();
  private phase: Phase = 'listening';
  private exited = false;
  private termSent = false;
  private stoppedFor: string | null = null;
  private refused = false;
  private recycled = false;
  private produced = false;
  private stderr = '';
  private stderrLine = '';
  private readonly pauses = new Set<'opening' | 'backpressure'>();
  private idleTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly sessionTimer: NodeJS.Timeout;
  private sink: PublishSink | undefined;
  // What is known before the sink opens.
  private headerFlags: { audio: boolean; video: boolean } | null = null;
  private metadata: Amf0Object | null = null;
  private metadataBody: Uint8Array | null = null;
  private pending: FlvStreamTag[] = [];
  private pendingBytes = 0;
  private tagsSeen = 0;
  private sawAudio = false;
  private sawVideo = false;
  private vCodec: VideoCodec | null = null;
  private aCodec: AudioCodec | null = null;
  private base: number | null = null;

  constructor(ctx: Context<T>, streamId: string, port: number, args: readonly string[]) {
    this.ctx = ctx;
    this.streamId = streamId;
    this.port = port;
    this.child = spawn(ctx.options.ffmpeg ?? 'ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.sessionTimer = setTimeout(
      () => this.stop(`maxSessionMs (${ctx.options.maxSessionMs} ms) reached`),
      ctx.options.maxSessionMs,
    );
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s: string) => this.onStderr(s));
    this.child.stdout.on('data', (chunk: Buffer) => this.safely(() => this.onData(chunk)));
    this.child.stdout.on('end', () => this.safely(() => this.endPublication('the caller is gone')));
    this.child.stdout.on('error', () => {});
    this.ended = new Promise<RunEnd>((resolve) => {
      const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: string) => {
        if (this.exited) return;
        this.exited = true;
        clearTimeout(this.sessionTimer);
        clearTimeout(this.killTimer);
        this.stopIdle();
        this.safely(() => this.endPublication('ffmpeg exited'));
        this.report(code, signal, spawnError);
        resolve({ produced: this.produced, stopped: this.stoppedFor, refused: this.refused, recycled: this.recycled });
      };
      this.child.on('error', (err) => {
        // Spawning failed ('close' may not follow); a failed kill of a process that is gone anyway is ignored.
        if (this.child.pid === undefined) finish(null, null, err.message);
      });
      this.child.on('close', (code, signal) => finish(code, signal));
    });
  }

  get alive(): boolean {
    return !this.exited;
  }

  get publishing(): boolean {
    return this.phase === 'open';
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * Ends this run: the caller (if any) is dropped, what ffmpeg still writes is discarded, and the process gets
   * SIGTERM (it then closes the SRT socket, so the caller learns at once), SIGKILL KILL_GRACE_MS later.
   */
  stop(reason: string): void {
    if (this.exited) return;
    this.stoppedFor ??= reason;
    this.endPublication(reason);
    if (this.termSent) return;
    this.termSent = true;
    this.signal('SIGTERM');
    clearTimeout(this.killTimer);
    this.killTimer = setTimeout(() => this.signal('SIGKILL'), KILL_GRACE_MS);
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined) {
      this.child.kill(sig);
    }
  }

  private safely(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.ctx.log('srt: caller failed', { streamId: this.streamId, port: this.port, error: String(err) });
      this.refused = true;
      this.stop('internal error');
    }
  }

  private onStderr(s: string): void {
    this.stderr += s;
    if (this.stderr.length > STDERR_TAIL * 2) this.stderr = this.stderr.slice(-STDERR_TAIL);
    // libsrt logs its handshake refusals itself ("processConnectRequest: rsp(REJECT): 1010 - Incorrect passphrase").
    const lines = (this.stderrLine + s).split('\n');
    this.stderrLine = (lines.pop() ?? '').slice(-1024);
    for (const line of lines) {
      const m = /rsp\(REJECT\): (\d+) - (.*)$/.exec(line);
      if (m) {
        this.ctx.log('srt: caller refused by the SRT handshake', {
          streamId: this.streamId,
          port: this.port,
          code: Number(m[1]),
          reason: m[2]?.trim(),
        });
      }
    }
  }

  private onData(chunk: Buffer): void {
    if (this.phase === 'ended') return; // stopped: drained so that ffmpeg is never blocked on the pipe
    if (this.phase === 'listening') {
      this.phase = 'probing';
      this.produced = true;
      this.ctx.log('srt: caller connected', {
        streamId: this.streamId,
        port: this.port,
        sinceSpawnMs: Math.round(performance.now() - this.startedAt),
      });
    }
    this.idleTimer?.refresh();
    if (!this.idleTimer && this.pauses.size === 0) this.armIdle();
    for (const item of this.reader.push(chunk)) {
      if (this.isEnded()) return; // a tag before this one closed the caller
      if (item.kind === 'header') this.headerFlags = item.flags;
      else this.tag(item);
    }
  }

  private isEnded(): boolean {
    return this.phase === 'ended';
  }

  private tag(tag: FlvStreamTag): void {
    if (tag.type !== FLV_TAG.audio && tag.type !== FLV_TAG.video && tag.type !== FLV_TAG.script) return;
    if (this.phase === 'probing') {
      if (tag.type === FLV_TAG.script && this.metadata === null && this.tagsSeen === 0) {
        const m = scriptMetadata(tag.body);
        if (m) {
          this.metadata = m;
          this.metadataBody = tag.body;
          return;
        }
      }
      let coded = false;
      if (tag.type === FLV_TAG.video) {
        this.sawVideo = true;
        try {
          const info = videoCodec(tag.body);
          this.vCodec ??= info.codec;
          coded = !info.sequenceHeader;
        } catch {
          coded = true; // unreadable: judged (and refused) now
        }
      } else if (tag.type === FLV_TAG.audio) {
        this.sawAudio = true;
        try {
          this.aCodec ??= audioCodec(tag.body).codec;
        } catch {}
      }
      this.pending.push(tag);
      this.pendingBytes += tag.body.length + 15;
      this.tagsSeen++;
      if (this.pendingBytes > MAX_PENDING_BYTES) this.tooMuch();
      else if (coded || this.tagsSeen >= MAX_TAGS_BEFORE_OPEN) this.open();
      return;
    }
    if (this.phase === 'opening') {
      this.pending.push(tag);
      this.pendingBytes += tag.body.length + 15;
      if (this.pendingBytes > MAX_PENDING_BYTES) this.tooMuch();
      return;
    }
    if (this.phase === 'open') this.write(this.frame(tag));
  }

  private tooMuch(): void {
    this.ctx.log('srt: caller dropped', { streamId: this.streamId, port: this.port, reason: 'too much media' });
    this.refused = true;
    this.stop('too much media before the stream opened');
  }

  /** The tag as the sink gets it: timestamps from the first media tag (ffmpeg's start at about 0 already). */
  private frame(tag: FlvStreamTag): Uint8Array {
    let ts = 0;
    if (tag.type !== FLV_TAG.script) {
      this.base ??= tag.timestamp;
      ts = Math.max(0, (tag.timestamp - this.base) | 0);
    }
    return flvTag(tag.type as FlvTagType, ts, tag.body);
  }

  private open(): void {
    this.phase = 'opening';
    this.pause('opening');
    const codecs = this.metadata ? metadataCodecs(this.metadata) : { video: null, audio: null };
    const flags = this.flagsOf();
    const meta: PublishMeta = {
      streamKey: this.streamId,
      app: 'srt',
      query: '',
      remoteAddress: undefined,
      metadata: this.metadata,
      flags,
      videoCodec: this.vCodec ?? codecs.video,
      audioCodec: this.aCodec ?? codecs.audio,
    };
    const ids = { streamId: this.streamId, port: this.port };
    if (meta.videoCodec !== 'avc') {
      this.ctx.log('srt: unsupported codec', { ...ids, videoCodec: meta.videoCodec, audioCodec: meta.audioCodec });
      this.refused = true;
      this.stop('unsupported codec');
      return;
    }
    const opened = Promise.resolve()
      .then(() => this.ctx.options.authorize(this.streamId))
      .then(
        (target) => {
          if (this.phase !== 'opening') return;
          if (!target) {
            this.ctx.log('srt: publish refused', { ...ids, reason: 'not authorized' });
            this.refused = true;
            return this.stop('not authorized');
          }
          return Promise.resolve()
            .then(() => this.ctx.options.onPublish(target, meta))
            .then(
              (sink) => this.safely(() => this.opened(sink, target.streamId)),
              (err: unknown) => {
                this.ctx.log('srt: onPublish failed', { ...ids, error: String(err) });
                this.refused = true;
                this.stop('the stream could not be opened');
              },
            );
        },
        (err: unknown) => {
          this.ctx.log('srt: authorize failed', { ...ids, error: String(err) });
          this.refused = true;
          this.stop('authorization failed');
        },
      );
    this.ctx.track(opened);
  }

  private opened(sink: PublishSink, targetId: string): void {
    if (this.phase !== 'opening') {
      this.ctx.track(Promise.resolve().then(() => sink.end()));
      return;
    }
    this.sink = sink;
    this.phase = 'open';
    this.ctx.log('srt: publish accepted', {
      streamId: this.streamId,
      port: this.port,
      target: targetId,
      sinceSpawnMs: Math.round(performance.now() - this.startedAt),
    });
    sink.closed?.then(
      () => this.sinkGone(sink),
      () => this.sinkGone(sink),
    );
    this.write(flvHeader(this.flagsOf()));
    if (this.metadataBody) this.write(flvTag(FLV_TAG.script, 0, this.metadataBody));
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    for (const tag of pending) {
      if (this.phase !== 'open') return;
      this.write(this.frame(tag));
    }
    this.resume('opening');
  }

  /** From onMetaData (as the RTMP ingest), else the FLV header ffmpeg wrote, else the tags seen. */
  private flagsOf(): { audio: boolean; video: boolean } {
    return this.metadata
      ? { audio: announcesAudio(this.metadata), video: announcesVideo(this.metadata) }
      : (this.headerFlags ?? { audio: this.sawAudio, video: this.sawVideo });
  }

  private sinkGone(sink: PublishSink): void {
    if (this.sink === sink && this.phase === 'open') this.stop('the stream sink closed');
  }

  private write(bytes: Uint8Array): void {
    const sink = this.sink;
    if (!sink || sink.write(bytes) || this.pauses.has('backpressure')) return;
    this.pause('backpressure');
    sink.once('drain', () => this.safely(() => this.resume('backpressure')));
  }

  private pause(reason: 'opening' | 'backpressure'): void {
    this.pauses.add(reason);
    this.child.stdout.pause();
    this.stopIdle(); // the caller is not silent: we are not reading
  }

  private resume(reason: 'opening' | 'backpressure'): void {
    if (!this.pauses.delete(reason) || this.pauses.size > 0 || this.phase === 'ended') return;
    this.child.stdout.resume();
    this.armIdle();
  }

  private armIdle(): void {
    this.stopIdle();
    if (this.phase === 'ended' || this.exited) return;
    const ms = this.ctx.idleTimeoutMs;
    this.idleTimer = setTimeout(() => this.stop(`nothing received for ${ms} ms`), ms);
  }

  private stopIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** The caller is over (gone, refused or stopped): the sink is ended, later output discarded. */
  private endPublication(reason: string): void {
    if (this.phase === 'ended') return;
    const was = this.phase;
    this.phase = 'ended';
    this.pending = [];
    this.pendingBytes = 0;
    this.pauses.clear();
    this.stopIdle();
    this.child.stdout.resume();
    const sink = this.sink;
    if (sink) {
      this.ctx.track(Promise.resolve().then(() => sink.end()));
      this.ctx.log('srt: publish ended', { streamId: this.streamId, port: this.port, reason });
    }
    // The caller is gone but ffmpeg lingers: it must free the port for the next listener.
    if (!this.exited && !this.killTimer && was !== 'listening') {
      this.killTimer = setTimeout(() => this.signal('SIGKILL'), KILL_GRACE_MS);
    }
  }

  private report(code: number | null, signal: NodeJS.Signals | null, spawnError?: string): void {
    if (this.stoppedFor !== null && code !== 0 && !spawnError) return; // we ended it; stop() said why
    const tail = this.stderr
      .split('\n')
      .filter((l) => l.trim() !== '' && !/SRT:RcvQ/.test(l))
      .slice(-6)
      .join('\n');
    const ids = { streamId: this.streamId, port: this.port, code, signal };
    if (!this.produced && this.stoppedFor === null && performance.now() - this.startedAt >= LISTEN_TIMEOUT_MS - 1000) {
      this.recycled = true; // nobody called: routine, not worth a log line
    } else if (spawnError !== undefined) {
      this.ctx.log('srt: listener could not start', { ...ids, error: spawnError });
    } else if (/Address already in use/i.test(this.stderr)) {
      this.ctx.log('srt: port in use', ids);
    } else if (!this.produced && UNSUPPORTED_INPUT.test(this.stderr)) {
      this.refused = true;
      this.ctx.log('srt: unsupported codec', { ...ids, stderr: tail });
    } else if (!this.produced && this.stoppedFor === null) {
      this.ctx.log('srt: listener exited without a caller', { ...ids, stderr: tail });
    }
  }
}

class StreamListener<T extends LivePublishTarget> {
  readonly streamId: string;
  port: number;
  passphrase: string;
  run: ListenerRun<T> | null = null;
  closed = false;
  backoffMs = BACKOFF_MIN_MS;
  restartTimer: NodeJS.Timeout | undefined;
  /** Settles when the current run (if any) has ended. */
  done: Promise<void> = Promise.resolve();
  /** This stream's onPublish calls in flight and sinks' end(). */
  readonly tracked = new Set<Promise<unknown>>();

  constructor(streamId: string, port: number, passphrase: string) {
    this.streamId = streamId;
    this.port = port;
    this.passphrase = passphrase;
  }
}

export class SrtIngest<T extends LivePublishTarget = LivePublishTarget> {
  private readonly streams = new Map<string, StreamListener<T>>();
  /** Ports whose closed stream's ffmpeg may still hold them: a new listener there waits for it. */
  private readonly closingPorts = new Map<number, Promise<void>>();
  private readonly options: SrtIngestOptions<T>;
  private readonly idleTimeoutMs: number;
  private readonly log: Logger;
  private closing = false;

  constructor(options: SrtIngestOptions<T>) {
    checkHost(options.host);
    const idleTimeoutMs = options.idleTimeoutMs ?? 10_000;
    for (const [name, v] of Object.entries({ idleTimeoutMs, maxSessionMs: options.maxSessionMs })) {
      if (!(Number.isSafeInteger(v) && v > 0)) throw new RangeError(`SrtIngest: ${name} must be > 0, not ${v}`);
    }
    this.options = options;
    this.idleTimeoutMs = idleTimeoutMs;
    this.log = options.log ?? (() => {});
  }

  /** Starts (or keeps) the listener of a stream; new settings replace a running listener (ending its caller). */
  open(streamId: string, port: number, passphrase: string): void {
    if (this.closing) throw new Error('SrtIngest.open: closed');
    checkPort(port);
    checkPassphrase(passphrase);
    for (const s of this.streams.values()) {
      if (s.streamId !== streamId && s.port === port) {
        throw new RangeError(`SrtIngest.open: port ${port} is already the port of another stream`);
      }
    }
    const existing = this.streams.get(streamId);
    if (existing) {
      if (existing.port === port && existing.passphrase === passphrase) return;
      existing.port = port;
      existing.passphrase = passphrase;
      existing.backoffMs = BACKOFF_MIN_MS;
      if (existing.run) {
        // The run's end restarts it with the new settings at once.
        existing.run.stop('the listener settings changed');
      } else {
        clearTimeout(existing.restartTimer);
        this.start(existing);
      }
      return;
    }
    const s = new StreamListener<T>(streamId, port, passphrase);
    this.streams.set(streamId, s);
    const prior = this.closingPorts.get(port);
    if (prior) void prior.then(() => this.start(s));
    else this.start(s);
  }

  /** Stops a stream's listener (ending a live publish); resolves once ffmpeg has exited and the sink has ended. */
  async closeStream(streamId: string): Promise<void> {
    const s = this.streams.get(streamId);
    if (!s) return;
    this.streams.delete(streamId);
    s.closed = true;
    clearTimeout(s.restartTimer);
    s.run?.stop('the stream is closing');
    const done = s.done;
    this.closingPorts.set(s.port, done);
    void done.then(() => {
      if (this.closingPorts.get(s.port) === done) this.closingPorts.delete(s.port);
    });
    await done;
    while (s.tracked.size > 0) await Promise.allSettled([...s.tracked]);
  }

  /** Stops every listener and waits for the processes and the sinks' end(). open() throws afterwards. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.streams.keys()].map((id) => this.closeStream(id)));
  }

  stats(): SrtIngestStats {
    let running = 0;
    let publishing = 0;
    for (const s of this.streams.values()) {
      if (s.run?.alive) running++;
      if (s.run?.publishing) publishing++;
    }
    return { listeners: this.streams.size, running, publishing };
  }

  private start(s: StreamListener<T>): void {
    if (s.closed || s.run) return;
    try {
      this.spawnRun(s);
    } catch (err) {
      // spawn() itself threw (it reports most failures as an 'error' event instead): retry with backoff.
      const delay = s.backoffMs;
      s.backoffMs = Math.min(BACKOFF_MAX_MS, s.backoffMs * 2);
      this.log('srt: listener could not start', {
        streamId: s.streamId,
        port: s.port,
        error: String(err),
        inMs: delay,
      });
      s.restartTimer = setTimeout(() => this.start(s), delay);
    }
  }

  private spawnRun(s: StreamListener<T>): void {
    const args = srtListenerArgs({
      host: this.options.host,
      port: s.port,
      passphrase: s.passphrase,
      idleTimeoutMs: this.idleTimeoutMs,
    });
    const log = this.log;
    const ctx: Context<T> = {
      options: this.options,
      log,
      idleTimeoutMs: this.idleTimeoutMs,
      track(p) {
        const settled = p.then(
          () => {},
          (err: unknown) => log('srt: sink failed to end', { streamId: s.streamId, error: String(err) }),
        );
        s.tracked.add(settled);
        void settled.finally(() => s.tracked.delete(settled));
      },
    };
    const run = new ListenerRun(ctx, s.streamId, s.port, args);
    s.run = run;
    s.done = run.ended.then((end) => {
      if (s.run === run) s.run = null;
      if (s.closed) return;
      // A caller came and went, or the run was stopped (maxSessionMs, idle, new settings): listen again at once.
      // Anything else — a failing listener, a refused caller, a run shorter than MIN_CLEAN_RUN_MS whatever its
      // end — backs off, doubling up to BACKOFF_MAX_MS: no input can make this a hot loop.
      const lived = performance.now() - run.startedAt;
      const clean =
        end.recycled || ((end.produced || end.stopped !== null) && !end.refused && lived >= MIN_CLEAN_RUN_MS);
      let delay = 0;
      if (clean) s.backoffMs = BACKOFF_MIN_MS;
      else {
        delay = s.backoffMs;
        s.backoffMs = Math.min(BACKOFF_MAX_MS, s.backoffMs * 2);
        this.log('srt: listener restarts', { streamId: s.streamId, port: s.port, inMs: delay });
      }
      s.restartTimer = setTimeout(() => this.start(s), delay);
    });
  }
}

/** As the RTMP ingest decides it (and liveInputFromMetadata), so the FLV header and the ladder agree on audio. */
function announcesAudio(m: Amf0Object): boolean {
  return m.audiocodecid !== undefined || (typeof m.audiodatarate === 'number' && m.audiodatarate > 0);
}

function announcesVideo(m: Amf0Object): boolean {
  return m.videocodecid !== undefined || (typeof m.width === 'number' && m.width > 0);
}
