import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, type JsonWebKey, randomBytes, sign, verify } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { sql } from 'kysely';
import { forEachDatabase } from '../../../test/helpers/services/databases.ts';
import { SmoothcastError } from '../errors.ts';
import { type Db, openDatabase } from './database.ts';
import { SIGNING_KEY_ID, SqliteSigningKeys, unwrapPrivateKey } from './signing-keys.ts';

const isCode = (code: string) => (err: unknown) => err instanceof SmoothcastError && err.code === code;

/**
 * Everything the database stored, as bytes. SQLite: the database file and its WAL (every byte it wrote, freed
 * pages included). PostgreSQL, whose files are the server's: every text and bytea value of every table.
 */
async function storedBytes(db: Db): Promise<Buffer> {
  if (db.dialect === 'sqlite') {
    const file = db.location;
    return Buffer.concat([file, `${file}-wal`].filter(existsSync).map((f) => readFileSync(f)));
  }
  const tables = await db.all(
    sql`SELECT table_name AS name FROM information_schema.tables
        WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
  );
  assert.ok(
    tables.some((t) => t.name === 'signing_keys'),
    'the scan sees the catalog',
  );
  const parts: Buffer[] = [];
  for (const t of tables) {
    for (const row of await db.all(sql`SELECT * FROM ${sql.table(String(t.name))}`)) {
      for (const v of Object.values(row)) {
        if (typeof v === 'string') parts.push(Buffer.from(v), Buffer.from([0]));
        else if (v instanceof Uint8Array) parts.push(Buffer.from(v), Buffer.from([0]));
      }
    }
  }
  return Buffer.concat(parts);
}

async function rawRow(db: Db, id: string) {
  return (await db.get(sql`SELECT * FROM signing_keys WHERE id = ${id}`)) as Record<string, unknown>;
}

forEachDatabase('signing keys', (t) => {
  async function setup() {
    const clock = { t: 1_000 };
    const db = await t.fresh();
    const keys = new SqliteSigningKeys(db, { now: () => clock.t++ });
    return { db, keys, clock, master: randomBytes(32) };
  }

  test('server key: public JWK stored, private key only wrapped (not a key; unwraps only with the master key)', async () => {
    const s = await setup();
    const k = await s.keys.createServerKey(s.master);
    assert.match(k.id, SIGNING_KEY_ID);
    assert.equal(k.kind, 'server');
    assert.equal(k.alg, 'ES256');
    assert.equal(k.revokedAt, null);
    assert.deepEqual(Object.keys(k.publicJwk).sort(), ['crv', 'kty', 'x', 'y']);
    const row = await rawRow(s.db, k.id);
    assert.deepEqual(Object.keys(JSON.parse(row.public_jwk as string)).sort(), ['crv', 'kty', 'x', 'y']);
    const wrapped = row.private_wrapped as string;
    assert.match(wrapped, /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{64}$/);
    // Not parseable as a private key in any form.
    for (const attempt of [
      () => createPrivateKey(wrapped),
      () => createPrivateKey({ key: Buffer.from(wrapped.split('.')[2]!, 'base64url'), format: 'der', type: 'pkcs8' }),
      () => createPrivateKey({ key: Buffer.from(wrapped.split('.')[2]!, 'base64url'), format: 'der', type: 'sec1' }),
      () => createPrivateKey({ key: { ...k.publicJwk, d: wrapped.split('.')[2]!.slice(0, 43) }, format: 'jwk' }),
    ]) {
      let usable = false;
      try {
        const key = attempt();
        // A random 32-byte scalar may import as a key; it must not be THIS key's private key.
        const sig = sign('sha256', Buffer.from('x'), key);
        usable = verify(
          'sha256',
          Buffer.from('x'),
          createPublicKey({ key: k.publicJwk as JsonWebKey, format: 'jwk' }),
          sig,
        );
      } catch {}
      assert.equal(usable, false);
    }
    // The master key unwraps it, and it is the private half of the stored public key.
    const jwk = await s.keys.serverPrivateJwk(k.id, s.master);
    assert.equal(typeof jwk.d, 'string');
    assert.ok(!wrapped.includes(jwk.d!));
    const stored = await storedBytes(s.db);
    assert.ok(!stored.includes(Buffer.from(jwk.d!, 'base64url')), 'the clear scalar is not stored');
    assert.ok(!stored.includes(Buffer.from(jwk.d!)), 'nor its base64url');
    const priv = createPrivateKey({ key: jwk as never, format: 'jwk' });
    const sig = sign('sha256', Buffer.from('hello'), priv);
    assert.ok(
      verify('sha256', Buffer.from('hello'), createPublicKey({ key: k.publicJwk as JsonWebKey, format: 'jwk' }), sig),
    );
    // Another master key, or the wrapped value moved to another key id, does not unwrap.
    await assert.rejects(s.keys.serverPrivateJwk(k.id, randomBytes(32)), isCode('INTERNAL'));
    const other = await s.keys.createServerKey(s.master);
    assert.throws(() => unwrapPrivateKey(s.master, other.id, other.publicJwk, wrapped), isCode('INTERNAL'));
    assert.throws(() => unwrapPrivateKey(s.master, k.id, other.publicJwk, wrapped), isCode('INTERNAL'));
    // Not a server key / unknown → SIGNING_KEY_NOT_FOUND.
    const c = await s.keys.createCustomerKey();
    await assert.rejects(s.keys.serverPrivateJwk(c.id, s.master), isCode('SIGNING_KEY_NOT_FOUND'));
    await assert.rejects(s.keys.serverPrivateJwk('kaaaaaaaaaaaaaaaa', s.master), isCode('SIGNING_KEY_NOT_FOUND'));
    await assert.rejects(s.keys.createServerKey(Buffer.alloc(16)), isCode('INTERNAL'));
  });

  test('customer key: the PKCS#8 private key is returned once; only the public JWK is stored', async () => {
    const s = await setup();
    const c = await s.keys.createCustomerKey();
    assert.match(c.id, SIGNING_KEY_ID);
    assert.equal(c.alg, 'ES256');
    assert.match(c.privateKeyPem, /^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n?$/);
    const priv = createPrivateKey(c.privateKeyPem);
    assert.equal(priv.asymmetricKeyType, 'ec');
    assert.equal(priv.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const d = priv.export({ format: 'jwk' }).d!;
    // Its public half is what was stored.
    const pub = createPublicKey(priv).export({ format: 'jwk' });
    assert.deepEqual({ x: pub.x, y: pub.y }, { x: c.publicJwk.x, y: c.publicJwk.y });
    const row = await rawRow(s.db, c.id);
    assert.equal(row.kind, 'customer');
    assert.equal(row.private_wrapped, null);
    assert.deepEqual(JSON.parse(row.public_jwk as string), { kty: 'EC', crv: 'P-256', x: pub.x, y: pub.y });
    // Nothing of the private key anywhere in the database files: not d (raw or base64url), not the PKCS#8 body.
    const bytes = await storedBytes(s.db);
    assert.ok(!bytes.includes(Buffer.from(d, 'base64url')));
    assert.ok(!bytes.includes(Buffer.from(d)));
    const der = priv.export({ format: 'der', type: 'pkcs8' });
    assert.ok(!bytes.includes(der.subarray(0, 60)));
    for (const line of c.privateKeyPem.split('\n').filter((l) => l.length > 20 && !l.startsWith('-----'))) {
      assert.ok(!bytes.includes(Buffer.from(line)));
    }
    // Listing gives no private material.
    const listed = (await s.keys.get(c.id))!;
    assert.deepEqual(Object.keys(listed).sort(), ['alg', 'createdAt', 'id', 'kind', 'publicJwk', 'revokedAt']);
    assert.ok(!JSON.stringify(await s.keys.list()).includes(d));
    assert.ok(!JSON.stringify(await s.keys.verificationKeys()).includes(d));
  });

  test('list, get, revoke, activeServerKey, verificationKeys', async () => {
    const s = await setup();
    assert.equal(await s.keys.activeServerKey(), null);
    assert.deepEqual(await s.keys.list(), []);
    const a = await s.keys.createServerKey(s.master);
    const c = await s.keys.createCustomerKey();
    const b = await s.keys.createServerKey(s.master);
    assert.deepEqual(
      (await s.keys.list()).map((k) => k.id),
      [b.id, c.id, a.id],
    );
    assert.equal((await s.keys.activeServerKey())?.id, b.id);
    assert.deepEqual(await s.keys.get(c.id), {
      id: c.id,
      kind: 'customer',
      alg: 'ES256',
      publicJwk: c.publicJwk,
      createdAt: c.createdAt,
      revokedAt: null,
    });
    for (const bad of ['', 'k', 'kAAAAAAAAAAAAAAAA', "k' OR 1=1 --", 'kaaaaaaaaaaaaaaaa', null, 42]) {
      assert.equal(await s.keys.get(bad as string), null, String(bad));
      await assert.rejects(s.keys.revoke(bad as string), isCode('SIGNING_KEY_NOT_FOUND'), String(bad));
    }
    const r = await s.keys.revoke(b.id);
    assert.equal(typeof r.revokedAt, 'number');
    assert.equal((await s.keys.revoke(b.id)).revokedAt, r.revokedAt, 'revoking again keeps the first time');
    assert.equal((await s.keys.activeServerKey())?.id, a.id);
    await s.keys.revoke(a.id);
    assert.equal(await s.keys.activeServerKey(), null);
    const v = await s.keys.verificationKeys();
    assert.deepEqual(
      v.map((k) => [k.id, k.revokedAt !== null]),
      [
        [b.id, true],
        [c.id, false],
        [a.id, true],
      ],
    );
    for (const k of v) assert.deepEqual(Object.keys(k).sort(), ['alg', 'id', 'publicJwk', 'revokedAt']);
    assert.ok(!JSON.stringify(v).includes('"d"'));
  });

  test('ensureServerKey: the active key, or exactly one new one when several callers race', async () => {
    const s = await setup();
    const got = await Promise.all([1, 2, 3].map(() => s.keys.ensureServerKey(s.master)));
    assert.equal(new Set(got.map((k) => k.id)).size, 1);
    assert.equal((await s.keys.list()).length, 1);
    assert.equal((await s.keys.ensureServerKey(s.master)).id, got[0]!.id);
    await s.keys.revoke(got[0]!.id);
    const next = await s.keys.ensureServerKey(s.master);
    assert.notEqual(next.id, got[0]!.id);
    assert.equal((await s.keys.activeServerKey())?.id, next.id);
  });

  test('ensureServerKey: callers racing on two connections make one key between them', async () => {
    const target = await t.target();
    const one = await openDatabase(target);
    const two = t.engine === 'postgres' ? await openDatabase(target) : one;
    try {
      const master = randomBytes(32);
      const a = new SqliteSigningKeys(one);
      const b = new SqliteSigningKeys(two);
      const got = await Promise.all([a, b, a, b, a, b, a, b].map((k) => k.ensureServerKey(master)));
      assert.equal(new Set(got.map((k) => k.id)).size, 1);
      assert.equal((await a.list()).length, 1);
      assert.equal((await b.activeServerKey())?.id, got[0]!.id);
    } finally {
      await one.close();
      if (two !== one) await two.close();
    }
  });
});
