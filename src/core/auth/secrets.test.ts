import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { SmoothcastError } from '../errors.ts';
import {
  hashPassword,
  needsRehash,
  newToken,
  OWASP_SCRYPT,
  secretsEqual,
  TOKEN_PATTERN,
  tokenHash,
  verifyPassword,
} from './secrets.ts';

// Small parameters keep the unit tests fast; one check runs the real OWASP ones.
const FAST = { N: 2 ** 10, r: 8, p: 1 };

describe('password hashes (scrypt)', () => {
  it('verifies the right password only, with a fresh salt each time', async () => {
    const h = await hashPassword('correct horse battery staple', FAST);
    assert.match(h, /^scrypt\$1024\$8\$1\$/);
    assert.equal(await verifyPassword('correct horse battery staple', h), true);
    assert.equal(await verifyPassword('correct horse battery stapl', h), false);
    assert.notEqual(await hashPassword('correct horse battery staple', FAST), h);
    assert.equal(needsRehash(h), true, 'weaker than OWASP');
  });

  it('is node:crypto scrypt as documented (the stored key is scryptSync of the NFKC password and the salt)', async () => {
    const h = await hashPassword('pässwörd', FAST);
    const [, , , , salt, key] = h.split('$');
    const ref = scryptSync('pässwörd'.normalize('NFKC'), Buffer.from(salt!, 'base64url'), 32, FAST);
    assert.equal(ref.toString('base64url'), key);
  });

  it('uses the OWASP parameters by default', async () => {
    const h = await hashPassword('x');
    assert.match(h, new RegExp(`^scrypt\\$${OWASP_SCRYPT.N}\\$8\\$1\\$`));
    assert.equal(await verifyPassword('x', h), true);
    assert.equal(needsRehash(h), false);
  });

  it('refuses empty or huge passwords and treats malformed or planted records as a mismatch', async () => {
    await assert.rejects(hashPassword(''), SmoothcastError);
    await assert.rejects(hashPassword('a'.repeat(2000)), SmoothcastError);
    assert.equal(await verifyPassword('x', 'plain'), false);
    assert.equal(await verifyPassword('', await hashPassword('x', FAST)), false);
    const planted = `scrypt$${2 ** 24}$8$1$${'A'.repeat(22)}$${'A'.repeat(43)}`;
    assert.equal(await verifyPassword('x', planted), false, 'parameters too costly are refused, not computed');
  });
});

describe('API tokens', () => {
  it('are 256 random bits, stored as a SHA-256, compared in constant time', () => {
    const t = newToken();
    assert.match(t, TOKEN_PATTERN);
    assert.notEqual(newToken(), t);
    assert.match(tokenHash(t), /^[0-9a-f]{64}$/);
    assert.equal(tokenHash(t), tokenHash(t));
    assert.equal(secretsEqual(t, t), true);
    assert.equal(secretsEqual(t, `${t}x`), false);
    assert.equal(secretsEqual(t, newToken()), false);
  });
});
