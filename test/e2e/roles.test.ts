// `serve --roles`: a process runs only the roles it is given (api, upload, origin, worker, live, web); /healthz
// names them and its dependencies' health, /readyz answers 200 while the database and storage answer (503 when not).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/core/config.ts';
import { startTestPlatform } from '../helpers/platform.ts';

describe('roles', () => {
  it('an origin-only process serves playback and health, not the API, uploads or the web app', async () => {
    const p = await startTestPlatform({ server: { roles: 'origin' } });
    try {
      const h = (await (await fetch(`${p.url}/healthz`)).json()) as {
        roles: string[];
        dependencies: Record<string, string>;
        worker: unknown;
      };
      assert.deepEqual(h.roles, ['origin']);
      assert.deepEqual(h.dependencies, { database: 'ok', storage: 'ok' });
      assert.equal(h.worker, null, 'no worker in an origin process');
      assert.equal((await fetch(`${p.url}/readyz`)).status, 200);
      assert.equal((await fetch(`${p.url}/v/time`)).status, 200);
      assert.equal((await p.api('/api/assets')).status, 404);
      assert.equal(
        (await p.api('/api/uploads', { method: 'POST', headers: { 'tus-resumable': '1.0.0' } })).status,
        404,
      );
      assert.equal((await fetch(`${p.url}/library`)).status, 404);
      assert.equal(p.live, null, 'no live ingest');
    } finally {
      await p.stop();
    }
  });

  it('an api,upload process serves the API and tus but no playback; /readyz fails when the database is gone', async () => {
    const p = await startTestPlatform({ server: { roles: 'api,upload' } });
    try {
      assert.equal((await p.api('/api/assets')).status, 200);
      assert.equal((await fetch(`${p.url}/v/time`)).status, 404);
      assert.equal(p.worker, null);
      await p.db.close();
      const r = await fetch(`${p.url}/readyz`);
      assert.equal(r.status, 503);
      const body = (await r.json()) as { dependencies: { database: string } };
      assert.match(body.dependencies.database, /^down/);
    } finally {
      // Its database is closed already: close the rest, then drop the folder.
      await p.stop().catch(() => rmSync(p.dataDir, { recursive: true, force: true }));
    }
  });

  it('refuses an unknown role by name', () => {
    assert.throws(() => loadConfig({ env: {}, overrides: { server: { roles: 'api,cdn' } } }), /server\.roles/);
  });
});
