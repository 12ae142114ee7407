// Local-disk storage: keys map to files under one root folder.
import { randomUUID } from 'node:crypto';
import { close, constants, open, read } from 'node:fs';
import { copyFile, link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import { promisify } from 'node:util';
import { SmoothcastError } from '../errors.ts';
import type { Fetched, Staged, StatResult, Storage } from './storage.ts';
import { assertKey, isValidKey } from './storage.ts';

const openP = promisify(open);
const closeP = promisify(close);

function readAt(fd: number, buf: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, buf.length, offset, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function exists(key: string, err: unknown): unknown {
  if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return err;
  return new SmoothcastError('STORAGE_OBJECT_EXISTS', `an object exists under ${key}`, { cause: err });
}

function missing(key: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOENT: no object under ${key}`), { code: 'ENOENT' });
}

export class LocalStorage implements Storage {
  readonly backend = 'local' as const;
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  localPath(key: string): string {
    return join(this.root, assertKey(key));
  }

  async read(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (into && into.length < length) throw new RangeError(`read of ${length} bytes into a ${into.length}-byte buffer`);
    const fd = await openP(this.localPath(key), 'r');
    try {
      const buf = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
      let got = 0;
      // One positioned read in practice; the loop only continues on a short read from the kernel.
      while (got < length) {
        const n = await readAt(fd, got === 0 ? buf : buf.subarray(got), offset + got);
        if (n === 0) break;
        got += n;
      }
      return got === length ? buf : buf.subarray(0, got);
    } finally {
      await closeP(fd);
    }
  }

  async stat(key: string): Promise<StatResult | null> {
    try {
      const s = await stat(this.localPath(key));
      return s.isFile() ? { size: s.size, mtimeMs: s.mtimeMs } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async prepare(key: string): Promise<void> {
    await mkdir(dirname(this.localPath(key)), { recursive: true });
  }

  async copyObject(srcKey: string, dstKey: string): Promise<void> {
    await this.importFile(this.localPath(srcKey), dstKey, { link: true });
  }

  async importFile(src: string, key: string, opts: { link?: boolean } = {}): Promise<void> {
    await this.prepare(key);
    const dest = this.localPath(key);
    if (opts.link) {
      try {
        await link(src, dest);
        return;
      } catch (err) {
        // Another filesystem (EXDEV), or one without hard links: copy instead.
        if (!['EXDEV', 'EPERM', 'ENOTSUP', 'EMLINK'].includes((err as NodeJS.ErrnoException).code ?? '')) {
          throw exists(key, err);
        }
      }
    }
    await copyFile(src, dest, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE).catch((err) => {
      throw exists(key, err);
    });
  }

  async stage(key: string): Promise<Staged> {
    await this.prepare(key);
    const path = this.localPath(key);
    return {
      path,
      commit: async () => {},
      discard: () => rm(path, { force: true }),
    };
  }

  async fetch(key: string): Promise<Fetched> {
    if (!(await this.stat(key))) throw missing(key);
    return { path: this.localPath(key), release: async () => {} };
  }

  async putBytes(key: string, data: Uint8Array): Promise<void> {
    await this.prepare(key);
    const dest = this.localPath(key);
    // A rename within one folder is atomic (POSIX rename(2)): a reader sees the old file or the new one, whole.
    // The temporary name starts with a dot, which no key can, so list() never shows it.
    const tmp = join(dirname(dest), `.put-${randomUUID()}`);
    try {
      await writeFile(tmp, data);
      await rename(tmp, dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async getBytes(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.localPath(key));
    } catch (err) {
      if (['ENOENT', 'EISDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return null;
      throw err;
    }
  }

  async list(prefix: string): Promise<{ key: string; size: number }[]> {
    const base = assertKey(prefix);
    let entries: string[];
    try {
      entries = await readdir(this.localPath(base), { recursive: true });
    } catch (err) {
      if (['ENOENT', 'ENOTDIR'].includes((err as NodeJS.ErrnoException).code ?? '')) return [];
      throw err;
    }
    const out: { key: string; size: number }[] = [];
    for (const rel of entries) {
      const key = `${base}/${rel.split(sep).join('/')}`;
      // Skips folders and in-progress files of putBytes (named so that they are no valid key).
      if (!isValidKey(key)) continue;
      const st = await this.stat(key).catch(() => null);
      if (st) out.push({ key, size: st.size });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(key: string): Promise<void> {
    await rm(this.localPath(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<void> {
    await rm(this.localPath(prefix), { recursive: true, force: true });
  }
}
