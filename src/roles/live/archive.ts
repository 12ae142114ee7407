// What a live event's archive gets after shutdown made it ready (its manifests already play it whole): a poster (a
// frame 10% in, from the top rendition) and the thumbnail sprites, the same ffmpeg steps as an upload's, run from
// the event's own rendition files. Best effort: a failure is logged, the archive stays playable.
import { existsSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import type { Config } from '../../core/config.ts';
import type { AssetRepository } from '../../core/db/assets.ts';
import { runProcess } from '../../core/process.ts';
import type { Storage } from '../../core/storage/storage.ts';
import { keys } from '../../core/storage/storage.ts';
import { FragmentIndexer } from '../../media/bmff/indexer.ts';
import { buildPosterArgs } from '../../media/encode/ffmpeg-args.ts';
import { advanceIndex } from '../origin/index-cache.ts';
import type { EncodeContext } from '../worker/encode-job.ts';
import { type Finished, makeThumbnails } from '../worker/finishing.ts';
import { Workspace } from '../worker/workspace.ts';

export async function finishArchive(
  assetId: string,
  o: {
    assets: AssetRepository;
    storage: Storage;
    config: Config;
    log: (m: string, e?: Record<string, unknown>) => void;
  },
): Promise<void> {
  const asset = await o.assets.get(assetId);
  if (asset?.status !== 'ready' || !asset.rev) return;
  const rev = asset.rev;
  const finished: Finished[] = [];
  for (const r of asset.renditions) {
    const track = await readTrack(o.storage, keys.rendition(assetId, rev, r.id));
    if (track) finished.push({ id: r.id, track });
  }
  const duration = asset.duration ?? 0;
  const top = finished.find((f) => f.track.kind === 'video');
  if (top) {
    const key = keys.poster(assetId);
    const tmp = `${o.storage.localPath(key)}.tmp.jpg`;
    const input = o.storage.localPath(keys.rendition(assetId, rev, top.id));
    for (const time of [duration * 0.1, 0]) {
      const args = buildPosterArgs(input, time, tmp, 1280, { videoStream: 0, maxPixels: o.config.limits.maxPixels });
      const r = await runProcess('ffmpeg', args, { timeoutMs: 60_000 });
      if (r.code === 0 && existsSync(tmp)) {
        await rename(tmp, o.storage.localPath(key));
        break;
      }
    }
  }
  const ctx = {
    config: o.config,
    storage: o.storage,
    signal: new AbortController().signal,
    log: o.log,
    // The event's files are on this node's disk (the live storage is local): written in place.
    ws: new Workspace(o.storage, { held: null, scratchRoot: '', name: assetId }),
  } as unknown as EncodeContext;
  await makeThumbnails(asset, rev, finished, duration, ctx);
  o.log('live: archive finished', { assetId, duration });
}

/** The poster of a live event while it runs: its first frame (the archive's replaces it at shutdown). */
export async function makeLivePoster(
  assetId: string,
  rev: string,
  rid: string,
  o: { storage: Storage; config: Config; log: (m: string, e?: Record<string, unknown>) => void },
): Promise<void> {
  const key = keys.poster(assetId);
  await o.storage.prepare(key);
  const tmp = `${o.storage.localPath(key)}.tmp.jpg`;
  const input = o.storage.localPath(keys.rendition(assetId, rev, rid));
  const args = buildPosterArgs(input, 0, tmp, 1280, { videoStream: 0, maxPixels: o.config.limits.maxPixels });
  const r = await runProcess('ffmpeg', args, { timeoutMs: 30_000 });
  if (r.code === 0 && existsSync(tmp)) await rename(tmp, o.storage.localPath(key));
  else o.log('live: poster failed', { assetId });
}

async function readTrack(storage: Storage, key: string) {
  const ix = new FragmentIndexer();
  // The init is all that is needed: stop once the track is known.
  await advanceIndex(storage, key, ix, () => ix.track !== undefined);
  return ix.track;
}
