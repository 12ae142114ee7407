// `smoothcast ls`: the assets of a data folder, newest first.
import type { Config } from '../core/config.ts';
import { presentAsset } from '../roles/api/present.ts';
import { openData } from '../roles/server.ts';
import type { Cli } from './main.ts';

export async function ls(config: Config, cli: Cli): Promise<number> {
  const data = await openData(config);
  const { db, assets } = data;
  try {
    const list = await assets.list({ limit: 10_000 });
    if (cli.values.json) {
      for (const a of list)
        console.log(JSON.stringify(presentAsset(a, config.server.publicUrl, await data.captions.list(a.id))));
      return 0;
    }
    if (list.length === 0) {
      console.log('no assets');
      return 0;
    }
    for (const a of list) {
      const status =
        a.status === 'processing' && a.progress ? `processing ${Math.round(a.progress.percent)}%` : a.status;
      const dur = a.duration ? `${a.duration.toFixed(1)}s` : '-';
      const err = a.error ? `  ${a.error.code}: ${a.error.message}` : '';
      console.log(`${a.id}  ${status.padEnd(16)} ${dur.padStart(8)}  ${a.title}${err}`);
    }
    return 0;
  } finally {
    await db.close();
  }
}
