// Signed playback on a real server: a signed asset's manifest without, with a tampered, expired, wrong-asset,
// wrong-aud or revoked-key token → 403 with its code; a valid token opens it and reaches every URL in it; a
// customer key's own tokens work; manifests of a signed asset are private, no-store; viewer limits.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { importPKCS8, SignJWT } from 'jose';
import type { AssetJson } from '../../src/roles/api/present.ts';
import { importSettled, startTestPlatform, type TestPlatform, until } from '../helpers/platform.ts';
import { h264Clip } from '../helpers/sources.ts';

type Json = Record<string, unknown> & { error?: { code: string } };

async function patch(p: TestPlatform, id: string, body: unknown): Promise<AssetJson> {
  const r = await p.api(`/api/assets/${id}`, {
    method: 'PATCH',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as AssetJson;
}

async function sign(p: TestPlatform, id: string, body: unknown = {}) {
  const r = await p.api(`/api/assets/${id}/playback-tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 201, await r.clone().text());
  return (await r.json()) as { token: string; playback: AssetJson['playback'] };
}

async function code(res: Response): Promise<string | undefined> {
  return ((await res.json()) as Json).error?.code;
}

describe('signed playback', () => {
  let p: TestPlatform;
  let a: AssetJson;
  let b: AssetJson;
  const master = (id: string, token?: string) =>
    fetch(`${p.url}/v/${id}/master.m3u8${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`);

  before(async () => {
    p = await startTestPlatform();
    const clip = await h264Clip({ seconds: 4, width: 320, height: 180 });
    a = await importSettled(p, clip);
    b = await importSettled(p, clip);
    assert.equal(a.status, 'ready');
    a = await patch(p, a.id, { playbackPolicy: 'signed' });
    await patch(p, b.id, { playbackPolicy: 'signed' });
  });
  after(() => p.stop());

  it('refuses the manifest without a token', async () => {
    const r = await master(a.id);
    assert.equal(r.status, 403);
    assert.equal(await code(r), 'PLAYBACK_TOKEN_REQUIRED');
  });

  it('opens it with a valid token, which reaches every URL of the manifests', async () => {
    const t = await sign(p, a.id);
    assert.ok(t.playback.hls?.includes(`token=`));
    const r = await fetch(p.url + t.playback.hls!);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('cache-control'), 'private, no-store');
    const text = await r.text();
    const media = text.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.ok(media.length > 0 && media.every((l) => l.includes(`token=${encodeURIComponent(t.token)}`)), text);
    // A clear signed asset's segments are gated too: the media playlist hands them the token.
    const pl = await (await fetch(`${p.url}/v/${a.id}/${media[0]}`)).text();
    const segs = pl.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.ok(
      segs.every((l) => l.includes('token=')),
      pl,
    );
    const rev = media[0]!.split('/')[0];
    const seg = await fetch(`${p.url}/v/${a.id}/${rev}/${segs[0]}`);
    assert.equal(seg.status, 200);
    assert.match(seg.headers.get('cache-control') ?? '', /^private/);
    const bare = await fetch(`${p.url}/v/${a.id}/${rev}/${segs[0]!.split('?')[0]}`);
    assert.equal(bare.status, 403);
    const mpd = await fetch(p.url + t.playback.dash!);
    assert.equal(mpd.status, 200);
    assert.match(await mpd.text(), /media="[^"]+\$Number\$\.m4s\?token=/);
    // Poster and player data, with the token.
    assert.equal((await fetch(p.url + t.playback.poster!)).status, 200);
    assert.equal((await fetch(`${p.url}/v/${a.id}/poster.jpg`)).status, 403);
    const pj = await fetch(`${p.url}/v/${a.id}/player.json?token=${encodeURIComponent(t.token)}`);
    assert.equal(pj.status, 200);
    assert.equal((await fetch(`${p.url}/v/${a.id}/player.json`)).status, 403);
  });

  it('refuses a tampered token', async () => {
    const t = await sign(p, a.id);
    const [h, body, sig] = t.token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
    claims.exp += 86400;
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    const r = await master(a.id, forged);
    assert.equal(r.status, 403);
    assert.equal(await code(r), 'PLAYBACK_TOKEN_INVALID');
    const badSig = `${h}.${body}.${sig.slice(0, -4)}AAAA`;
    assert.equal(await code(await master(a.id, badSig)), 'PLAYBACK_TOKEN_INVALID');
  });

  it('refuses an expired token with its own code', async () => {
    const k = (await (
      await p.api('/api/signing-keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    ).json()) as { id: string; privateKey: string };
    const key = await importPKCS8(k.privateKey, 'ES256');
    const expired = await new SignJWT({ aud: ['manifest'] })
      .setProtectedHeader({ alg: 'ES256', kid: k.id })
      .setSubject(a.id)
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(key);
    const r = await master(a.id, expired);
    assert.equal(r.status, 403);
    assert.equal(await code(r), 'PLAYBACK_TOKEN_EXPIRED');
  });

  it("refuses another asset's token", async () => {
    const t = await sign(p, b.id);
    const r = await master(a.id, t.token);
    assert.equal(r.status, 403);
    assert.equal(await code(r), 'PLAYBACK_TOKEN_WRONG_ASSET');
  });

  it('refuses a token whose aud does not cover manifests', async () => {
    const t = await sign(p, a.id, { aud: ['thumbnail'] });
    const r = await master(a.id, t.token);
    assert.equal(r.status, 403);
    assert.equal(await code(r), 'PLAYBACK_TOKEN_WRONG_AUD');
    assert.equal((await fetch(`${p.url}/v/${a.id}/poster.jpg?token=${encodeURIComponent(t.token)}`)).status, 200);
  });

  it('a customer backend signs its own tokens; revoking the key stops them at once', async () => {
    const k = (await (
      await p.api('/api/signing-keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    ).json()) as { id: string; privateKey: string };
    assert.match(k.privateKey, /BEGIN PRIVATE KEY/);
    const listed = JSON.stringify(await (await p.api('/api/signing-keys')).json());
    assert.ok(!listed.includes('PRIVATE'), 'the private key is not listed');
    const key = await importPKCS8(k.privateKey, 'ES256');
    const token = await new SignJWT({ aud: 'manifest' })
      .setProtectedHeader({ alg: 'ES256', kid: k.id })
      .setSubject(a.id)
      .setExpirationTime('10m')
      .sign(key);
    assert.equal((await master(a.id, token)).status, 200);
    assert.equal((await p.api(`/api/signing-keys/${k.id}`, { method: 'DELETE' })).status, 204);
    const r = await master(a.id, token);
    assert.equal(r.status, 403);
    assert.equal(await code(r), 'PLAYBACK_TOKEN_KEY_REVOKED');
  });

  it('binds a token to an address when asked', async () => {
    const t = await sign(p, a.id, { ip: '10.1.2.3' });
    const r = await master(a.id, t.token);
    assert.equal(r.status, 403);
    assert.equal(await code(r), 'PLAYBACK_TOKEN_WRONG_IP');
    const ok = await sign(p, a.id, { ip: '127.0.0.1' });
    assert.equal((await master(a.id, ok.token)).status, 200);
  });

  it('serves a public asset with shared, cacheable manifests and token-free URLs', async () => {
    await patch(p, b.id, { playbackPolicy: 'public' });
    const r = await until(
      'the public policy to apply',
      async () => {
        const x = await master(b.id);
        return x.status === 200 ? x : undefined;
      },
      10_000,
    );
    assert.match(r.headers.get('cache-control') ?? '', /^public/);
    assert.ok(!(await r.text()).includes('token='));
  });
});

describe('viewer limits', () => {
  let p: TestPlatform;
  let a: AssetJson;
  before(async () => {
    p = await startTestPlatform({ security: { playbackSessionIdleSeconds: 5 } });
    a = await importSettled(p, await h264Clip({ seconds: 4, width: 320, height: 180 }));
    await patch(p, a.id, { maxViewers: 2 });
  });
  after(() => p.stop());

  it('refuses a third concurrent viewer with 429, and lets a new one in after one leaves', async () => {
    const open = async () => fetch(`${p.url}/v/${a.id}/master.m3u8`);
    const v1 = await until(
      'the limit to apply',
      async () => {
        const r = await open();
        return (await r.clone().text()).includes('sid=') ? r : undefined;
      },
      10_000,
    );
    const sid1 = /sid=([^&\s"]+)/.exec(await v1.text())![1]!;
    const v2 = await open();
    assert.equal(v2.status, 200);
    const sid2 = /sid=([^&\s"]+)/.exec(await v2.text())![1]!;
    assert.notEqual(sid1, sid2);
    const v3 = await open();
    assert.equal(v3.status, 429);
    assert.equal(await code(v3), 'VIEWER_LIMIT_REACHED');
    const json = (await (await p.api(`/api/assets/${a.id}`)).json()) as AssetJson;
    assert.equal(json.viewers, 2);
    // Viewer 2 keeps fetching segments with its session; viewer 1 leaves (fetches nothing more).
    const master2 = await (await fetch(`${p.url}/v/${a.id}/master.m3u8?sid=${sid2}`)).text();
    const mediaPath = master2.split('\n').find((l) => l.startsWith('r'))!;
    const base = `${p.url}/v/${a.id}/${mediaPath.split('/')[0]}/`;
    const pl = await (await fetch(`${p.url}/v/${a.id}/${mediaPath}`)).text();
    const seg = pl.split('\n').find((l) => l && !l.startsWith('#'))!;
    assert.match(seg, new RegExp(`sid=${sid2}`));
    const started = Date.now();
    const newcomer = await until(
      'a slot to free after viewer 1 left',
      async () => {
        assert.equal((await fetch(base + seg)).status, 200, 'viewer 2 keeps playing');
        const r = await open();
        return r.status === 200 ? r : undefined;
      },
      60_000,
    );
    assert.equal(newcomer.status, 200);
    // Viewer 2 was never dropped: its session is one of the two.
    assert.equal((await fetch(base + seg)).status, 200);
    assert.ok(Date.now() - started < 60_000);
  });
});
