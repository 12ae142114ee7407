// DRM-ready signalling: with Widevine and PlayReady licence servers configured, a cenc MPD carries their
// ContentProtection (system id, PSSH, licence URL) next to ClearKey's, the encrypted init carries their PSSH boxes,
// and cbcs leaves PlayReady out (PlayReady's cbcs needs a v4.3 header this deployment did not ask for); keys are
// per revision (a re-encode gets another KID) and only wrapped keys are stored.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { SYSTEM_IDS } from '../../media/crypto/pssh.ts';
import { OnTheFly } from './encryption.ts';

function store() {
  const rows = new Map<string, { contentKey: string | null }>([['asset1', { contentKey: null }]]);
  return {
    rows,
    get: async (id: string) => rows.get(id) ?? null,
    async setContentKeyOnce(id: string, wrapped: string) {
      const r = rows.get(id)!;
      r.contentKey ??= wrapped;
      return r.contentKey;
    },
  };
}

test('cenc with Widevine and PlayReady configured: each system in the MPD with its PSSH and licence URL', async () => {
  const otf = new OnTheFly({
    master: randomBytes(32),
    store: store(),
    cacheBytes: 1 << 20,
    drm: { widevine: 'https://wv.example/license', playready: 'https://pr.example/rightsmanager.asmx' },
  });
  const cp = (
    await otf.contentProtection('cenc', 'asset1', 'r1-1', 'https://origin.example/v/asset1/r1-1/clearkey')
  ).join('\n');
  assert.match(cp, /urn:mpeg:dash:mp4protection:2011" value="cenc" cenc:default_KID="[0-9a-f-]{36}"/);
  assert.match(
    cp,
    new RegExp(`urn:uuid:${SYSTEM_IDS.clearkey}[\\s\\S]*https://origin\\.example/v/asset1/r1-1/clearkey`),
  );
  assert.match(
    cp,
    new RegExp(`urn:uuid:${SYSTEM_IDS.widevine}[\\s\\S]*<cenc:pssh>[A-Za-z0-9+/=]+</cenc:pssh>[\\s\\S]*wv\\.example`),
  );
  assert.match(cp, new RegExp(`urn:uuid:${SYSTEM_IDS.playready}[\\s\\S]*pr\\.example`));
  // Each PSSH is a real 'pssh' box of its system.
  for (const m of cp.matchAll(/<cenc:pssh>([^<]+)<\/cenc:pssh>/g)) {
    const box = Buffer.from(m[1]!, 'base64');
    assert.equal(box.toString('latin1', 4, 8), 'pssh');
    assert.equal(box.readUInt32BE(0), box.length);
  }
  const pssh = otf.pssh('cenc', (await otf.key('asset1', 'r1-1')).kid);
  assert.equal(pssh.length, 3, 'common (ClearKey), Widevine, PlayReady in the init');
  assert.equal(otf.pssh('cbcs', (await otf.key('asset1', 'r1-1')).kid).length, 2, 'PlayReady left out for cbcs');
});

test('keys: one content key per asset, stored wrapped; each revision gets its own key and KID', async () => {
  const s = store();
  const otf = new OnTheFly({ master: randomBytes(32), store: s, cacheBytes: 1 << 20 });
  const a = await otf.key('asset1', 'r1-1');
  const b = await otf.key('asset1', 'r2-1');
  assert.notDeepEqual(a.kid, b.kid);
  assert.notDeepEqual(a.key, b.key);
  const wrapped = s.rows.get('asset1')!.contentKey!;
  assert.match(wrapped, /^v1\./);
  assert.ok(!wrapped.includes(a.key.toString('hex')) && !wrapped.includes(a.key.toString('base64url')));
  // The same answer from a fresh process over the same store (derived, not random per call).
  const again = new OnTheFly({ master: randomBytes(32), store: s, cacheBytes: 1 << 20 });
  await assert.rejects(again.key('asset1', 'r1-1'), /does not unwrap/, 'another master key cannot read it');
});

test('the ClearKey licence answers only the KID of that revision', async () => {
  const otf = new OnTheFly({ master: randomBytes(32), store: store(), cacheBytes: 1 << 20 });
  const { kid, key } = await otf.key('asset1', 'r1-1');
  const lic = await otf.clearKeyLicense('asset1', 'r1-1', { kids: [kid.toString('base64url')], type: 'temporary' });
  assert.deepEqual(lic.keys, [{ kty: 'oct', kid: kid.toString('base64url'), k: key.toString('base64url') }]);
  await assert.rejects(
    otf.clearKeyLicense('asset1', 'r1-1', { kids: ['AAAAAAAAAAAAAAAAAAAAAA'] }),
    /KEY_NOT_FOUND|none of these/,
  );
  await assert.rejects(otf.clearKeyLicense('asset1', 'r1-1', { kids: 'x' }), /ClearKey licence request/);
});
