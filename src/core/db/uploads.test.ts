import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forEachDatabase } from '../../../test/helpers/services/databases.ts';
import { newAssetId, SqliteAssetRepository } from './assets.ts';
import { isConstraintError, isUniqueViolation } from './database.ts';
import { SqliteUploadRepository } from './uploads.ts';

forEachDatabase('upload repository', (t) => {
  async function setup() {
    const db = await t.fresh();
    const assets = new SqliteAssetRepository(db, { now: () => 1_000 });
    const uploads = new SqliteUploadRepository(db, { now: () => 2_000 });
    return { db, assets, uploads };
  }
  const asset = (id: string) => ({ id, title: 't', sourcePath: `sources/${id}`, sourceName: 'n.mp4' });

  test('an upload records the asset it became; unknown uploads have none', async () => {
    const s = await setup();
    const id = newAssetId();
    await s.db.write(async () => {
      await s.assets.create(asset(id));
      await s.uploads.record('up-1', id);
    });
    assert.equal(await s.uploads.assetFor('up-1'), id);
    assert.equal(await s.uploads.assetFor('up-2'), null);
    assert.equal(await s.uploads.assetFor(''), null);
  });

  test('recorded in the creating transaction: a rollback leaves neither the asset nor the record', async () => {
    const s = await setup();
    const id = newAssetId();
    await assert.rejects(
      s.db.write(async () => {
        await s.assets.create(asset(id));
        await s.uploads.record('up-1', id);
        assert.equal(await s.uploads.assetFor('up-1'), id, 'visible inside the transaction');
        throw new Error('later step failed');
      }),
      /later step failed/,
    );
    assert.equal(await s.uploads.assetFor('up-1'), null);
    assert.equal(await s.assets.get(id), null);
  });

  test('deleting the asset forgets the upload; unknown assets and second records are refused', async () => {
    const s = await setup();
    const id = newAssetId();
    await s.assets.create(asset(id));
    await s.uploads.record('up-1', id);
    await assert.rejects(s.uploads.record('up-1', id), (err: unknown) => isUniqueViolation(err));
    await assert.rejects(s.uploads.record('up-2', newAssetId()), (err: unknown) => isConstraintError(err));
    assert.equal(await s.assets.delete(id), true);
    assert.equal(await s.uploads.assetFor('up-1'), null);
  });
});
