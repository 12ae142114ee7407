// The live role: publishing points (the live_streams state machine) wired to the ingest and the ladder. A publish
// that its stream key and state allow becomes an encoder run: ONE ffmpeg (LiveLadder) whose outputs arrive on pipes
// and are appended by a CmafAppender per rendition to the event's files — ONE growing CMAF file per rendition, under
// the event asset's `rl-…` rev, which the origin serves live and, after shutdown, as the VOD archive.
//
// Timeline. Media time 0 is the wall clock `liveStartMs` of the event's first publish. A later run (the publisher
// reconnected, `start` after `stop`, ffmpeg restarted) starts its ffmpeg at 0 again; its appenders move every tfdt
// to where the wall clock is (never before the end of what is written), so players see a discontinuity, not a jump
// back, and DASH's wall-clock arithmetic stays right (docs/live.md).
//
// Crash safety. The files are append-only; an appender opened on an existing file cuts a torn last fragment off.
// At start every stream that had a publisher is put in `reconnecting` with a fresh deadline: a publisher that comes
// back continues the event; past the deadline the stream is `stopped` with its event still playable.

import type { AssetRepository } from '../../core/db/assets.ts';
import type { LiveRepository, LiveStream } from '../../core/db/live.ts';
import { SmoothcastError } from '../../core/errors.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { summarizeIndex } from '../../media/bmff/index.ts';
import { type LiveInput, liveInputFromMetadata, planLiveLadder } from '../../media/encode/live-args.ts';
import { asSegment, groupParts } from '../../media/live/parts.ts';
import { can, deadline, publicState } from '../../media/live/state.ts';
import { FLV_TAG } from '../../media/rtmp/flv.ts';
import { CmafAppender } from './cmaf-appender.ts';
import { eventAsset } from './event-asset.ts';
import { FlvFollower, restamp } from './flv-prelude.ts';
import { HttpPublishes } from './http-publish.ts';
import { LiveLadder, type LiveLadderExit } from './ladder-process.ts';
import { type PublishMeta, type PublishSink, RtmpIngest } from './rtmp-ingest.ts';
import { SrtIngest } from './srt-ingest.ts';

export type Logger = (msg: string, extra?: Record<string, unknown>) => void;

export interface LiveServiceOptions {
  live: LiveRepository;
  assets: AssetRepository;
  storage: Storage;
  log: Logger;
  host: string;
  rtmpPort: number;
  transcode: boolean;
  maxPublishers: number;
  maxRunMs: number;
  /** Run an SRT listener per stream on its port (live.srtPorts). */
  srt?: boolean;
  /** A fragment of this event is on disk (the origin's feed reads it now). */
  poke(assetId: string, rev: string): void;
  /** The asset changed shape (ready, deleted): drop cached views of it. */
  evict(assetId: string): void;
  /** A new event is playable: make its poster from the first frames of this rendition (best effort). */
  livePoster?(assetId: string, rev: string, rid: string): Promise<void>;
  /** After shutdown made the archive ready: poster, thumbnails, downloads (in the background). */
  finishArchive?(assetId: string): Promise<void>;
  /** A new live event was created (S3 storage: this node now holds its growing files for every origin). */
  onEventCreated?: ((assetId: string) => Promise<void>) | undefined;
  viewers?(assetId: string): number;
  /** FLV of every publish, as the ladder gets it (push targets). */
  onMedia?(streamId: string, chunk: Uint8Array): void;
  onPublishEnded?(streamId: string): void;
}

export interface LiveStats {
  inputBitrate: number;
  inputFps: number;
  inputWidth: number | null;
  inputHeight: number | null;
  viewers: number;
  latencySeconds: number | null;
}

interface Target {
  streamId: string;
}

/** One encoder run of an event, fed by one publish. */
interface Run {
  streamId: string;
  assetId: string;
  rev: string;
  input: LiveInput;
  transcode: boolean;
  ladder: LiveLadder;
  appenders: CmafAppender[];
  flv: FlvFollower;
  ended: boolean;
  /** The tail of the run's catalog work after fragments (making the event playable), one step at a time. */
  work: Promise<void>;
  /** A go-live step is queued and not started: later fragments need no other. */
  goLiveQueued: boolean;
  /** Stats over the last second. */
  bytes: number;
  frames: number;
  rate: { bitrate: number; fps: number; at: number };
}

const STAT_WINDOW_MS = 1000;

export class LiveService {
  readonly rtmp: RtmpIngest<Target>;
  /** HTTP push publishes (registerHttpIngest routes call authorize/onTrack on it). */
  readonly http: HttpPublishes;
  /** SRT: one supervised ffmpeg listener per stream port (null when off). */
  readonly srt: SrtIngest<Target> | null;
  #rtmpPort = 0;
  readonly #o: LiveServiceOptions;
  readonly #runs = new Map<string, Run>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #finishing = new Set<Promise<unknown>>();
  #closed = false;

  constructor(o: LiveServiceOptions) {
    this.#o = o;
    this.rtmp = new RtmpIngest<Target>({
      host: o.host,
      port: o.rtmpPort,
      log: o.log,
      limits: { maxConnections: o.maxPublishers, handshakeTimeoutMs: 10_000, idleTimeoutMs: 30_000 },
      authorize: (key) => this.authorize(key),
      onPublish: (target, meta) => this.onPublish(target.streamId, meta),
    });
    this.srt = o.srt
      ? new SrtIngest<Target>({
          host: o.host,
          log: o.log,
          maxSessionMs: o.maxRunMs,
          authorize: async (id) => {
            const s = await this.#o.live.get(id);
            return s && can(s.state, 'publish', Date.now()) && !this.#runs.has(id) ? { streamId: id } : null;
          },
          onPublish: (target, meta) => this.onPublish(target.streamId, meta),
        })
      : null;
    this.http = new HttpPublishes({
      live: o.live,
      assets: o.assets,
      storage: o.storage,
      log: o.log,
      poke: o.poke,
      ended: (id) => this.#background(this.#lost(id)),
      onEventCreated: o.onEventCreated,
    });
  }

  get rtmpPort(): number {
    return this.#rtmpPort;
  }

  async start(): Promise<void> {
    try {
      this.#rtmpPort = (await this.rtmp.start()).port;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'EADDRINUSE' || code === 'EACCES') {
        throw new SmoothcastError(
          'CONFIG_INVALID',
          `live.rtmpPort ${this.#o.rtmpPort} on ${this.#o.host} cannot be used (${code}): another RTMP server there? ` +
            'Set live.rtmpPort (SMOOTHCAST_LIVE_RTMP_PORT), or live.enabled false to run without the live ingest',
        );
      }
      throw err;
    }
    await this.#recover();
    const total = await this.#o.live.count();
    for (let off = 0; off < total; off += 500) {
      for (const s of await this.#o.live.list({ limit: 500, offset: off })) this.listen(s);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.http.drop();
    await this.srt?.close();
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    await this.rtmp.close();
    await Promise.allSettled([...this.#runs.values()].map((r) => r.ladder.end()));
    await this.http.settled();
    while (this.#finishing.size > 0) await Promise.allSettled([...this.#finishing]);
  }

  /** A stream key names a stream whose state takes a publisher (checked again, under the lock, at onPublish). */
  async authorize(streamKey: string): Promise<Target | null> {
    const s = await this.#o.live.byKey(streamKey);
    if (s && this.http.active(s.id)) return null;
    if (!s || !can(s.state, 'publish', Date.now())) return null;
    return { streamId: s.id };
  }

  /** The publish's media starts: refuse what we cannot encode, then open (or continue) the event and its run. */
  async onPublish(streamId: string, meta: PublishMeta): Promise<PublishSink> {
    if (this.#closed) throw new SmoothcastError('LIVE_STATE_CONFLICT', 'the server is shutting down');
    if (meta.videoCodec !== 'avc' || (meta.audioCodec !== null && meta.audioCodec !== 'aac')) {
      throw new SmoothcastError(
        'LIVE_MEDIA_UNSUPPORTED',
        `live input must be H.264 video with AAC audio, not ${meta.videoCodec ?? 'no video'} / ${meta.audioCodec ?? 'no audio'}`,
      );
    }
    const announced = meta.metadata ? liveInputFromMetadata(meta.metadata) : null;
    if (!announced)
      throw new SmoothcastError(
        'LIVE_MEDIA_UNSUPPORTED',
        'the publisher sent no onMetaData with width, height and frame rate',
      );
    const input: LiveInput = { ...announced, audio: meta.flags.audio && meta.audioCodec === 'aac' };
    const stream = await this.#o.live.transition(streamId, 'publish');
    const transcode = stream.transcode ?? this.#o.transcode;
    try {
      const asset = await eventAsset(this.#o, stream, () => {
        const plan = planLiveLadder(input);
        const video = plan.video.slice(0, transcode ? undefined : 1).map((r) => ({
          id: r.id,
          type: 'video' as const,
          width: r.width,
          height: r.height,
          bitrate: transcode ? r.bitrate : (input.videoBitrate ?? r.bitrate),
          frameRate: plan.outputFrameRate.num / plan.outputFrameRate.den,
        }));
        const audio = plan.audio.slice(0, input.audio ? 1 : 0).map((a) => ({
          id: a.id,
          type: 'audio' as const,
          bitrate: a.bitrate,
          language: 'und',
          default: true,
        }));
        return {
          renditions: [...video, ...audio],
          source: { liveInput: input, videoCodec: meta.videoCodec, audioCodec: meta.audioCodec },
        };
      });
      // A continued event keeps the ladder it was planned with (the same inits in its files).
      const eventInput = (asset.source as { liveInput?: LiveInput } | null)?.liveInput ?? input;
      return this.#sink(await this.#startRun(streamId, asset.id, asset.rev!, eventInput, transcode));
    } catch (err) {
      this.#o.log('live: could not open the event', { streamId, error: String(err) });
      await this.#lost(streamId);
      throw err;
    }
  }

  /** Spawns the ladder for a run; its outputs go through appenders into the event's files. */
  async #startRun(
    streamId: string,
    assetId: string,
    rev: string,
    input: LiveInput,
    transcode: boolean,
    flv?: FlvFollower,
  ): Promise<Run> {
    const asset = await this.#o.assets.get(assetId);
    if (!asset || asset.liveStartMs === null) throw new SmoothcastError('ASSET_NOT_FOUND', `no live asset ${assetId}`);
    const ladder = new LiveLadder({
      dir: '',
      input,
      pipes: true,
      encode: { transcode, copyAudio: false },
      maxDurationMs: this.#o.maxRunMs,
      graceMs: 5000,
    });
    const appenders: CmafAppender[] = [];
    let offset = 0;
    for (const out of ladder.outputs) {
      const key = keys.rendition(assetId, rev, out.id);
      await this.#o.storage.prepare(key);
      const a = new CmafAppender({
        path: this.#o.storage.localPath(key),
        offsetSeconds: 0,
        onFragment: () => this.#fragment(run),
      });
      appenders.push(a);
      offset = Math.max(offset, a.endSeconds);
    }
    if (offset > 0) {
      // Continue the event where the wall clock is, at least 0.1 s after what is written (a discontinuity).
      const wall = (Date.now() - asset.liveStartMs) / 1000;
      offset = Math.ceil(Math.max(offset + 0.1, wall) * 10) / 10;
      for (const a of appenders) a.restart(offset);
    }
    const run: Run = {
      streamId,
      assetId,
      rev,
      input,
      transcode,
      ladder,
      appenders,
      flv: flv ?? new FlvFollower(),
      ended: false,
      work: Promise.resolve(),
      goLiveQueued: false,
      bytes: 0,
      frames: 0,
      rate: { bitrate: 0, fps: 0, at: performance.now() },
    };
    ladder.streams.forEach((stream, i) => {
      stream.on('data', (chunk: Buffer) => {
        try {
          appenders[i]!.push(chunk);
        } catch (err) {
          this.#o.log('live: the encoder output cannot be stored', { streamId, error: String(err) });
          ladder.kill();
        }
      });
    });
    this.#runs.set(streamId, run);
    void ladder.exited
      .then((exit) => this.#exited(run, exit))
      .catch((err: unknown) => this.#o.log('live: encoder exit not handled', { streamId, error: String(err) }));
    this.#o.log('live: encoder run started', { streamId, assetId, rev, offset, pid: ladder.pid });
    return run;
  }

  #sink(run: Run): PublishSink {
    const service = this;
    let current = run;
    let restarting: Promise<void> | null = null;
    let waitKeyframe = false;
    let base = 0;
    const sink: PublishSink = {
      write(chunk: Uint8Array): boolean {
        current.bytes += chunk.length;
        service.#o.onMedia?.(run.streamId, chunk);
        let ok = true;
        current.flv.push(chunk, (e) => {
          // Views valid during the callback only: what is written is a copy.
          if (e.kind === 'header') {
            if (!restarting && !waitKeyframe) ok = current.ladder.write(Uint8Array.from(e.bytes)) && ok;
            return;
          }
          if (e.type === FLV_TAG.video && !e.sequenceHeader) current.frames++;
          if (restarting) return;
          if (waitKeyframe) {
            if (!(e.type === FLV_TAG.video && e.keyframe)) return;
            waitKeyframe = false;
            base = e.timestamp;
          }
          const tag = base > 0 ? restamp(e.bytes, Math.max(0, e.timestamp - base)) : Uint8Array.from(e.bytes);
          ok = current.ladder.write(tag) && ok;
        });
        return ok;
      },
      once(event: 'drain', listener: () => void) {
        current.ladder.once(event, listener);
        return sink;
      },
      end() {
        current.ended = true;
        service.#o.onPublishEnded?.(run.streamId);
        return current.ladder.end();
      },
    };
    // ffmpeg dying mid-publish: a new run within a second, fed the prelude and then from the next keyframe.
    const watch = (r: Run) => {
      void r.ladder.exited
        .then(async (exit) => {
          if (r.ended || exit.ended || service.#closed) return;
          const s = await service.#o.live.get(r.streamId);
          // The publish ended while the state was read: not restarted, and the publisher is gone.
          if (r.ended || service.#closed) return service.#lost(r.streamId);
          if (!s || !['starting', 'started'].includes(s.state.name)) return;
          service.#o.log('live: encoder died, restarting', {
            streamId: r.streamId,
            code: exit.code,
            signal: exit.signal,
          });
          restarting = (async () => {
            await new Promise((res) => setTimeout(res, 200));
            const next = await service.#startRun(r.streamId, r.assetId, r.rev, r.input, r.transcode, r.flv);
            next.ladder.write(r.flv.prelude() ?? new Uint8Array(0));
            current = next;
            waitKeyframe = true;
            watch(next);
          })()
            .catch((err) => service.#o.log('live: restart failed', { streamId: r.streamId, error: String(err) }))
            .finally(() => {
              restarting = null;
            });
        })
        .catch((err: unknown) => service.#o.log('live: restart failed', { streamId: r.streamId, error: String(err) }));
    };
    watch(run);
    return sink;
  }

  /** A fragment reached a file: tell the origin; the first of every rendition makes the event playable. */
  #fragment(run: Run): void {
    this.#o.poke(run.assetId, run.rev);
    if (!run.appenders.every((a) => a.segments.length > 0)) return;
    // Playable once the first whole segment is out (a keyframe part after the first): players need one complete
    // segment (the MPD lists complete segments only; Shaka 5.2 fails on an LL-HLS playlist of parts alone).
    const ref = run.appenders[0]!.segments;
    if (!ref.slice(1).some((f) => f.startsWithKeyframe)) return;
    // The catalog steps run one at a time per run, after those of earlier fragments; one queued covers them all.
    if (run.goLiveQueued) return;
    run.goLiveQueued = true;
    run.work = run.work
      .then(() => {
        run.goLiveQueued = false;
        return this.#goLive(run);
      })
      .catch((err: unknown) => {
        // As when the fragment could not be stored: this run ends (and is restarted while the publish lasts).
        this.#o.log('live: the encoder output cannot be stored', { streamId: run.streamId, error: String(err) });
        run.ladder.kill();
      });
    this.#background(run.work);
  }

  /** While the stream is starting: the event becomes playable (and gets its poster), the stream started. */
  async #goLive(run: Run): Promise<void> {
    const s = await this.#o.live.get(run.streamId);
    if (s?.state.name === 'starting') {
      const asset = await this.#o.assets.get(run.assetId);
      if (asset && !asset.playable) {
        const codecs: Record<string, string> = {};
        run.ladder.outputs.forEach((o, i) => {
          codecs[o.id] = run.appenders[i]!.track!.codec;
        });
        await this.#o.assets.setPlayable(run.assetId, codecs);
        const top = run.ladder.outputs[0];
        if (top && this.#o.livePoster) {
          const assetId = run.assetId;
          void this.#o
            .livePoster(assetId, run.rev, top.id)
            .catch((err: unknown) => this.#o.log('live: poster failed', { assetId, error: String(err) }));
        }
      }
      try {
        await this.#o.live.transition(run.streamId, 'firstMedia');
      } catch (err) {
        this.#o.log('live: firstMedia refused', { streamId: run.streamId, error: String(err) });
      }
    }
  }

  /** A run's ffmpeg exited: close its files; when the publish is over, the stream goes to reconnecting. */
  async #exited(run: Run, exit: LiveLadderExit): Promise<void> {
    for (const a of run.appenders) a.close();
    if (this.#runs.get(run.streamId) === run) this.#runs.delete(run.streamId);
    if (!exit.ended && exit.code !== 0) {
      this.#o.log('live: encoder exited', {
        streamId: run.streamId,
        code: exit.code,
        signal: exit.signal,
        stderr: exit.stderrTail.slice(-500),
      });
    }
    if (!(run.ended || this.#closed)) return;
    // After the run's catalog steps (its firstMedia comes before the publisherLost).
    await run.work;
    await this.#lost(run.streamId);
  }

  /** The publisher is gone: publisherLost where the state says so, and the reconnect timer. Never rejects. */
  async #lost(streamId: string): Promise<void> {
    const gone = () => !(this.#runs.has(streamId) || this.http.active(streamId) || this.#closed);
    if (!gone()) return;
    try {
      const s = await this.#o.live.get(streamId);
      if (!s || !['starting', 'started'].includes(s.state.name) || !gone()) return;
      const next = await this.#o.live.transition(streamId, 'publisherLost');
      this.#schedule(next);
    } catch (err) {
      this.#o.log('live: publisherLost refused', { streamId, error: String(err) });
    }
  }

  /** Keeps background work (never rejecting: callers catch) for close() to wait on. */
  #background(p: Promise<unknown>): void {
    const settled = p.then(
      () => {},
      (err: unknown) => this.#o.log('live: background work failed', { error: String(err) }),
    );
    this.#finishing.add(settled);
    void settled.finally(() => this.#finishing.delete(settled));
  }

  #schedule(s: LiveStream): void {
    clearTimeout(this.#timers.get(s.id));
    this.#timers.delete(s.id);
    const at = deadline(s.state);
    // (closed: a transition that was still under way when close() cleared the timers sets none)
    if (at === undefined || this.#closed) return;
    const t = setTimeout(
      () => {
        this.#timers.delete(s.id);
        this.#background(this.#reconnectTimeout(s.id));
      },
      Math.max(0, at - Date.now()) + 5,
    );
    t.unref();
    this.#timers.set(s.id, t);
  }

  /** The reconnect window passed: stopped, unless the publisher came back (or a newer deadline runs). */
  async #reconnectTimeout(id: string): Promise<void> {
    const cur = await this.#o.live.get(id);
    if (cur?.state.name !== 'reconnecting') return;
    try {
      await this.#o.live.transition(id, 'reconnectTimeout');
      this.#o.log('live: publisher did not come back; stopped', { streamId: id });
    } catch {
      // a newer deadline: its own timer handles it
      this.#schedule(cur);
    }
  }

  /** After a restart: streams that had a publisher wait for it again (a fresh reconnect window). */
  async #recover(): Promise<void> {
    const total = await this.#o.live.count();
    for (let off = 0; off < total; off += 500) {
      for (const s of await this.#o.live.list({ limit: 500, offset: off })) {
        if (s.state.name === 'starting' || s.state.name === 'started') {
          try {
            const next = await this.#o.live.transition(s.id, 'publisherLost');
            this.#o.log('live: the server restarted while live; waiting for the publisher', { streamId: s.id });
            this.#schedule(next);
          } catch {}
        } else if (s.state.name === 'reconnecting') {
          this.#schedule(s);
        }
      }
    }
  }

  // ---- what the API calls --------------------------------------------------------------------------------------

  async stopStream(id: string): Promise<LiveStream> {
    const s = await this.#o.live.transition(id, 'stop');
    this.#drop(id, 'the stream was stopped');
    this.listen(s);
    return s;
  }

  async startStream(id: string): Promise<LiveStream> {
    const s = await this.#o.live.transition(id, 'start');
    this.listen(s);
    return s;
  }

  /** The event is over: the publisher is dropped, the files end, the asset becomes the ready archive. */
  async shutdown(id: string): Promise<LiveStream> {
    const s = await this.#o.live.transition(id, 'shutdown');
    clearTimeout(this.#timers.get(id));
    this.#drop(id, 'the stream was shut down');
    this.listen(s);
    const run = this.#runs.get(id);
    if (run) {
      run.ended = true;
      await run.ladder.end();
      await run.work;
    }
    // The catalog steps of the publish's last fragments come before the archive's.
    await this.http.settled();
    if (s.currentAssetId) await this.#finalize(s, s.currentAssetId);
    return (await this.#o.live.get(id)) ?? s;
  }

  /** Deletes a stream; an event it still holds open (stopped, or idle to resume) is finalised into its archive first. */
  async remove(id: string): Promise<boolean> {
    const s = await this.#o.live.get(id);
    if (!s) return false;
    const asset = s.currentAssetId ? await this.#o.assets.get(s.currentAssetId) : null;
    if (asset?.status === 'live' && (s.state.name === 'stopped' || s.state.name === 'idle')) await this.shutdown(id);
    const gone = await this.#o.live.delete(id);
    this.forget(id);
    return gone;
  }

  async rotateKey(id: string): Promise<LiveStream> {
    const s = await this.#o.live.rotateKey(id);
    // The new passphrase: a new listener (a caller already connected keeps its session until it drops).
    if (this.srt && !this.#runs.has(id)) void this.srt.closeStream(id).then(() => this.listen(s));
    return s;
  }

  async stats(id: string): Promise<LiveStats | null> {
    const run = this.#runs.get(id);
    const s = await this.#o.live.get(id);
    if (!run || !s || publicState(s.state) === 'stopped') return null;
    const now = performance.now();
    if (now - run.rate.at >= STAT_WINDOW_MS) {
      const secs = (now - run.rate.at) / 1000;
      run.rate = {
        bitrate: Math.round((run.bytes * 8) / secs),
        fps: Math.round((run.frames / secs) * 10) / 10,
        at: now,
      };
      run.bytes = 0;
      run.frames = 0;
    }
    const asset = await this.#o.assets.get(run.assetId);
    const edge = run.appenders[0]?.endSeconds ?? 0;
    const latency = asset?.liveStartMs != null && edge > 0 ? (Date.now() - asset.liveStartMs) / 1000 - edge : null;
    return {
      inputBitrate: run.rate.bitrate,
      inputFps: run.rate.fps,
      inputWidth: run.input.width,
      inputHeight: run.input.height,
      viewers: this.#o.viewers?.(run.assetId) ?? 0,
      latencySeconds: latency === null ? null : Math.max(0, Math.round(latency * 100) / 100),
    };
  }

  #drop(id: string, reason: string): void {
    const run = this.#runs.get(id);
    if (run) run.ended = true;
    this.rtmp.drop(id, reason);
    this.http.drop(id);
  }

  /** Final figures from the files (their fragment indexes, not their bytes), then ready; the rest in the background. */
  async #finalize(stream: LiveStream, assetId: string): Promise<void> {
    const asset = await this.#o.assets.get(assetId);
    if (asset?.status !== 'live' || !asset.rev) return;
    if (!stream.archive) {
      await this.#o.assets.delete(assetId);
      this.#o.evict(assetId);
      await this.#o.storage.deletePrefix(keys.assetPrefix(assetId));
      return;
    }
    const indexed = asset.renditions.map((r) => {
      const a = new CmafAppender({
        path: this.#o.storage.localPath(keys.rendition(assetId, asset.rev!, r.id)),
        offsetSeconds: 0,
      });
      const out = { r, track: a.track, fragments: [...a.segments] };
      a.close();
      return out;
    });
    const video = indexed.find((x) => x.r.type === 'video' && x.track);
    const refStarts = video
      ? groupParts(video.fragments, { timescale: video.track!.timescale, ended: true }).map(
          (s) => s.start / video.track!.timescale,
        )
      : undefined;
    let duration = 0;
    const finals = [];
    for (const x of indexed) {
      if (!x.track || x.fragments.length === 0) continue;
      const segs = groupParts(x.fragments, {
        timescale: x.track.timescale,
        ended: true,
        ...(x.r.type === 'audio' && refStarts ? { boundaries: refStarts } : {}),
      });
      const sum = summarizeIndex(x.track, segs.map(asSegment));
      duration = Math.max(duration, sum.duration);
      finals.push({
        id: x.r.id,
        codecs: x.track.codec,
        averageBitrate: sum.averageBitrate,
        peakBitrate: sum.peakBitrate,
        frameRate: sum.frameRate ?? null,
        width: x.track.width ?? null,
        height: x.track.height ?? null,
      });
    }
    if (finals.length !== asset.renditions.length) {
      await this.#o.assets.setFailed(assetId, {
        code: 'ASSET_NOT_PLAYABLE',
        message: 'the event ended before any media',
      });
      this.#o.evict(assetId);
      return;
    }
    await this.#o.assets.setReady(assetId, { duration, renditions: finals });
    this.#o.evict(assetId);
    if (this.#o.finishArchive) {
      const p = this.#o
        .finishArchive(assetId)
        .catch((err) => this.#o.log('live: archive extras failed', { assetId, error: String(err) }));
      this.#finishing.add(p);
      void p.finally(() => this.#finishing.delete(p));
    }
  }

  /** Opens (or closes) the stream's SRT listener as its state says: only a stream that can take a publisher. */
  listen(s: LiveStream): void {
    if (!this.srt || this.#closed) return;
    if (s.srtPort === null || s.state.name === 'shutdown' || s.state.name === 'stopped') {
      void this.srt.closeStream(s.id);
      return;
    }
    try {
      this.srt.open(s.id, s.srtPort, s.srtPassphrase);
    } catch (err) {
      this.#o.log('live: srt listener not opened', { streamId: s.id, error: String(err) });
    }
  }

  /** A stream is gone: its listener too. */
  forget(id: string): void {
    void this.srt?.closeStream(id);
  }

  /** The FLV prelude of a stream's current publish (for a push target added while it is live); null when none. */
  prelude(streamId: string): Uint8Array | null {
    return this.#runs.get(streamId)?.flv.prelude() ?? null;
  }

  /** The pid of a stream's ladder ffmpeg (operations, tests); undefined when none runs here. */
  ladderPid(streamId: string): number | undefined {
    return this.#runs.get(streamId)?.ladder.pid;
  }

  /** Whether a stream has a run in this process (for tests and stats). */
  running(id: string): boolean {
    return this.#runs.has(id);
  }
}
