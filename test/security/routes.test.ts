// Every API route, enumerated from the server itself (so a new route cannot skip this): without a credential → 401
// AUTH_REQUIRED, with a token lacking the route's scope → 403 SCOPE_MISSING, both in the JSON error shape; and a
// route that declares no scope stops the server from starting.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { SqliteAccounts } from '../../src/core/db/accounts.ts';
import { openDatabase } from '../../src/core/db/database.ts';
import { Auth } from '../../src/roles/api/auth.ts';
import { SCOPES, type Scope } from '../../src/roles/api/scopes.ts';
import { startTestPlatform, type TestPlatform } from '../helpers/platform.ts';

/** A path for a route pattern: every `:param` filled with a value of the right shape. */
function pathOf(url: string): string {
  return url
    .replace(':id', 'aaaaaaaaaaaaaaaa')
    .replace(':captionId', 'caaaaaaaaaaaa')
    .replace(':targetId', 'taaaaaaaaaaa')
    .replace(/:[A-Za-z]+/g, 'x')
    .replace('*', 'x');
}

describe('every API route declares and enforces its scope', () => {
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform();
  });
  after(() => p.stop());

  it('lists the API routes from the server, each with a declared access', () => {
    const api = p.routes.filter((r) => r.url.startsWith('/api/'));
    assert.ok(api.length >= 40, `only ${api.length} API routes declared`);
    for (const r of api) assert.ok(r.access, `${r.method} ${r.url}`);
    // The accounts, tokens, playback, webhooks, uploads and live families are all there.
    for (const u of ['/api/login', '/api/tokens', '/api/assets/:id/playback-tokens', '/api/webhooks', '/api/uploads']) {
      assert.ok(
        api.some((r) => r.url === u),
        u,
      );
    }
  });

  it('answers 401 AUTH_REQUIRED to every non-public route without a credential', async () => {
    const guarded = p.routes.filter((r) => r.url.startsWith('/api/') && r.access !== 'public');
    for (const r of guarded) {
      const res = await fetch(p.url + pathOf(r.url), {
        method: r.method,
        ...(['POST', 'PUT', 'PATCH'].includes(r.method)
          ? { headers: { 'content-type': 'application/json' }, body: '{}' }
          : {}),
      });
      assert.equal(res.status, 401, `${r.method} ${r.url}`);
      if (r.method !== 'HEAD') {
        const body = (await res.json()) as { error: { code: string } };
        assert.equal(body.error.code, 'AUTH_REQUIRED', `${r.method} ${r.url}`);
      }
    }
  });

  it('answers 401 AUTH_INVALID to a wrong or revoked bearer token', async () => {
    const bad = await fetch(`${p.url}/api/assets`, { headers: { authorization: `Bearer sc_${'A'.repeat(43)}` } });
    assert.equal(bad.status, 401);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'AUTH_INVALID');
    const { token, secret } = await p.accounts.createToken({
      name: 'revoked',
      scopes: ['assets:read'],
      userId: null,
      expiresAt: null,
    });
    assert.equal((await fetch(`${p.url}/api/assets`, { headers: { authorization: `Bearer ${secret}` } })).status, 200);
    await p.accounts.revokeToken(token.id);
    assert.equal((await fetch(`${p.url}/api/assets`, { headers: { authorization: `Bearer ${secret}` } })).status, 401);
    const expired = await p.accounts.createToken({
      name: 'expired',
      scopes: ['assets:read'],
      userId: null,
      expiresAt: Date.now() - 1,
    });
    const res = await fetch(`${p.url}/api/assets`, { headers: { authorization: `Bearer ${expired.secret}` } });
    assert.equal(res.status, 401);
  });

  it('answers 403 SCOPE_MISSING to every scoped route with a token lacking that scope', async () => {
    const scoped = p.routes.filter(
      (r) => r.url.startsWith('/api/') && r.access !== 'public' && r.access !== 'signed-in',
    );
    const tokens = new Map<string, string>();
    for (const s of SCOPES) {
      const others = SCOPES.filter((x) => x !== s && x !== 'admin') as Scope[];
      tokens.set(
        s,
        (await p.accounts.createToken({ name: `without-${s}`, scopes: others, userId: null, expiresAt: null })).secret,
      );
    }
    for (const r of scoped) {
      const res = await fetch(p.url + pathOf(r.url), {
        method: r.method,
        headers: {
          authorization: `Bearer ${tokens.get(r.access)}`,
          ...(['POST', 'PUT', 'PATCH'].includes(r.method) ? { 'content-type': 'application/json' } : {}),
        },
        ...(['POST', 'PUT', 'PATCH'].includes(r.method) ? { body: '{}' } : {}),
      });
      assert.equal(res.status, 403, `${r.method} ${r.url} (needs ${r.access})`);
      if (r.method !== 'HEAD') {
        const body = (await res.json()) as { error: { code: string } };
        assert.equal(body.error.code, 'SCOPE_MISSING', `${r.method} ${r.url}`);
      }
    }
  });

  it('keeps /healthz and public playback open', async () => {
    assert.equal((await fetch(`${p.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${p.url}/v/time`)).status, 200);
    const me = (await (await fetch(`${p.url}/api/me`)).json()) as { user: unknown; setupRequired: boolean };
    assert.equal(me.user, null);
  });
});

describe('a route that declares no scope', () => {
  it('stops the server from starting', async () => {
    const app = Fastify();
    const db = await openDatabase(':memory:');
    try {
      new Auth(new SqliteAccounts(db)).register(app);
      assert.throws(() => app.get('/api/forgotten', async () => ({})), /declares no scope/);
      app.get('/api/remembered', { config: { scope: 'assets:read' } }, async () => ({}));
    } finally {
      await db.close();
      await app.close().catch(() => {});
    }
  });
});
