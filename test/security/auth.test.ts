// Accounts end to end on a real server: first-run setup only with the code from the log; login, logout, password
// change; brute force slowed (429 even for the right password once an account or address failed too often); CSRF
// for cookie sessions; one-time direct upload URLs (a second use refused); the CLI's user and token commands.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ADMIN_PASSWORD, BIN, cli, startTestPlatform, type TestPlatform } from '../helpers/platform.ts';

const run = promisify(execFile);

async function json(res: Response): Promise<Record<string, unknown> & { error?: { code: string } }> {
  return (await res.json()) as never;
}

function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

function cookieOf(res: Response): string {
  const set = res.headers.get('set-cookie') ?? '';
  const m = /sc_session=([^;]+)/.exec(set);
  assert.ok(m, `no session cookie in ${set}`);
  return `sc_session=${m[1]}`;
}

describe('accounts and sessions', () => {
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({ security: { loginMaxFailures: 3 } });
  });
  after(() => p.stop());

  it('logs in with a session cookie (HttpOnly, SameSite=Lax) and out again', async () => {
    const res = await post(`${p.url}/api/login`, { name: 'admin', password: ADMIN_PASSWORD });
    assert.equal(res.status, 200);
    const set = res.headers.get('set-cookie') ?? '';
    assert.match(set, /HttpOnly/);
    assert.match(set, /SameSite=Lax/);
    const cookie = cookieOf(res);
    const { csrfToken } = (await json(res)) as { csrfToken: string };
    const me = await json(await fetch(`${p.url}/api/me`, { headers: { cookie } }));
    assert.equal((me.user as { name: string }).name, 'admin');
    assert.equal(me.csrfToken, csrfToken);
    assert.equal((await fetch(`${p.url}/api/assets`, { headers: { cookie } })).status, 200);
    const out = await fetch(`${p.url}/api/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken } });
    assert.equal(out.status, 204);
    assert.equal((await fetch(`${p.url}/api/assets`, { headers: { cookie } })).status, 401);
  });

  it('refuses a state-changing request of a cookie session without the CSRF token', async () => {
    const res = await post(`${p.url}/api/login`, { name: 'admin', password: ADMIN_PASSWORD });
    const cookie = cookieOf(res);
    const { csrfToken } = (await json(res)) as { csrfToken: string };
    const body = { name: 'csrf-probe', scopes: ['assets:read'] };
    const none = await post(`${p.url}/api/tokens`, body, { cookie });
    assert.equal(none.status, 403);
    assert.equal((await json(none)).error?.code, 'CSRF_INVALID');
    const wrong = await post(`${p.url}/api/tokens`, body, { cookie, 'x-csrf-token': `${csrfToken}x` });
    assert.equal(wrong.status, 403);
    assert.ok(!(await p.accounts.listTokens()).some((t) => t.name === 'csrf-probe'), 'nothing created without CSRF');
    const ok = await post(`${p.url}/api/tokens`, body, { cookie, 'x-csrf-token': csrfToken });
    assert.equal(ok.status, 201);
    // Bearer tokens carry no ambient authority: no CSRF token needed.
    assert.equal((await post(`${p.url}/api/tokens`, { ...body, name: 'bearer' }, p.auth)).status, 201);
  });

  it('slows brute force: after the limit even the right password is refused with 429', async () => {
    await p.accounts.addUser('victim', 'the right password', 'viewer');
    for (let i = 0; i < 3; i++) {
      const r = await post(`${p.url}/api/login`, { name: 'victim', password: `guess ${i}` });
      assert.equal(r.status, 401);
      assert.equal((await json(r)).error?.code, 'LOGIN_FAILED');
    }
    const blocked = await post(`${p.url}/api/login`, { name: 'victim', password: 'the right password' });
    assert.equal(blocked.status, 429);
    assert.equal((await json(blocked)).error?.code, 'LOGIN_RATE_LIMITED');
    // Another account from the same address still works until the address limit (4×) is reached.
    assert.equal((await post(`${p.url}/api/login`, { name: 'admin', password: ADMIN_PASSWORD })).status, 200);
    assert.ok((await p.accounts.auditLog(50)).some((e) => e.action === 'login.failed' && e.actor === 'victim'));
  });

  it('changes a password (current one required) and ends the other logins', async () => {
    await p.accounts.addUser('changer', 'first password', 'editor');
    const a = await post(`${p.url}/api/login`, { name: 'changer', password: 'first password' });
    const cookie = cookieOf(a);
    const { csrfToken } = (await json(a)) as { csrfToken: string };
    const other = cookieOf(await post(`${p.url}/api/login`, { name: 'changer', password: 'first password' }));
    const bad = await post(
      `${p.url}/api/me/password`,
      { current: 'not it', password: 'second password' },
      { cookie, 'x-csrf-token': csrfToken },
    );
    assert.equal(bad.status, 401);
    const ok = await post(
      `${p.url}/api/me/password`,
      { current: 'first password', password: 'second password' },
      { cookie, 'x-csrf-token': csrfToken },
    );
    assert.equal(ok.status, 204);
    assert.equal((await fetch(`${p.url}/api/assets`, { headers: { cookie: other } })).status, 401);
    assert.equal((await post(`${p.url}/api/login`, { name: 'changer', password: 'second password' })).status, 200);
  });

  it('gives a viewer no write access and an editor no admin routes', async () => {
    await p.accounts.addUser('watcher', 'viewer password', 'viewer');
    const v = await post(`${p.url}/api/login`, { name: 'watcher', password: 'viewer password' });
    const cookie = cookieOf(v);
    const { csrfToken } = (await json(v)) as { csrfToken: string };
    assert.equal((await fetch(`${p.url}/api/assets`, { headers: { cookie } })).status, 200);
    const del = await fetch(`${p.url}/api/assets/aaaaaaaaaaaaaaaa`, {
      method: 'DELETE',
      headers: { cookie, 'x-csrf-token': csrfToken },
    });
    assert.equal(del.status, 403);
    assert.equal((await fetch(`${p.url}/api/users`, { headers: { cookie } })).status, 403);
  });
});

describe('direct uploads', () => {
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform();
  });
  after(() => p.stop());

  it('gives a one-time tus URL: the first upload works without a token, a second use is refused', async () => {
    const created = await post(
      `${p.url}/api/direct-uploads`,
      { maxSize: 1000, expiresInSeconds: 600, corsOrigin: 'https://customer.example' },
      p.auth,
    );
    assert.equal(created.status, 201);
    const d = (await json(created)) as { id: string; url: string };
    const tus = { 'tus-resumable': '1.0.0', 'upload-length': '5', 'upload-metadata': 'filename aGVsbG8ubXA0' };
    // A preflight from the customer's page is answered for that origin only.
    const pre = await fetch(d.url, {
      method: 'OPTIONS',
      headers: { origin: 'https://customer.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://customer.example');
    const tooBig = await fetch(d.url, { method: 'POST', headers: { ...tus, 'upload-length': '1001' } });
    assert.equal(tooBig.status, 413);
    const first = await fetch(d.url, { method: 'POST', headers: tus });
    assert.equal(first.status, 201, await first.text());
    const location = new URL(first.headers.get('location')!, p.url).href;
    // The upload it created continues without a token.
    const head = await fetch(location, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } });
    assert.equal(head.status, 200);
    const again = await fetch(d.url, { method: 'POST', headers: tus });
    assert.equal(again.status, 403);
    assert.equal((await json(again)).error?.code, 'DIRECT_UPLOAD_INVALID');
    // Another upload id is not opened by it.
    const other = await fetch(`${p.url}/api/uploads/${'0'.repeat(32)}`, {
      method: 'HEAD',
      headers: { 'tus-resumable': '1.0.0' },
    });
    assert.equal(other.status, 401);
    const forged = await fetch(d.url.replace(/sig=[^&]+/, `sig=${'A'.repeat(43)}`), { method: 'POST', headers: tus });
    assert.equal(forged.status, 403);
  });

  it('refuses an expired direct upload URL', async () => {
    const { upload, secret } = await p.accounts.createDirectUpload({
      maxSize: 100,
      expiresAt: Date.now() - 1000,
      corsOrigin: null,
      policy: 'public',
      createdBy: null,
    });
    const res = await fetch(`${p.url}/api/uploads?direct=${upload.id}&sig=${secret}`, {
      method: 'POST',
      headers: { 'tus-resumable': '1.0.0', 'upload-length': '5' },
    });
    assert.equal(res.status, 403);
  });
});

describe('first run', () => {
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform({}, { noAdmin: true });
  });
  after(() => p.stop());

  it('creates the first admin only with the setup code printed in the log', async () => {
    const me = await json(await fetch(`${p.url}/api/me`));
    assert.equal(me.setupRequired, true);
    const code = p.setupCode!;
    assert.ok(
      p.logs.some((l) => l.includes(code) && l.includes('/setup')),
      'the code and URL are in the log',
    );
    const wrong = await post(`${p.url}/api/setup`, { code: 'nope', name: 'root', password: 'long enough pw' });
    assert.equal(wrong.status, 403);
    assert.equal((await json(wrong)).error?.code, 'SETUP_CODE_INVALID');
    const ok = await post(`${p.url}/api/setup`, { code, name: 'root', password: 'long enough pw' });
    assert.equal(ok.status, 201);
    assert.equal((await fetch(`${p.url}/api/users`, { headers: { cookie: cookieOf(ok) } })).status, 200);
    const twice = await post(`${p.url}/api/setup`, { code, name: 'root2', password: 'long enough pw' });
    assert.equal(twice.status, 409);
  });
});

describe('CLI accounts', () => {
  let p: TestPlatform;
  before(async () => {
    p = await startTestPlatform();
  });
  after(() => p.stop());

  it('adds an admin from stdin and creates a scoped token printed once', async () => {
    const child = run(process.execPath, [
      BIN,
      'user',
      'add',
      'ops',
      '--admin',
      '--password-stdin',
      '--data',
      p.dataDir,
    ]);
    child.child.stdin!.end('a password from stdin\n');
    const out = await child;
    assert.match(out.stdout, /added admin ops/);
    assert.ok(await p.accounts.checkPassword('ops', 'a password from stdin'));
    const t = await cli([
      'token',
      'create',
      '--name',
      'ci',
      '--scopes',
      'assets:read,uploads:create',
      '--expires',
      '30d',
      '--json',
      '--data',
      p.dataDir,
    ]);
    assert.equal(t.code, 0, t.stderr);
    const token = JSON.parse(t.stdout) as { id: string; secret: string; scopes: string[]; expiresAt: number };
    assert.deepEqual(token.scopes, ['assets:read', 'uploads:create']);
    assert.ok(token.expiresAt > Date.now() + 29 * 86400_000);
    assert.equal(
      (await fetch(`${p.url}/api/assets`, { headers: { authorization: `Bearer ${token.secret}` } })).status,
      200,
    );
    assert.equal(
      (await fetch(`${p.url}/api/users`, { headers: { authorization: `Bearer ${token.secret}` } })).status,
      403,
    );
    // Only its hash is stored.
    const row = p.db.raw.prepare('SELECT * FROM api_tokens WHERE id = ?').get(token.id)!;
    assert.ok(!JSON.stringify(row).includes(token.secret));
    const rev = await cli(['token', 'revoke', token.id, '--data', p.dataDir]);
    assert.equal(rev.code, 0);
    assert.equal(
      (await fetch(`${p.url}/api/assets`, { headers: { authorization: `Bearer ${token.secret}` } })).status,
      401,
    );
  });
});
