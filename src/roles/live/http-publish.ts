// HTTP push publishes (Smooth `-f ismv`, DASH-IF CMAF ingest; http-ingest.ts parses them): the encoder has already
// made the ladder, so each pushed track is stored as it is — appended to ONE CMAF file per track (a rendition of
// the event: video tracks v0, v1, … and audio a0, … in the order they first arrive, remembered by track name), no
// transcode. One publish may be several requests (a DASH-IF encoder POSTs each track, or PUTs each segment): they
// share the event, and the publish ends only when no request has been open for `lingerMs`.
import type { AssetRepository } from '../../core/db/assets.ts';
import type { LiveRepository } from '../../core/db/live.ts';
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
}

interface Track {
  rid: string;
  appender: CmafAppender;
}

interface Publish {
  streamId: string;
  assetId: string;
  rev: string;
  tracks: Map<string, Track>;
  open: number;
  linger: NodeJS.Timeout | undefined;
}

export class HttpPublishes {
  readonly #o: HttpPublishOptions;
  readonly #active = new Map<string, Publish>();

  constructor(o: HttpPublishOptions) {
    this.#o = o;
  }

  active(streamId: string): boolean {
    return this.#active.has(streamId);
  }

  /** A key whose stream takes a publisher, or already has this HTTP publish going. */
  authorize(key: string): { streamId: string } | null {
    const s = this.#o.live.byKey(key);
    if (!s) return null;
    if (this.#active.has(s.id) || can(s.state, 'publish', Date.now())) return { streamId: s.id };
    return null;
  }

  async onTrack(target: { streamId: string }, t: IngestTrack): Promise<TrackSink> {
    const pub = this.#publish(target.streamId);
    pub.open++;
    clearTimeout(pub.linger);
    const name = `${t.protocol}:${t.name}:${t.trackId}`;
    let track = pub.tracks.get(name);
    if (!track) {
      // The n-th track of a kind in this publish is rendition v{n} / a{n}: an encoder that reconnects sends its
      // tracks in the same order, so they continue the same files.
      const asset = this.#o.assets.get(pub.assetId)!;
      const n = [...pub.tracks.values()].filter((x) => x.rid.startsWith(t.kind === 'video' ? 'v' : 'a')).length;
      const rid = `${t.kind === 'video' ? 'v' : 'a'}${n}`;
      if (!asset.renditions.some((r) => r.id === rid)) {
        this.#o.assets.addLiveRenditions(pub.assetId, [
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
      const appender = new CmafAppender({
        path: this.#o.storage.localPath(key),
        offsetSeconds: 0,
        onFragment: () => this.#fragment(pub),
      });
      appender.push(t.init);
      track = { rid, appender };
      pub.tracks.set(name, track);
    }
    const tr = track;
    return {
      fragment: (bytes: Uint8Array, start: number): StoreResult => {
        const last = tr.appender.segments.at(-1);
        if (last && start < last.start + last.duration) return 'duplicate';
        tr.appender.push(bytes);
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

  /** Ends every publish now (server shutdown, or the API stopped the stream). */
  drop(streamId?: string): void {
    for (const p of [...this.#active.values()]) if (!streamId || p.streamId === streamId) this.#finish(p);
  }

  #publish(streamId: string): Publish {
    const have = this.#active.get(streamId);
    if (have) return have;
    const stream = this.#o.live.transition(streamId, 'publish');
    // Tracks become renditions as they arrive (addLiveRenditions).
    const { id: assetId, rev } = eventAsset(this.#o, stream, () => ({ renditions: [], source: { ingest: 'http' } }));
    if (!rev) throw new Error(`live asset ${assetId} has no rev`);
    const p: Publish = { streamId, assetId, rev, tracks: new Map(), open: 0, linger: undefined };
    this.#active.set(streamId, p);
    this.#o.log('live: http publish started', { streamId, assetId, rev });
    return p;
  }

  #fragment(pub: Publish): void {
    this.#o.poke(pub.assetId, pub.rev);
    const asset = this.#o.assets.get(pub.assetId);
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
      if (Object.keys(bitrates).length > 0) this.#o.assets.setLiveBitrates(pub.assetId, bitrates);
      this.#o.assets.setPlayable(pub.assetId, codecs);
      const s = this.#o.live.get(pub.streamId);
      if (s?.state.name === 'starting') this.#o.live.transition(pub.streamId, 'firstMedia');
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
    this.#o.ended(p.streamId);
  }
}
