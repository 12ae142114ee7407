// Local-disk storage: keys map to files under one root folder.
import { close, constants, open, read } from 'node:fs';
import { copyFile, link, mkdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { StatResult, Storage } from './storage.ts';
import { assertKey } from './storage.ts';

const openP = promisify(open);
const closeP = promisify(close);

function readAt(fd: number, buf: Buffer, offset: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, buf.length, offset, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

export class LocalStorage implements Storage {
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

  async importFile(src: string, key: string, opts: { link?: boolean } = {}): Promise<void> {
    await this.prepare(key);
    const dest = this.localPath(key);
    if (opts.link) {
      try {
        await link(src, dest);
        return;
      } catch (err) {
        // Another filesystem (EXDEV), or one without hard links: copy instead.
        if (!['EXDEV', 'EPERM', 'ENOTSUP', 'EMLINK'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
      }
    }
    await copyFile(src, dest, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  }

  async remove(key: string): Promise<void> {
    await rm(this.localPath(key), { force: true });
  }

  async deletePrefix(prefix: string): Promise<void> {
    await rm(this.localPath(prefix), { recursive: true, force: true });
  }
}
