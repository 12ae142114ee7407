// The behaviour every Storage backend must show. Each backend's test file calls storageConformance().
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
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
      await s.deletePrefix(keys.assetPrefix('del00000'));
      assert.equal(await s.stat('assets/del00000/r1/v0.mp4'), null);
      assert.equal(await s.stat('assets/del00000/poster.jpg'), null);
      await s.deletePrefix(keys.assetPrefix('del00000')); // deleting nothing is fine
    });

    it('refuses keys that could escape the storage root', () => {
      for (const bad of ['../etc/passwd', 'assets/../../x', '/abs', 'a//b', 'a/./b', '', 'a\\b', 'a/b/']) {
        assert.throws(() => assertKey(bad), { code: 'INVALID_ID' }, bad);
      }
    });
  });
}
