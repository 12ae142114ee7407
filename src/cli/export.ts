// `smoothcast export ID DIR [--data DIR] [--json]`: a self-contained folder that plays from any static web server
// or bucket with no smoothcast behind it: one file per rendition (ftyp+moov, a sidx, the fragments — no chunk
// files), HLS playlists addressing them with EXT-X-BYTERANGE, a DASH MPD with SegmentBase, the text tracks (one
// WebVTT file each, on the presentation timeline, with a one-segment HLS playlist) and the poster.
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../core/config.ts';
import { isValidAssetId } from '../core/db/assets.ts';
import { SmoothcastError } from '../core/errors.ts';
import { keys } from '../core/storage/storage.ts';
import { type SingleFileLayout, singleFileLayout } from '../media/bmff/single-file.ts';
import { writeMpd } from '../media/manifest/dash.ts';
import { writeMediaPlaylist, writeMultivariantPlaylist, writeTextPlaylist } from '../media/manifest/hls.ts';
import type { ManifestRendition, UrlScheme } from '../media/types.ts';
import { IndexCache } from '../roles/origin/index-cache.ts';
import { readPresentation } from '../roles/origin/origin.ts';
import { TextTracks } from '../roles/origin/text-tracks.ts';
import { openData, textRendition } from '../roles/server.ts';
import type { Cli } from './main.ts';

/** URLs inside the export: everything side by side in one folder. */
const FLAT: UrlScheme = {
  mediaPlaylist: (r) => `${r.id}.m3u8`,
  hlsInit: (r) => `${r.id}.mp4`,
  hlsSegment: (r) => `${r.id}.mp4`,
  dashInitTemplate: '$RepresentationID$.mp4',
  dashMediaTemplate: '$RepresentationID$.mp4#$Number$',
  textPlaylist: (t) => `${t.id}.m3u8`,
  textFile: (t) => `${t.id}.vtt`,
};

/** The single file: the stored init, the sidx, then the stored fragments, streamed. */
async function writeSingleFile(src: string, dest: string, layout: SingleFileLayout): Promise<void> {
  await pipeline(async function* () {
    yield* createReadStream(src, { start: 0, end: layout.initSize - 1 });
    yield layout.sidx;
    yield* createReadStream(src, { start: layout.initSize, end: layout.storedEnd - 1 });
  }, createWriteStream(dest));
}

export async function exportCommand(config: Config, cli: Cli): Promise<number> {
  const [id, dir] = cli.positionals;
  if (!id || !dir || cli.positionals.length !== 2) {
    console.error('usage: smoothcast export ID DIR [--data DIR] [--json]');
    return 2;
  }
  const data = await openData(config);
  try {
    if (!isValidAssetId(id)) throw new SmoothcastError('INVALID_ID', `invalid asset id ${JSON.stringify(id)}`);
    const asset = await data.assets.get(id);
    if (!asset) throw new SmoothcastError('ASSET_NOT_FOUND', `no asset ${id}`);
    if (asset.status !== 'ready' || !asset.rev) {
      throw new SmoothcastError('ASSET_NOT_PLAYABLE', `asset ${id} is ${asset.status}; only a ready asset exports`);
    }
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      throw new SmoothcastError('BAD_REQUEST', `${dir} exists and is not empty; give a new or empty folder`);
    }
    mkdirSync(dir, { recursive: true });
    const rev = asset.rev;
    const cache = new IndexCache(data.storage, { maxEntries: 64 });
    const p = await readPresentation(cache, id, rev, {
      ...asset,
      text: (await data.captions.list(id)).map(textRendition),
    });
    const layouts = new Map<string, SingleFileLayout>();
    const layoutOf = (r: ManifestRendition) => layouts.get(r.id)!;
    const files: string[] = [];
    for (const r of p.renditions) {
      const layout = singleFileLayout(r.track, r.segments);
      layouts.set(r.id, layout);
      // S3: the rendition is fetched into scratch first (one GET), then rewritten as a single file.
      const src = await data.storage.fetch(keys.rendition(id, rev, r.id));
      try {
        await writeSingleFile(src.path, join(dir, `${r.id}.mp4`), layout);
      } finally {
        await src.release();
      }
      files.push(`${r.id}.mp4`);
      if (!cli.values.json) console.error(`  ${r.id}.mp4  ${(layout.size / 2 ** 20).toFixed(1)} MiB`);
    }
    const texts = new TextTracks(data.storage, { maxEntries: 8 });
    for (const t of p.text ?? []) {
      const track = await texts.get(id, rev, t.id, asset.presentationOffset ?? 0);
      writeFileSync(join(dir, `${t.id}.vtt`), track.whole);
      const playlist = writeTextPlaylist(t, p, FLAT, { segmentDuration: p.duration, single: true });
      writeFileSync(join(dir, `${t.id}.m3u8`), playlist);
      files.push(`${t.id}.vtt`, `${t.id}.m3u8`);
    }
    writeFileSync(join(dir, 'master.m3u8'), writeMultivariantPlaylist(p, FLAT));
    for (const r of p.renditions) {
      const text = writeMediaPlaylist(r, p, FLAT, { byteRange: { uri: `${r.id}.mp4`, layout: layoutOf(r) } });
      writeFileSync(join(dir, `${r.id}.m3u8`), text);
      files.push(`${r.id}.m3u8`);
    }
    writeFileSync(
      join(dir, 'manifest.mpd'),
      writeMpd(p, FLAT, { segmentBase: { uri: (r) => `${r.id}.mp4`, layout: layoutOf } }),
    );
    files.push('master.m3u8', 'manifest.mpd');
    const poster = await data.storage.getBytes(keys.poster(id));
    if (poster) {
      writeFileSync(join(dir, 'poster.jpg'), poster);
      files.push('poster.jpg');
    }
    if (cli.values.json) console.log(JSON.stringify({ id, dir, hls: 'master.m3u8', dash: 'manifest.mpd', files }));
    else console.log(`exported ${id} to ${dir}: HLS master.m3u8, DASH manifest.mpd (${files.length} files)`);
    return 0;
  } catch (err) {
    const e = err instanceof SmoothcastError ? err : new SmoothcastError('INTERNAL', String(err));
    console.error(`smoothcast export: ${e.code}: ${e.message}`);
    return 1;
  } finally {
    await data.db.close();
  }
}
