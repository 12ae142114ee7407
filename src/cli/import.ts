// `smoothcast import FILE…`: copies files into the data folder, queues their encodes for the server's worker, and
// (unless --no-wait) shows progress until each is ready, then prints its playback URLs.
import type { Config } from '../core/config.ts';
import type { Asset, NewAssetAccess } from '../core/db/assets.ts';
import { SmoothcastError } from '../core/errors.ts';
import { importLocalFile } from '../core/ingest.ts';
import { addCaption } from '../roles/api/captions.ts';
import { presentAsset } from '../roles/api/present.ts';
import { openData } from '../roles/server.ts';
import { type CaptionSpec, readCaptionSpec } from './captions.ts';
import type { Cli } from './main.ts';
import { ProgressBars } from './progress-bar.ts';

const NO_WORKER_HINT_MS = 15_000;

export async function importCommand(config: Config, cli: Cli): Promise<number> {
  if (cli.positionals.length === 0) {
    console.error('smoothcast import: give at least one file');
    return 2;
  }
  const json = Boolean(cli.values.json);
  const base = config.server.publicUrl || `http://localhost:${config.server.port}`;
  // Caption files are checked before any video is imported: a bad one stops the import with nothing changed.
  const specs: CaptionSpec[] = [];
  const given = cli.values.captions;
  for (const spec of Array.isArray(given) ? given : []) {
    try {
      specs.push(await readCaptionSpec(spec, config.captions.maxBytes));
    } catch (err) {
      const e = err instanceof SmoothcastError ? err : new SmoothcastError('INTERNAL', String(err));
      console.error(`smoothcast import: --captions ${spec}: ${e.code}: ${e.message}`);
      return 2;
    }
  }
  const data = await openData(config);
  const deps = { config, ...data };
  let failed = 0;
  const queued: Asset[] = [];
  try {
    for (const file of cli.positionals) {
      try {
        const a = await importLocalFile(deps, file, { access: importAccess(config, cli) });
        queued.push(a);
        for (const c of specs) {
          await addCaption({ ...data, maxBytes: config.captions.maxBytes }, a.id, {
            body: c.bytes,
            language: c.language,
          });
        }
        if (cli.values['no-wait']) {
          console.log(
            json ? JSON.stringify(presentAsset(a, base, await data.captions.list(a.id))) : `queued ${a.id}  ${a.title}`,
          );
        }
      } catch (err) {
        failed++;
        const e = err instanceof SmoothcastError ? err : new SmoothcastError('INTERNAL', String(err));
        if (json) console.log(JSON.stringify({ file, error: e.toJSON() }));
        else console.error(`smoothcast import: ${file}: ${e.code}: ${e.message}`);
      }
    }
    if (cli.values['no-wait']) return failed ? 1 : 0;

    const bars = new ProgressBars(process.stderr);
    const pending = new Map(queued.map((a) => [a.id, a]));
    const started = Date.now();
    let hinted = false;
    while (pending.size > 0) {
      for (const [id, before] of pending) {
        const a = await data.assets.get(id);
        if (!a) {
          pending.delete(id);
          failed++;
          console.error(`smoothcast import: ${before.title}: the asset was deleted while importing`);
          continue;
        }
        const percent = a.status === 'ready' ? 100 : (a.progress?.percent ?? 0);
        bars.update(id, {
          label: a.title,
          percent,
          status: a.status,
          speed: a.progress?.speed,
          etaSeconds: a.progress?.etaSeconds,
        });
        if (a.status === 'ready' || a.status === 'failed') {
          pending.delete(id);
          const view = presentAsset(a, base, await data.captions.list(a.id));
          if (a.status === 'failed') failed++;
          if (json) console.log(JSON.stringify(view));
          else if (a.status === 'ready') {
            console.log(`ready ${a.id}  ${a.title}\n  HLS:  ${view.playback.hls}\n  DASH: ${view.playback.dash}`);
          } else console.log(`failed ${a.id}  ${a.title}: ${a.error?.code}: ${a.error?.message}`);
        } else if (!hinted && a.status === 'queued' && Date.now() - started > NO_WORKER_HINT_MS) {
          hinted = true;
          console.error(
            `smoothcast import: still queued after ${NO_WORKER_HINT_MS / 1000} s — is \`smoothcast serve\` running ` +
              `on ${config.storage.dataDir}? (its worker encodes imported files)`,
          );
        }
      }
      if (pending.size > 0) await new Promise((r) => setTimeout(r, 300));
    }
    return failed ? 1 : 0;
  } finally {
    await data.db.close();
  }
}

/** --policy and --encryption of the imported assets (validated by the catalog). */
function importAccess(config: Config, cli: Cli): NewAssetAccess {
  const out: NewAssetAccess = { playbackPolicy: config.security.defaultPlaybackPolicy as 'public' | 'signed' };
  if (typeof cli.values.policy === 'string') out.playbackPolicy = cli.values.policy as NewAssetAccess['playbackPolicy'];
  if (typeof cli.values.encryption === 'string') out.encryption = cli.values.encryption as NewAssetAccess['encryption'];
  return out;
}
