// The behaviour every Storage backend must show. Each backend's test file calls storageConformance().
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Storage } from './storage.ts';
import { assertKey, keys } from './storage.ts';

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
        await assert.rejects(s.importFile(join(dir, 'again.bin'), 'assets/lnk00001/source.bin', { link }));
      }
      assert.deepEqual(await s.read('assets/lnk00001/source.bin', 0, 100), data);
    });

    it('refuses keys that could escape the storage root', () => {
      for (const bad of ['../etc/passwd', 'assets/../../x', '/abs', 'a//b', 'a/./b', '', 'a\\b', 'a/b/']) {
        assert.throws(() => assertKey(bad), { code: 'INVALID_ID' }, bad);
      }
    });
  });
}
