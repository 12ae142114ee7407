// The master key: 32 bytes that wrap every secret the server must be able to read back (content keys, webhook
// secrets, the server's playback signing key), so the database never holds one in clear. It comes from
// security.masterKey, or the file security.masterKeyFile, or — the embedded default — DATA/secrets/master.key,
// created with mode 0600 on first start. Losing it makes encrypted assets and webhooks unreadable: back it up
// apart from the database.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Config } from './config.ts';
import { parseMasterKey } from './content-keys.ts';
import { SmoothcastError } from './errors.ts';

export function masterKeyPath(config: Config): string {
  return config.security.masterKeyFile || join(config.storage.dataDir, 'secrets', 'master.key');
}

export function loadMasterKey(config: Config): Buffer {
  if (config.security.masterKey) return parseMasterKey(config.security.masterKey);
  const path = masterKeyPath(config);
  if (!existsSync(path)) {
    if (config.security.masterKeyFile) {
      throw new SmoothcastError('CONFIG_INVALID', `security.masterKeyFile ${path} does not exist`);
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
      chmodSync(path, 0o600);
    } catch (err) {
      // Another process made it first: use that one.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  try {
    return parseMasterKey(readFileSync(path, 'utf8'));
  } catch (err) {
    if (err instanceof SmoothcastError) {
      throw new SmoothcastError('CONFIG_INVALID', `${path}: ${err.message}`);
    }
    throw new SmoothcastError('CONFIG_INVALID', `cannot read the master key file ${path}`, { cause: err });
  }
}
