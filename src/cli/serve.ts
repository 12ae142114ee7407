// `smoothcast serve`: runs every role in this process until SIGINT/SIGTERM.
import type { Config } from '../core/config.ts';
import { consoleLogger, startPlatform } from '../roles/server.ts';

export async function serve(config: Config): Promise<number> {
  const platform = await startPlatform(config, consoleLogger);
  console.log(`smoothcast is serving ${platform.url} (data: ${config.storage.dataDir})`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  console.log('smoothcast: stopping…');
  await platform.close();
  return 0;
}
