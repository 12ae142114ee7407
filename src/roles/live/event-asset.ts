// The asset of a publish: the live event the stream's state says it continues (a reconnect, `start` after `stop`),
// or a new one — status live, its renditions, media time 0 at the wall clock now, a fresh `rl-…` rev, and the
// stream's current asset from then on. Shared by the RTMP/SRT and the HTTP push publishes.

import type { SourceSummary } from '../../core/db/assets.ts';
import { type Asset, type AssetRepository, newAssetId, type PlannedRendition } from '../../core/db/assets.ts';
import type { LiveRepository, LiveStream } from '../../core/db/live.ts';

/** `stream` as `transition(…, 'publish')` left it (state `starting`). */
export async function eventAsset(
  o: {
    assets: AssetRepository;
    live: LiveRepository;
    /** A new event's files will grow on this node (S3 storage: it holds them until the archive is uploaded). */
    onEventCreated?: ((assetId: string) => Promise<void>) | undefined;
  },
  stream: LiveStream,
  fresh: () => { renditions: readonly PlannedRendition[]; source: SourceSummary },
): Promise<Asset> {
  const resume = stream.state.name === 'starting' && stream.state.resume;
  const current = stream.currentAssetId ? await o.assets.get(stream.currentAssetId) : null;
  if (resume && current?.status === 'live' && current.rev && current.liveStartMs !== null) return current;
  const { renditions, source } = fresh();
  const asset = await o.assets.createLive({
    id: newAssetId(),
    title: stream.title,
    liveStreamId: stream.id,
    liveStartMs: Date.now(),
    rev: `rl-${Date.now().toString(36)}`,
    renditions,
    source,
    // Its viewers are the stream's: the event inherits who may watch and how many (PATCH on the stream follows).
    access: { playbackPolicy: stream.playbackPolicy, maxViewers: stream.maxViewers },
  });
  await o.onEventCreated?.(asset.id);
  await o.live.setCurrentAsset(stream.id, asset.id);
  return asset;
}
