// Push targets: restreaming a live publish to other origins (an RTMP/RTMPS service, an SRT listener, another
// smoothcast's HTTP ingest) while it is live. Each target is ONE ffmpeg (`-f flv -i pipe:0 -c copy …`) fed the FLV
// that the ingest writes to the ladder — the same chunks, in order. A target never slows or fails the publisher:
// write() only queues, a target whose ffmpeg backs up beyond maxBufferBytes drops media up to the next keyframe, and
// every failure of one target stays in that target (its ffmpeg is restarted with exponential backoff while the
// publish lasts).
//
// The FLV is followed tag by tag (FlvFollower; chunks may split tags anywhere) so that a forwarder started in the
// middle of a publish (a restart after a failure) gets a stream ffmpeg can read from its first byte: the publish's
// "prelude" (the FLV header, its latest onMetaData, the AVC and AAC sequence headers, all stamped 0) and then the
// media from the next video keyframe on, its timestamps rebased to that keyframe so that every run starts at 0
// (ffmpeg 5.1 also takes the publisher's own timestamps after a prelude at 0 — FLV out starts at 0 either way — but
// `-f mpegts` then starts where the keyframe was; rebasing makes every output alike). A target added while a publish
// is already live has missed the header: keep one FlvFollower per publish and write its prelude() into the new
// target first, then the chunks as they come.
//
// A target is 'connecting' from spawn until ffmpeg's first `-progress` report shows output bytes (for RTMP the
// publish was accepted: ffmpeg only opens the output after NetStream.Publish.Start), then 'pushing'. A run that
// takes data but reports no progress for stallMs (a target that accepted the connection and stopped reading) is
// killed and retried like one that died.
import { type ChildProcess, spawn } from 'node:child_process';
import { SmoothcastError } from '../../core/errors.ts';
import { FLV_TAG } from '../../media/rtmp/flv.ts';
import { type FlvEvent, FlvFollower, restamp } from './flv-prelude.ts';
import type { Logger } from './rtmp-ingest.ts';

export type PushTargetState = 'idle' | 'connecting' | 'pushing' | 'retrying' | 'stopped';

export interface PushTargetStatus {
  id: string;
  /** The target URL with its secrets (stream key, passphrase, stream id, password, query values) masked. */
  url: string;
  state: PushTargetState;
  /** Why the last run failed (ffmpeg's last stderr line, masked), until a run pushes again. */
  error: string | null;
  /** Date.now() of the last state change. */
  since: number;
  /** Bytes ffmpeg wrote to the target (its `total_size`), over all runs. */
  bytesSent: number;
  /** Restarts of the forwarder after a failure. */
  reconnects: number;
  /** FLV tags dropped because the forwarder's stdin was backed up beyond maxBufferBytes. */
  droppedTags: number;
  droppedBytes: number;
  /** Date.now() at which the next reconnect is due while 'retrying', else null. */
  retryAt: number | null;
}

export interface PushTargetOptions {
  id: string;
  url: string;
  log?: Logger;
  /** The executable. Default 'ffmpeg'. */
  ffmpeg?: string;
  /** Bytes queued on ffmpeg's stdin beyond which media is dropped up to the next keyframe. Default 8 MiB. */
  maxBufferBytes?: number;
  /** Reconnect delays: initialMs, doubling per consecutive failure, at most maxMs. Default 1 s … 30 s. */
  backoff?: { initialMs: number; maxMs: number };
  /** A run that has been given data but reported no progress for this long is killed. Default 10 s. */
  stallMs?: number;
  /** Time ffmpeg has to finish after publishEnded() closes its stdin before SIGKILL. Default 5 s. */
  graceMs?: number;
}

const MAX_URL_LENGTH = 2048;
/** A run that pushed at least this long resets the backoff to its initial delay. */
const HEALTHY_MS = 10_000;
const STDERR_LINES = 16;
const ERROR_MAX_CHARS = 400;
const MASK = '****';

// ---------------------------------------------------------------------------------------------------------------
// URLs

type Scheme = 'rtmp' | 'rtmps' | 'srt' | 'http' | 'https';

interface ParsedTarget {
  scheme: Scheme;
  url: URL;
}

/** SRT URL options a push target may set, and the values allowed where only some make sense for a caller. */
const SRT_OPTIONS: Record<string, (v: string) => boolean> = {
  passphrase: (v) => v.length >= 10 && v.length <= 79,
  pbkeylen: (v) => ['0', '16', '24', '32'].includes(v),
  streamid: (v) => v.length > 0 && v.length <= 512,
  latency: (v) => /^\d{1,9}$/.test(v),
  connect_timeout: (v) => /^\d{1,9}$/.test(v),
  mode: (v) => v === 'caller',
  transtype: (v) => v === 'live',
};
const SRT_SECRETS = new Set(['passphrase', 'streamid']);

/** A DNS name, an IPv4 address or a bracketed IPv6 address. */
const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])$/;

function invalid(why: string): SmoothcastError {
  return new SmoothcastError('LIVE_TARGET_INVALID', `not a push target URL this server can forward to: ${why}`);
}

function parseTarget(input: unknown): ParsedTarget {
  if (typeof input !== 'string') throw invalid('not a string');
  if (input.length === 0) throw invalid('empty');
  if (input.length > MAX_URL_LENGTH) throw invalid(`longer than ${MAX_URL_LENGTH} characters`);
  // Printable ASCII only: no whitespace, no control characters (an IDN host must be given in punycode).
  if (!/^[\x21-\x7e]+$/.test(input)) throw invalid('whitespace, control or non-ASCII characters');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(input);
  const scheme = m?.[1]?.toLowerCase();
  if (scheme !== 'rtmp' && scheme !== 'rtmps' && scheme !== 'srt' && scheme !== 'http' && scheme !== 'https') {
    throw invalid('the scheme must be rtmp://, rtmps://, srt://, http:// or https://');
  }
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw invalid('malformed');
  }
  if (url.hash || input.includes('#')) throw invalid('a #fragment');
  if (!url.hostname || !HOST.test(url.hostname)) throw invalid('no valid host');
  if (url.port === '0') throw invalid('port 0');
  if (scheme === 'srt') {
    if (!url.port) throw invalid('srt:// needs a port');
    if (url.username || url.password) throw invalid('srt:// takes no user or password');
    if (url.pathname !== '' && url.pathname !== '/') throw invalid('srt:// takes no path');
    const seen = new Set<string>();
    for (const [k, v] of url.searchParams) {
      const ok = SRT_OPTIONS[k];
      if (!Object.hasOwn(SRT_OPTIONS, k) || !ok) throw invalid(`srt:// option ${JSON.stringify(k)} is not allowed`);
      if (seen.has(k)) throw invalid(`srt:// option ${k} given twice`);
      seen.add(k);
      if (!ok(v)) throw invalid(`srt:// option ${k} has a value that is not allowed`);
    }
  } else if (scheme === 'rtmp' || scheme === 'rtmps') {
    const segments = url.pathname.split('/').filter((s) => s !== '');
    if (segments.length < 2) throw invalid(`${scheme}:// needs an app and a stream name: ${scheme}://host/app/key`);
  } else {
    // Another smoothcast's ingest base: the Smooth push goes to `<base>.isml/Streams(smoothcast)`.
    if (url.search || input.includes('?')) throw invalid(`${scheme}:// takes no query (the push path is appended)`);
    if (url.pathname === '' || url.pathname === '/' || url.pathname.endsWith('/')) {
      throw invalid(`${scheme}:// needs the ingest base path, without a trailing /`);
    }
  }
  return { scheme, url };
}

/**
 * Checks a push target URL and returns it as given: rtmp:// and rtmps:// with an app and a stream name, srt:// with
 * a port and only caller options (passphrase, pbkeylen, streamid, latency, connect_timeout, mode=caller,
 * transtype=live), or http(s):// — another smoothcast's ingest base, no query. At most 2048 printable ASCII
 * characters. Anything else: SmoothcastError('LIVE_TARGET_INVALID').
 */
export function validateTargetUrl(url: string): string {
  parseTarget(url);
  return url;
}

/** The secrets a URL carries, longest first, for masking them wherever they appear (ffmpeg's messages). */
function secretsOf(p: ParsedTarget): string[] {
  const out: string[] = [];
  if (p.url.password) out.push(p.url.password, decodeURIComponentSafe(p.url.password));
  if (p.scheme === 'srt') {
    for (const [k, v] of p.url.searchParams) if (SRT_SECRETS.has(k)) out.push(v, encodeURIComponent(v));
  } else {
    for (const [, v] of p.url.searchParams) out.push(v, encodeURIComponent(v));
    const last = p.url.pathname.split('/').at(-1);
    if (last) out.push(last, decodeURIComponentSafe(last));
  }
  // Very short values would mask ordinary words in a message; they are no secret anyway.
  return [...new Set(out.filter((s) => s.length >= 3))].sort((a, b) => b.length - a.length);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The URL for display: the stream key (last path segment), password, passphrase and query values masked. */
export function maskTargetUrl(url: string): string {
  let p: ParsedTarget;
  try {
    p = parseTarget(url);
  } catch {
    return MASK;
  }
  const { url: u, scheme } = p;
  const user = u.username ? `${u.username}${u.password ? `:${MASK}` : ''}@` : '';
  let path = u.pathname;
  if (scheme !== 'srt') {
    const segments = path.split('/');
    if (segments.length > 1 && segments.at(-1)) segments[segments.length - 1] = MASK;
    path = segments.join('/');
  }
  const query = [...u.searchParams]
    .map(([k, v]) => `${k}=${scheme !== 'srt' || SRT_SECRETS.has(k) ? MASK : v}`)
    .join('&');
  return `${scheme}://${user}${u.host}${path}${query ? `?${query}` : ''}`;
}

/** `text` with each [raw, masked] pair's raw replaced (whole URLs first), then every secret left replaced. */
function maskText(text: string, urls: readonly (readonly [string, string])[], secrets: readonly string[]): string {
  let out = text;
  for (const [raw, masked] of urls) out = out.split(raw).join(masked);
  for (const s of secrets) out = out.split(s).join(MASK);
  return out;
}

/**
 * The forwarder's ffmpeg arguments: FLV from stdin, stream copy, out as FLV (rtmp, rtmps), MPEG-TS (srt) or a
 * Smooth Streaming push (`-f ismv <base>.isml/Streams(smoothcast)`) for http(s). Progress goes to stdout.
 */
export function pushTargetArgs(url: string): string[] {
  const { scheme } = parseTarget(url);
  const input = [
    ...['-hide_banner', '-nostdin', '-loglevel', 'error', '-nostats', '-progress', 'pipe:1', '-stats_period', '0.5'],
    // FLV's 1 ms timebase otherwise makes ffmpeg probe for fps over many frames before it opens the output.
    ...['-fpsprobesize', '0', '-f', 'flv', '-i', 'pipe:0'],
    ...['-map', '0:v:0?', '-map', '0:a:0?', '-c', 'copy'],
  ];
  switch (scheme) {
    case 'rtmp':
    case 'rtmps':
      // The output is not seekable: no duration/filesize rewrite at the end.
      return [...input, '-flvflags', 'no_duration_filesize', '-f', 'flv', url];
    case 'srt':
      return [...input, '-f', 'mpegts', url];
    case 'http':
    case 'https':
      return [...input, '-movflags', 'isml+frag_keyframe', '-f', 'ismv', `${url}.isml/Streams(smoothcast)`];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The forwarder

interface ForwarderRun {
  child: ChildProcess;
  startedAt: number;
  /** Waiting for the video keyframe to forward from; until then only the prelude and configuration go out. */
  awaitingKey: boolean;
  /** The timestamp of that keyframe: forwarded tags are stamped relative to it. */
  base: number;
  /** Dropping media up to the next keyframe (stdin was backed up). */
  dropping: boolean;
  /** stdin closed by publishEnded(): the exit that follows is expected. */
  ending: boolean;
  pushingAt: number | null;
  lastProgressAt: number;
  /** When media went in that no progress report has followed yet, or null. */
  waitingSince: number | null;
  totalSize: number;
  stderrTail: string[];
  stderrPartial: string;
  stdoutPartial: string;
  killReason: string | null;
  spawnError: string | null;
  graceTimer: NodeJS.Timeout | undefined;
  exited: Promise<void>;
}

/**
 * One push target: one ffmpeg at a time, started when a publish's FLV header arrives, restarted with backoff while
 * the publish lasts, finished by publishEnded(), killed by stop(). Nothing it does throws into, or waits on, the
 * writer.
 */
export class PushTarget {
  readonly id: string;
  readonly url: string;
  readonly args: readonly string[];
  private readonly maskedUrl: string;
  private readonly secrets: string[];
  private readonly urls: (readonly [string, string])[];
  private brokenLogged = false;
  private readonly log: Logger;
  private readonly ffmpeg: string;
  private readonly maxBufferBytes: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly stallMs: number;
  private readonly graceMs: number;
  private readonly follower = new FlvFollower();
  private state: PushTargetState = 'idle';
  private error: string | null = null;
  private since = Date.now();
  private sentBefore = 0;
  private reconnects = 0;
  private droppedTags = 0;
  private droppedBytes = 0;
  private failures = 0;
  private retryAt: number | null = null;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private run: ForwarderRun | null = null;
  /** A publish is live (its header came, publishEnded() has not). */
  private live = false;
  /** A new publish began while the previous run was still finishing: start when it has exited. */
  private startWhenExited = false;
  private stopped = false;

  constructor(o: PushTargetOptions) {
    const parsed = parseTarget(o.url);
    this.id = o.id;
    this.url = o.url;
    this.args = pushTargetArgs(o.url);
    this.maskedUrl = maskTargetUrl(o.url);
    // ffmpeg names the URL it was given (the Smooth push URL for http) in its messages.
    const pushUrl = this.args.at(-1)!;
    this.urls = [[pushUrl, pushUrl === o.url ? this.maskedUrl : `${this.maskedUrl}${pushUrl.slice(o.url.length)}`]];
    this.secrets = secretsOf(parsed);
    // A logger that throws must not break a child's exit handler.
    const log = o.log;
    this.log = (msg, extra) => {
      try {
        log?.(msg, extra);
      } catch {}
    };
    this.ffmpeg = o.ffmpeg ?? 'ffmpeg';
    this.maxBufferBytes = o.maxBufferBytes ?? 8 << 20;
    this.backoff = o.backoff ?? { initialMs: 1000, maxMs: 30_000 };
    this.stallMs = o.stallMs ?? 10_000;
    this.graceMs = o.graceMs ?? 5000;
    const positive = {
      maxBufferBytes: this.maxBufferBytes,
      stallMs: this.stallMs,
      graceMs: this.graceMs,
      ...this.backoff,
    };
    for (const [name, v] of Object.entries(positive)) {
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`PushTarget: ${name} must be > 0, not ${v}`);
    }
    if (this.backoff.maxMs < this.backoff.initialMs) throw new RangeError('PushTarget: backoff.maxMs < initialMs');
  }

  /** The FLV of the current publish, as the ingest writes it to the ladder: the same chunks, in order. */
  write(chunk: Uint8Array): void {
    if (this.stopped) return;
    try {
      this.follower.push(chunk, (e) => this.onFlv(e));
      if (this.follower.brokenReason && !this.brokenLogged) {
        this.brokenLogged = true;
        this.log('push: the FLV cannot be followed; ignored until the next publish', {
          id: this.id,
          reason: this.follower.brokenReason,
        });
        this.live = false;
        this.cancelRetry();
        this.endRun();
        if (!this.run) this.setState('idle');
      }
    } catch (err) {
      // A bug here must not reach the publisher.
      this.log('push: write failed', { id: this.id, error: String(err) });
    }
  }

  /** The publisher went away: close the forwarder's stdin cleanly; a new publish will write a new FLV header. */
  publishEnded(): void {
    if (this.stopped) return;
    try {
      this.follower.reset();
      this.brokenLogged = false;
      this.live = false;
      this.startWhenExited = false;
      this.cancelRetry();
      this.endRun();
      if (!this.run && this.state !== 'idle') this.setState('idle');
    } catch (err) {
      this.log('push: publishEnded failed', { id: this.id, error: String(err) });
    }
  }

  /** The target was removed: kill the ffmpeg, no reconnect. Resolves once it has exited. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.live = false;
    this.cancelRetry();
    const run = this.run;
    if (run) {
      run.killReason ??= 'stopped';
      this.kill(run);
      await run.exited;
    }
    this.setState('stopped');
  }

  status(): PushTargetStatus {
    return {
      id: this.id,
      url: this.maskedUrl,
      state: this.state,
      error: this.error,
      since: this.since,
      bytesSent: this.sentBefore + (this.run?.totalSize ?? 0),
      reconnects: this.reconnects,
      droppedTags: this.droppedTags,
      droppedBytes: this.droppedBytes,
      retryAt: this.retryAt,
    };
  }

  /** The running ffmpeg's pid, if any. */
  get pid(): number | undefined {
    return this.run?.child.pid;
  }

  private setState(state: PushTargetState): void {
    if (this.state === state) return;
    this.state = state;
    this.since = Date.now();
    this.log('push: state', { id: this.id, url: this.maskedUrl, state, error: this.error });
  }

  private onFlv(e: FlvEvent): void {
    if (e.kind === 'header') {
      if (this.live) this.endRun(); // a new publish without publishEnded()
      this.live = true;
      this.failures = 0;
      this.cancelRetry();
      if (this.run) this.startWhenExited = true;
      else this.startRun();
      return;
    }
    const run = this.run;
    if (!run || run.ending) return;
    if (e.metadata || e.sequenceHeader) {
      // Configuration goes out whatever else is being dropped; before the keyframe it joins the prelude at 0.
      this.send(run, restamp(e.bytes, run.awaitingKey ? 0 : Math.max(0, (e.timestamp - run.base) | 0)), true);
      return;
    }
    const startsHere = e.type === FLV_TAG.video ? e.keyframe : e.type === FLV_TAG.audio && !this.follower.hasVideo;
    if (run.awaitingKey) {
      if (!startsHere) return;
      run.awaitingKey = false;
      run.base = e.timestamp;
    }
    const ts = (e.timestamp - run.base) | 0;
    // Audio stamped a little before the keyframe it follows would go back in time: not forwarded.
    if (ts < 0) return;
    if (run.dropping) {
      if (startsHere && this.queued(run) < this.maxBufferBytes / 2) run.dropping = false;
      else {
        this.droppedTags++;
        this.droppedBytes += e.bytes.length;
        return;
      }
    } else if (this.queued(run) + e.bytes.length > this.maxBufferBytes) {
      run.dropping = true;
      this.droppedTags++;
      this.droppedBytes += e.bytes.length;
      this.log('push: the target is not keeping up; dropping to the next keyframe', {
        id: this.id,
        queued: this.queued(run),
      });
      return;
    }
    this.send(run, restamp(e.bytes, ts), false);
  }

  private queued(run: ForwarderRun): number {
    return run.child.stdin?.writableLength ?? 0;
  }

  private send(run: ForwarderRun, bytes: Uint8Array, config: boolean): void {
    const stdin = run.child.stdin;
    if (!stdin?.writable || stdin.destroyed) return;
    stdin.write(bytes);
    if (!config || !run.awaitingKey) run.waitingSince ??= performance.now();
  }

  private startRun(): void {
    if (this.stopped || !this.live || this.run) return;
    const now = performance.now();
    let child: ChildProcess;
    try {
      child = spawn(this.ffmpeg, this.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (err) {
      // Spawning mostly fails asynchronously ('error'); a synchronous throw is handled the same way.
      this.retryLater(maskText(`ffmpeg could not be started: ${String(err)}`, this.urls, this.secrets));
      return;
    }
    const run: ForwarderRun = {
      child,
      startedAt: now,
      awaitingKey: true,
      base: 0,
      dropping: false,
      ending: false,
      pushingAt: null,
      lastProgressAt: now,
      waitingSince: null,
      totalSize: 0,
      stderrTail: [],
      stderrPartial: '',
      stdoutPartial: '',
      killReason: null,
      spawnError: null,
      graceTimer: undefined,
      exited: Promise.resolve(),
    };
    this.run = run;
    this.setState('connecting');
    // EPIPE once ffmpeg has gone: its exit is what reports it.
    child.stdin?.on('error', () => {});
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (s: string) => this.onProgress(run, s));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      const lines = (run.stderrPartial + s).split(/\r?\n|\r/);
      run.stderrPartial = (lines.pop() ?? '').slice(-ERROR_MAX_CHARS);
      for (const l of lines) if (l.trim()) run.stderrTail.push(l.slice(0, ERROR_MAX_CHARS));
      if (run.stderrTail.length > STDERR_LINES) run.stderrTail.splice(0, run.stderrTail.length - STDERR_LINES);
    });
    run.exited = new Promise<void>((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        resolve();
        this.onExit(run, code, signal);
      };
      child.on('error', (err) => {
        if (child.pid === undefined) {
          run.spawnError = err.message;
          finish(null, null);
        }
      });
      child.on('close', finish);
    });
    this.armWatchdog();
    const prelude = this.follower.prelude();
    if (prelude) this.send(run, prelude, true);
  }

  private onProgress(run: ForwarderRun, s: string): void {
    const lines = (run.stdoutPartial + s).split('\n');
    run.stdoutPartial = (lines.pop() ?? '').slice(-256);
    for (const line of lines) {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq);
      const value = line.slice(eq + 1).trim();
      if (key === 'total_size') {
        const n = Number(value);
        if (Number.isSafeInteger(n) && n > run.totalSize) run.totalSize = n;
      } else if (key === 'progress') {
        run.lastProgressAt = performance.now();
        run.waitingSince = null;
        if (run.pushingAt === null && run.totalSize > 0 && this.run === run && !run.ending) {
          run.pushingAt = run.lastProgressAt;
          this.error = null;
          this.setState('pushing');
          this.log('push: pushing', {
            id: this.id,
            url: this.maskedUrl,
            ms: Math.round(run.pushingAt - run.startedAt),
          });
        }
      }
    }
  }

  private onExit(run: ForwarderRun, code: number | null, signal: NodeJS.Signals | null): void {
    clearTimeout(run.graceTimer);
    if (this.run !== run) return;
    this.run = null;
    this.sentBefore += run.totalSize;
    this.disarmWatchdog();
    if (this.stopped) return;
    const now = performance.now();
    if (run.pushingAt !== null && now - run.pushingAt >= HEALTHY_MS) this.failures = 0;
    if (this.startWhenExited) {
      this.startWhenExited = false;
      this.startRun();
      return;
    }
    if (run.ending || !this.live) {
      // A forwarder that fails while finishing (the target hung up at the end) is worth showing; one we killed is not.
      if (run.ending && code !== 0 && run.killReason === null) {
        this.error = this.describeExit(run, code, signal);
      }
      this.setState('idle');
      return;
    }
    this.retryLater(this.describeExit(run, code, signal));
  }

  /** 'retrying': the next run starts after the backoff's delay, if the publish is still live then. */
  private retryLater(error: string): void {
    this.error = error;
    this.failures++;
    const delay = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(this.failures - 1, 30));
    this.retryAt = Date.now() + delay;
    this.log('push: the forwarder failed; retrying', { id: this.id, error, delayMs: delay });
    this.setState('retrying');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.retryAt = null;
      if (this.stopped || !this.live || this.run) return;
      this.reconnects++;
      this.startRun();
    }, delay);
  }

  private describeExit(run: ForwarderRun, code: number | null, signal: NodeJS.Signals | null): string {
    const last = run.stderrPartial.trim() || run.stderrTail.at(-1);
    const why =
      run.killReason ??
      (run.spawnError !== null ? `ffmpeg could not be started: ${run.spawnError}` : undefined) ??
      last ??
      (signal ? `ffmpeg was killed by ${signal}` : `ffmpeg exited with code ${code}`);
    return maskText(why, this.urls, this.secrets).slice(0, ERROR_MAX_CHARS);
  }

  /** Closes the running forwarder's stdin (it finishes and exits), with a SIGKILL graceMs later. */
  private endRun(): void {
    const run = this.run;
    if (!run || run.ending) return;
    run.ending = true;
    if (run.awaitingKey) {
      // Nothing but the prelude went in: there is nothing to finish, and ffmpeg would fail on an empty input.
      run.killReason = 'the publish ended';
      this.kill(run);
      return;
    }
    run.child.stdin?.end();
    run.graceTimer = setTimeout(() => {
      run.killReason ??= `did not exit within ${this.graceMs} ms of the publish's end`;
      this.kill(run);
    }, this.graceMs);
  }

  private kill(run: ForwarderRun): void {
    const c = run.child;
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) c.kill('SIGKILL');
  }

  private cancelRetry(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.retryAt = null;
  }

  private armWatchdog(): void {
    this.disarmWatchdog();
    const every = Math.min(1000, Math.max(50, this.stallMs / 4));
    this.watchdog = setInterval(() => {
      const run = this.run;
      if (!run || run.ending) return;
      const now = performance.now();
      // Media went in stallMs ago and no report has followed: stuck on its output. (A publisher that pauses writes
      // nothing, so a quiet ffmpeg is only suspect once it has been given something.)
      if (run.waitingSince !== null && now - run.waitingSince > this.stallMs) {
        run.killReason = `no progress for ${((now - run.waitingSince) / 1000).toFixed(1)} s`;
        this.log('push: the forwarder is stalled; killing it', { id: this.id, reason: run.killReason });
        this.kill(run);
      }
    }, every);
  }

  private disarmWatchdog(): void {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}
