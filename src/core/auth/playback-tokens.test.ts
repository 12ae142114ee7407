import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  decodeProtectedHeader,
  exportSPKI,
  generateKeyPair,
  importJWK,
  importPKCS8,
  SignJWT,
  UnsecuredJWT,
} from 'jose';
import { openDatabase } from '../db/database.ts';
import { newSigningKeyId, SqliteSigningKeys } from '../db/signing-keys.ts';
import { SmoothcastError } from '../errors.ts';
import {
  MAX_TOKEN_LENGTH,
  normalizeIp,
  PlaybackSigner,
  PlaybackVerifier,
  type PlaybackVerifierOptions,
  type PlaybackWant,
} from './playback-tokens.ts';

const dir = mkdtempSync(join(tmpdir(), 'smoothcast-playback-tokens-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const ASSET = 'a1b2c3d4e5f6g7h8';
const IP = '198.51.100.23';
const want = (over: Partial<PlaybackWant> = {}): PlaybackWant => ({ sub: ASSET, aud: 'manifest', ip: IP, ...over });

async function setup(options: PlaybackVerifierOptions = {}) {
  const clock = { t: Date.now() };
  const now = () => clock.t;
  const db = await openDatabase(join(dir, `p${++n}.sqlite`));
  const keys = new SqliteSigningKeys(db, { now });
  const master = randomBytes(32);
  const signer = new PlaybackSigner(keys, master, { now });
  const counts = { checks: 0, loads: 0 };
  const verifier = new PlaybackVerifier(
    () => {
      counts.loads++;
      return keys.verificationKeys();
    },
    { now, onSignatureCheck: () => counts.checks++, ...options },
  );
  return { db, keys, master, signer, verifier, counts, clock, [Symbol.asyncDispose]: () => db.close() };
}

const isCode = (code: string) => (err: unknown) => {
  assert.ok(err instanceof SmoothcastError, String(err));
  assert.equal(err.code, code, `${err.code}: ${err.message}`);
  return true;
};

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const parts = (token: string) => token.split('.') as [string, string, string];

test('sign → verify round trip; claims as documented; the server key is created on first use', async () => {
  await using s = await setup();
  assert.equal(await s.keys.activeServerKey(), null);
  const { token, expiresAt } = await s.signer.sign({
    sub: ASSET,
    aud: ['manifest', 'key'],
    expiresInSeconds: 600,
    sid: 'viewer-1',
  });
  const active = await s.keys.activeServerKey();
  assert.ok(active);
  assert.deepEqual(decodeProtectedHeader(token), { alg: 'ES256', kid: active.id, typ: 'JWT' });
  assert.equal(expiresAt, (Math.floor(s.clock.t / 1000) + 600) * 1000);
  const claims = await s.verifier.verify(token, want());
  assert.deepEqual(
    { ...claims },
    {
      kid: active.id,
      sub: ASSET,
      aud: ['manifest', 'key'],
      exp: expiresAt / 1000,
      iat: Math.floor(s.clock.t / 1000),
      sid: 'viewer-1',
    },
  );
  assert.ok(Object.isFrozen(claims));
  assert.deepEqual(await s.verifier.verify(token, want({ aud: 'key' })), claims);
  // A single aud is a string in the token and a one-element array in the claims.
  const single = await s.signer.sign({ sub: ASSET, aud: 'thumbnail', expiresInSeconds: 60 });
  assert.deepEqual((await s.verifier.verify(single.token, want({ aud: 'thumbnail' }))).aud, ['thumbnail']);
  assert.equal((await s.keys.list()).length, 1, 'one server key, made once');
  assert.ok(token.length < 400, `token is ${token.length} characters`);
});

test('the cache: a second verify of a token does no signature check; verifyCached is the sync fast path', async () => {
  await using s = await setup();
  const { token } = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  assert.equal(s.verifier.verifyCached(token, want()), undefined);
  await s.verifier.verify(token, want());
  assert.equal(s.counts.checks, 1);
  for (let i = 0; i < 10; i++) await s.verifier.verify(token, want());
  assert.equal(s.counts.checks, 1);
  assert.equal(s.verifier.verifyCached(token, want())?.sub, ASSET);
  // The cached path still applies every per-request check.
  assert.throws(() => s.verifier.verifyCached(token, want({ sub: 'other0000' })), isCode('PLAYBACK_TOKEN_WRONG_ASSET'));
  assert.throws(() => s.verifier.verifyCached(token, want({ aud: 'key' })), isCode('PLAYBACK_TOKEN_WRONG_AUD'));
  assert.throws(() => s.verifier.verifyCached(undefined, want()), isCode('PLAYBACK_TOKEN_REQUIRED'));
  assert.equal(s.counts.checks, 1);
  // A fresh verifier (another process) checks the signature once itself.
  const other = new PlaybackVerifier(() => s.keys.verificationKeys());
  assert.equal(other.verifyCached(token, want()), undefined);
});

test('the cache is a bounded LRU', async () => {
  await using s = await setup({ cacheSize: 3 });
  const tokens = await Promise.all(
    [0, 1, 2, 3].map((i) => s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600, sid: `s${i}` })),
  );
  for (const t of tokens.slice(0, 3)) await s.verifier.verify(t.token, want());
  // A hit refreshes its place every few seconds (not on each request, which would cost more than the lookup).
  s.clock.t += 6000;
  await s.verifier.verify(tokens[0]!.token, want()); // 0 is now the most recently used
  await s.verifier.verify(tokens[3]!.token, want()); // evicts 1, the least recently used
  assert.equal(s.verifier.cached, 3);
  assert.ok(s.verifier.verifyCached(tokens[0]!.token, want()));
  assert.equal(s.verifier.verifyCached(tokens[1]!.token, want()), undefined);
  assert.ok(s.verifier.verifyCached(tokens[2]!.token, want()));
  assert.ok(s.verifier.verifyCached(tokens[3]!.token, want()));
});

test('missing, over-long and garbage tokens', async () => {
  await using s = await setup();
  await assert.rejects(s.verifier.verify(undefined, want()), isCode('PLAYBACK_TOKEN_REQUIRED'));
  await assert.rejects(s.verifier.verify('', want()), isCode('PLAYBACK_TOKEN_REQUIRED'));
  const { token } = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  const [h, p, sig] = parts(token);
  // Over-long: refused before parsing, even a well-formed token whose signature is genuine.
  const big = await new SignJWT({ pad: 'x'.repeat(MAX_TOKEN_LENGTH) })
    .setProtectedHeader({ alg: 'ES256', kid: decodeProtectedHeader(token).kid! })
    .setSubject(ASSET)
    .setAudience('manifest')
    .setExpirationTime('1h')
    .sign(await importJWK(await s.keys.serverPrivateJwk((await s.keys.activeServerKey())!.id, s.master), 'ES256'));
  assert.ok(big.length > MAX_TOKEN_LENGTH);
  for (const t of [big, `${h}.${p}.${sig}${'A'.repeat(MAX_TOKEN_LENGTH)}`, 'x'.repeat(MAX_TOKEN_LENGTH + 1)]) {
    await assert.rejects(s.verifier.verify(t, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  }
  for (const t of [
    'garbage',
    'a.b.c',
    '..',
    `${h}.${p}`,
    `${h}.${p}.${sig}.x`,
    `${h}.${p}.${sig}=`,
    `${h} .${p}.${sig}`,
    `${b64('not an object')}.${p}.${sig}`,
    `${b64({ kid: 'kaaaaaaaaaaaaaaaa' })}.${p}.${sig}`,
    `${Buffer.from('{"alg":"ES256",').toString('base64url')}.${p}.${sig}`,
    `${b64({ alg: 'ES256', kid: 'not-a-kid' })}.${p}.${sig}`,
    `${b64({ alg: 'ES256' })}.${p}.${sig}`,
    `${b64({ alg: 'ES256', kid: decodeProtectedHeader(token).kid, crit: ['exp'], exp: 1 })}.${p}.${sig}`,
    42 as unknown as string,
  ]) {
    await assert.rejects(s.verifier.verify(t, want()), isCode('PLAYBACK_TOKEN_INVALID'), String(t));
  }
  assert.equal(s.counts.checks, 1, 'only the header with crit reached a signature check');
});

test('tampered payload, tampered signature, tampered kid', async () => {
  await using s = await setup();
  const { token } = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  const [h, p, sig] = parts(token);
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  const forged = `${h}.${b64({ ...claims, sub: 'zzzzzzzzzzzzzzzz' })}.${sig}`;
  await assert.rejects(s.verifier.verify(forged, want({ sub: 'zzzzzzzzzzzzzzzz' })), isCode('PLAYBACK_TOKEN_INVALID'));
  const longer = `${h}.${b64({ ...claims, exp: claims.exp + 86_400 })}.${sig}`;
  await assert.rejects(s.verifier.verify(longer, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  const mid = Math.floor(sig.length / 2);
  const flipped = `${h}.${p}.${sig.slice(0, mid)}${sig[mid] === 'A' ? 'B' : 'A'}${sig.slice(mid + 1)}`;
  await assert.rejects(s.verifier.verify(flipped, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  // Another genuine key's id in the header: the signature does not verify under it.
  await s.signer.rotate();
  const newKid = (await s.keys.activeServerKey())!.id;
  s.verifier.invalidate();
  const rekid = `${b64({ ...decodeProtectedHeader(token), kid: newKid })}.${p}.${sig}`;
  await assert.rejects(s.verifier.verify(rekid, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  // The untouched token still verifies, and nothing forged was cached.
  await s.verifier.verify(token, want());
  assert.equal(s.verifier.cached, 1);
});

test('alg none and HS256 signed with the public key are refused', async () => {
  await using s = await setup();
  const { token } = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  const kid = decodeProtectedHeader(token).kid!;
  const p = parts(token)[1];
  const unsecured = new UnsecuredJWT({ sub: ASSET, aud: 'manifest' }).setExpirationTime('1h').encode();
  await assert.rejects(s.verifier.verify(unsecured, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  const noneWithKid = `${b64({ alg: 'none', kid })}.${p}.`;
  await assert.rejects(s.verifier.verify(noneWithKid, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  const noneWithSig = `${b64({ alg: 'none', kid })}.${p}.${parts(token)[2]}`;
  await assert.rejects(s.verifier.verify(noneWithSig, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  // The classic key confusion: HMAC keyed with the public key (as PEM, as JWK JSON, as the raw point).
  const pub = (await s.keys.get(kid))!.publicJwk;
  const pem = await exportSPKI(await importJWK(pub, 'ES256', { extractable: true }));
  const point = Buffer.concat([Buffer.from([4]), Buffer.from(pub.x, 'base64url'), Buffer.from(pub.y, 'base64url')]);
  for (const secret of [Buffer.from(pem), Buffer.from(JSON.stringify(pub)), point]) {
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      const hs = await new SignJWT({})
        .setProtectedHeader({ alg, kid })
        .setSubject(ASSET)
        .setAudience('manifest')
        .setExpirationTime('1h')
        .sign(secret);
      await assert.rejects(s.verifier.verify(hs, want()), isCode('PLAYBACK_TOKEN_INVALID'), alg);
      // Also hand-made (alg ES256 in the header but an HMAC as signature).
      const h = b64({ alg: 'ES256', kid });
      const mac = createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url');
      await assert.rejects(s.verifier.verify(`${h}.${p}.${mac}`, want()), isCode('PLAYBACK_TOKEN_INVALID'));
    }
  }
  assert.equal(s.verifier.cached, 0);
});

test('expired (5 s of skew), including a cached token, and not yet valid', async () => {
  await using s = await setup();
  const a = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 60 });
  const b = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 60, sid: 'b' });
  await s.verifier.verify(a.token, want());
  s.clock.t = a.expiresAt + 4_000; // past exp, inside the skew
  await s.verifier.verify(a.token, want());
  s.clock.t = a.expiresAt + 5_000;
  assert.throws(() => s.verifier.verifyCached(a.token, want()), isCode('PLAYBACK_TOKEN_EXPIRED'));
  assert.equal(s.verifier.cached, 0, 'the expired entry is gone');
  await assert.rejects(s.verifier.verify(a.token, want()), isCode('PLAYBACK_TOKEN_EXPIRED'));
  await assert.rejects(s.verifier.verify(b.token, want()), isCode('PLAYBACK_TOKEN_EXPIRED'));
  // nbf in the future (beyond the skew) → INVALID; inside the skew → fine.
  const c = await s.keys.createCustomerKey();
  s.verifier.invalidate();
  const priv = await importPKCS8(c.privateKeyPem, 'ES256');
  const nowSec = Math.floor(s.clock.t / 1000);
  const mk = (nbf: number) =>
    new SignJWT({ nbf })
      .setProtectedHeader({ alg: 'ES256', kid: c.id })
      .setSubject(ASSET)
      .setAudience('manifest')
      .setExpirationTime(nowSec + 600)
      .sign(priv);
  await assert.rejects(s.verifier.verify(await mk(nowSec + 6), want()), isCode('PLAYBACK_TOKEN_INVALID'));
  await s.verifier.verify(await mk(nowSec + 5), want());
});

test('wrong sub, wrong aud; missing or malformed claims are invalid', async () => {
  await using s = await setup();
  const { token } = await s.signer.sign({ sub: ASSET, aud: ['manifest', 'thumbnail'], expiresInSeconds: 60 });
  await assert.rejects(
    s.verifier.verify(token, want({ sub: 'lxxxxxxxxxxxxxxx' })),
    isCode('PLAYBACK_TOKEN_WRONG_ASSET'),
  );
  await assert.rejects(s.verifier.verify(token, want({ aud: 'key' })), isCode('PLAYBACK_TOKEN_WRONG_AUD'));
  await assert.rejects(s.verifier.verify(token, want({ aud: 'download' })), isCode('PLAYBACK_TOKEN_WRONG_AUD'));
  await s.verifier.verify(token, want({ aud: 'thumbnail' }));
  const c = await s.keys.createCustomerKey();
  const priv = await importPKCS8(c.privateKeyPem, 'ES256');
  const exp = Math.floor(s.clock.t / 1000) + 600;
  const cases: Record<string, unknown>[] = [
    { aud: 'manifest', exp },
    { sub: ASSET, exp },
    { sub: ASSET, aud: 'manifest' },
    { sub: ASSET, aud: 'manifests', exp },
    { sub: ASSET, aud: [], exp },
    { sub: ASSET, aud: ['manifest', 7], exp },
    { sub: 5, aud: 'manifest', exp },
    { sub: ASSET, aud: 'manifest', exp: String(exp) },
    { sub: ASSET, aud: 'manifest', exp, ip: 'localhost' },
    { sub: ASSET, aud: 'manifest', exp, ip: 7 },
    { sub: ASSET, aud: 'manifest', exp, sid: '' },
    { sub: ASSET, aud: 'manifest', exp, sid: 'has space' },
  ];
  s.clock.t += 1_000; // let the unknown kid reload the keys
  for (const payload of cases) {
    const t = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', kid: c.id }).sign(priv);
    await assert.rejects(s.verifier.verify(t, want()), isCode('PLAYBACK_TOKEN_INVALID'), JSON.stringify(payload));
  }
});

test('unknown kid → invalid; it reloads the keys, at most once a second', async () => {
  await using s = await setup();
  await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 60 });
  const stranger = await generateKeyPair('ES256');
  const strangerToken = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: newSigningKeyId() })
    .setSubject(ASSET)
    .setAudience('manifest')
    .setExpirationTime('1h')
    .sign(stranger.privateKey);
  await assert.rejects(s.verifier.verify(strangerToken, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  assert.equal(s.counts.loads, 1, 'the first load; the unknown kid came within a second of it');
  s.clock.t += 1_000;
  await assert.rejects(s.verifier.verify(strangerToken, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  assert.equal(s.counts.loads, 2);
  for (let i = 0; i < 20; i++) {
    await assert.rejects(s.verifier.verify(strangerToken, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  }
  assert.equal(s.counts.loads, 2, 'a flood of unknown kids does not hit the database');
  assert.equal(s.counts.checks, 0);
  // A key another process created: seen after the interval.
  const c = await s.keys.createCustomerKey();
  const t = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: c.id })
    .setSubject(ASSET)
    .setAudience('manifest')
    .setExpirationTime('1h')
    .sign(await importPKCS8(c.privateKeyPem, 'ES256'));
  await assert.rejects(s.verifier.verify(t, want()), isCode('PLAYBACK_TOKEN_INVALID'));
  s.clock.t += 1_000;
  await s.verifier.verify(t, want());
  assert.equal(s.counts.loads, 3);
});

test('revoked key: a token verified (and cached) just before fails at once after revoke + invalidate', async () => {
  await using s = await setup();
  const { token } = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  const kid = decodeProtectedHeader(token).kid!;
  await s.verifier.verify(token, want());
  assert.ok(s.verifier.verifyCached(token, want()));
  await s.keys.revoke(kid);
  s.verifier.invalidate();
  assert.equal(s.verifier.cached, 0);
  await assert.rejects(s.verifier.verify(token, want()), isCode('PLAYBACK_TOKEN_KEY_REVOKED'));
  // Its genuine signature was checked once more; from then on the refusal is a cache hit too.
  const checks = s.counts.checks;
  assert.throws(() => s.verifier.verifyCached(token, want()), isCode('PLAYBACK_TOKEN_KEY_REVOKED'));
  await assert.rejects(s.verifier.verify(token, want()), isCode('PLAYBACK_TOKEN_KEY_REVOKED'));
  assert.equal(s.counts.checks, checks);
  // The signer notices its key is revoked and makes a new one.
  const next = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  assert.notEqual(decodeProtectedHeader(next.token).kid, kid);
  s.clock.t += 1_000;
  await s.verifier.verify(next.token, want());
});

test('revoked by another process: seen at the next key refresh without invalidate()', async () => {
  await using s = await setup({ keyRefreshMs: 10_000 });
  const c = await s.keys.createCustomerKey();
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: c.id })
    .setSubject(ASSET)
    .setAudience('manifest')
    .setExpirationTime('1h')
    .sign(await importPKCS8(c.privateKeyPem, 'ES256'));
  await s.verifier.verify(token, want());
  await s.keys.revoke(c.id);
  s.clock.t += 9_000;
  await s.verifier.verify(token, want()); // still the old view of the keys
  assert.ok(s.verifier.verifyCached(token, want()), 'answered from the cache without a query');
  s.clock.t += 1_000;
  // The keys are due: the synchronous path does not answer from them, verify reloads them first.
  assert.equal(s.verifier.verifyCached(token, want()), undefined);
  const loads = s.counts.loads;
  await assert.rejects(s.verifier.verify(token, want()), isCode('PLAYBACK_TOKEN_KEY_REVOKED'));
  assert.equal(s.counts.loads, loads + 1);
  assert.throws(() => s.verifier.verifyCached(token, want()), isCode('PLAYBACK_TOKEN_KEY_REVOKED'));
});

test('invalidate() while an older key load is in flight: the older answer never replaces the newer', async () => {
  await using s = await setup();
  const { token } = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  const kid = decodeProtectedHeader(token).kid!;
  let loads = 0;
  let firstRead!: () => void;
  const read = new Promise<void>((r) => {
    firstRead = r;
  });
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const v = new PlaybackVerifier(
    async () => {
      const keys = await s.keys.verificationKeys();
      if (++loads === 1) {
        firstRead();
        await held; // the first load read the keys before the revocation and answers late
      }
      return keys;
    },
    { now: () => s.clock.t },
  );
  const first = v.verify(token, want());
  await read;
  await s.keys.revoke(kid);
  await v.invalidate();
  release();
  await assert.rejects(first, isCode('PLAYBACK_TOKEN_KEY_REVOKED'));
  await assert.rejects(v.verify(token, want()), isCode('PLAYBACK_TOKEN_KEY_REVOKED'));
  assert.throws(() => v.verifyCached(token, want()), isCode('PLAYBACK_TOKEN_KEY_REVOKED'));
  assert.equal(loads, 2);
});

test('a failing key load: verify reports it; a later periodic refresh failing keeps the keys held', async () => {
  await using s = await setup({ keyRefreshMs: 10_000 });
  const { token } = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  let down = true;
  const v = new PlaybackVerifier(
    async () => {
      if (down) throw new SmoothcastError('DB_UNAVAILABLE', 'the database is down');
      return s.keys.verificationKeys();
    },
    { now: () => s.clock.t, keyRefreshMs: 10_000 },
  );
  await assert.rejects(v.verify(token, want()), isCode('DB_UNAVAILABLE'));
  down = false;
  await v.verify(token, want());
  down = true;
  s.clock.t += 10_000;
  assert.equal(v.verifyCached(token, want()), undefined);
  assert.equal((await v.verify(token, want())).sub, ASSET, 'the keys held still answer');
  assert.ok(v.verifyCached(token, want()), 'and the next refresh is an interval away');
  await assert.rejects(v.invalidate(), isCode('DB_UNAVAILABLE'));
  await assert.rejects(v.verify(token, want()), isCode('DB_UNAVAILABLE'), 'invalidated keys do not answer');
  down = false;
  await v.verify(token, want());
});

test('a customer key: its PKCS#8 private key signs outside smoothcast and the verifier accepts the token', async () => {
  await using s = await setup();
  const c = await s.keys.createCustomerKey();
  // As a customer backend would: only jose, the PEM and the key id.
  const key = await importPKCS8(c.privateKeyPem, 'ES256');
  const token = await new SignJWT({ sid: 'viewer-42', ip: '2001:DB8::0:1' })
    .setProtectedHeader({ alg: 'ES256', kid: c.id })
    .setSubject(ASSET)
    .setAudience(['manifest', 'key'])
    .setExpirationTime('2h')
    .sign(key);
  const claims = await s.verifier.verify(token, want({ aud: 'key', ip: '2001:db8:0:0::1' }));
  assert.deepEqual(
    { kid: claims.kid, sub: claims.sub, aud: claims.aud, sid: claims.sid, ip: claims.ip },
    { kid: c.id, sub: ASSET, aud: ['manifest', 'key'], sid: 'viewer-42', ip: '2001:db8::1' },
  );
  // With typ, iat, nbf and foreign claims too.
  const t2 = await new SignJWT({ iss: 'my-backend', anything: [1, 2] })
    .setProtectedHeader({ alg: 'ES256', kid: c.id, typ: 'JWT' })
    .setSubject(ASSET)
    .setAudience('download')
    .setIssuedAt()
    .setNotBefore('0s')
    .setExpirationTime('10m')
    .sign(key);
  await s.verifier.verify(t2, want({ aud: 'download' }));
});

test('ip binding: exact address, whatever its spelling', async () => {
  await using s = await setup();
  const { token } = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600, ip: IP });
  assert.equal((await s.verifier.verify(token, want())).ip, IP);
  await s.verifier.verify(token, want({ ip: `::ffff:${IP}` }));
  for (const other of ['198.51.100.24', '::1', '2001:db8::1', 'garbage', '']) {
    await assert.rejects(s.verifier.verify(token, want({ ip: other })), isCode('PLAYBACK_TOKEN_WRONG_IP'), other);
  }
  const v6 = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600, ip: '2001:0DB8:0000::0042' });
  await s.verifier.verify(v6.token, want({ ip: '2001:db8::42' }));
  await assert.rejects(s.verifier.verify(v6.token, want({ ip: '2001:db8::43' })), isCode('PLAYBACK_TOKEN_WRONG_IP'));
  // Without an ip claim, any address.
  const free = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  await s.verifier.verify(free.token, want({ ip: '203.0.113.1' }));
  assert.equal(normalizeIp('::ffff:7f00:1'), '127.0.0.1');
  assert.equal(normalizeIp('FE80::1'), 'fe80::1');
  assert.equal(normalizeIp('1.2.3'), undefined);
});

test('rotate: new tokens carry the new kid; the old key stays valid until revoked', async () => {
  await using s = await setup();
  const old = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  const { id } = await s.signer.rotate();
  const fresh = await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600 });
  assert.equal(decodeProtectedHeader(fresh.token).kid, id);
  assert.notEqual(decodeProtectedHeader(old.token).kid, id);
  s.verifier.invalidate();
  await s.verifier.verify(old.token, want());
  await s.verifier.verify(fresh.token, want());
  await s.keys.revoke(decodeProtectedHeader(old.token).kid!);
  s.verifier.invalidate();
  await assert.rejects(s.verifier.verify(old.token, want()), isCode('PLAYBACK_TOKEN_KEY_REVOKED'));
  await s.verifier.verify(fresh.token, want());
});

test('sign refuses bad input', async () => {
  await using s = await setup();
  const ok = { sub: ASSET, aud: 'manifest' as const, expiresInSeconds: 60 };
  for (const bad of [
    { ...ok, sub: '' },
    { ...ok, sub: 'a/b' },
    { ...ok, aud: 'manifests' },
    { ...ok, aud: [] },
    { ...ok, expiresInSeconds: 0 },
    { ...ok, expiresInSeconds: 1.5 },
    { ...ok, expiresInSeconds: 400 * 86_400 },
    { ...ok, ip: 'localhost' },
    { ...ok, sid: 'a b' },
  ]) {
    await assert.rejects(s.signer.sign(bad as never), isCode('BAD_REQUEST'), JSON.stringify(bad));
  }
});

test('timing (info): µs per verify, cold (ECDSA) vs cached', async () => {
  await using s = await setup();
  const N = 2000;
  const tokens: string[] = [];
  for (let i = 0; i < N; i++) {
    tokens.push((await s.signer.sign({ sub: ASSET, aud: 'manifest', expiresInSeconds: 600, sid: `s${i}` })).token);
  }
  const v = new PlaybackVerifier(() => s.keys.verificationKeys(), { now: () => s.clock.t });
  await v.verify(tokens[0]!, want()); // load keys, import the public key
  let t0 = process.hrtime.bigint();
  for (let i = 1; i < N; i++) await v.verify(tokens[i]!, want());
  const cold = Number(process.hrtime.bigint() - t0) / 1000 / (N - 1);
  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) await v.verify(tokens[i]!, want());
  const cached = Number(process.hrtime.bigint() - t0) / 1000 / N;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) v.verifyCached(tokens[i]!, want());
  const sync = Number(process.hrtime.bigint() - t0) / 1000 / N;
  console.log(
    `playback token verify, ${N} tokens: cold ${cold.toFixed(1)} µs, cached ${cached.toFixed(2)} µs (verify), ` +
      `${sync.toFixed(2)} µs (verifyCached)`,
  );
  assert.equal(v.cached, N);
});
