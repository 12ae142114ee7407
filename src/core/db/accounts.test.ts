import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { forEachDatabase } from '../../../test/helpers/services/databases.ts';
import { tokenHash } from '../auth/secrets.ts';
import { SmoothcastError } from '../errors.ts';
import { DIRECT_UPLOAD_ID, SqliteAccounts, TOKEN_ID, USER_ID } from './accounts.ts';
import type { Db } from './database.ts';

/** Cheap scrypt for tests (the stored record names its parameters; verifyPassword accepts these). */
const COST = { N: 2 ** 10, r: 8, p: 1 };
const isCode = (code: string) => (err: unknown) => err instanceof SmoothcastError && err.code === code;

/** Every text value in every table (the catalog's own tables; the engine's catalog on each side). */
async function everyText(db: Db): Promise<{ table: string; column: string; value: string }[]> {
  const tables =
    db.dialect === 'sqlite'
      ? await db.all(sql`SELECT name FROM sqlite_master WHERE type = 'table'`)
      : await db.all(
          sql`SELECT table_name AS name FROM information_schema.tables
              WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
        );
  assert.ok(
    tables.some((t) => t.name === 'users'),
    'the scan sees the catalog',
  );
  const out: { table: string; column: string; value: string }[] = [];
  for (const t of tables) {
    const table = String(t.name);
    for (const row of await db.all(sql`SELECT * FROM ${sql.table(table)}`)) {
      for (const [column, value] of Object.entries(row)) {
        if (typeof value === 'string') out.push({ table, column, value });
      }
    }
  }
  return out;
}

forEachDatabase('accounts', (t) => {
  async function setup(start = 1_000_000) {
    const clock = { t: start };
    const db = await t.fresh();
    const accounts = new SqliteAccounts(db, () => clock.t);
    return { db, accounts, clock };
  }

  test('users: create, get, list, count; names and passwords validated', async () => {
    const s = await setup();
    assert.equal(await s.accounts.userCount(), 0);
    const alice = await s.accounts.addUser('Alice', 'correct horse', 'admin', COST);
    assert.match(alice.id, USER_ID);
    assert.deepEqual(alice, { id: alice.id, name: 'Alice', role: 'admin', createdAt: 1_000_000, updatedAt: 1_000_000 });
    const bob = await s.accounts.addUser('bob.smith@example', 'password8', 'viewer', COST);
    s.clock.t += 1;
    const carol = await s.accounts.addUser('carol', 'password8', 'editor', COST);
    assert.deepEqual(await s.accounts.getUser(bob.id), bob);
    assert.equal(await s.accounts.getUser(`u${'a'.repeat(12)}`), null);
    assert.equal(await s.accounts.getUser("' OR 1=1 --"), null);
    assert.equal(await s.accounts.userCount(), 3);
    assert.equal(await s.accounts.adminCount(), 1);
    // created_at, then the name regardless of case.
    assert.deepEqual(
      (await s.accounts.listUsers()).map((u) => u.name),
      ['Alice', 'bob.smith@example', 'carol'],
    );
    for (const bad of ['', '.dot', 'has space', 'x'.repeat(65), 'semi;colon']) {
      await assert.rejects(s.accounts.addUser(bad, 'password8', 'viewer', COST), isCode('BAD_REQUEST'), bad);
    }
    await assert.rejects(s.accounts.addUser('dave', 'short', 'viewer', COST), isCode('BAD_REQUEST'));
    assert.equal(await s.accounts.userCount(), 3);
    const editor = await s.accounts.setRole(carol.id, 'admin');
    assert.equal(editor.role, 'admin');
    assert.equal(await s.accounts.adminCount(), 2);
    await assert.rejects(s.accounts.setRole(`u${'a'.repeat(12)}`, 'admin'), isCode('USER_NOT_FOUND'));
    await s.accounts.deleteUser(bob.id);
    assert.equal(await s.accounts.getUser(bob.id), null);
    await assert.rejects(s.accounts.deleteUser(bob.id), isCode('USER_NOT_FOUND'));
  });

  test('user names are unique regardless of case, and found regardless of case', async () => {
    const s = await setup();
    const a = await s.accounts.addUser('Alice', 'password8', 'viewer', COST);
    for (const dup of ['Alice', 'alice', 'ALICE', 'aLiCe']) {
      await assert.rejects(s.accounts.addUser(dup, 'password8', 'viewer', COST), isCode('USER_EXISTS'), dup);
    }
    assert.equal(await s.accounts.userCount(), 1);
    for (const spelling of ['Alice', 'alice', 'ALICE']) {
      assert.equal((await s.accounts.userByName(spelling))?.id, a.id, spelling);
    }
    assert.equal(await s.accounts.userByName('alic'), null);
    assert.equal(await s.accounts.userByName('al%'), null, 'no pattern matching');
    assert.equal(await s.accounts.userByName('not a name'), null);
    // Inside a caller's transaction the refused duplicate leaves the transaction usable (PostgreSQL aborts a
    // transaction at a failed statement; the insert does not fail, it inserts nothing).
    const later = await s.db.write(async () => {
      await assert.rejects(s.accounts.addUser('ALICE', 'password8', 'viewer', COST), isCode('USER_EXISTS'));
      return s.accounts.addUser('bob', 'password8', 'viewer', COST);
    });
    assert.equal((await s.accounts.userByName('BOB'))?.id, later.id);
    // Racing creations of one name in different spellings: exactly one wins.
    const results = await Promise.allSettled(
      ['Carol', 'carol', 'CAROL', 'cArOl', 'caroL'].map((n) => s.accounts.addUser(n, 'password8', 'viewer', COST)),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) if (r.status === 'rejected') assert.ok(isCode('USER_EXISTS')(r.reason), String(r.reason));
    assert.equal(await s.accounts.userCount(), 3);
  });

  test('passwords: checked by any spelling of the name; stored only as a scrypt hash; a new one ends logins', async () => {
    const s = await setup();
    const u = await s.accounts.addUser('Alice', 'correct horse', 'editor', COST);
    assert.equal((await s.accounts.checkPassword('alice', 'correct horse'))?.id, u.id);
    assert.equal((await s.accounts.checkPassword('ALICE', 'correct horse'))?.id, u.id);
    assert.equal(await s.accounts.checkPassword('Alice', 'Correct horse'), null);
    assert.equal(await s.accounts.checkPassword('nobody', 'correct horse'), null);
    assert.equal(await s.accounts.checkPassword('not a name', 'correct horse'), null);
    const row = await s.db.get(sql`SELECT password_hash FROM users WHERE id = ${u.id}`);
    assert.match(String(row?.password_hash), /^scrypt\$1024\$8\$1\$/);
    const login = await s.accounts.createSession(u.id, 60_000);
    assert.ok(await s.accounts.session(login.cookie));
    s.clock.t += 5;
    await s.accounts.setPassword(u.id, 'battery staple', COST);
    assert.equal(await s.accounts.session(login.cookie), null, 'the old login ended');
    assert.equal((await s.accounts.getUser(u.id))?.updatedAt, u.updatedAt + 5);
    assert.equal(await s.accounts.checkPassword('alice', 'correct horse'), null);
    assert.equal((await s.accounts.checkPassword('alice', 'battery staple'))?.id, u.id);
    await assert.rejects(s.accounts.setPassword(u.id, 'short', COST), isCode('BAD_REQUEST'));
    await assert.rejects(s.accounts.setPassword(`u${'a'.repeat(12)}`, 'long enough', COST), isCode('USER_NOT_FOUND'));
  });

  test('login sessions: cookie and CSRF, expiry, logout, expired ones swept', async () => {
    const s = await setup();
    const u = await s.accounts.addUser('alice', 'password8', 'viewer', COST);
    const a = await s.accounts.createSession(u.id, 10_000);
    assert.match(a.cookie, /^[A-Za-z0-9_-]{43}$/);
    assert.match(a.csrf, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(a.expiresAt, s.clock.t + 10_000);
    const got = await s.accounts.session(a.cookie);
    assert.deepEqual(got, { userId: u.id, csrf: a.csrf, expiresAt: a.expiresAt, user: u });
    assert.equal(await s.accounts.session('x'.repeat(43)), null);
    assert.equal(await s.accounts.session('short'), null);
    // Stored hashed only.
    const rows = await s.db.all(sql`SELECT id_hash FROM login_sessions`);
    assert.deepEqual(
      rows.map((r) => r.id_hash),
      [tokenHash(a.cookie)],
    );
    s.clock.t += 10_000;
    assert.equal(await s.accounts.session(a.cookie), null, 'expired');
    const b = await s.accounts.createSession(u.id, 10_000);
    s.clock.t += 1;
    const c = await s.accounts.createSession(u.id, 10_000);
    const left = await s.db.all(sql`SELECT id_hash FROM login_sessions`);
    assert.deepEqual(left.map((r) => r.id_hash).sort(), [tokenHash(b.cookie), tokenHash(c.cookie)].sort(), 'swept');
    await s.accounts.endSession(b.cookie);
    await s.accounts.endSession('not-a-cookie');
    assert.equal(await s.accounts.session(b.cookie), null);
    assert.ok(await s.accounts.session(c.cookie));
    await s.accounts.deleteUser(u.id);
    assert.equal(await s.accounts.session(c.cookie), null, "a deleted user's logins go with it");
  });

  test('API tokens: shown once, stored hashed; revoked or expired ones do not authenticate', async () => {
    const s = await setup();
    const u = await s.accounts.addUser('alice', 'password8', 'admin', COST);
    const { token, secret } = await s.accounts.createToken({
      name: '  ci  ',
      scopes: ['assets:read', 'assets:write', 'assets:read'],
      userId: u.id,
      expiresAt: null,
    });
    assert.match(token.id, TOKEN_ID);
    assert.deepEqual(token, {
      id: token.id,
      name: 'ci',
      scopes: ['assets:read', 'assets:write'],
      userId: u.id,
      createdAt: s.clock.t,
      expiresAt: null,
      lastUsedAt: null,
      revokedAt: null,
    });
    const row = await s.db.get(sql`SELECT token_hash FROM api_tokens WHERE id = ${token.id}`);
    assert.equal(row?.token_hash, tokenHash(secret));
    for (const name of ['', '   ', 'x'.repeat(101)]) {
      await assert.rejects(
        s.accounts.createToken({ name, scopes: [], userId: null, expiresAt: null }),
        isCode('BAD_REQUEST'),
      );
    }
    // Last use: recorded, then at most once a minute.
    const t0 = s.clock.t;
    assert.equal((await s.accounts.tokenBySecret(secret))?.id, token.id);
    assert.equal((await s.accounts.getToken(token.id))?.lastUsedAt, t0);
    s.clock.t += 60_000;
    await s.accounts.tokenBySecret(secret);
    assert.equal((await s.accounts.getToken(token.id))?.lastUsedAt, t0);
    s.clock.t += 1;
    await s.accounts.tokenBySecret(secret);
    assert.equal((await s.accounts.getToken(token.id))?.lastUsedAt, t0 + 60_001);
    assert.equal(await s.accounts.tokenBySecret(`${secret}x`), null);
    // Expiring and newest first.
    s.clock.t += 1;
    const short = await s.accounts.createToken({
      name: 'short',
      scopes: ['assets:read'],
      userId: null,
      expiresAt: s.clock.t + 100,
    });
    assert.deepEqual(
      (await s.accounts.listTokens()).map((x) => x.id),
      [short.token.id, token.id],
    );
    assert.equal((await s.accounts.tokenBySecret(short.secret))?.userId, null);
    s.clock.t += 100;
    assert.equal(await s.accounts.tokenBySecret(short.secret), null, 'expired');
    // Revocation keeps its first time.
    const r = await s.accounts.revokeToken(token.id);
    assert.equal(r.revokedAt, s.clock.t);
    s.clock.t += 5;
    assert.equal((await s.accounts.revokeToken(token.id)).revokedAt, r.revokedAt);
    assert.equal(await s.accounts.tokenBySecret(secret), null);
    await assert.rejects(s.accounts.revokeToken(`t${'a'.repeat(12)}`), isCode('TOKEN_NOT_FOUND'));
    assert.equal(await s.accounts.getToken('nope'), null);
  });

  test('direct uploads: opened by their secret while unexpired; claimed once, also under 10 parallel claims', async () => {
    const s = await setup();
    const { upload, secret } = await s.accounts.createDirectUpload({
      maxSize: 5 * 2 ** 30,
      expiresAt: s.clock.t + 3_600_000,
      corsOrigin: 'https://app.example',
      policy: 'signed',
      createdBy: null,
    });
    assert.match(upload.id, DIRECT_UPLOAD_ID);
    assert.deepEqual(upload, {
      id: upload.id,
      maxSize: 5 * 2 ** 30,
      corsOrigin: 'https://app.example',
      policy: 'signed',
      expiresAt: s.clock.t + 3_600_000,
      usedAt: null,
      uploadId: null,
      createdBy: null,
      createdAt: s.clock.t,
    });
    assert.deepEqual(await s.accounts.directUploadBySecret(upload.id, secret), upload);
    assert.equal(await s.accounts.directUploadBySecret(upload.id, 'A'.repeat(43)), null);
    assert.equal(await s.accounts.directUploadBySecret(upload.id, 'short'), null);
    assert.equal(await s.accounts.directUploadBySecret(`d${'a'.repeat(12)}`, secret), null);

    const claims = await Promise.all(Array.from({ length: 10 }, () => s.accounts.claimDirectUpload(upload.id)));
    assert.equal(claims.filter(Boolean).length, 1, 'exactly one of 10 parallel claims wins');
    assert.equal(await s.accounts.claimDirectUpload(upload.id), false);
    assert.equal((await s.accounts.getDirectUpload(upload.id))?.usedAt, s.clock.t);

    await s.accounts.setDirectUploadTarget(upload.id, 'tusupload1');
    assert.equal((await s.accounts.directUploadFor('tusupload1'))?.id, upload.id);
    assert.equal(await s.accounts.directUploadFor('tusupload2'), null);
    s.clock.t += 3_600_000;
    assert.equal(await s.accounts.directUploadFor('tusupload1'), null, 'expired');
    assert.equal(await s.accounts.directUploadBySecret(upload.id, secret), null, 'expired');

    const late = await s.accounts.createDirectUpload({
      maxSize: 1,
      expiresAt: s.clock.t + 10,
      corsOrigin: null,
      policy: 'public',
      createdBy: 'admin',
    });
    s.clock.t += 10;
    assert.equal(await s.accounts.claimDirectUpload(late.upload.id), false, 'an expired one cannot be claimed');
    assert.equal(await s.accounts.getDirectUpload('nope'), null);
  });

  test('audit log: newest first, paged by seq, detail as JSON', async () => {
    const s = await setup();
    await s.accounts.audit('user:alice', 'login', null);
    s.clock.t += 1;
    await s.accounts.audit('user:alice', 'asset.delete', 'a1', { title: 'Café', n: 2 });
    s.clock.t += 1;
    await s.accounts.audit('token:t1', 'asset.create', 'a2');
    const all = await s.accounts.auditLog();
    assert.deepEqual(
      all.map((e) => [e.action, e.target, e.detail, e.at]),
      [
        ['asset.create', 'a2', null, 1_000_002],
        ['asset.delete', 'a1', { title: 'Café', n: 2 }, 1_000_001],
        ['login', null, null, 1_000_000],
      ],
    );
    assert.ok(all[0]!.seq > all[1]!.seq && all[1]!.seq > all[2]!.seq);
    assert.deepEqual(
      (await s.accounts.auditLog(1, all[0]!.seq)).map((e) => e.action),
      ['asset.delete'],
    );
    assert.deepEqual(await s.accounts.auditLog(10, all[2]!.seq), []);
  });

  test('no secret is stored in clear anywhere in the database', async () => {
    const s = await setup();
    const u = await s.accounts.addUser('alice', 'a password nobody guesses', 'admin', COST);
    const login = await s.accounts.createSession(u.id, 60_000);
    const token = await s.accounts.createToken({ name: 'ci', scopes: [], userId: u.id, expiresAt: null });
    const direct = await s.accounts.createDirectUpload({
      maxSize: 1,
      expiresAt: s.clock.t + 1000,
      corsOrigin: null,
      policy: 'public',
      createdBy: null,
    });
    const secrets = ['a password nobody guesses', login.cookie, token.secret, direct.secret];
    const values = await everyText(s.db);
    assert.ok(values.some((v) => v.table === 'api_tokens' && v.column === 'token_hash'));
    for (const v of values) {
      for (const secret of secrets) assert.ok(!v.value.includes(secret), `${v.table}.${v.column} holds a secret`);
    }
  });
});
