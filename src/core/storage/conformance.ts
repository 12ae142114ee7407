// The behaviour every Storage backend must show. Each backend's test file calls storageConformance().
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import type { Storage } from './storage.ts';
import { assertKey, keys } from './storage.ts';

const MiB = 1024 * 1024;

export function storageConformance(name: string, make: () => Promise<Storage>): void {
  describe(`storage conformance: ${name}`, () => {
    it('imports a file and reads exact byte ranges at any position', async () => {
      const s = await make();
      const src = join(await mkdtemp(join(tmpdir(), 'sc-store-')), 'in.bin');
      const data = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 31) % 251));
      writeFileSync(src, data);
      await s.importFile(src, 'assets/abc12345/source.bin');
      assert.deepEqual(await s.stat('assets/abc12345/source.bin'), {
        size: data.length,
        mtimeMs: (await s.stat('assets/abc12345/source.bin'))?.mtimeMs,
      });
      assert.deepEqual(await s.read('assets/abc12345/source.bin', 0, 10), data.subarray(0, 10));
      assert.deepEqual(await s.read('assets/abc12345/source.bin', 54_321, 4096), data.subarray(54_321, 58_417));
      // Into a caller's buffer: a view of its start.
      const into = Buffer.alloc(8192, 0xee);
      const view = await s.read('assets/abc12345/source.bin', 1000, 4096, into);
      assert.deepEqual(view, data.subarray(1000, 5096));
      assert.equal(view.buffer, into.buffer);
      assert.equal(into[4096], 0xee, 'nothing written past the length');
      await assert.rejects(s.read('assets/abc12345/source.bin', 0, 9000, into), RangeError);
      // Past the end: only what exists.
      assert.deepEqual(await s.read('assets/abc12345/source.bin', 99_990, 100), data.subarray(99_990));
    });

    it('reports a missing object as null and deletes whole prefixes', async () => {
      const s = await make();
      assert.equal(await s.stat('assets/none0000/x.mp4'), null);
      const src = join(await mkdtemp(join(tmpdir(), 'sc-store-')), 'in.bin');
      writeFileSync(src, 'x');
      await s.importFile(src, 'assets/del00000/r1/v0.mp4');
      await s.importFile(src, 'assets/del00000/poster.jpg');
      await s.remove('assets/del00000/poster.jpg');
      assert.equal(await s.stat('assets/del00000/poster.jpg'), null);
      assert.ok(await s.stat('assets/del00000/r1/v0.mp4'), 'remove takes only its object');
      await s.remove('assets/del00000/poster.jpg'); // removing nothing is fine
      await s.importFile(src, 'assets/del00000/poster.jpg');
      await s.deletePrefix(keys.assetPrefix('del00000'));
      assert.equal(await s.stat('assets/del00000/r1/v0.mp4'), null);
      assert.equal(await s.stat('assets/del00000/poster.jpg'), null);
      await s.deletePrefix(keys.assetPrefix('del00000')); // deleting nothing is fine
    });

    it('imports by link or copy so the stored object outlives the original', async () => {
      const s = await make();
      const dir = await mkdtemp(join(tmpdir(), 'sc-store-'));
      const data = Buffer.from('linked or copied, never moved');
      for (const link of [true, false]) {
        const src = join(dir, `in-${link}.bin`);
        writeFileSync(src, data);
        const key = `assets/lnk0000${link ? 1 : 2}/source.bin`;
        await s.importFile(src, key, { link });
        rmSync(src);
        assert.deepEqual(await s.read(key, 0, 100), data, `link: ${link}`);
      }
      // Importing onto an existing key fails rather than silently replacing it.
      writeFileSync(join(dir, 'again.bin'), 'x');
      for (const link of [true, false]) {
        await assert.rejects(s.importFile(join(dir, 'again.bin'), 'assets/lnk00001/source.bin', { link }), {
          code: 'STORAGE_OBJECT_EXISTS',
        });
      }
      assert.deepEqual(await s.read('assets/lnk00001/source.bin', 0, 100), data);
    });

    it('rejects reads and fetches of a missing object with ENOENT, and getBytes gives null', async () => {
      const s = await make();
      await assert.rejects(s.read('assets/none0000/v0.mp4', 0, 10), { code: 'ENOENT' });
      await assert.rejects(s.read('assets/none0000/v0.mp4', 0, 100_000), { code: 'ENOENT' });
      await assert.rejects(s.fetch('assets/none0000/v0.mp4'), { code: 'ENOENT' });
      assert.equal(await s.getBytes('assets/none0000/v0.mp4'), null);
    });

    it('stages a file that becomes the object on commit', async () => {
      const s = await make();
      const key = 'assets/stg00000/r1/v0.mp4';
      const staged = await s.stage(key);
      assert.equal(basename(staged.path), 'v0.mp4', 'the name ends like the key (ffmpeg picks the muxer by it)');
      writeFileSync(staged.path, 'staged bytes');
      if (s.backend === 's3') assert.equal(await s.stat(key), null, 'not an object before commit');
      await staged.commit();
      assert.equal((await s.stat(key))?.size, 12);
      assert.deepEqual(await s.read(key, 0, 100), Buffer.from('staged bytes'));
      if (s.backend === 's3') assert.equal(existsSync(staged.path), false, 'the scratch file is gone');
    });

    it('replaces an object on commit, and discards without touching other keys', async () => {
      const s = await make();
      const key = 'assets/stg00001/poster.jpg';
      await s.putBytes(key, Buffer.from('old poster'));
      assert.deepEqual(await s.read(key, 0, 3), Buffer.from('old'));
      const staged = await s.stage(key);
      writeFileSync(staged.path, 'new poster!');
      if (s.backend === 's3') assert.deepEqual(await s.getBytes(key), Buffer.from('old poster'));
      await staged.commit();
      assert.deepEqual(await s.read(key, 0, 3), Buffer.from('new'), 'no stale cached bytes');
      assert.deepEqual(await s.getBytes(key), Buffer.from('new poster!'));

      const other = 'assets/stg00001/r1/v0.mp4';
      const d = await s.stage(other);
      writeFileSync(d.path, 'never committed');
      await d.discard();
      assert.equal(await s.stat(other), null);
      assert.equal(existsSync(d.path), false);
      assert.deepEqual(await s.getBytes(key), Buffer.from('new poster!'));
    });

    it('stores a file of several upload parts and reads it back exactly, across part boundaries', async () => {
      const s = await make();
      const key = 'assets/big00000/r1/v0.mp4';
      const data = randomBytes(17 * MiB + 12_345); // three 8 MiB parts on S3, the last a short one
      const staged = await s.stage(key);
      writeFileSync(staged.path, data);
      await staged.commit();
      assert.equal((await s.stat(key))?.size, data.length);
      for (const [offset, length] of [
        [0, 100],
        [8 * MiB - 50, 100],
        [16 * MiB - 3000, 6000],
        [8 * MiB - 1, 8 * MiB + 2],
        [data.length - 500, 1000],
      ] as const) {
        assert.ok(
          data.subarray(offset, offset + length).equals(await s.read(key, offset, length)),
          `${offset}+${length}`,
        );
      }
      const f = await s.fetch(key);
      assert.ok(readFileSync(f.path).equals(data));
      await f.release();
    });

    it('fetches an object into a local file until released', async () => {
      const s = await make();
      const key = 'assets/fch00000/r1/thumbs.vtt';
      await s.putBytes(key, Buffer.from('WEBVTT\n'));
      const f = await s.fetch(key);
      assert.equal(basename(f.path), 'thumbs.vtt');
      assert.equal(readFileSync(f.path, 'utf8'), 'WEBVTT\n');
      await f.release();
      if (s.backend === 's3') assert.equal(existsSync(f.path), false);
      assert.deepEqual(await s.getBytes(key), Buffer.from('WEBVTT\n'), 'release leaves the object');
    });

    it('writes and reads small objects whole', async () => {
      const s = await make();
      const key = 'assets/put00000/captions/cabcdefghijkl.vtt';
      await s.putBytes(key, Buffer.from('first'));
      assert.deepEqual(await s.getBytes(key), Buffer.from('first'));
      await s.putBytes(key, new Uint8Array([1, 2, 3]));
      assert.deepEqual(await s.getBytes(key), Buffer.from([1, 2, 3]));
      assert.equal((await s.stat(key))?.size, 3);
      await s.putBytes(key, new Uint8Array(0));
      assert.deepEqual(await s.getBytes(key), Buffer.alloc(0));
      assert.equal((await s.stat(key))?.size, 0);
      assert.deepEqual(await s.read(key, 0, 10), Buffer.alloc(0));
    });

    it('lists the objects under a folder-like prefix, sorted', async () => {
      const s = await make();
      await s.putBytes('assets/lst00000/r1/v0.mp4', Buffer.alloc(5));
      await s.putBytes('assets/lst00000/poster.jpg', Buffer.alloc(2));
      await s.putBytes('assets/lst00000/r1/thumbs/x.jpg', Buffer.alloc(1));
      await s.putBytes('assets/lst000001/poster.jpg', Buffer.alloc(9)); // shares the string prefix, not the folder
      assert.deepEqual(await s.list('assets/lst00000'), [
        { key: 'assets/lst00000/poster.jpg', size: 2 },
        { key: 'assets/lst00000/r1/thumbs/x.jpg', size: 1 },
        { key: 'assets/lst00000/r1/v0.mp4', size: 5 },
      ]);
      assert.deepEqual(await s.list('assets/lst00000/r1'), [
        { key: 'assets/lst00000/r1/thumbs/x.jpg', size: 1 },
        { key: 'assets/lst00000/r1/v0.mp4', size: 5 },
      ]);
      assert.deepEqual(await s.list('assets/lst00002'), []);
      await s.deletePrefix('assets/lst00000');
      assert.deepEqual(await s.list('assets/lst00000'), []);
      assert.equal((await s.list('assets/lst000001')).length, 1, 'deletePrefix keeps to its folder');
    });

    it('serves concurrent reads of different ranges', async () => {
      const s = await make();
      const key = 'assets/par00000/r1/v0.mp4';
      const data = randomBytes(3 * MiB);
      await s.putBytes(key, data);
      const ranges = Array.from({ length: 60 }, (_, i) => {
        const length = i % 3 === 0 ? 700_000 : i % 3 === 1 ? 4096 : 16;
        return [(i * 48_611) % (data.length - length), length] as const;
      });
      const got = await Promise.all(ranges.map(([o, n]) => s.read(key, o, n)));
      for (const [i, [o, len]] of ranges.entries()) {
        assert.ok(got[i]?.equals(data.subarray(o, o + len)), `${o}+${len}`);
      }
    });

    it('never serves bytes of an object that was removed or replaced', async () => {
      const s = await make();
      const key = 'assets/stl00000/r1/v0.mp4';
      const old = randomBytes(600_000);
      await s.putBytes(key, old);
      // Small (block-cached) and large (range-cached) reads, each twice so the second may come from a cache.
      for (let i = 0; i < 2; i++) {
        assert.ok((await s.read(key, 10, 20)).equals(old.subarray(10, 30)));
        assert.ok((await s.read(key, 100_000, 300_000)).equals(old.subarray(100_000, 400_000)));
      }
      await s.remove(key);
      await assert.rejects(s.read(key, 10, 20), { code: 'ENOENT' });
      await assert.rejects(s.read(key, 100_000, 300_000), { code: 'ENOENT' });
      const next = randomBytes(600_000);
      await s.putBytes(key, next);
      assert.ok((await s.read(key, 10, 20)).equals(next.subarray(10, 30)));
      assert.ok((await s.read(key, 100_000, 300_000)).equals(next.subarray(100_000, 400_000)));
      const third = randomBytes(500);
      await s.putBytes(key, third);
      assert.ok((await s.read(key, 10, 20)).equals(third.subarray(10, 30)));
      assert.ok((await s.read(key, 100_000, 300_000)).equals(Buffer.alloc(0)), 'past the new end');
      await s.deletePrefix('assets/stl00000');
      await assert.rejects(s.read(key, 10, 20), { code: 'ENOENT' });
    });

    it('copies an object to a new key, never over an existing one', async () => {
      const s = await make();
      const data = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256));
      await s.putBytes('uploads/cpy00001', data);
      await s.copyObject('uploads/cpy00001', 'assets/cpy00001/source.bin');
      assert.deepEqual(await s.read('assets/cpy00001/source.bin', 0, 80_000), data);
      await s.remove('uploads/cpy00001');
      assert.deepEqual(await s.read('assets/cpy00001/source.bin', 65_000, 10), data.subarray(65_000, 65_010));
      await s.putBytes('uploads/cpy00002', Buffer.from('other'));
      await assert.rejects(s.copyObject('uploads/cpy00002', 'assets/cpy00001/source.bin'), {
        code: 'STORAGE_OBJECT_EXISTS',
      });
      await assert.rejects(s.copyObject('uploads/none0000', 'assets/cpy00003/source.bin'), { code: 'ENOENT' });
      assert.deepEqual(await s.read('assets/cpy00001/source.bin', 0, 5), data.subarray(0, 5));
    });

    it('refuses keys that could escape the storage root', () => {
      for (const bad of ['../etc/passwd', 'assets/../../x', '/abs', 'a//b', 'a/./b', '', 'a\\b', 'a/b/']) {
        assert.throws(() => assertKey(bad), { code: 'INVALID_ID' }, bad);
      }
    });
  });
}
