// `smoothcast rm ID…`: deletes assets and their files. A server encoding one of them sees its job cancelled at the
// next lease heartbeat and stops its ffmpeg.
import type { Config } from '../core/config.ts';
import { isValidAssetId } from '../core/db/assets.ts';
import { keys } from '../core/storage/storage.ts';
import { openData } from '../roles/server.ts';
import type { Cli } from './main.ts';

export async function rm(config: Config, cli: Cli): Promise<number> {
  if (cli.positionals.length === 0) {
    console.error('smoothcast rm: give at least one asset id');
    return 2;
  }
  const { db, assets, queue, storage } = await openData(config);
  let code = 0;
  try {
    for (const id of cli.positionals) {
      if (!isValidAssetId(id) || !(await assets.get(id))) {
        console.error(`smoothcast rm: no asset ${id}`);
        code = 1;
        continue;
      }
      await queue.cancelForAsset(id);
      await assets.delete(id);
      await storage.deletePrefix(keys.assetPrefix(id));
      console.log(`deleted ${id}`);
    }
  } finally {
    await db.close();
  }
  return code;
}
