// HTTP push publishes (Smooth `-f ismv`, DASH-IF CMAF ingest; http-ingest.ts parses them): the encoder has already
// made the ladder, so each pushed track is stored as it is — appended to ONE CMAF file per track (a rendition of
// the event: video tracks v0, v1, … and audio a0, … in the order they first arrive, remembered by track name), no
// transcode. One publish may be several requests (a DASH-IF encoder POSTs each track, or PUTs each segment): they
// share the event, and the publish ends only when no request has been open for `lingerMs`.
import type { AssetRepository } from '../../core/db/assets.ts';
import type { LiveRepository } from '../../core/db/live.ts';
import { SmoothcastError } from '../../core/errors.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { can } from '../../media/live/state.ts';
import { CmafAppender } from './cmaf-appender.ts';
import { eventAsset } from './event-asset.ts';
import type { IngestTrack, StoreResult, TrackSink } from './http-ingest.ts';

export interface HttpPublishOptions {
  live: LiveRepository;
  assets: AssetRepository;
  storage: Storage;
  log: (msg: string, extra?: Record<string, unknown>) => void;
  poke(assetId: string, rev: string): void;
  /** The publish is over (no request for lingerMs): the service moves the stream on (publisherLost). */
  ended(streamId: string): void;
  lingerMs?: number;
  onEventCreated?: ((assetId: string) => Promise<void>) | undefined;
}

interface Track {
  rid: string;
  appender: CmafAppender;
  /** What the fragments of the last push(es) started (#fragment): the sink awaits them before its next fragment. */
  jobs: Promise<void>[];
}

interface Publish {
  streamId: string;
  assetId: string;
  rev: string;
  tracks: Map<string, Track>;
  open: number;
  linger: NodeJS.Timeout | undefined;
  /** The tail of the publish's catalog work after fragments, one step at a time (never rejects). */
  work: Promise<void>;
  /** The tail of the track openings, one at a time (so two new tracks never take the same rendition). */
  opening: Promise<void>;
}

/** A publish being opened (its transition and event asset), for the requests that arrive meanwhile. */
interface Opening {
  promise: Promise<Publish>;
  /** drop() came meanwhile: the publish ends as soon as it is open. */
  dropped: boolean;
}

export class HttpPublishes {
  readonly #o: HttpPublishOptions;
  readonly #active = new Map<string, Publish>();
  readonly #opening = new Map<string, Opening>();
  /** Background work (a finished publish's `ended`) for settled(). */
  readonly #background = new Set<Promise<void>>();

  constructor(o: HttpPublishOptions) {
    this.#o = o;
  }

  /** A publish is on, or being opened, for the stream. */
  active(streamId: string): boolean {
    return this.#active.has(streamId) || this.#opening.has(streamId);
  }

  /** A key whose stream takes a publisher, or already has this HTTP publish going. */
  async authorize(key: string): Promise<{ streamId: string } | null> {
    const s = await this.#o.live.byKey(key);
    if (!s) return null;
    if (this.active(s.id) || can(s.state, 'publish', Date.now())) return { streamId: s.id };
    return null;
  }

  async onTrack(target: { streamId: string }, t: IngestTrack): Promise<TrackSink> {
    const pub = await this.#publish(target.streamId);
    pub.open++;
    clearTimeout(pub.linger);
    const name = `${t.protocol}:${t.name}:${t.trackId}`;
    const tr = pub.tracks.get(name) ?? (await this.#openTrack(pub, t, name));
    return {
      fragment: async (bytes: Uint8Array, start: number): Promise<StoreResult> => {
        const last = tr.appender.segments.at(-1);
        if (last && start < last.start + last.duration) return 'duplicate';
        try {
          tr.appender.push(bytes);
        } finally {
          // The catalog work of the fragments just written is done before the next one is taken.
          await Promise.all(tr.jobs.splice(0));
        }
        return 'stored';
      },
      end: () => {
        pub.open--;
        if (pub.open > 0) return;
        pub.linger = setTimeout(() => this.#finish(pub), this.#o.lingerMs ?? 5000);
        pub.linger.unref();
      },
    };
  }

  /** The track's rendition and file, after any other track of the publish being opened. */
  #openTrack(pub: Publish, t: IngestTrack, name: string): Promise<Track> {
    const job = pub.opening.then(async () => {
      const have = pub.tracks.get(name);
      if (have) return have;
      // The n-th track of a kind in this publish is rendition v{n} / a{n}: an encoder that reconnects sends its
      // tracks in the same order, so they continue the same files.
      const asset = (await this.#o.assets.get(pub.assetId))!;
      const n = [...pub.tracks.values()].filter((x) => x.rid.startsWith(t.kind === 'video' ? 'v' : 'a')).length;
      const rid = `${t.kind === 'video' ? 'v' : 'a'}${n}`;
      if (!asset.renditions.some((r) => r.id === rid)) {
        await this.#o.assets.addLiveRenditions(pub.assetId, [
          {
            id: rid,
            type: t.kind,
            width: t.track.width ?? null,
            height: t.track.height ?? null,
            // Nominal until measured from its first fragments (setLiveBitrates).
            bitrate: 1_000_000,
            ...(t.kind === 'audio' ? { language: 'und', default: n === 0 } : {}),
          },
        ]);
      }
      const key = keys.rendition(pub.assetId, pub.rev, rid);
      await this.#o.storage.prepare(key);
      const jobs: Promise<void>[] = [];
      const appender = new CmafAppender({
        path: this.#o.storage.localPath(key),
        offsetSeconds: 0,
        onFragment: () => {
          jobs.push(this.#fragment(pub));
        },
      });
      const track: Track = { rid, appender, jobs };
      try {
        appender.push(t.init);
      } finally {
        await Promise.all(jobs.splice(0));
      }
      pub.tracks.set(name, track);
      return track;
    });
    pub.opening = job.then(
      () => {},
      () => {},
    );
    return job;
  }

  /** Ends every publish now (server shutdown, or the API stopped the stream). */
  drop(streamId?: string): void {
    for (const p of [...this.#active.values()]) if (!streamId || p.streamId === streamId) this.#finish(p);
    for (const [id, o] of this.#opening) if (!streamId || id === streamId) o.dropped = true;
  }

  /** Resolves once the work of the publishes ended so far (their last catalog steps, `ended`) is done. */
  async settled(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  #publish(streamId: string): Promise<Publish> {
    const have = this.#active.get(streamId);
    if (have) return Promise.resolve(have);
    const pending = this.#opening.get(streamId);
    if (pending) return pending.promise;
    const opening = { dropped: false } as Opening;
    opening.promise = this.#open(streamId, opening);
    this.#opening.set(streamId, opening);
    const forget = () => {
      if (this.#opening.get(streamId) === opening) this.#opening.delete(streamId);
    };
    void opening.promise.then(forget, forget);
    return opening.promise;
  }

  async #open(streamId: string, opening: Opening): Promise<Publish> {
    const stream = await this.#o.live.transition(streamId, 'publish');
    // Tracks become renditions as they arrive (addLiveRenditions).
    const { id: assetId, rev } = await eventAsset(this.#o, stream, () => ({
      renditions: [],
      source: { ingest: 'http' },
    }));
    if (!rev) throw new Error(`live asset ${assetId} has no rev`);
    const p: Publish = {
      streamId,
      assetId,
      rev,
      tracks: new Map(),
      open: 0,
      linger: undefined,
      work: Promise.resolve(),
      opening: Promise.resolve(),
    };
    this.#active.set(streamId, p);
    this.#o.log('live: http publish started', { streamId, assetId, rev });
    if (opening.dropped) {
      this.#finish(p);
      throw new SmoothcastError('LIVE_STATE_CONFLICT', 'the publish was ended while it was being opened');
    }
    return p;
  }

  /** A fragment is on disk: the origin is told now; the catalog work follows that of earlier fragments. */
  #fragment(pub: Publish): Promise<void> {
    this.#o.poke(pub.assetId, pub.rev);
    const job = pub.work.then(() => this.#goLive(pub));
    pub.work = job.catch(() => {}); // the sink that wrote the fragment gets the error
    return job;
  }

  async #goLive(pub: Publish): Promise<void> {
    const asset = await this.#o.assets.get(pub.assetId);
    if (!asset) return;
    const tracks = [...pub.tracks.values()];
    if (!tracks.every((t) => t.appender.segments.length > 0)) return;
    // Playable once every track announced so far has media; a track that joins later gets its codecs then.
    if (asset.playable && asset.renditions.every((r) => r.codecs !== null)) return;
    const codecs: Record<string, string> = {};
    for (const t of tracks) codecs[t.rid] = t.appender.track!.codec;
    // The encoder does not say its bitrates: measure them from what came so far (with a margin for the peaks),
    // before the manifests first name them (Smooth puts them in fragment URLs, so they are fixed from then on).
    const bitrates: Record<string, number> = {};
    for (const t of tracks) {
      if (asset.renditions.find((r) => r.id === t.rid)?.codecs) continue;
      const track = t.appender.track!;
      const segs = t.appender.segments;
      const seconds = segs.reduce((n, f) => n + f.duration, 0) / track.timescale;
      const bytes = segs.reduce((n, f) => n + f.size, 0);
      if (seconds > 0) bitrates[t.rid] = Math.max(1000, Math.round(((bytes * 8) / seconds) * 1.2));
    }
    try {
      if (Object.keys(bitrates).length > 0) await this.#o.assets.setLiveBitrates(pub.assetId, bitrates);
      await this.#o.assets.setPlayable(pub.assetId, codecs);
      const s = await this.#o.live.get(pub.streamId);
      if (s?.state.name === 'starting') await this.#o.live.transition(pub.streamId, 'firstMedia');
    } catch (err) {
      this.#o.log('live: http publish could not go live', { streamId: pub.streamId, error: String(err) });
    }
  }

  #finish(p: Publish): void {
    if (this.#active.get(p.streamId) !== p) return;
    clearTimeout(p.linger);
    this.#active.delete(p.streamId);
    for (const t of p.tracks.values()) t.appender.close();
    this.#o.log('live: http publish ended', { streamId: p.streamId });
    // After the catalog work of its last fragments (a firstMedia before the publisherLost that follows).
    const ended = p.work
      .then(() => this.#o.ended(p.streamId))
      .catch((err: unknown) =>
        this.#o.log('live: http publish end failed', { streamId: p.streamId, error: String(err) }),
      );
    this.#background.add(ended);
    void ended.finally(() => this.#background.delete(ended));
  }
}
